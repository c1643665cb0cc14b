import CSodium

/// Cryptographically secure random bytes from libsodium (`getrandom(2)`).
public enum SecureRandom {
    public static func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        ensureSodium()
        guard let base = buffer.baseAddress else { return }
        randombytes_buf(base, buffer.count)
    }

    public static func bytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        out.withUnsafeMutableBytes { fill($0) }
        return out
    }

    public static func bytes32() -> Bytes32 {
        Bytes32(filling: { fill($0) })
    }

    /// A uniformly random integer in `0..<upperBound` (no modulo bias).
    public static func uniform(_ upperBound: UInt32) -> UInt32 {
        ensureSodium()
        return randombytes_uniform(upperBound)
    }

    public static func uint64() -> UInt64 {
        var value: UInt64 = 0
        withUnsafeMutableBytes(of: &value) { fill($0) }
        return value
    }
}

/// A `RandomNumberGenerator` backed by `SecureRandom`, for stdlib APIs.
public struct SecureRandomNumberGenerator: RandomNumberGenerator, Sendable {
    public init() {}
    public mutating func next() -> UInt64 { SecureRandom.uint64() }
}

/// Compares two byte strings in time that depends only on their length
/// (libsodium `sodium_memcmp`). Different lengths compare unequal at once:
/// lengths are not secret here.
public func constantTimeEquals(_ a: some RawBytes, _ b: some RawBytes) -> Bool {
    ensureSodium()
    return a.withUnsafeBytes { x in
        b.withUnsafeBytes { y in
            guard x.count == y.count else { return false }
            guard x.count > 0 else { return true }
            return sodium_memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0
        }
    }
}

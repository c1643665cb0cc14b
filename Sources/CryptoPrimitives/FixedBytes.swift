#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// 32 bytes held inline (no heap allocation): public keys, symmetric keys,
/// hashes and chaining keys. Equality is not constant-time; compare secrets
/// with `constantTimeEquals`.
public struct Bytes32: Hashable, Sendable, RawBytes {
    public static let count = 32
    @usableFromInline var storage: Words4

    public static let zero = Bytes32()

    @inlinable public init() { storage = Words4() }

    /// Copies exactly 32 bytes; any other length is an error.
    public init(_ bytes: some RawBytes) throws {
        var value = Words4()
        let ok = bytes.withUnsafeBytes { source in
            guard source.count == Self.count else { return false }
            Swift.withUnsafeMutableBytes(of: &value) { $0.copyMemory(from: source) }
            return true
        }
        guard ok else {
            throw CryptoError.invalidLength("Bytes32", expected: "32", got: bytes.withUnsafeBytes { $0.count })
        }
        storage = value
    }

    /// Builds the value by letting `body` fill all 32 bytes.
    @inlinable
    public init(filling body: (UnsafeMutableRawBufferPointer) throws -> Void) rethrows {
        var value = Words4()
        try Swift.withUnsafeMutableBytes(of: &value) { try body($0) }
        storage = value
    }

    @inlinable
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeBytes(of: storage) { try body($0) }
    }

    @inlinable
    public mutating func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeMutableBytes(of: &storage) { try body($0) }
    }

    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }

    public var isZero: Bool { storage.isZero }
}

/// 16 bytes held inline: the keyed-BLAKE2s MACs (mac1, mac2) and cookies.
public struct Bytes16: Hashable, Sendable, RawBytes {
    public static let count = 16
    @usableFromInline var storage: SIMD16<UInt8>

    public static let zero = Bytes16()

    @inlinable public init() { storage = .zero }

    public init(_ bytes: some RawBytes) throws {
        var value = SIMD16<UInt8>.zero
        let ok = bytes.withUnsafeBytes { source in
            guard source.count == Self.count else { return false }
            Swift.withUnsafeMutableBytes(of: &value) { $0.copyMemory(from: source) }
            return true
        }
        guard ok else {
            throw CryptoError.invalidLength("Bytes16", expected: "16", got: bytes.withUnsafeBytes { $0.count })
        }
        storage = value
    }

    @inlinable
    public init(filling body: (UnsafeMutableRawBufferPointer) throws -> Void) rethrows {
        var value = SIMD16<UInt8>.zero
        try Swift.withUnsafeMutableBytes(of: &value) { try body($0) }
        storage = value
    }

    @inlinable
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeBytes(of: storage) { try body($0) }
    }

    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }
}

// MARK: - Text encodings (keys as `wg` and WireGuard's UAPI write them)

extension Bytes32 {
    /// Standard base64 with padding, as `wg genkey` prints.
    public init(base64: String) throws {
        guard let data = Data(base64Encoded: base64), data.count == Self.count else {
            throw CryptoError.invalidEncoding("expected 32 bytes in standard base64 (44 characters)")
        }
        try self.init(Array(data))
    }

    public var base64: String { Data(bytes).base64EncodedString() }

    /// Lower-case hex, as WireGuard's cross-platform UAPI writes keys.
    public init(hex: String) throws {
        guard let bytes = Hex.decode(hex), bytes.count == Self.count else {
            throw CryptoError.invalidEncoding("expected 32 bytes as 64 hex digits")
        }
        try self.init(bytes)
    }

    public var hex: String { Hex.encode(bytes) }
}

/// Hex helpers shared by keys and tests.
public enum Hex {
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes hex digits, ignoring ASCII whitespace; nil on any other
    /// character or an odd digit count.
    public static func decode(_ text: String) -> [UInt8]? {
        var out = [UInt8]()
        out.reserveCapacity(text.utf8.count / 2)
        var high: UInt8?
        for c in text.utf8 {
            let nibble: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): nibble = c - UInt8(ascii: "A") + 10
            case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\t"), UInt8(ascii: "\r"): continue
            default: return nil
            }
            if let h = high {
                out.append(h << 4 | nibble)
                high = nil
            } else {
                high = nibble
            }
        }
        return high == nil ? out : nil
    }
}

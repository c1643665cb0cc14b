import COpenSSL

/// HMAC-BLAKE2s (RFC 2104 §2) and WireGuard's KDF built on plain BLAKE2s-256
/// digest runs: H((K ⊕ opad) ‖ H((K ⊕ ipad) ‖ m)).
///
/// Same values as `BLAKE2s.hmac` and `WireGuardKDF`, faster for the short
/// inputs of a handshake: EVP_MAC duplicates a context (several
/// allocations) per call, which costs more than the four compressions
/// themselves. A WireGuard handshake computes about fifty of these, so this
/// is what the Noise code uses.
public enum DigestHMAC {
    /// The fetched algorithm is immutable and shared read-only (OpenSSL
    /// documents fetched EVP_MD objects as thread-safe).
    nonisolated(unsafe) private static let md: OpaquePointer = {
        guard let md = EVP_MD_fetch(nil, "BLAKE2S-256", nil) else {
            preconditionFailure("OpenSSL has no BLAKE2S-256 digest (need OpenSSL 3 default provider)")
        }
        return md
    }()

    private static let blockSize = 64

    /// HMAC-BLAKE2s-256(key, a ‖ b). Keys longer than the block are hashed
    /// first, as RFC 2104 says.
    public static func hmac(key: some RawBytes, _ a: some RawBytes, _ b: some RawBytes = [UInt8]()) -> Bytes32 {
        guard let ctx = EVP_MD_CTX_new() else { preconditionFailure("EVP_MD_CTX_new failed") }
        defer { EVP_MD_CTX_free(ctx) }
        return withUnsafeTemporaryAllocation(byteCount: blockSize * 2, alignment: 16) { scratch in
            let pad = UnsafeMutableRawBufferPointer(rebasing: scratch[0..<blockSize])
            let inner = UnsafeMutableRawBufferPointer(rebasing: scratch[blockSize..<(blockSize + 32)])
            pad.initializeMemory(as: UInt8.self, repeating: 0)
            key.withUnsafeBytes { k in
                if k.count > blockSize {
                    digest(
                        ctx, UnsafeRawBufferPointer(k), .empty, .empty,
                        into: UnsafeMutableRawBufferPointer(rebasing: pad[0..<32]))
                } else if k.count > 0 {
                    pad.copyMemory(from: k)
                }
            }
            for i in 0..<blockSize { pad[i] ^= 0x36 }
            a.withUnsafeBytes { a in
                b.withUnsafeBytes { b in
                    digest(ctx, UnsafeRawBufferPointer(pad), a, b, into: inner)
                }
            }
            for i in 0..<blockSize { pad[i] ^= 0x36 ^ 0x5c }
            return Bytes32(filling: { out in
                digest(ctx, UnsafeRawBufferPointer(pad), UnsafeRawBufferPointer(inner), .empty, into: out)
            })
        }
    }

    private static func digest(
        _ ctx: OpaquePointer, _ p1: UnsafeRawBufferPointer, _ p2: UnsafeRawBufferPointer,
        _ p3: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer
    ) {
        guard EVP_DigestInit_ex2(ctx, md, nil) == 1 else { preconditionFailure("EVP_DigestInit_ex2 failed") }
        for part in [p1, p2, p3] where part.count > 0 { _ = EVP_DigestUpdate(ctx, part.baseAddress, part.count) }
        var length: UInt32 = 0
        _ = EVP_DigestFinal_ex(ctx, out.baseAddress!.assumingMemoryBound(to: UInt8.self), &length)
    }

    /// WireGuard's KDF (whitepaper §5.4) on this HMAC; see `WireGuardKDF`.
    public static func kdf1(key: Bytes32, input: some RawBytes) -> Bytes32 {
        let t0 = hmac(key: key, input)
        return hmac(key: t0, [UInt8(1)])
    }

    public static func kdf2(key: Bytes32, input: some RawBytes) -> (Bytes32, Bytes32) {
        let t0 = hmac(key: key, input)
        let t1 = hmac(key: t0, [UInt8(1)])
        let t2 = hmac(key: t0, t1, [UInt8(2)])
        return (t1, t2)
    }

    public static func kdf3(key: Bytes32, input: some RawBytes) -> (Bytes32, Bytes32, Bytes32) {
        let t0 = hmac(key: key, input)
        let t1 = hmac(key: t0, [UInt8(1)])
        let t2 = hmac(key: t0, t1, [UInt8(2)])
        let t3 = hmac(key: t0, t2, [UInt8(3)])
        return (t1, t2, t3)
    }
}

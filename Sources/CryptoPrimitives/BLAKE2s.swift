import COpenSSL

/// BLAKE2s (RFC 7693) from OpenSSL 3's EVP, in the three forms WireGuard
/// uses (whitepaper §5.4): `HASH` (BLAKE2s-256), `MAC` (keyed BLAKE2s with a
/// 16-byte output) and `HMAC` (RFC 2104 over BLAKE2s-256).
///
/// The algorithm handles are fetched once; a fetch per call would cost a
/// provider lookup each time.
private final class EVPHandles: @unchecked Sendable {
    /// `EVP_MD` for BLAKE2S-256.
    let blake2s256: OpaquePointer
    /// `EVP_MAC_CTX` templates, duplicated per call (dup is cheaper than
    /// setting parameters by name each time, and the template is only read).
    let hmacTemplate: OpaquePointer
    let mac16Template: OpaquePointer
    let mac32Template: OpaquePointer

    init() {
        guard let md = EVP_MD_fetch(nil, "BLAKE2S-256", nil) else {
            preconditionFailure("OpenSSL has no BLAKE2S-256 digest (need OpenSSL 3 default provider)")
        }
        blake2s256 = md
        guard let hmac = EVP_MAC_fetch(nil, "HMAC", nil), let hmacCtx = EVP_MAC_CTX_new(hmac),
            tether_hmac_blake2s_set_digest(hmacCtx) == 1
        else { preconditionFailure("OpenSSL HMAC with BLAKE2S-256 unavailable") }
        hmacTemplate = hmacCtx
        guard let b2mac = EVP_MAC_fetch(nil, "BLAKE2SMAC", nil), let b2Ctx = EVP_MAC_CTX_new(b2mac),
            tether_blake2smac_set_size(b2Ctx, 16) == 1
        else { preconditionFailure("OpenSSL BLAKE2SMAC unavailable") }
        mac16Template = b2Ctx
        guard let b2Ctx32 = EVP_MAC_CTX_new(b2mac), tether_blake2smac_set_size(b2Ctx32, 32) == 1
        else { preconditionFailure("OpenSSL BLAKE2SMAC unavailable") }
        mac32Template = b2Ctx32
    }
}

private let evp = EVPHandles()

/// An incremental BLAKE2s-256 hash. `~Copyable` because it owns an OpenSSL
/// context that must be freed exactly once.
public struct BLAKE2s: ~Copyable {
    private let ctx: OpaquePointer

    public init() {
        guard let ctx = EVP_MD_CTX_new(), EVP_DigestInit_ex2(ctx, evp.blake2s256, nil) == 1 else {
            preconditionFailure("EVP_DigestInit_ex2(BLAKE2S-256) failed")
        }
        self.ctx = ctx
    }

    deinit { EVP_MD_CTX_free(ctx) }

    public mutating func update(_ data: some RawBytes) {
        data.withUnsafeBytes { buffer in
            guard buffer.count > 0 else { return }
            _ = EVP_DigestUpdate(ctx, buffer.baseAddress, buffer.count)
        }
    }

    public consuming func finalize() -> Bytes32 {
        Bytes32(filling: { out in
            var length: UInt32 = 0
            _ = EVP_DigestFinal_ex(ctx, out.baseAddress!.assumingMemoryBound(to: UInt8.self), &length)
        })
    }

    /// HASH(a)
    public static func hash(_ a: some RawBytes) -> Bytes32 {
        var h = BLAKE2s()
        h.update(a)
        return h.finalize()
    }

    /// HASH(a ‖ b), the form the Noise handshake mixes with.
    public static func hash(_ a: some RawBytes, _ b: some RawBytes) -> Bytes32 {
        var h = BLAKE2s()
        h.update(a)
        h.update(b)
        return h.finalize()
    }

    /// Keyed BLAKE2s with a 16-byte output (`MAC` in the whitepaper). The
    /// output length is set in the parameter block (RFC 7693 §2.5), so this
    /// is not the first 16 bytes of a 32-byte keyed hash. Keys are 1–32 bytes.
    public static func mac16(key: some RawBytes, _ data: some RawBytes) -> Bytes16 {
        precondition(key.withUnsafeBytes { $0.count } <= 32, "BLAKE2s key longer than 32 bytes")
        return mac(template: evp.mac16Template, key: key, data, outputSize: 16) { try! Bytes16($0) }
    }

    /// Keyed BLAKE2s-256 (RFC 7693 §2.5 key block, 32-byte output). Keys are
    /// 1–32 bytes.
    public static func keyedHash(key: some RawBytes, _ data: some RawBytes) -> Bytes32 {
        precondition(key.withUnsafeBytes { $0.count } <= 32, "BLAKE2s key longer than 32 bytes")
        return mac(template: evp.mac32Template, key: key, data, outputSize: 32) { try! Bytes32($0) }
    }

    /// HMAC-BLAKE2s-256 (RFC 2104 with BLAKE2s' 64-byte block).
    public static func hmac(key: some RawBytes, _ data: some RawBytes) -> Bytes32 {
        mac(template: evp.hmacTemplate, key: key, data, outputSize: 32) { try! Bytes32($0) }
    }

    /// HMAC-BLAKE2s over two concatenated inputs without joining them.
    public static func hmac(key: some RawBytes, _ a: some RawBytes, _ b: some RawBytes) -> Bytes32 {
        mac(template: evp.hmacTemplate, key: key, a, b, outputSize: 32) { try! Bytes32($0) }
    }

    private static func mac<Out>(
        template: OpaquePointer, key: some RawBytes, _ a: some RawBytes, _ b: some RawBytes = [UInt8](),
        outputSize: Int, make: (UnsafeRawBufferPointer) -> Out
    ) -> Out {
        guard let ctx = EVP_MAC_CTX_dup(template) else { preconditionFailure("EVP_MAC_CTX_dup failed") }
        defer { EVP_MAC_CTX_free(ctx) }
        // A NULL key tells OpenSSL "keep the previous key", so an empty key
        // is passed as a valid pointer with length 0 (RFC 2104 allows it).
        var emptyKey: UInt8 = 0
        let ok = key.withUnsafeBytes { k in
            if let base = k.baseAddress, k.count > 0 {
                return EVP_MAC_init(ctx, base.assumingMemoryBound(to: UInt8.self), k.count, nil) == 1
            }
            return EVP_MAC_init(ctx, &emptyKey, 0, nil) == 1
        }
        precondition(ok, "EVP_MAC_init failed")
        let update: (UnsafeRawBufferPointer) -> Void = { buffer in
            guard buffer.count > 0 else { return }
            _ = EVP_MAC_update(ctx, buffer.baseAddress!.assumingMemoryBound(to: UInt8.self), buffer.count)
        }
        a.withUnsafeBytes(update)
        b.withUnsafeBytes(update)
        return withUnsafeTemporaryAllocation(byteCount: 64, alignment: 16) { out in
            var length = 0
            let done = EVP_MAC_final(ctx, out.baseAddress!.assumingMemoryBound(to: UInt8.self), &length, 64)
            precondition(done == 1 && length == outputSize, "EVP_MAC_final failed")
            return make(UnsafeRawBufferPointer(rebasing: out[0..<outputSize]))
        }
    }
}

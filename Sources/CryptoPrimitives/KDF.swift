/// The key derivation function of the WireGuard whitepaper §5.4 (HKDF,
/// RFC 5869, with HMAC-BLAKE2s, fixed to n = 1, 2 or 3 outputs of 32 bytes):
///
///     τ0 = HMAC(key, input)
///     τ1 = HMAC(τ0, 0x1)
///     τi = HMAC(τ0, τ(i-1) ‖ i)
///
/// τ0's padded key blocks are compressed once for all the τi.
public enum WireGuardKDF {
    public static func kdf1(key: Bytes32, input: some RawBytes) -> Bytes32 {
        let t0 = HMACBLAKE2s(key: BLAKE2s.hmac(key: key, input))
        return t0.authenticate(OneByte(1), EmptyBytes())
    }

    public static func kdf2(key: Bytes32, input: some RawBytes) -> (Bytes32, Bytes32) {
        let t0 = HMACBLAKE2s(key: BLAKE2s.hmac(key: key, input))
        let t1 = t0.authenticate(OneByte(1), EmptyBytes())
        let t2 = t0.authenticate(t1, OneByte(2))
        return (t1, t2)
    }

    public static func kdf3(key: Bytes32, input: some RawBytes) -> (Bytes32, Bytes32, Bytes32) {
        let t0 = HMACBLAKE2s(key: BLAKE2s.hmac(key: key, input))
        let t1 = t0.authenticate(OneByte(1), EmptyBytes())
        let t2 = t0.authenticate(t1, OneByte(2))
        let t3 = t0.authenticate(t2, OneByte(3))
        return (t1, t2, t3)
    }
}

/// One byte lent as a buffer, so the KDF's counters allocate nothing.
struct OneByte: RawBytes {
    let value: UInt8
    init(_ value: UInt8) { self.value = value }
    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeBytes(of: value) { try body($0) }
    }
}

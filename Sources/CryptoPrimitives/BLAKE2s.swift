/// BLAKE2s (RFC 7693) in the three forms WireGuard uses (whitepaper §5.4):
/// `HASH` (BLAKE2s-256), `MAC` (keyed BLAKE2s with a 16-byte output) and
/// `HMAC` (RFC 2104 over BLAKE2s-256), on the inline `BLAKE2sState`: no
/// allocation, no library context.
public struct BLAKE2s {
    private var state = BLAKE2sState(outputLength: 32)

    public init() {}

    public mutating func update(_ data: some RawBytes) {
        data.withUnsafeBytes { state.update($0) }
    }

    public consuming func finalize() -> Bytes32 { state.finalize() }

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
        var state = keyedState(key: key, outputLength: 16)
        data.withUnsafeBytes { state.update($0) }
        return Bytes16(filling: { state.finalize(into: $0) })
    }

    /// Keyed BLAKE2s-256 (RFC 7693 §2.5 key block, 32-byte output). Keys are
    /// 1–32 bytes.
    public static func keyedHash(key: some RawBytes, _ data: some RawBytes) -> Bytes32 {
        var state = keyedState(key: key, outputLength: 32)
        data.withUnsafeBytes { state.update($0) }
        return state.finalize()
    }

    private static func keyedState(key: some RawBytes, outputLength: Int) -> BLAKE2sState {
        key.withUnsafeBytes { k in
            precondition(k.count <= 32, "BLAKE2s key longer than 32 bytes")
            return BLAKE2sState(outputLength: outputLength, key: k)
        }
    }

    /// HMAC-BLAKE2s-256 (RFC 2104 with BLAKE2s' 64-byte block).
    public static func hmac(key: some RawBytes, _ data: some RawBytes) -> Bytes32 {
        HMACBLAKE2s(key: key).authenticate(data, EmptyBytes())
    }

    /// HMAC-BLAKE2s over two concatenated inputs without joining them.
    public static func hmac(key: some RawBytes, _ a: some RawBytes, _ b: some RawBytes) -> Bytes32 {
        HMACBLAKE2s(key: key).authenticate(a, b)
    }
}

/// HMAC-BLAKE2s-256 (RFC 2104 §2: H((K ⊕ opad) ‖ H((K ⊕ ipad) ‖ m))) with
/// both padded key blocks compressed once, so each message under the same
/// key costs two compressions instead of four. WireGuard's KDF MACs three
/// messages under τ0, which is where this pays.
struct HMACBLAKE2s {
    /// After K ⊕ ipad, block not yet compressed: the start for an empty
    /// message, where that block is the last one.
    private let innerForEmpty: BLAKE2sState
    private let inner: BLAKE2sState
    private let outer: BLAKE2sState

    init(key: some RawBytes) {
        var pad = SIMD16<UInt32>.zero
        key.withUnsafeBytes { k in
            withUnsafeMutableBytes(of: &pad) { p in
                if k.count > BLAKE2sState.blockSize {
                    // Longer keys are hashed first (RFC 2104 §2).
                    BLAKE2s.hash(k).withUnsafeBytes { p.copyMemory(from: $0) }
                } else {
                    p.copyMemory(from: k)
                }
            }
        }
        var i = BLAKE2sState(outputLength: 32)
        withUnsafeBytes(of: pad ^ SIMD16(repeating: 0x3636_3636)) { i.update($0) }
        innerForEmpty = i
        i.compressPendingBlock()
        inner = i
        var o = BLAKE2sState(outputLength: 32)
        withUnsafeBytes(of: pad ^ SIMD16(repeating: 0x5c5c_5c5c)) { o.update($0) }
        o.compressPendingBlock()  // the inner digest always follows
        outer = o
    }

    /// HMAC(K, a ‖ b).
    func authenticate(_ a: some RawBytes, _ b: some RawBytes) -> Bytes32 {
        a.withUnsafeBytes { a in
            b.withUnsafeBytes { b in
                var i = a.count + b.count == 0 ? innerForEmpty : inner
                i.update(a)
                i.update(b)
                let digest = i.finalize()
                var o = outer
                digest.withUnsafeBytes { o.update($0) }
                return o.finalize()
            }
        }
    }
}

/// No bytes, lent as a buffer without allocating.
struct EmptyBytes: RawBytes {
    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: nil, count: 0))
    }
}

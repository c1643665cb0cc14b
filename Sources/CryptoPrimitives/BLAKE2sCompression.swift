/// The BLAKE2s state and compression function (RFC 7693 §3.1–§3.3), held
/// inline: 8 chain words, the 64-bit byte counter and one 64-byte block.
/// Copying it is how a keyed prefix is reused (HMAC's padded keys below).
///
/// Written in Swift rather than called through OpenSSL's EVP because every
/// EVP call here costs more than the work: a WireGuard handshake hashes
/// about fifty short inputs, and each EVP digest or MAC run allocates and
/// looks up provider state, while a compression is ~0.2 µs of arithmetic.
///
///     parameter block word 0 (§2.5): digest length | key length << 8
///                                     | fanout 1 << 16 | depth 1 << 24
///     v[0..7] = h, v[8..15] = IV with v[12..13] ^= t, v[14] ^= f (last block)
struct BLAKE2sState {
    static let blockSize = 64
    static let iv: SIMD8<UInt32> = [
        0x6A09_E667, 0xBB67_AE85, 0x3C6E_F372, 0xA54F_F53A, 0x510E_527F, 0x9B05_688C, 0x1F83_D9AB, 0x5BE0_CD19,
    ]

    private var h: SIMD8<UInt32>
    private var counter: UInt64 = 0
    /// The block not yet compressed: the last block must be compressed with
    /// the final flag, so a full block waits until more input arrives.
    private var block: SIMD16<UInt32> = .zero
    private var buffered = 0
    let outputLength: Int

    /// An unkeyed (empty `key`) or keyed state; `outputLength` 1–32 and a key
    /// of at most 32 bytes (checked by the callers).
    init(outputLength: Int, key: UnsafeRawBufferPointer = .init(start: nil, count: 0)) {
        self.outputLength = outputLength
        h = Self.iv
        h[0] ^= 0x0101_0000 ^ UInt32(key.count) << 8 ^ UInt32(outputLength)
        if key.count > 0 {
            // §3.3: the key, zero-padded to a whole block, is the first block.
            withUnsafeMutableBytes(of: &block) { $0.copyMemory(from: key) }
            buffered = Self.blockSize
        }
    }

    mutating func update(_ data: UnsafeRawBufferPointer) {
        guard var source = data.baseAddress else { return }
        var remaining = data.count
        while remaining > 0 {
            if buffered == Self.blockSize {
                counter &+= UInt64(Self.blockSize)
                compress(last: false)
                buffered = 0
                block = .zero
            }
            let n = min(Self.blockSize - buffered, remaining)
            let offset = buffered
            withUnsafeMutableBytes(of: &block) {
                (UnsafeMutableRawPointer($0.baseAddress!) + offset).copyMemory(from: source, byteCount: n)
            }
            buffered += n
            source += n
            remaining -= n
        }
    }

    /// Compresses a full pending block now instead of at the next update.
    /// Only for states that are certain to get more input (HMAC's padded key
    /// blocks), so the work is done once for every message under that key.
    mutating func compressPendingBlock() {
        guard buffered == Self.blockSize else { return }
        counter &+= UInt64(Self.blockSize)
        compress(last: false)
        buffered = 0
        block = .zero
    }

    /// Writes the digest (`outputLength` bytes) to `out`.
    mutating func finalize(into out: UnsafeMutableRawBufferPointer) {
        counter &+= UInt64(buffered)
        compress(last: true)
        withUnsafeBytes(of: h.littleEndianWords) {
            out.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[0..<outputLength]))
        }
    }

    mutating func finalize() -> Bytes32 {
        precondition(outputLength == 32)
        var copy = self
        return Bytes32(filling: { copy.finalize(into: $0) })
    }

    /// F (§3.2) over `block`: ten rounds for BLAKE2s.
    @inline(__always)
    private mutating func compress(last: Bool) {
        let m = block.littleEndianWords
        var v = Vector(
            h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7],
            Self.iv[0], Self.iv[1], Self.iv[2], Self.iv[3],
            Self.iv[4] ^ UInt32(truncatingIfNeeded: counter), Self.iv[5] ^ UInt32(truncatingIfNeeded: counter >> 32),
            last ? ~Self.iv[6] : Self.iv[6], Self.iv[7])
        // σ (§2.7), one row per round.
        v.round(m, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
        v.round(m, 14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3)
        v.round(m, 11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4)
        v.round(m, 7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8)
        v.round(m, 9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13)
        v.round(m, 2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9)
        v.round(m, 12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11)
        v.round(m, 13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10)
        v.round(m, 6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5)
        v.round(m, 10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0)
        h ^=
            SIMD8(v.v0, v.v1, v.v2, v.v3, v.v4, v.v5, v.v6, v.v7)
            ^ SIMD8(v.v8, v.v9, v.v10, v.v11, v.v12, v.v13, v.v14, v.v15)
    }

    /// The sixteen working words as separate stored properties, so after
    /// inlining they live in registers.
    private struct Vector {
        var v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13, v14, v15: UInt32

        @inline(__always)
        init(
            _ v0: UInt32, _ v1: UInt32, _ v2: UInt32, _ v3: UInt32, _ v4: UInt32, _ v5: UInt32, _ v6: UInt32,
            _ v7: UInt32, _ v8: UInt32, _ v9: UInt32, _ v10: UInt32, _ v11: UInt32, _ v12: UInt32, _ v13: UInt32,
            _ v14: UInt32, _ v15: UInt32
        ) {
            (self.v0, self.v1, self.v2, self.v3, self.v4, self.v5, self.v6, self.v7) = (v0, v1, v2, v3, v4, v5, v6, v7)
            (self.v8, self.v9, self.v10, self.v11) = (v8, v9, v10, v11)
            (self.v12, self.v13, self.v14, self.v15) = (v12, v13, v14, v15)
        }

        @inline(__always)
        static func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { x >> n | x << (32 - n) }

        /// G (§3.1) with BLAKE2s' rotations 16, 12, 8, 7.
        @inline(__always)
        static func g(
            _ a: inout UInt32, _ b: inout UInt32, _ c: inout UInt32, _ d: inout UInt32, _ x: UInt32, _ y: UInt32
        ) {
            a = a &+ b &+ x
            d = rotr(d ^ a, 16)
            c = c &+ d
            b = rotr(b ^ c, 12)
            a = a &+ b &+ y
            d = rotr(d ^ a, 8)
            c = c &+ d
            b = rotr(b ^ c, 7)
        }

        @inline(__always)
        mutating func round(
            _ m: SIMD16<UInt32>, _ s0: Int, _ s1: Int, _ s2: Int, _ s3: Int, _ s4: Int, _ s5: Int, _ s6: Int,
            _ s7: Int, _ s8: Int, _ s9: Int, _ s10: Int, _ s11: Int, _ s12: Int, _ s13: Int, _ s14: Int, _ s15: Int
        ) {
            Self.g(&v0, &v4, &v8, &v12, m[s0], m[s1])
            Self.g(&v1, &v5, &v9, &v13, m[s2], m[s3])
            Self.g(&v2, &v6, &v10, &v14, m[s4], m[s5])
            Self.g(&v3, &v7, &v11, &v15, m[s6], m[s7])
            Self.g(&v0, &v5, &v10, &v15, m[s8], m[s9])
            Self.g(&v1, &v6, &v11, &v12, m[s10], m[s11])
            Self.g(&v2, &v7, &v8, &v13, m[s12], m[s13])
            Self.g(&v3, &v4, &v9, &v14, m[s14], m[s15])
        }
    }
}

extension SIMD where Scalar == UInt32 {
    /// Words as stored little-endian (a no-op on little-endian hosts).
    @inline(__always)
    fileprivate var littleEndianWords: Self {
        var out = self
        for i in indices { out[i] = UInt32(littleEndian: self[i]) }
        return out
    }
}

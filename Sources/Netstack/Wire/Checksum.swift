/// The Internet checksum (RFC 1071): the ones' complement of the ones'
/// complement sum of 16-bit big-endian words.
///
/// The sum is accumulated 64 bits at a time with end-around carry, which is
/// equivalent to the 16-bit sum because 2^16 − 1 divides 2^64 − 1 (RFC 1071
/// §2(C)). Every `add` except the last must cover an even number of bytes.
public struct InternetChecksum: Sendable {
    private var sum: UInt64 = 0

    public init() {}

    @inline(__always)
    private mutating func addWord(_ w: UInt64) {
        let (r, overflow) = sum.addingReportingOverflow(w)
        sum = overflow ? r &+ 1 : r
    }

    /// The bulk of the data is summed as native-order 32-bit words into four
    /// 64-bit accumulators (no carries to handle until 2^32 additions), then
    /// folded and byte-swapped: the ones' complement sum is independent of
    /// byte order up to a final swap (RFC 1071 §2(B)). The 0–3 trailing bytes
    /// are added as big-endian words as before.
    public mutating func add(_ bytes: UnsafeRawBufferPointer) {
        let n = bytes.count
        guard n > 0, let base = bytes.baseAddress else { return }
        var i = 0
        if n >= 16 {
            var a: UInt64 = 0
            var b: UInt64 = 0
            var c: UInt64 = 0
            var d: UInt64 = 0
            while i + 16 <= n {
                a &+= UInt64(base.loadUnaligned(fromByteOffset: i, as: UInt32.self))
                b &+= UInt64(base.loadUnaligned(fromByteOffset: i + 4, as: UInt32.self))
                c &+= UInt64(base.loadUnaligned(fromByteOffset: i + 8, as: UInt32.self))
                d &+= UInt64(base.loadUnaligned(fromByteOffset: i + 12, as: UInt32.self))
                i += 16
            }
            var native = Self.fold(a) &+ Self.fold(b) &+ Self.fold(c) &+ Self.fold(d)
            while i + 4 <= n {
                native &+= UInt64(base.loadUnaligned(fromByteOffset: i, as: UInt32.self))
                i += 4
            }
            addWord(UInt64(UInt16(bigEndian: UInt16(truncatingIfNeeded: Self.fold(native)))))
        }
        while i + 8 <= n {
            addWord(bytes.be64(i))
            i += 8
        }
        if i + 4 <= n {
            addWord(UInt64(bytes.be32(i)))
            i += 4
        }
        if i + 2 <= n {
            addWord(UInt64(bytes.be16(i)))
            i += 2
        }
        if i < n { addWord(UInt64(bytes.u8(i)) << 8) }
    }

    /// Ones' complement fold of a 64-bit sum to 16 bits (still in a UInt64).
    @inline(__always)
    private static func fold(_ x: UInt64) -> UInt64 {
        var s = (x & 0xFFFF_FFFF) &+ (x >> 32)
        s = (s & 0xFFFF_FFFF) &+ (s >> 32)
        s = (s & 0xFFFF) &+ (s >> 16)
        s = (s & 0xFFFF) &+ (s >> 16)
        return s
    }

    public mutating func add(_ value: UInt16) { addWord(UInt64(value)) }
    public mutating func add(_ value: UInt32) { addWord(UInt64(value)) }
    public mutating func add(_ value: UInt64) { addWord(value) }

    /// The folded 16-bit ones' complement sum (not yet complemented).
    public var folded: UInt16 {
        var s = sum
        s = (s & 0xFFFF_FFFF) + (s >> 32)
        s = (s & 0xFFFF_FFFF) + (s >> 32)
        s = (s & 0xFFFF) + (s >> 16)
        s = (s & 0xFFFF) + (s >> 16)
        return UInt16(truncatingIfNeeded: s)
    }

    /// The value to store in a checksum field.
    public var value: UInt16 { ~folded }

    /// True when the sum over a region that includes its checksum field verifies.
    public var verifies: Bool { folded == 0xFFFF }

    /// RFC 1624 eqn. 3: the new checksum after one 16-bit word of the covered
    /// data changes from `old` to `new`, without summing the data again.
    public static func update(checksum: UInt16, old: UInt16, new: UInt16) -> UInt16 {
        var s = UInt32(~checksum) + UInt32(~old) + UInt32(new)
        s = (s & 0xFFFF) + (s >> 16)
        s = (s & 0xFFFF) + (s >> 16)
        return ~UInt16(truncatingIfNeeded: s)
    }
}

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

    public mutating func add(_ bytes: UnsafeRawBufferPointer) {
        let n = bytes.count
        var i = 0
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

/// A TCP sequence number: arithmetic modulo 2^32 (RFC 9293 §3.4).
///
/// Comparisons use the signed 32-bit distance, so they are meaningful only
/// for numbers less than 2^31 apart — which TCP's windows guarantee. The type
/// is deliberately not `Comparable`: the order is not transitive around the
/// whole circle.
public struct SeqNumber: Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32

    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public init(_ rawValue: UInt32) { self.rawValue = rawValue }

    public var description: String { String(rawValue) }

    @inline(__always)
    public static func + (a: SeqNumber, n: Int) -> SeqNumber {
        SeqNumber(rawValue: a.rawValue &+ UInt32(truncatingIfNeeded: n))
    }

    @inline(__always)
    public static func - (a: SeqNumber, n: Int) -> SeqNumber {
        SeqNumber(rawValue: a.rawValue &- UInt32(truncatingIfNeeded: n))
    }

    @inline(__always)
    public static func += (a: inout SeqNumber, n: Int) { a = a + n }

    /// The signed distance from `b` to `a`.
    @inline(__always)
    public static func - (a: SeqNumber, b: SeqNumber) -> Int {
        Int(Int32(bitPattern: a.rawValue &- b.rawValue))
    }

    @inline(__always) public static func < (a: SeqNumber, b: SeqNumber) -> Bool { a - b < 0 }
    @inline(__always) public static func <= (a: SeqNumber, b: SeqNumber) -> Bool { a - b <= 0 }
    @inline(__always) public static func > (a: SeqNumber, b: SeqNumber) -> Bool { a - b > 0 }
    @inline(__always) public static func >= (a: SeqNumber, b: SeqNumber) -> Bool { a - b >= 0 }

    public static func max(_ a: SeqNumber, _ b: SeqNumber) -> SeqNumber { a > b ? a : b }
    public static func min(_ a: SeqNumber, _ b: SeqNumber) -> SeqNumber { a < b ? a : b }
}

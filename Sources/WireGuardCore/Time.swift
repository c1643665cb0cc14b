/// A point on a monotonic clock, in nanoseconds from an arbitrary origin.
///
/// The core never reads a clock: every entry point takes `now`. The device
/// passes a real monotonic reading, tests pass a fake one they advance.
public struct Instant: Comparable, Hashable, Sendable, CustomStringConvertible {
    public var nanoseconds: Int64

    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    public static let zero = Instant(nanoseconds: 0)

    public static func < (a: Instant, b: Instant) -> Bool { a.nanoseconds < b.nanoseconds }

    public static func + (a: Instant, d: Duration) -> Instant {
        Instant(nanoseconds: a.nanoseconds &+ d.nanoseconds)
    }

    public static func - (a: Instant, d: Duration) -> Instant {
        Instant(nanoseconds: a.nanoseconds &- d.nanoseconds)
    }

    public static func += (a: inout Instant, d: Duration) { a = a + d }

    /// Time elapsed from `earlier` to `self`.
    public static func - (a: Instant, b: Instant) -> Duration {
        .nanoseconds(a.nanoseconds &- b.nanoseconds)
    }

    public var description: String {
        let ms = Double(nanoseconds) / 1e6
        return "t=\(ms)ms"
    }
}

extension Instant {
    /// Whether at least `interval` nanoseconds separate `earlier` from
    /// `self`. Plain integer arithmetic: the data path calls this per packet,
    /// and `Duration` arithmetic goes through unspecialised generic code.
    @inlinable
    public func isAtLeast(_ interval: Int64, after earlier: Instant) -> Bool {
        nanoseconds &- earlier.nanoseconds >= interval
    }
}

/// The timer constants the data path compares against, in nanoseconds,
/// computed once from `Protocol`.
enum Nanoseconds {
    static let rekeyAfterTime = Protocol.rekeyAfterTime.nanoseconds
    static let rejectAfterTime = Protocol.rejectAfterTime.nanoseconds
    static let keepaliveTimeout = Protocol.keepaliveTimeout.nanoseconds
    static let newHandshakeAfter = (Protocol.keepaliveTimeout + Protocol.rekeyTimeout).nanoseconds
    static let lastMinuteRekey =
        (Protocol.rejectAfterTime - Protocol.keepaliveTimeout - Protocol.rekeyTimeout).nanoseconds
}

extension Duration {
    /// Whole nanoseconds (saturating well beyond any WireGuard timer).
    @inlinable
    public var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds &* 1_000_000_000 &+ attoseconds / 1_000_000_000
    }
}

/// A TAI64N label (cr.yp.to/libtai/tai64.html): 8 bytes of big-endian
/// seconds offset by 2^62 (+10 for the TAI−UTC difference WireGuard uses),
/// then 4 bytes of big-endian nanoseconds. Big-endian makes byte order equal
/// time order, so the responder compares timestamps as bytes (whitepaper
/// §5.1: an initiation whose timestamp is not newer than the last accepted
/// one is a replay).
public struct TAI64N: Comparable, Hashable, Sendable {
    public static let size = 12
    public var seconds: UInt64
    public var nanoseconds: UInt32

    public init(seconds: UInt64, nanoseconds: UInt32) {
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }

    public static let zero = TAI64N(seconds: 0, nanoseconds: 0)

    /// The label for `unixNanoseconds` after the Unix epoch. The nanoseconds
    /// are rounded down to a multiple of 2^24 (about 16.8 ms), as the kernel
    /// and wireguard-go do, so the timestamp does not leak a precise clock.
    public init(unixNanoseconds: Int64) {
        let clamped = max(0, unixNanoseconds)
        let whitener: UInt32 = (1 << 24) - 1
        seconds = 0x4000_0000_0000_000a &+ UInt64(clamped / 1_000_000_000)
        nanoseconds = UInt32(clamped % 1_000_000_000) & ~whitener
    }

    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == Self.size else { return nil }
        var s: UInt64 = 0
        var n: UInt32 = 0
        for (i, b) in bytes.enumerated() {
            if i < 8 { s = s << 8 | UInt64(b) } else { n = n << 8 | UInt32(b) }
        }
        seconds = s
        nanoseconds = n
    }

    public var bytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(Self.size)
        for shift in stride(from: 56, through: 0, by: -8) {
            out.append(UInt8(truncatingIfNeeded: seconds >> UInt64(shift)))
        }
        for shift in stride(from: 24, through: 0, by: -8) {
            out.append(UInt8(truncatingIfNeeded: nanoseconds >> UInt32(shift)))
        }
        return out
    }

    public static func < (a: TAI64N, b: TAI64N) -> Bool {
        (a.seconds, a.nanoseconds) < (b.seconds, b.nanoseconds)
    }
}

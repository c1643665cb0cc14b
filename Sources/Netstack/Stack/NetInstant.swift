/// A point on the stack's monotonic clock, in nanoseconds. The protocol
/// cores take it as input and never read a clock themselves, so tests can
/// drive them with a fake one.
public struct NetInstant: Comparable, Hashable, Sendable, CustomStringConvertible {
    public var nanoseconds: Int64

    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    public static let zero = NetInstant(nanoseconds: 0)

    /// Now on the system's monotonic clock.
    public static func now() -> NetInstant {
        let d = ContinuousClock.now - startOfTime
        return NetInstant(nanoseconds: d.nanoseconds)
    }
    private static let startOfTime = ContinuousClock.now

    public static func < (a: NetInstant, b: NetInstant) -> Bool { a.nanoseconds < b.nanoseconds }

    public static func + (a: NetInstant, d: Duration) -> NetInstant {
        NetInstant(nanoseconds: a.nanoseconds &+ d.nanoseconds)
    }

    public static func - (a: NetInstant, b: NetInstant) -> Duration { .nanoseconds(a.nanoseconds &- b.nanoseconds) }

    public var milliseconds: Int64 { nanoseconds / 1_000_000 }

    public var description: String { "\(Double(nanoseconds) / 1e9)s" }
}

extension Duration {
    /// Whole nanoseconds, saturating far outside any timer this stack uses.
    var nanoseconds: Int64 {
        let (s, atto) = components
        let (ns, overflow) = s.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return s < 0 ? .min / 2 : .max / 2 }
        return ns + atto / 1_000_000_000
    }
}

extension Optional where Wrapped == NetInstant {
    /// The earlier of two optional deadlines.
    static func earliest(_ a: NetInstant?, _ b: NetInstant?) -> NetInstant? {
        switch (a, b) {
        case (nil, _): b
        case (_, nil): a
        case (let x?, let y?): Swift.min(x, y)
        }
    }
}

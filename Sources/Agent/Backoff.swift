/// Reconnect delays: exponential from 100 ms to 10 s, each wait drawn
/// uniformly from [d/2, d] ("equal jitter", AWS architecture blog, 2015) so
/// a thousand agents cut off together do not return together. Reset after a
/// connection that got as far as `welcome`.
public struct Backoff: Sendable {
    public static let initial: Duration = .milliseconds(100)
    public static let maximum: Duration = .seconds(10)

    private var current: Duration = Backoff.initial

    public init() {}

    /// The next wait, given a uniform random `unit` in [0, 1).
    public mutating func next(unit: Double) -> Duration {
        let d = current
        current = min(current * 2, Self.maximum)
        return d / 2 + d / 2 * max(0, min(unit, 1))
    }

    public mutating func reset() { current = Self.initial }
}

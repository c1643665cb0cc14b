import NIOCore

/// A token bucket in bytes (pure: the caller passes `now`). The server uses
/// it to pace a client's reads: when a frame leaves the bucket in debt, the
/// connection stops reading until the debt is paid, so TCP pushes back on
/// the sender instead of the server dropping its packets.
public struct TokenBucket: Sendable {
    public let bytesPerSecond: Int
    public let burst: Int
    private var tokens: Double
    private var last: NIODeadline

    public init(bytesPerSecond: Int, burst: Int, now: NIODeadline) {
        precondition(bytesPerSecond > 0 && burst > 0)
        self.bytesPerSecond = bytesPerSecond
        self.burst = burst
        tokens = Double(burst)
        last = now
    }

    /// Takes `count` bytes and returns how long the reader must pause
    /// before the bucket is out of debt (zero when it is not in debt).
    public mutating func take(_ count: Int, now: NIODeadline) -> TimeAmount {
        let elapsed = Double((now - last).nanoseconds) / 1e9
        last = now
        tokens = min(Double(burst), tokens + elapsed * Double(bytesPerSecond))
        tokens -= Double(count)
        guard tokens < 0 else { return .zero }
        return .nanoseconds(Int64(-tokens / Double(bytesPerSecond) * 1e9))
    }
}

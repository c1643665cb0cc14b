/// Per-source token bucket for handshake messages while under load (the
/// kernel's `ratelimiter.c`): each IPv4 address, or IPv6 /64, may send
/// `handshakesPerSecondPerSource` with a burst of `handshakeBurstPerSource`.
/// Only consulted after mac2 has proved the source address, so an attacker
/// cannot spend another address's budget.
package struct RateLimiter: Sendable {
    private struct Bucket {
        var tokens: Int64
        var last: Instant
    }

    private static let cost: Int64 = 1_000_000_000 / Implementation.handshakesPerSecondPerSource
    private static let maxTokens: Int64 = cost * Implementation.handshakeBurstPerSource

    private var buckets: [UInt128: Bucket] = [:]
    private var lastSweep: Instant = .zero

    private static func key(_ address: IPAddress) -> UInt128 {
        switch address {
        case .v4(let a): UInt128(a) | (UInt128(1) << 127)  // never collides with a /64 key
        case .v6(let a): a & (UInt128.max << 64)
        }
    }

    package mutating func allow(_ address: IPAddress, now: Instant) -> Bool {
        sweep(now: now)
        let key = Self.key(address)
        guard var bucket = buckets[key] else {
            guard buckets.count < Implementation.maxRateLimiterEntries else { return false }
            buckets[key] = Bucket(tokens: Self.maxTokens - Self.cost, last: now)
            return true
        }
        bucket.tokens = min(Self.maxTokens, bucket.tokens + max(0, (now - bucket.last).nanoseconds))
        bucket.last = now
        let allowed = bucket.tokens >= Self.cost
        if allowed { bucket.tokens -= Self.cost }
        buckets[key] = bucket
        return allowed
    }

    /// Forgets sources idle for a second (their buckets would be full anyway).
    private mutating func sweep(now: Instant) {
        guard now - lastSweep >= .seconds(1) else { return }
        lastSweep = now
        buckets = buckets.filter { now - $0.value.last < .seconds(1) }
    }

    package var count: Int { buckets.count }
}

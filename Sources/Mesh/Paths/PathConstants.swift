/// Every timer and threshold of path selection, discovery and DERP, in one
/// table. Values follow Tailscale's magicsock (`wgengine/magicsock/endpoint.go`
/// and `magicsock.go`) where it has one, so our nodes behave like its.
public enum PathConstants {
    /// A direct path is used alone for this long after each pong from it.
    public static let trustAfterPong: Duration = .milliseconds(6_500)
    /// While a session is active, the trusted path is pinged this often, so
    /// its trust is renewed before it lapses (two chances per window).
    public static let heartbeatInterval: Duration = .seconds(3)
    /// A session is active while data moved within this long; probing and
    /// heartbeats stop when it goes quiet.
    public static let sessionActiveTimeout: Duration = .seconds(45)
    /// Every candidate is probed again this often even on a good path, to
    /// find a better one (Tailscale's upgradeInterval).
    public static let upgradeInterval: Duration = .seconds(60)
    /// A best path slower than this counts as poor: candidates are probed
    /// again every `probeInterval` rather than every `upgradeInterval`.
    public static let goodEnoughLatency: Duration = .milliseconds(5)
    /// At most one ping per candidate per this interval (discoPingInterval).
    public static let probeInterval: Duration = .seconds(5)
    /// An unsolicited ping on an untrusted path is answered with a ping of
    /// our own at most this often per source.
    public static let pingBackInterval: Duration = .seconds(1)
    /// A ping without a pong after this long is given up.
    public static let pingTimeout: Duration = .seconds(5)
    /// CallMeMaybe over DERP at most this often per peer.
    public static let callMeMaybeInterval: Duration = .seconds(5)
    /// Hysteresis: a new path replaces a trusted best one only when its
    /// latency is below this fraction of the best one's (numerator/denominator).
    public static let betterLatencyNumerator: Int64 = 2
    public static let betterLatencyDenominator: Int64 = 3
    /// Candidates kept per peer (advertised and peer-reflexive together);
    /// the oldest unproven ones go first.
    public static let maximumCandidates = 32

    /// Own endpoints are re-discovered (interfaces and STUN) this often while
    /// any session is active (Tailscale re-STUNs every 20–26 s).
    public static let rediscoveryInterval: Duration = .seconds(20)
    /// The first wait before another probe round after one that measured
    /// no region (doubling per empty round, up to `rediscoveryInterval`).
    public static let emptyRoundRetry: Duration = .seconds(1)
    /// Interface addresses are compared this often to notice a network
    /// change (roaming), which triggers re-discovery, DERP reconnection and
    /// a full probe of every peer.
    public static let linkCheckInterval: Duration = .seconds(1)
    /// STUN requests are given up after this long.
    public static let stunTimeout: Duration = .seconds(3)
    /// A round of region latency probes (STUN and HTTPS) ends after this
    /// long even if some regions never answered; the home region is then
    /// chosen from what did.
    public static let probeRoundTimeout: Duration = .seconds(3)
    /// An HTTPS latency probe (connect, TLS, `GET /derp/latency-check`)
    /// is given up after this long.
    public static let httpsProbeTimeout: Duration = .seconds(3)

    /// Home DERP region: a region replaces the current home only when its
    /// latency is below this fraction of the home's (Tailscale: 2/3) …
    public static let homeSwitchNumerator: Int64 = 2
    public static let homeSwitchDenominator: Int64 = 3
    /// … and by at least this much, so jitter on fast links cannot flap it.
    public static let homeSwitchMinimumGain: Duration = .milliseconds(10)
    /// A DERP connection to a region other than home is closed after this
    /// long without traffic (Tailscale: derpInactiveCleanupTime, 60 s).
    public static let derpIdleTimeout: Duration = .seconds(60)

    /// How often the node's timer thread runs the state machines.
    public static let tickInterval: Duration = .milliseconds(100)
}

import WireGuardCore

/// Path selection for one peer, as a pure state machine modelled on
/// Tailscale's magicsock endpoint: events and `now` in, actions out.
///
/// Flow (one peer; "DERP" is the relay, always available):
///
///     data sent ─▶ active ─▶ no trusted direct path?
///                               │ yes: ping every candidate (≤ 1 per 5 s
///                               │      each) + CallMeMaybe over DERP
///                               ▼
///     pong from candidate C ─▶ C best if none, lapsed, or clearly faster
///                             ─▶ trust best for 6.5 s (renewed per pong)
///     trusted & active ─▶ heartbeat ping to best every 3 s
///     every 60 s, or every 5 s while the best is slower than 5 ms ─▶ full probe
///
/// Routing: trusted best → direct only; best that lapsed → direct *and*
/// DERP (nothing is lost while the direct path is in doubt); no best → DERP.
/// Unsolicited pings add their source as a peer-reflexive candidate; a
/// CallMeMaybe adds the endpoints in it and pings them at once (the hole
/// punch: both sides send, so both NATs open a mapping).
public struct PeerPath: Sendable {
    public enum Action: Equatable, Sendable {
        /// Send a disco Ping with this TxID to `endpoint` over UDP.
        case ping(Disco.TxID, to: Endpoint)
        /// Send a CallMeMaybe with our endpoints over DERP.
        case callMeMaybe
    }

    /// Which way data goes now.
    public enum Kind: Equatable, Sendable, CustomStringConvertible {
        case direct(Endpoint)
        case derp
        /// DERP, with a direct path we are no longer sure of also tried.
        case derpAndDirect(Endpoint)

        public var description: String {
            switch self {
            case .direct(let e): "direct \(e)"
            case .derp: "derp"
            case .derpAndDirect(let e): "derp (+ direct \(e) unconfirmed)"
            }
        }
    }

    struct Candidate: Sendable {
        var added: Instant
        var isReflexive: Bool
        var lastPing: Instant?
        var lastPong: Instant?
        var latency: Duration?
    }

    struct Best: Sendable {
        var endpoint: Endpoint
        var latency: Duration
    }

    private(set) var candidates: [Endpoint: Candidate] = [:]
    private var pending: [Disco.TxID: (endpoint: Endpoint, sent: Instant)] = [:]
    private var best: Best?
    private var trustedUntil: Instant?
    private var lastActivity: Instant?
    private var lastFullProbe: Instant?
    private var lastHeartbeat: Instant?
    private var lastCallMeMaybe: Instant?
    private var makeTxID: @Sendable () -> Disco.TxID

    public init(makeTxID: @escaping @Sendable () -> Disco.TxID = { Disco.TxID.random() }) {
        self.makeTxID = makeTxID
    }

    // MARK: - Queries

    /// Where data goes at `now`.
    public func kind(now: Instant) -> Kind {
        guard let best else { return .derp }
        if let trustedUntil, now < trustedUntil { return .direct(best.endpoint) }
        return .derpAndDirect(best.endpoint)
    }

    /// The best direct path's latency, if there is one.
    public var latency: Duration? { best?.latency }
    public var bestEndpoint: Endpoint? { best?.endpoint }
    public var candidateEndpoints: [Endpoint] { Array(candidates.keys) }
    var lastActivityInstant: Instant? { lastActivity }

    // MARK: - Events

    /// Endpoints the peer advertised (coordination). Peer-reflexive and
    /// proven candidates are kept; advertised ones no longer listed go.
    public mutating func setAdvertised(_ endpoints: [Endpoint], now: Instant) {
        let wanted = Set(endpoints)
        candidates = candidates.filter { wanted.contains($0.key) || $0.value.isReflexive || $0.value.lastPong != nil }
        for e in endpoints where candidates[e] == nil {
            candidates[e] = Candidate(added: now, isReflexive: false)
        }
        trimCandidates()
    }

    /// Data went to or came from the peer: the session is active.
    public mutating func noteActivity(now: Instant) { lastActivity = now }

    /// A Pong arrived over UDP from `source`. Returns whether it answered
    /// one of our pings (else it is ignored).
    @discardableResult
    public mutating func pongReceived(_ txID: Disco.TxID, from source: Endpoint, now: Instant) -> Bool {
        guard let ping = pending[txID], ping.endpoint == source else { return false }
        pending[txID] = nil
        let latency = now - ping.sent
        candidates[source, default: Candidate(added: now, isReflexive: true)].lastPong = now
        candidates[source]!.latency = latency
        if let current = best, current.endpoint != source, isTrusted(now: now),
            !Self.isClearlyBetter(latency, than: current.latency)
        {
            return true  // hysteresis: keep the trusted best
        }
        best = Best(endpoint: source, latency: latency)
        trustedUntil = now + PathConstants.trustAfterPong
        // The ping this answers counts as the heartbeat just sent.
        lastHeartbeat = max(lastHeartbeat ?? ping.sent, ping.sent)
        return true
    }

    /// A Ping arrived over UDP from `source` (the caller answers it with a
    /// Pong). An unknown source becomes a peer-reflexive candidate; while
    /// we have no trusted path, the source is pinged back at once (at most
    /// once per `pingBackInterval`): its ping just opened the peer's NAT for
    /// us, which is the moment a hole punch can succeed.
    public mutating func pingReceived(from source: Endpoint, now: Instant) -> [Action] {
        if candidates[source] == nil {
            candidates[source] = Candidate(added: now, isReflexive: true)
            trimCandidates()
        }
        guard !isTrusted(now: now), candidates[source] != nil else { return [] }
        if let last = candidates[source]!.lastPing, now - last < PathConstants.pingBackInterval { return [] }
        return [ping(source, now: now)]
    }

    /// A CallMeMaybe arrived over DERP: add its endpoints and ping them all
    /// now, whatever their rate limit, so both NATs open at the same time.
    public mutating func callMeMaybeReceived(_ endpoints: [Endpoint], now: Instant) -> [Action] {
        for e in endpoints where candidates[e] == nil {
            candidates[e] = Candidate(added: now, isReflexive: false)
        }
        trimCandidates()
        lastActivity = lastActivity ?? now
        return endpoints.filter { candidates[$0] != nil }.map { ping($0, now: now) }
    }

    /// Our own network changed (an interface address came or went): every
    /// candidate may be reachable differently now, so the next tick probes
    /// them all and sends CallMeMaybe, whatever the rate limits said.
    public mutating func networkChanged() {
        for e in candidates.keys { candidates[e]!.lastPing = nil }
        lastFullProbe = nil
        lastCallMeMaybe = nil
    }

    /// Runs the timers: expires pings, sends heartbeats and probes.
    public mutating func tick(now: Instant) -> [Action] {
        pending = pending.filter { now - $0.value.sent < PathConstants.pingTimeout }
        guard let lastActivity, now - lastActivity < PathConstants.sessionActiveTimeout else { return [] }
        var actions: [Action] = []
        if wantsFullProbe(now: now) {
            lastFullProbe = now
            for (endpoint, candidate) in candidates.sorted(by: { $0.value.added < $1.value.added }) {
                if let last = candidate.lastPing, now - last < PathConstants.probeInterval { continue }
                actions.append(ping(endpoint, now: now))
            }
            if lastCallMeMaybe.map({ now - $0 >= PathConstants.callMeMaybeInterval }) ?? true {
                lastCallMeMaybe = now
                actions.append(.callMeMaybe)
            }
        }
        if let best, isTrusted(now: now),
            lastHeartbeat.map({ now - $0 >= PathConstants.heartbeatInterval }) ?? true,
            !actions.contains(where: { if case .ping(_, best.endpoint) = $0 { true } else { false } })
        {
            actions.append(ping(best.endpoint, now: now))
        }
        return actions
    }

    // MARK: - Policy

    private func isTrusted(now: Instant) -> Bool { trustedUntil.map { now < $0 } ?? false }

    /// Tailscale's wantFullPingLocked, with "poor" re-probing at the probe
    /// interval rather than waiting a whole upgrade interval.
    private func wantsFullProbe(now: Instant) -> Bool {
        guard let lastFullProbe, let best, isTrusted(now: now) else { return true }
        let since = now - lastFullProbe
        if since >= PathConstants.upgradeInterval { return true }
        return best.latency > PathConstants.goodEnoughLatency && since >= PathConstants.probeInterval
    }

    static func isClearlyBetter(_ latency: Duration, than current: Duration) -> Bool {
        latency.nanoseconds * PathConstants.betterLatencyDenominator
            < current.nanoseconds * PathConstants.betterLatencyNumerator
    }

    private mutating func ping(_ endpoint: Endpoint, now: Instant) -> Action {
        let txID = makeTxID()
        pending[txID] = (endpoint, now)
        candidates[endpoint]?.lastPing = now
        if endpoint == best?.endpoint { lastHeartbeat = now }
        return .ping(txID, to: endpoint)
    }

    private mutating func trimCandidates() {
        guard candidates.count > PathConstants.maximumCandidates else { return }
        let removable = candidates.filter { $0.key != best?.endpoint && $0.value.lastPong == nil }
            .sorted { $0.value.added < $1.value.added }
        for (e, _) in removable.prefix(candidates.count - PathConstants.maximumCandidates) { candidates[e] = nil }
    }
}

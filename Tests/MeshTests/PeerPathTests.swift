import Mesh
import Synchronization
import Testing
import WireGuardCore

/// `PeerPath` on a fake clock: the magicsock behaviours, one by one.
@Suite struct PeerPathTests {
    let lan = Endpoint("192.168.1.20:41641")!
    let wan = Endpoint("203.0.113.7:51820")!
    let t0 = Instant(nanoseconds: 1_000_000_000_000)

    /// Deterministic TxIDs 1, 2, 3, …
    static func counter() -> @Sendable () -> Disco.TxID {
        let n = Atomic<UInt8>(0)
        return {
            let v = n.add(1, ordering: .relaxed).newValue
            return Disco.TxID([UInt8](repeating: 0, count: 11) + [v])!
        }
    }

    func pings(_ actions: [PeerPath.Action]) -> [(Disco.TxID, Endpoint)] {
        actions.compactMap { if case .ping(let id, let e) = $0 { (id, e) } else { nil } }
    }

    @Test func derpUntilAPongThenDirect() {
        var path = PeerPath(makeTxID: Self.counter())
        path.setAdvertised([lan, wan], now: t0)
        #expect(path.kind(now: t0) == .derp)
        #expect(path.tick(now: t0).isEmpty, "idle: no probing")
        path.noteActivity(now: t0)
        let actions = path.tick(now: t0)
        let sent = pings(actions)
        #expect(Set(sent.map(\.1)) == [lan, wan])
        #expect(actions.contains(.callMeMaybe))
        #expect(path.kind(now: t0 + .milliseconds(1)) == .derp, "no pong yet")
        let lanPing = sent.first { $0.1 == lan }!
        let accepted = path.pongReceived(lanPing.0, from: lan, now: t0 + .milliseconds(2))
        #expect(accepted)
        #expect(path.kind(now: t0 + .milliseconds(3)) == .direct(lan))
        #expect(path.latency == .milliseconds(2))
    }

    @Test func pongFromAnotherAddressOrUnknownTxIDIsIgnored() {
        var path = PeerPath(makeTxID: Self.counter())
        path.setAdvertised([lan], now: t0)
        path.noteActivity(now: t0)
        let sent = pings(path.tick(now: t0))
        let wrongSource = path.pongReceived(sent[0].0, from: wan, now: t0)
        #expect(!wrongSource)
        let unknown = path.pongReceived(Disco.TxID([UInt8](repeating: 9, count: 12))!, from: lan, now: t0)
        #expect(!unknown)
        #expect(path.kind(now: t0) == .derp)
    }

    @Test func trustLapsesAfter6500msWithoutPongsThenDERPAndBack() {
        var path = PeerPath(makeTxID: Self.counter())
        path.setAdvertised([lan], now: t0)
        var now = t0
        path.noteActivity(now: now)
        let first = pings(path.tick(now: now))[0]
        path.pongReceived(first.0, from: lan, now: now)
        // The path goes silent: heartbeats go out every 3 s, nothing answers.
        var heartbeats: [Instant] = []
        while now < t0 + .seconds(6) {
            now += .milliseconds(100)
            path.noteActivity(now: now)
            if !pings(path.tick(now: now)).isEmpty { heartbeats.append(now) }
        }
        #expect(heartbeats.first == t0 + .seconds(3))
        #expect(path.kind(now: t0 + .milliseconds(6_499)) == .direct(lan))
        #expect(path.kind(now: t0 + .milliseconds(6_500)) == .derpAndDirect(lan), "DERP carries data, direct still tried")
        // Full probes while untrusted: at most one ping per 5 s to the endpoint.
        var probes: [(Disco.TxID, Endpoint, Instant)] = []
        while now < t0 + .seconds(20) {
            now += .milliseconds(100)
            path.noteActivity(now: now)
            probes += pings(path.tick(now: now)).map { ($0.0, $0.1, now) }
        }
        #expect(probes.count >= 2)
        for (a, b) in zip(probes, probes.dropFirst()) { #expect(b.2 - a.2 >= PathConstants.probeInterval) }
        // It answers again: direct at once.
        let last = probes.last!
        let answered = path.pongReceived(last.0, from: lan, now: last.2 + .milliseconds(1))
        #expect(answered)
        #expect(path.kind(now: last.2 + .milliseconds(2)) == .direct(lan))
    }

    @Test func heartbeatsRenewTrustWhileActive() {
        var path = PeerPath(makeTxID: Self.counter())
        path.setAdvertised([lan], now: t0)
        var now = t0
        path.noteActivity(now: now)
        var outstanding = pings(path.tick(now: now))
        while now < t0 + .seconds(30) {
            for (id, e) in outstanding { path.pongReceived(id, from: e, now: now + .milliseconds(1)) }
            now += .milliseconds(100)
            path.noteActivity(now: now)
            outstanding = pings(path.tick(now: now))
            #expect(path.kind(now: now) == .direct(lan))
        }
    }

    @Test func probingStopsWhenTheSessionIsIdle() {
        var path = PeerPath(makeTxID: Self.counter())
        path.setAdvertised([lan], now: t0)
        path.noteActivity(now: t0)
        _ = path.tick(now: t0)
        #expect(path.tick(now: t0 + PathConstants.sessionActiveTimeout).isEmpty)
    }

    @Test func lowerLatencyWinsOnlyWhenClearlyBetter() {
        var path = PeerPath(makeTxID: Self.counter())
        path.setAdvertised([lan, wan], now: t0)
        path.noteActivity(now: t0)
        let sent = pings(path.tick(now: t0))
        let toWan = sent.first { $0.1 == wan }!
        let toLan = sent.first { $0.1 == lan }!
        path.pongReceived(toWan.0, from: wan, now: t0 + .milliseconds(30))
        #expect(path.kind(now: t0 + .milliseconds(30)) == .direct(wan))
        // 25 ms is not < 2/3 of 30 ms: the trusted best stays.
        path.pongReceived(toLan.0, from: lan, now: t0 + .milliseconds(25))
        #expect(path.kind(now: t0 + .milliseconds(31)) == .direct(wan))
        // Next full probe (poor path: every 5 s): LAN answers in 1 ms and wins.
        var now = t0 + .milliseconds(31)
        var switched = false
        while now < t0 + .seconds(12), !switched {
            now += .milliseconds(100)
            path.noteActivity(now: now)
            for (id, e) in pings(path.tick(now: now)) {
                path.pongReceived(id, from: e, now: now + (e == lan ? .milliseconds(1) : .milliseconds(30)))
            }
            switched = path.kind(now: now + .milliseconds(31)) == .direct(lan)
        }
        #expect(switched)
    }

    @Test func unsolicitedPingAddsAPeerReflexiveCandidate() {
        var path = PeerPath(makeTxID: Self.counter())
        path.setAdvertised([lan], now: t0)
        let back = pings(path.pingReceived(from: wan, now: t0))
        #expect(back.map(\.1) == [wan], "pinged back at once")
        let again = pings(path.pingReceived(from: wan, now: t0 + .milliseconds(500)))
        #expect(again.isEmpty, "once per second")
        #expect(Set(path.candidateEndpoints) == [lan, wan])
        path.noteActivity(now: t0)
        let sent = pings(path.tick(now: t0))
        #expect(sent.map(\.1) == [lan], "wan was pinged just now")
        // Coordination re-sends its list: the reflexive candidate stays.
        path.setAdvertised([lan], now: t0 + .seconds(1))
        #expect(Set(path.candidateEndpoints) == [lan, wan])
    }

    @Test func callMeMaybePingsEveryEndpointAtOnce() {
        var path = PeerPath(makeTxID: Self.counter())
        path.noteActivity(now: t0)
        _ = path.tick(now: t0)
        let actions = path.callMeMaybeReceived([lan, wan], now: t0 + .milliseconds(10))
        #expect(Set(pings(actions).map(\.1)) == [lan, wan])
    }

    @Test func networkChangeProbesEverythingAtOnce() {
        var path = PeerPath(makeTxID: Self.counter())
        path.setAdvertised([lan, wan], now: t0)
        path.noteActivity(now: t0)
        for (id, e) in pings(path.tick(now: t0)) where e == lan { path.pongReceived(id, from: e, now: t0) }
        let now = t0 + .seconds(1)
        path.noteActivity(now: now)
        #expect(path.tick(now: now).isEmpty, "trusted, fast, recently probed: quiet")
        path.networkChanged()
        let actions = path.tick(now: now)
        #expect(Set(pings(actions).map(\.1)) == [lan, wan])
        #expect(actions.contains(.callMeMaybe))
    }

    @Test func homeRegionIsStickyUnlessClearlyBetter() {
        #expect(HomeRegion.choose(current: nil, latencies: [1: .milliseconds(40), 2: .milliseconds(20)]) == 2)
        #expect(HomeRegion.choose(current: 1, latencies: [1: .milliseconds(40), 2: .milliseconds(30)]) == 1)
        #expect(HomeRegion.choose(current: 1, latencies: [1: .milliseconds(40), 2: .milliseconds(20)]) == 2)
        // ⅔ but less than 10 ms gained: stay.
        #expect(HomeRegion.choose(current: 1, latencies: [1: .milliseconds(3), 2: .milliseconds(1)]) == 1)
        // Home did not answer: the fastest that did.
        #expect(HomeRegion.choose(current: 1, latencies: [2: .milliseconds(50), 3: .milliseconds(10)]) == 3)
        #expect(HomeRegion.choose(current: 1, latencies: [:]) == 1)
    }
}

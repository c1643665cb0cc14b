import WireGuardCore

/// One round of latency probes to the regions of a DERP map, as Tailscale's
/// netcheck runs them: a STUN Binding request to each region's STUN server
/// on the node's shared UDP socket, and an HTTPS `GET /derp/latency-check`
/// to each region's DERP server (which still answers when UDP is blocked).
/// Pure: probes are noted as sent, answers arrive with the instant they
/// were measured at, and the round ends when every probe answered or
/// `PathConstants.probeRoundTimeout` passed; then its best latency per
/// region feeds `HomeRegion.choose`.
package struct RegionProbeRound: Sendable {
    /// How a region's latency was measured.
    package enum Method: Hashable, Sendable {
        case stun
        case https
    }

    package struct Probe: Hashable, Sendable {
        package var region: Int
        package var method: Method

        package init(region: Int, method: Method) {
            self.region = region
            self.method = method
        }
    }

    package let started: Instant
    private var outstanding: Set<Probe>
    /// The lowest latency per region measured in this round, by any method.
    package private(set) var latencies: [Int: Duration] = [:]
    /// Every answer of this round (for statistics and `tether netcheck`).
    package private(set) var samples: [Probe: Duration] = [:]

    /// Starts a round in which `probes` are (about to be) sent.
    package init(started: Instant, probes: some Sequence<Probe>) {
        self.started = started
        outstanding = Set(probes)
    }

    /// Records an answer; answers to probes not of this round (a late one
    /// from the previous round, a duplicate) are ignored.
    package mutating func answered(_ probe: Probe, latency: Duration) {
        guard outstanding.remove(probe) != nil, latency >= .zero else { return }
        samples[probe] = latency
        latencies[probe.region] = min(latencies[probe.region] ?? latency, latency)
    }

    /// Records that a probe failed (refused, reset, bad answer): the round
    /// need not wait for it.
    package mutating func failed(_ probe: Probe) { outstanding.remove(probe) }

    /// Done when nothing is outstanding or the round's time is up; regions
    /// that did not answer by then count as unreachable.
    package func isFinished(now: Instant) -> Bool {
        outstanding.isEmpty || now - started >= PathConstants.probeRoundTimeout
    }
}

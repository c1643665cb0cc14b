import CryptoPrimitives
import WireGuardCore

#if canImport(Glibc)
    import Glibc
#endif

/// The node's timer thread: path state machines, endpoint re-discovery,
/// home region choice, idle DERP connections.
extension MeshNode {
    func timerLoop() {
        defer { timerStopped.store(true, ordering: .releasing) }
        let tick = Int(PathConstants.tickInterval.nanoseconds / 1_000_000)
        while running.load(ordering: .acquiring) {
            let now = DeviceClock.now()
            if configuration.directPaths { tickPaths(now: now) }
            tickDiscovery(now: now)
            derp.closeIdle(now: now)
            usleepMilliseconds(tick)
        }
    }

    private func tickPaths(now: Instant) {
        let work = state.withLock { $0.peers.tick(now: now) }
        for (actions, peer, key) in work { perform(actions, peer: peer, key: key) }
    }

    /// Re-discovers own endpoints every `rediscoveryInterval` while a
    /// session is active (and measures the regions for the home choice);
    /// expires unanswered STUN requests.
    private func tickDiscovery(now: Instant) {
        let lastCheck = state.withLock { $0.ownEndpoints.lastLinkCheck }
        if lastCheck.map({ now - $0 >= PathConstants.linkCheckInterval }) ?? true {
            let local = Set(LocalEndpoints.current(port: device.listenPort))
            let changed = state.withLock { s -> Bool in
                s.ownEndpoints.lastLinkCheck = now
                return s.ownEndpoints.lastDiscovery != nil && Set(s.ownEndpoints.local) != local
            }
            if changed { networkChanged(now: now) }
        }
        let (due, finished) = state.withLock { s -> (Bool, RegionProbeRound?) in
            let expired = s.ownEndpoints.pendingSTUN.filter { now - $0.value.sent >= PathConstants.stunTimeout }
            for key in expired.keys { s.ownEndpoints.pendingSTUN[key] = nil }
            let active = s.peers.entries.values.contains { $0.path.isActive(now: now) }
            let last = s.ownEndpoints.lastDiscovery
            let retry = s.ownEndpoints.retryDiscoveryAt.map { now >= $0 } ?? false
            let due = retry || (last.map { now - $0 >= PathConstants.rediscoveryInterval && active } ?? true)
            if retry { s.ownEndpoints.retryDiscoveryAt = nil }
            guard let round = s.probeRound, round.isFinished(now: now) else { return (due, nil) }
            s.probeRound = nil
            if round.latencies.isEmpty {
                let wait = min(
                    PathConstants.emptyRoundRetry * (1 << min(s.ownEndpoints.emptyRounds, 5)),
                    PathConstants.rediscoveryInterval)
                s.ownEndpoints.emptyRounds += 1
                s.ownEndpoints.retryDiscoveryAt = now + wait
            } else {
                s.ownEndpoints.emptyRounds = 0
            }
            return (due, round)
        }
        if let finished { chooseHome(after: finished) }
        if due { discoverEndpoints(now: now) }
    }

    /// A network change (Tailscale's link change): our mappings are stale,
    /// so re-discover now, re-dial DERP (its TCP connection may be bound to
    /// an address that is gone), and re-probe every peer at once.
    func networkChanged(now: Instant) {
        state.withLock { s in
            s.ownEndpoints.reflexive = [:]
            for handle in Array(s.peers.entries.keys) { s.peers[handle]?.path.networkChanged() }
        }
        discoverEndpoints(now: now)
        derp.reconnectAll()
    }

    /// Sends STUN Binding requests to every region's STUN server from the
    /// shared socket, refreshes the interface addresses, and starts a round
    /// of region latency probes: those STUN requests and an HTTPS latency
    /// check to every region's DERP server (Tailscale's netcheck does both:
    /// HTTPS still measures a region when UDP is blocked).
    func discoverEndpoints(now: Instant) {
        let port = device.listenPort
        let local = LocalEndpoints.current(port: port)
        var rng = SystemRandomNumberGenerator()
        var requests: [(STUN.TransactionID, Endpoint, Int)] = []
        for region in configuration.derpMap.regions.values {
            guard let server = region.stun else { continue }
            requests.append((STUN.TransactionID.random(using: &rng), server, region.id))
        }
        let changed = state.withLock { s -> [Endpoint]? in
            let before = s.ownEndpoints.all
            s.ownEndpoints.local = local
            s.ownEndpoints.lastDiscovery = now
            for (txID, server, region) in requests {
                s.ownEndpoints.pendingSTUN[txID] = (server, region, now)
            }
            if configuration.homeRegion == nil {
                s.probeRound = RegionProbeRound(
                    started: now,
                    probes: requests.map { RegionProbeRound.Probe(region: $0.2, method: .stun) }
                        + configuration.derpMap.regions.keys.map { RegionProbeRound.Probe(region: $0, method: .https) })
            }
            let after = s.ownEndpoints.all
            return after != before ? after : nil
        }
        for (txID, server, _) in requests {
            device.sendDatagram(STUNBinding.request(transactionID: txID), to: server)
        }
        if let changed { onEndpointsChanged?(changed) }
        if configuration.homeRegion == nil { probeHTTPS(round: now) }
    }

    /// One HTTPS latency probe per region, concurrently; each answer goes
    /// into the round started at `round` (ignored if a newer one began).
    private func probeHTTPS(round: Instant) {
        let tls = configuration.derpTLS
        for region in configuration.derpMap.regions.values {
            let probe = RegionProbeRound.Probe(region: region.id, method: .https)
            Task { [weak self] in
                let latency = try? await HTTPSLatencyProbe.measure(region.url, tls: tls)
                self?.state.withLock { s in
                    guard s.probeRound?.started == round else { return }
                    if let latency { s.probeRound!.answered(probe, latency: latency) } else { s.probeRound!.failed(probe) }
                }
            }
        }
    }

    func receivedSTUN(_ datagram: UnsafeRawBufferPointer, from source: Endpoint) {
        guard let txID = STUN.TransactionID(Array(datagram[8..<20])) else { return }
        let now = DeviceClock.now()
        let changed = state.withLock { s -> [Endpoint]? in
            guard let request = s.ownEndpoints.pendingSTUN[txID], request.server == source,
                let mapped = try? STUNBinding.mappedAddress(inResponse: datagram, transactionID: txID)
            else { return nil }
            s.ownEndpoints.pendingSTUN[txID] = nil
            s.probeRound?.answered(RegionProbeRound.Probe(region: request.region, method: .stun), latency: now - request.sent)
            let before = s.ownEndpoints.all
            s.ownEndpoints.reflexive[source] = mapped
            let after = s.ownEndpoints.all
            return after != before ? after : nil
        }
        if let changed { onEndpointsChanged?(changed) }
    }

    /// Applies `HomeRegion.choose` to a finished round's latencies (the
    /// regions that did not answer count as unreachable) unless the home is
    /// fixed by configuration.
    func chooseHome(after round: RegionProbeRound) {
        guard configuration.homeRegion == nil else { return }
        let (old, new) = state.withLock { s -> (Int?, Int?) in
            let old = s.home
            s.regionLatency = round.latencies
            s.home = HomeRegion.choose(current: s.home, latencies: round.latencies)
            return (old, s.home)
        }
        if let new, new != old { derp.keepHome(new) }
    }

    /// Latencies measured to each region (the best of STUN and HTTPS in the
    /// last finished probe round).
    public var regionLatencies: [Int: Duration] { state.withLock { $0.regionLatency } }
}

extension PeerPath {
    func isActive(now: Instant) -> Bool {
        lastActivityInstant.map { now - $0 < PathConstants.sessionActiveTimeout } ?? false
    }
}

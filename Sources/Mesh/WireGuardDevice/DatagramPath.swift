import WireGuardCore

/// A pluggable datagram path under the device, in the role of wireguard-go's
/// `conn.Bind` and Tailscale's magicsock: the node that owns the device's
/// socket decides, per peer, where the core's datagrams really go.
///
/// The core addresses each peer by one stable `Endpoint` (a handle the path
/// hands out); the path maps it to the peer's current route, a direct UDP
/// address or a relay (DERP), and maps the real sources of received
/// datagrams back to that handle, so WireGuard's own roaming (§6.5: the
/// endpoint follows the last authenticated source) never sees a path change.
public protocol DatagramPath: AnyObject, Sendable {
    /// Every datagram the socket received, before the core sees it. Returns
    /// the source the core should see, or nil when the path took the
    /// datagram (STUN, disco) or refuses it (WireGuard from an unknown
    /// address).
    func received(_ datagram: UnsafeRawBufferPointer, from source: Endpoint) -> Endpoint?
    /// Where the next `packets` datagrams the core addressed to `endpoint` go.
    func route(_ endpoint: Endpoint, packets: Int) -> DatagramRoute
    /// Sends a datagram over the relay to the peer behind `endpoint`.
    func relay(_ datagram: UnsafeRawBufferPointer, to endpoint: Endpoint)
}

public enum DatagramRoute: Sendable, Equatable {
    /// Straight to this UDP address.
    case direct(Endpoint)
    /// Over the relay only.
    case relay
    /// Both: a direct path that is no longer trusted is kept trying while the
    /// relay carries the traffic (Tailscale sends to both in that window).
    case both(Endpoint)
}

extension WireGuardDevice {
    /// Installs the path (before `start()`; nil restores the plain socket).
    public func setPath(_ path: (any DatagramPath)?) { datagramPath.withLock { $0 = path } }

    /// Sends a datagram that is not WireGuard (disco, STUN) on the device's
    /// socket, so NATs map it exactly as they map WireGuard.
    public func sendDatagram(_ bytes: [UInt8], to destination: Endpoint) {
        currentSocket.send([OutgoingDatagram(peer: nil, endpoint: destination, bytes: bytes)])
    }

    /// Feeds WireGuard datagrams that arrived over the relay, each at its
    /// range in `buffer` and from the peer whose handle is its `source`:
    /// like the receive loop, prepared under the lock, opened in place
    /// outside it, finished in arrival order, and the decrypted packets
    /// handed to the packet end as one batch.
    public func receiveRelayed(
        _ buffer: UnsafeMutableRawBufferPointer, datagrams: [(range: Range<Int>, source: Endpoint)]
    ) {
        guard !datagrams.isEmpty else { return }
        let now = DeviceClock.now()
        var jobs: [(index: Int, job: WireGuardCore.OpenJob)] = []
        jobs.reserveCapacity(datagrams.count)
        let outgoing: [OutgoingDatagram] = core.withLock { c in
            for (k, d) in datagrams.enumerated() {
                let bytes = UnsafeRawBufferPointer(rebasing: buffer[d.range])
                guard bytes.first == 4 else {
                    // Handshake messages (rare over DERP) carry no packet.
                    _ = c.decapsulate(buffer, datagram: d.range, source: d.source, now: now)
                    continue
                }
                if case .open(let job) = c.prepareDecapsulation(bytes, source: d.source, now: now) {
                    jobs.append((k, job))
                }
            }
            return c.takeOutgoing()
        }
        let plaintexts = jobs.map { $0.job.open(buffer, datagram: datagrams[$0.index].range) }
        var deliveries: [Range<Int>] = []
        deliveries.reserveCapacity(jobs.count)
        let more: [OutgoingDatagram] = core.withLock { c in
            for (k, (index, job)) in jobs.enumerated() {
                let d = datagrams[index]
                let result = c.finishDecapsulation(
                    job, buffer: UnsafeRawBufferPointer(buffer), plaintext: plaintexts[k], datagramSize: d.range.count,
                    source: d.source, now: now)
                if case .tunnel(_, let range) = result { deliveries.append(range) }
            }
            return c.takeOutgoing()
        }
        let udp = currentSocket
        send(outgoing, on: udp)
        end.writePackets(count: deliveries.count) { UnsafeRawBufferPointer(rebasing: buffer[deliveries[$0]]) }
        send(more, on: udp)
    }

    /// The receive loop's first step: the path takes its datagrams and
    /// renames the sources of the rest.
    func filterReceived(_ datagrams: inout [DeviceUDPSocket.Received], in batch: PacketBatch) {
        guard let path = datagramPath.withLock({ $0 }) else { return }
        var kept = 0
        for d in datagrams {
            let bytes = UnsafeRawBufferPointer(rebasing: batch.slot(d.slot)[d.range])
            guard let source = path.received(bytes, from: d.source) else { continue }
            datagrams[kept] = DeviceUDPSocket.Received(slot: d.slot, range: d.range, source: source)
            kept += 1
        }
        datagrams.removeLast(datagrams.count - kept)
    }

    /// Sends the core's datagrams along each peer's route.
    func send(_ outgoing: [OutgoingDatagram], on udp: DeviceUDPSocket) {
        guard !outgoing.isEmpty else { return }
        guard let path = datagramPath.withLock({ $0 }) else { return udp.send(outgoing) }
        var direct: [OutgoingDatagram] = []
        for datagram in outgoing {
            switch path.route(datagram.endpoint, packets: 1) {
            case .direct(let address):
                direct.append(OutgoingDatagram(peer: datagram.peer, endpoint: address, bytes: datagram.bytes))
            case .relay:
                datagram.bytes.withUnsafeBytes { path.relay($0, to: datagram.endpoint) }
            case .both(let address):
                direct.append(OutgoingDatagram(peer: datagram.peer, endpoint: address, bytes: datagram.bytes))
                datagram.bytes.withUnsafeBytes { path.relay($0, to: datagram.endpoint) }
            }
        }
        udp.send(direct)
    }

    /// The send loop's batch along each peer's route; direct runs keep
    /// their UDP GSO coalescing. One route lookup per run of equal handles.
    func send(
        _ datagrams: [(UnsafeRawBufferPointer, Endpoint)], scratch: UnsafeMutableRawBufferPointer,
        on udp: DeviceUDPSocket
    ) {
        guard let path = datagramPath.withLock({ $0 }) else { return udp.send(datagrams, scratch: scratch) }
        var direct: [(UnsafeRawBufferPointer, Endpoint)] = []
        direct.reserveCapacity(datagrams.count)
        var i = 0
        while i < datagrams.count {
            let handle = datagrams[i].1
            var end = i + 1
            while end < datagrams.count, datagrams[end].1 == handle { end += 1 }
            let route = path.route(handle, packets: end - i)
            for (bytes, _) in datagrams[i..<end] {
                switch route {
                case .direct(let address): direct.append((bytes, address))
                case .relay: path.relay(bytes, to: handle)
                case .both(let address):
                    direct.append((bytes, address))
                    path.relay(bytes, to: handle)
                }
            }
            i = end
        }
        udp.send(direct, scratch: scratch)
    }
}

import CryptoPrimitives
import WireGuardCore

/// disco on the node: answering pings, feeding pongs and CallMeMaybe to the
/// peer's `PeerPath`, and carrying out the actions it returns.
extension MeshNode {
    enum DiscoVia: Sendable {
        case udp(Endpoint)
        case derp(X25519.PublicKey)
    }

    /// The address a pong over DERP reports: Tailscale's "DERP magic IP"
    /// 127.3.3.40, with the region as port.
    static func derpMagicEndpoint(region: Int) -> Endpoint {
        Endpoint(address: .v4(0x7f03_0328), port: UInt16(truncatingIfNeeded: region))
    }

    func receivedDisco(_ datagram: UnsafeRawBufferPointer, via: DiscoVia) {
        guard let sender = Disco.senderKey(datagram) else { return }
        let found = state.withLock { s -> (Endpoint, NaClBox.SharedKey, MeshPeer)? in
            guard let handle = s.peers.handle(discoKey: sender), let entry = s.peers[handle] else {
                s.droppedDisco += 1
                return nil
            }
            return (handle, entry.discoShared, entry.peer)
        }
        guard let (handle, key, peer) = found else { return }
        let message: Disco.Message
        do { message = try Disco.open(datagram, key: key) } catch {
            state.withLock { $0.droppedDisco += 1 }
            return
        }
        if case .derp(let source) = via, source != peer.nodeKey {
            state.withLock { $0.droppedDisco += 1 }  // DERP says who sent it; it must match
            return
        }
        let now = DeviceClock.now()
        switch message {
        case .ping(let ping):
            switch via {
            case .udp(let source):
                let actions = state.withLock { s in
                    s.peers.bind(address: source, to: handle)
                    return s.peers[handle]?.path.pingReceived(from: source, now: now) ?? []
                }
                sendDisco(.pong(Disco.Pong(txID: ping.txID, source: source)), key: key, to: source)
                if configuration.directPaths { perform(actions, peer: peer, key: key) }
            case .derp:
                let region = state.withLock { $0.home } ?? 0
                sendDiscoOverDERP(
                    .pong(Disco.Pong(txID: ping.txID, source: Self.derpMagicEndpoint(region: region))), key: key,
                    peer: peer)
            }
        case .pong(let pong):
            let api = state.withLock { $0.apiPings.removeValue(forKey: pong.txID) }
            if let api {
                api.complete(now: now)
                return
            }
            guard case .udp(let source) = via else { return }
            state.withLock { s in
                if s.peers[handle]?.path.pongReceived(pong.txID, from: source, now: now) == true {
                    s.peers.bind(address: source, to: handle)
                }
            }
        case .callMeMaybe(let call):
            guard case .derp = via, configuration.directPaths else { return }  // over DERP only
            let actions = state.withLock { s in
                s.peers[handle]?.path.callMeMaybeReceived(call.endpoints, now: now) ?? []
            }
            perform(actions, peer: peer, key: key)
        }
    }

    func perform(_ actions: [PeerPath.Action], peer: MeshPeer, key: NaClBox.SharedKey) {
        for action in actions {
            switch action {
            case .ping(let txID, let endpoint):
                sendDisco(.ping(Disco.Ping(txID: txID, nodeKey: nodeKey)), key: key, to: endpoint)
            case .callMeMaybe:
                let mine = endpoints
                guard !mine.isEmpty else { continue }
                sendDiscoOverDERP(.callMeMaybe(Disco.CallMeMaybe(endpoints: mine)), key: key, peer: peer)
            }
        }
    }

    func sendDisco(_ message: Disco.Message, key: NaClBox.SharedKey, to endpoint: Endpoint) {
        device.sendDatagram(Disco.seal(message, sender: discoKey, key: key), to: endpoint)
    }

    func sendDiscoOverDERP(_ message: Disco.Message, key: NaClBox.SharedKey, peer: MeshPeer) {
        guard let region = peer.homeRegion ?? state.withLock({ $0.home }) else { return }
        let bytes = Disco.seal(message, sender: discoKey, key: key)
        bytes.withUnsafeBytes { _ = derp.send($0, to: peer.nodeKey, region: region, now: DeviceClock.now()) }
    }
}

import Agent
import CryptoPrimitives
import Logging
import Mesh
import WireGuardCore

/// The control plane's own node in the tailnet, for the app proxy: one mesh
/// node with one address, which coordination introduces to each agent an
/// app request names, exactly as it introduces a `tether ssh` client. It
/// joins on the first app request and stays; so does each agent's
/// introduction (an agent that reconnects hears of it again).
actor AppTunnel {
    let coordinator: Coordinator
    let derpMap: [DERPRegionInfo]
    let logger: Logger
    let address = TailnetAddress.randomClient()

    private var node: MeshNode?
    private var sessions: [String: Session] = [:]
    private let messages: AsyncStream<(String, ServerMessage)>.Continuation

    /// One agent's introduction. It exists from before the coordinator is
    /// asked: the coordinator answers (`peer_upsert`) while this actor
    /// awaits it, and that answer must find the session.
    struct Session {
        var clientID: Int?
        var agentAddress: IPAddress?
        var upsertedAt: ContinuousClock.Instant?
        var ready = false
    }

    struct Unreachable: Error, CustomStringConvertible {
        let description: String
    }

    init(coordinator: Coordinator, derpMap: [DERPRegionInfo], logger: Logger) {
        self.coordinator = coordinator
        self.derpMap = derpMap
        self.logger = logger
        let (stream, continuation) = AsyncStream<(String, ServerMessage)>.makeStream()
        messages = continuation
        Task { await self.consume(stream) }
    }

    /// The node and the agent's tunnel address, once the agent knows this
    /// node (`ready_for_handshake`, or 2 s after its node arrived from an
    /// agent that never says so, as `tether ssh` waits).
    func reach(agentID: String, timeout: Duration = .seconds(10)) async throws -> (MeshNode, IPAddress) {
        let node = try await startedNode(introducingTo: agentID)
        let end = ContinuousClock.now + timeout
        while ContinuousClock.now < end {
            if let s = sessions[agentID], let address = s.agentAddress,
                s.ready || (s.upsertedAt.map { ContinuousClock.now - $0 >= .seconds(2) } ?? false)
            {
                return (node, address)
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw Unreachable(description: "the agent's tunnel did not answer within \(timeout)")
    }

    private func startedNode(introducingTo agentID: String) async throws -> MeshNode {
        let made: MeshNode
        var fresh = false
        if let node {
            made = node
        } else {
            let ip = try IPAddress(address).orThrow(Unreachable(description: "bad proxy address \(address)"))
            let config = TunnelConfig(address: address, derpMap: derpMap)
            made = try MeshNode(
                privateKey: X25519.PrivateKey(),
                configuration: MeshNode.Configuration(addresses: [ip], derpMap: try config.meshDERPMap()))
            made.onEndpointsChanged = { [weak self] _ in Task { await self?.publish() } }
            node = made
            fresh = true
        }
        if sessions[agentID] == nil {
            sessions[agentID] = Session()
            let messages = self.messages
            let id = await coordinator.clientConnected(agentID: agentID, address: address) { messages.yield((agentID, $0)) }
            sessions[agentID]?.clientID = id
            try await coordinator.clientNode(agentID: agentID, clientID: id, info(of: made))
        }
        // Introduced before it dials DERP: the relay admits known keys only.
        if fresh {
            await made.start()
            await publish()
            logger.info("app proxy joined the tailnet as \(address)")
        }
        return made
    }

    private func info(of node: MeshNode) -> NodeInfo {
        NodeInfo(of: node, address: IPAddress(address)!)
    }

    /// The node's description again, to every agent it was introduced to.
    private func publish() async {
        guard let node else { return }
        for (agentID, session) in sessions {
            guard let clientID = session.clientID else { continue }
            try? await coordinator.clientNode(agentID: agentID, clientID: clientID, info(of: node))
        }
    }

    private func consume(_ stream: AsyncStream<(String, ServerMessage)>) async {
        for await (agentID, message) in stream { handle(agentID, message) }
    }

    private func handle(_ agentID: String, _ message: ServerMessage) {
        guard let node else { return }
        switch message {
        case .peerUpsert(let upsert):
            do {
                let peer = try upsert.node.meshPeer()
                try node.upsertPeer(peer)
                sessions[agentID]?.agentAddress = peer.addresses.first?.address
                sessions[agentID]?.upsertedAt = .now
            } catch {
                logger.warning("app proxy: peer of agent \(agentID) refused: \(error)")
            }
        case .peerRemove(let remove):
            if let key = try? X25519.PublicKey(base64: remove.nodeKey) { node.removePeer(nodeKey: key) }
        case .readyForHandshake(let ready) where ready.nodeKey == node.publicKey.base64:
            sessions[agentID]?.ready = true
        default:
            break
        }
    }
}

extension Optional {
    fileprivate func orThrow(_ error: some Error) throws -> Wrapped {
        guard let self else { throw error }
        return self
    }
}

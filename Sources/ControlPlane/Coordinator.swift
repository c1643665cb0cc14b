import Agent
import Logging

/// Coordination (docs/control-protocol.md, "Coordination"): which nodes
/// each agent's tunnel must know. An agent learns the clients connected to
/// it now; a client learns the one agent it asked for. Nothing persists:
/// nodes report themselves again after every reconnect.
///
/// The coordinator assigns every tailnet address (overwriting what a node
/// claims), so one node cannot route another's traffic to itself, and it
/// only ever pairs a client with the agent its (already authorized)
/// socket names.
actor Coordinator {
    typealias Send = @Sendable (ServerMessage) -> Void

    struct AgentEntry {
        var node: NodeInfo?
        var connectionID: Int?
        var send: Send?
        var clients: [Int: ClientEntry] = [:]
    }

    struct ClientEntry {
        let address: String
        var node: NodeInfo?
        let send: Send
    }

    let derpMap: [DERPRegionInfo]
    let logger: Logger
    /// Every node key introduced here, for the embedded relay's admission.
    let knownKeys: NodeKeyRegistry
    private var agents: [String: AgentEntry] = [:]
    private var nextID = 0

    init(derpMap: [DERPRegionInfo], knownKeys: NodeKeyRegistry, logger: Logger) {
        self.derpMap = derpMap
        self.knownKeys = knownKeys
        self.logger = logger
    }

    // MARK: Agents

    /// An agent's control connection is up: it gets its tunnel
    /// configuration, then every client waiting for it.
    func agentConnected(agentID: String, connectionID: Int, send: @escaping Send) {
        var entry = agents[agentID] ?? AgentEntry()
        entry.connectionID = connectionID
        entry.send = send
        agents[agentID] = entry
        send(.tunnel(TunnelConfig(address: TailnetAddress.agent(id: agentID), derpMap: derpMap)))
        for client in entry.clients.values {
            if let node = client.node { send(.peerUpsert(PeerUpsert(node: node))) }
        }
    }

    func agentDisconnected(agentID: String, connectionID: Int) {
        guard agents[agentID]?.connectionID == connectionID else { return }
        agents[agentID]?.connectionID = nil
        agents[agentID]?.send = nil
    }

    /// The agent's own node; its clients hear of it (and of the old key's
    /// removal when the agent restarted with a new one).
    func agentNode(agentID: String, _ reported: NodeInfo) throws(ProtocolError) {
        try reported.validate()
        var node = reported
        node.addresses = [TailnetAddress.agent(id: agentID) + "/128"]
        guard var entry = agents[agentID] else { return }
        let old = entry.node
        entry.node = node
        agents[agentID] = entry
        knownKeys.insert(node.nodeKey)
        if let old { knownKeys.remove(old.nodeKey) }
        for client in entry.clients.values {
            if let old, old.nodeKey != node.nodeKey { client.send(.peerRemove(PeerRemove(nodeKey: old.nodeKey))) }
            client.send(.peerUpsert(PeerUpsert(node: node)))
        }
    }

    /// The agent added a client: that client (only) hears it may handshake.
    func agentReady(agentID: String, nodeKey: String) {
        guard let clients = agents[agentID]?.clients else { return }
        for client in clients.values where client.node?.nodeKey == nodeKey {
            client.send(.readyForHandshake(ReadyForHandshake(nodeKey: nodeKey)))
        }
    }

    // MARK: Clients

    /// A client's coordination socket opened for `agentID`: it gets an
    /// address and the DERP map, and the agent's node if known. `address`
    /// is the app proxy's own node, one address for all the agents it
    /// reaches; every other client gets a random one.
    func clientConnected(agentID: String, address fixed: String? = nil, send: @escaping Send) -> Int {
        nextID += 1
        let id = nextID
        let address = fixed ?? TailnetAddress.randomClient()
        var entry = agents[agentID] ?? AgentEntry()
        entry.clients[id] = ClientEntry(address: address, node: nil, send: send)
        agents[agentID] = entry
        send(.tunnel(TunnelConfig(address: address, derpMap: derpMap)))
        if let node = entry.node { send(.peerUpsert(PeerUpsert(node: node))) }
        return id
    }

    /// The client's node, passed on to the agent with the client's
    /// assigned address in place of any it claimed.
    func clientNode(agentID: String, clientID: Int, _ reported: NodeInfo) throws(ProtocolError) {
        try reported.validate()
        guard var client = agents[agentID]?.clients[clientID] else { return }
        var node = reported
        node.addresses = [client.address + "/128"]
        knownKeys.insert(node.nodeKey)
        if let old = client.node { knownKeys.remove(old.nodeKey) }
        client.node = node
        agents[agentID]?.clients[clientID] = client
        agents[agentID]?.send?(.peerUpsert(PeerUpsert(node: node)))
    }

    func clientDisconnected(agentID: String, clientID: Int) {
        guard let client = agents[agentID]?.clients.removeValue(forKey: clientID) else { return }
        if let node = client.node {
            knownKeys.remove(node.nodeKey)
            agents[agentID]?.send?(.peerRemove(PeerRemove(nodeKey: node.nodeKey)))
        }
    }

    /// Clients connected to `agentID` (for tests and metrics).
    func clientCount(agentID: String) -> Int { agents[agentID]?.clients.count ?? 0 }
}

import Agent
import Testing

/// Coordination messages (docs/control-protocol.md, "Coordination") and the
/// tailnet address plan, without any I/O.
@Suite struct CoordinationTests {
    static let key = "x9bRrd0G4c3jbAv8uYb+4hRxvCY+7mbYzDVLtVHIEHA="
    let node = NodeInfo(
        nodeKey: key, discoKey: key, addresses: ["fd74:6574:6865:0:1:2:3:4/128"],
        endpoints: ["192.0.2.7:41641", "[2001:db8::7]:41641"], homeDERP: 1)

    @Test func messagesRoundTripWithTheDocumentedFieldNames() throws {
        let agentSide: [AgentMessage] = [.node(NodeUpdate(node: node)), .readyForHandshake(ReadyForHandshake(nodeKey: Self.key))]
        for m in agentSide { #expect(try ControlCodec.decodeAgentMessage(ControlCodec.encode(m)) == m) }
        let serverSide: [ServerMessage] = [
            .tunnel(TunnelConfig(address: "fd74:6574:6865:1:a:b:c:d", derpMap: [DERPRegionInfo(id: 1, url: "http://127.0.0.1:1/derp", stun: "127.0.0.1:2")])),
            .peerUpsert(PeerUpsert(node: node)), .peerRemove(PeerRemove(nodeKey: Self.key)),
            .readyForHandshake(ReadyForHandshake(nodeKey: Self.key)),
        ]
        for m in serverSide { #expect(try ControlCodec.decodeServerMessage(ControlCodec.encode(m)) == m) }
        let wire = String(decoding: ControlCodec.encode(AgentMessage.node(NodeUpdate(node: node))), as: UTF8.self)
        for field in ["\"type\":\"node\"", "\"node_key\"", "\"disco_key\"", "\"home_derp\":1", "\"endpoints\""] {
            #expect(wire.contains(field), "\(field) missing from \(wire)")
        }
    }

    @Test func agentAddressesAreStableAndClientsLiveInAnotherSubnet() {
        let a = TailnetAddress.agent(id: "3f2a")
        #expect(a == TailnetAddress.agent(id: "3f2a"))
        #expect(a != TailnetAddress.agent(id: "3f2b"))
        #expect(a.hasPrefix("fd74:6574:6865:0:"))
        #expect(TailnetAddress.contains(a))
        let c = TailnetAddress.randomClient()
        #expect(c.hasPrefix("fd74:6574:6865:1:"))
        #expect(c != TailnetAddress.randomClient())
        #expect(!TailnetAddress.contains("fd7a:115c:a1e0::1:2:3:4:5"))
    }

    @Test func malformedNodesAreRefusedNamingTheField() throws {
        var bad = node
        bad.nodeKey = "not base64"
        #expect(throws: ProtocolError(code: "malformed", message: "node_key must be 32 bytes of base64")) { try bad.validate() }
        bad = node
        bad.discoKey = String(repeating: "A", count: 43) + "="
        #expect(throws: Never.self) { try bad.validate() }
        bad.endpoints = Array(repeating: "192.0.2.1:1", count: NodeInfo.maxEndpoints + 1)
        #expect(throws: ProtocolError.self) { try bad.validate() }
        try node.validate()
        let peer = try node.meshPeer()
        #expect(peer.endpoints.count == 2 && peer.addresses.count == 1 && peer.homeRegion == 1)
    }
}

import CryptoPrimitives
import DERP
import NIOCore
import Testing

@Suite struct MeshTests {
    /// Three servers of one region, each watching the other two: a client
    /// on server 1 reaches a client on server 3 through one ForwardPacket
    /// hop, and hears PeerGone when that client leaves.
    @Test func threeServerMeshDeliversAndReportsPeerGone() async throws {
        let meshKey = Hex.encode(SecureRandom.bytes(32))
        // Bind first (ports are needed for the peer lists), then configure.
        var servers: [DERPHTTPServer] = []
        var ports: [Int] = []
        for _ in 0..<3 {
            let probe = try await startServer()
            ports.append(probe.port)
            try await probe.close()
        }
        for (index, port) in ports.enumerated() {
            let peers = ports.enumerated().filter { $0.offset != index }.map { DERPURL(host: "127.0.0.1", port: $0.element) }
            servers.append(
                try await startServer({
                    $0.meshKey = meshKey
                    $0.meshPeers = peers
                }, port: port))
        }
        let one = makeClient(servers[0])
        let three = makeClient(servers[2])
        try await one.connect()
        try await three.connect()
        // Server 1 learns of the client on server 3 through its watch.
        #expect(await eventually(timeout: .seconds(10)) { servers[0].server.isKnownRemotely(three.publicKey) })
        try await one.send(to: three.publicKey, packet: Array("across the mesh".utf8))
        #expect(await nextEvent(three, where: isPacket) == .packet(source: one.publicKey, packet: ByteBuffer(string: "across the mesh")))
        #expect(servers[0].server.metrics.snapshot["packets_forwarded_out"] == 1)
        #expect(servers[2].server.metrics.snapshot["packets_forwarded_in"] == 1)
        #expect(servers[1].server.metrics.snapshot["packets_forwarded_in"] == 0)
        // And back, 3 → 1, once server 3 has heard of the client on server 1.
        #expect(await eventually(timeout: .seconds(10)) { servers[2].server.isKnownRemotely(one.publicKey) })
        try await three.send(to: one.publicKey, packet: [3])
        #expect(await nextEvent(one, where: isPacket) == .packet(source: three.publicKey, packet: ByteBuffer(bytes: [3])))
        // The destination leaves: the sender on server 1 hears PeerGone.
        await three.close()
        #expect(await nextEvent(one) { if case .peerGone = $0 { true } else { false } } == .peerGone(three.publicKey, reason: .disconnected))
        #expect(await eventually { !servers[0].server.isKnownRemotely(three.publicKey) })
        await one.close()
        for server in servers { try await server.close() }
    }

    @Test func wrongMeshKeyIsRefused() async throws {
        let capture = LogCapture()
        let server = try await startServer {
            $0.meshKey = "right"
            $0.logger = capture.logger
        }
        let client = makeClient(server) { $0.meshKey = "wrong" }
        await #expect(throws: DERPError.self) { try await client.connect() }
        #expect(capture.contains("wrong mesh key"))
        await client.close()
        try await server.close()
    }

    @Test func meshPeerCanWatchAndClosePeers() async throws {
        let server = try await startServer { $0.meshKey = "k" }
        let regular = makeClient(server)
        try await regular.connect()
        let watcher = makeClient(server) {
            $0.meshKey = "k"
            $0.watchConnectionChanges = true
        }
        try await watcher.connect()
        let present = await nextEvent(watcher) { if case .peerPresent(let p) = $0 { p.key == regular.publicKey } else { false } }
        guard case .peerPresent(let p) = present else {
            Issue.record("no PeerPresent")
            return
        }
        #expect(p.flags == .regular)
        #expect(p.endpoint?.port != nil)
        watcher.closePeer(regular.publicKey)
        #expect(await nextEvent(regular) { if case .disconnected = $0 { true } else { false } } != nil)
        #expect(await nextEvent(watcher) { if case .peerGone = $0 { true } else { false } } == .peerGone(regular.publicKey, reason: .disconnected))
        await watcher.close()
        try await server.close()
    }
}

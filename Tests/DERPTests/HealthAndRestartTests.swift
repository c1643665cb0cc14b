import CryptoPrimitives
import DERP
import NIOCore
import Testing

/// Health frames (a problem the server wants its clients to know about)
/// and Restarting (sent on graceful shutdown: reconnect in X, keep trying
/// for Y), server and client sides.
func isHealth(_ event: DERPEvent) -> Bool {
    if case .health = event { return true }
    return false
}

@Suite struct HealthAndRestartTests {
    @Test func healthProblemReachesConnectedAndNewClients() async throws {
        let server = try await startServer()
        let a = makeClient(server)
        try await a.connect()
        server.server.setHealthProblem("disk almost full")
        #expect(await nextEvent(a, where: isHealth) == .health("disk almost full"))
        #expect(await eventually { a.healthProblem == "disk almost full" })
        // A client that logs in while a problem is set hears it at once.
        let b = makeClient(server)
        try await b.connect()
        #expect(await nextEvent(b, where: isHealth) == .health("disk almost full"))
        // Clearing sends an empty Health frame.
        server.server.setHealthProblem(nil)
        #expect(await nextEvent(a, where: isHealth) == .health(""))
        #expect(await nextEvent(b, where: isHealth) == .health(""))
        #expect(await eventually { a.healthProblem == nil })
        // Health frames do not disturb the relay.
        try await a.send(to: b.publicKey, packet: [9])
        #expect(await nextEvent(b, where: isPacket) == .packet(source: a.publicKey, packet: ByteBuffer(bytes: [9])))
        await a.close()
        await b.close()
        try await server.close()
    }

    @Test func unreachableMeshPeerIsReportedAsHealthAndClearedWhenBack() async throws {
        let gone = try await startServer()
        let peerPort = gone.port
        try await gone.close()
        let server = try await startServer {
            $0.meshKey = "region"
            $0.meshPeers = [DERPURL(host: "127.0.0.1", port: peerPort)]
            $0.meshHealthGrace = .milliseconds(300)
        }
        let a = makeClient(server)
        try await a.connect()
        guard case .health(let text) = await nextEvent(a, timeout: .seconds(10), where: isHealth) else {
            Issue.record("no Health frame for the unreachable mesh peer")
            return
        }
        #expect(text.contains("127.0.0.1:\(peerPort)"))
        #expect(text.contains("unreachable"))
        // The neighbour comes up: the problem clears.
        let peer = try await startServer({ $0.meshKey = "region" }, port: peerPort)
        #expect(await nextEvent(a, timeout: .seconds(15), where: isHealth) == .health(""))
        #expect(server.server.healthProblem == nil)
        await a.close()
        try await server.close()
        try await peer.close()
    }

    @Test func gracefulShutdownSendsRestartingAndTheClientComesBackAfterIt() async throws {
        let first = try await startServer {
            $0.restarting = (reconnectIn: .milliseconds(400), tryFor: .seconds(10))
        }
        let port = first.port
        var options = DERPClient.Options()
        // Without the server's hint the next dial would be 20 s away.
        options.initialBackoff = .seconds(20)
        options.maximumBackoff = .seconds(20)
        let client = DERPClient(url: DERPURL(host: "127.0.0.1", port: port), privateKey: X25519.PrivateKey(), options: options)
        client.start()
        #expect(await nextEvent(client) { if case .connected = $0 { true } else { false } } != nil)
        let closing = ContinuousClock.now
        try await first.close()
        #expect(await nextEvent(client) { if case .restarting = $0 { true } else { false } } == .restarting(reconnectInMilliseconds: 400, tryForMilliseconds: 10_000))
        #expect(await nextEvent(client) { if case .disconnected = $0 { true } else { false } } != nil)
        let second = try await startServer(port: port)
        #expect(await nextEvent(client, timeout: .seconds(8)) { if case .connected = $0 { true } else { false } } != nil)
        #expect(ContinuousClock.now - closing >= .milliseconds(400))
        #expect(second.server.clientCount == 1)
        await client.close()
        try await second.close()
    }
}

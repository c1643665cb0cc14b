import CryptoPrimitives
import DERP
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization
import Testing

@Suite struct ServerTests {
    @Test func relaysBetweenTwoClients() async throws {
        let server = try await startServer()
        let a = makeClient(server)
        let b = makeClient(server)
        try await a.connect()
        try await b.connect()
        #expect(a.serverKey == server.server.publicKey)
        #expect(a.serverInfo == ServerInfo(version: 2))
        try await a.send(to: b.publicKey, packet: Array("hello".utf8))
        let event = await nextEvent(b, where: isPacket)
        #expect(event == .packet(source: a.publicKey, packet: ByteBuffer(string: "hello")))
        await a.close()
        await b.close()
        try await server.close()
    }

    @Test func webSocketAndUpgradeClientsTalk() async throws {
        let server = try await startServer()
        let ws = makeClient(server, transport: .webSocket)
        let up = makeClient(server, transport: .upgrade)
        try await ws.connect()
        try await up.connect()
        let big = [UInt8](repeating: 0x42, count: 60_000)
        try await ws.send(to: up.publicKey, packet: Array("from websocket".utf8))
        try await up.send(to: ws.publicKey, packet: Array("from upgrade".utf8))
        try await up.send(to: ws.publicKey, packet: big)
        #expect(await nextEvent(up, where: isPacket) == .packet(source: ws.publicKey, packet: ByteBuffer(string: "from websocket")))
        #expect(await nextEvent(ws, where: isPacket) == .packet(source: up.publicKey, packet: ByteBuffer(string: "from upgrade")))
        #expect(await nextEvent(ws, where: isPacket) == .packet(source: up.publicKey, packet: ByteBuffer(bytes: big)))
        await ws.close()
        await up.close()
        try await server.close()
    }

    /// `.automatic` falls back to WebSocket when the upgrade is refused: a
    /// server that only speaks WebSocket is simulated by a path where the
    /// DERP upgrade is refused but the WebSocket one is not… which ours
    /// never does, so the fallback is exercised against a plain-HTTP port
    /// that refuses both and must report `.upgradeRefused`.
    @Test func refusedUpgradeIsReported() async throws {
        let server = try await startServer()
        var options = DERPClient.Options()
        options.transport = .automatic
        let client = DERPClient(url: DERPURL(host: "127.0.0.1", port: server.port, path: "/elsewhere"), privateKey: X25519.PrivateKey(), options: options)
        do {
            try await client.connect()
            Issue.record("connected on a wrong path")
        } catch let error as DERPError {
            #expect(error.kind == .upgradeRefused)
        }
        await client.close()
        try await server.close()
    }

    @Test func overTLS() async throws {
        var serverTLS = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMBytes(Array(testCertificatePEM.utf8)).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(testKeyPEM.utf8), format: .pem)))
        serverTLS.applicationProtocols = ["http/1.1"]
        let server = try await startServer(tls: try NIOSSLContext(configuration: serverTLS))
        var options = DERPClient.Options()
        options.tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(testCertificatePEM.utf8)))
        options.transport = .automatic
        let a = DERPClient(url: url(server, tls: true), privateKey: X25519.PrivateKey(), options: options)
        options.transport = .webSocket
        let b = DERPClient(url: url(server, tls: true), privateKey: X25519.PrivateKey(), options: options)
        try await a.connect()
        try await b.connect()
        try await a.send(to: b.publicKey, packet: [1, 2, 3])
        #expect(await nextEvent(b, where: isPacket) == .packet(source: a.publicKey, packet: ByteBuffer(bytes: [1, 2, 3])))
        await a.close()
        await b.close()
        try await server.close()
    }

    @Test func pingIsAnswered() async throws {
        let server = try await startServer()
        let a = makeClient(server)
        try await a.connect()
        let rtt = try await a.ping()
        #expect(rtt < .seconds(5))
        #expect(server.server.metrics.snapshot["pings_answered"] == 1)
        await a.close()
        try await server.close()
    }

    @Test func peerGoneReachesThoseWhoTalkedWithALeaver() async throws {
        let server = try await startServer()
        let a = makeClient(server)
        let b = makeClient(server)
        let c = makeClient(server)
        try await a.connect()
        try await b.connect()
        try await c.connect()
        try await a.send(to: b.publicKey, packet: [1])  // a → b
        #expect(await nextEvent(b, where: isPacket) != nil)
        await b.close()  // the destination leaves: the sender hears it
        #expect(await nextEvent(a) { if case .peerGone = $0 { true } else { false } } == .peerGone(b.publicKey, reason: .disconnected))
        // c never talked with b and hears nothing; a ping proves the stream is live.
        try await c.send(to: a.publicKey, packet: [2])
        #expect(await nextEvent(a, where: isPacket) == .packet(source: c.publicKey, packet: ByteBuffer(bytes: [2])))
        await c.close()
        #expect(await nextEvent(a) { if case .peerGone = $0 { true } else { false } } == .peerGone(c.publicKey, reason: .disconnected))
        await a.close()
        try await server.close()
    }

    @Test func discoToUnknownPeerAnswersNotHere() async throws {
        let server = try await startServer()
        let a = makeClient(server)
        try await a.connect()
        let nobody = X25519.PrivateKey().publicKey
        let disco = DERPWire.discoMagic + [UInt8](repeating: 7, count: 32 + 24 + 20)
        try await a.send(to: nobody, packet: disco)
        #expect(await nextEvent(a) { if case .peerGone = $0 { true } else { false } } == .peerGone(nobody, reason: .notHere))
        #expect(server.server.metrics.dropped(.unknownDestination) == 1)
        #expect(server.server.metrics.snapshot["disco_packets_received"] == 1)
        await a.close()
        try await server.close()
    }

    @Test func newerConnectionWithSameKeyReplacesOlder() async throws {
        let server = try await startServer()
        let key = X25519.PrivateKey()
        let first = DERPClient(url: url(server), privateKey: key.duplicate())
        let second = DERPClient(url: url(server), privateKey: key.duplicate())
        let other = makeClient(server)
        try await first.connect()
        try await other.connect()
        try await second.connect()
        #expect(await nextEvent(first) { if case .disconnected = $0 { true } else { false } } != nil)
        try await other.send(to: second.publicKey, packet: [9])
        #expect(await nextEvent(second, where: isPacket) == .packet(source: other.publicKey, packet: ByteBuffer(bytes: [9])))
        #expect(server.server.clientCount == 2)
        for c in [first, second, other] { await c.close() }
        try await server.close()
    }

    @Test func admissionHookRefusesUnknownKeys() async throws {
        let allowed = X25519.PrivateKey()
        let allowedKey = allowed.publicKey
        let server = try await startServer { $0.admission = { key, _ in key == allowedKey } }
        let good = DERPClient(url: url(server), privateKey: allowed.duplicate())
        let bad = makeClient(server)
        try await good.connect()
        do {
            try await bad.connect()
            Issue.record("refused key logged in")
        } catch let error as DERPError {
            #expect(error.kind == .connectionClosed || error.kind == .loginFailed)
        }
        #expect(server.server.metrics.snapshot["admission_refused"] == 1)
        #expect(server.server.isConnected(allowedKey))
        await good.close()
        await bad.close()
        try await server.close()
    }

    @Test func notePreferredIsCounted() async throws {
        let server = try await startServer()
        let a = makeClient(server)
        try await a.connect()
        a.notePreferred(true)
        #expect(await eventually { server.server.metrics.snapshot["clients_home"] == 1 })
        await a.close()
        #expect(await eventually { server.server.metrics.snapshot["clients_home"] == 0 })
        try await server.close()
    }

    @Test func reconnectsWithBackoffAfterServerRestart() async throws {
        let first = try await startServer()
        let port = first.port
        var options = DERPClient.Options()
        options.initialBackoff = .milliseconds(50)
        options.maximumBackoff = .milliseconds(400)
        let client = DERPClient(url: DERPURL(host: "127.0.0.1", port: port), privateKey: X25519.PrivateKey(), options: options)
        client.notePreferred(true)
        client.start()
        #expect(await nextEvent(client) { if case .connected = $0 { true } else { false } } != nil)
        #expect(await eventually { first.server.metrics.snapshot["clients_home"] == 1 })
        try await first.close()
        // Closing the listener leaves accepted connections; close the client's too.
        first.server.closeAll(reason: "server restarting")
        #expect(await nextEvent(client) { if case .disconnected = $0 { true } else { false } } != nil)
        let second = try await startServer(port: port)
        #expect(await nextEvent(client, timeout: .seconds(10)) { if case .connected = $0 { true } else { false } } != nil)
        // NotePreferred is sent again on the new connection.
        #expect(await eventually { second.server.metrics.snapshot["clients_home"] == 1 })
        await client.close()
        try await second.close()
    }

    @Test func rateLimitSlowsTheSenderWithoutLoss() async throws {
        let server = try await startServer { $0.rateLimit = (bytesPerSecond: 200_000, burst: 20_000) }
        let a = makeClient(server)
        let b = makeClient(server)
        try await a.connect()
        try await b.connect()
        #expect(a.serverInfo?.tokenBucketBytesPerSecond == 200_000)
        #expect(a.serverInfo?.tokenBucketBytesBurst == 20_000)
        let received = Atomic<Int>(0)
        let start = ContinuousClock.now
        let count = 120
        Task {
            for await event in b.events where isPacket(event) {
                if received.add(1, ordering: .relaxed).newValue == count { break }
            }
        }
        for i in 0..<count {
            try await a.send(to: b.publicKey, packet: [UInt8](repeating: UInt8(i & 0xff), count: 1000))
        }
        #expect(await eventually(timeout: .seconds(10)) { received.load(ordering: .relaxed) == count })
        // 120 kB at 200 kB/s after a 20 kB burst takes about half a second.
        #expect(ContinuousClock.now - start > .milliseconds(400))
        #expect(server.server.metrics.dropped(.queueHead) == 0)
        await a.close()
        await b.close()
        try await server.close()
    }

    /// The HTTP endpoints, asked by curl (the real peer).
    @Test func httpEndpointsAnswerAsTailscales() async throws {
        let server = try await startServer()
        let base = "http://127.0.0.1:\(server.port)"
        let probe = try await curl(["-sS", "-i", "\(base)/derp/probe"])
        #expect(probe.hasPrefix("HTTP/1.1 200"))
        #expect(probe.lowercased().contains("access-control-allow-origin: *"))
        #expect(try await curl(["-sS", "-i", "-I", "\(base)/derp/latency-check"]).hasPrefix("HTTP/1.1 200"))
        #expect(try await curl(["-sS", "-i", "-X", "POST", "\(base)/derp/probe"]).hasPrefix("HTTP/1.1 405"))
        let noContent = try await curl(["-sS", "-i", "-H", "X-Tailscale-Challenge: abc-123", "\(base)/generate_204"])
        #expect(noContent.hasPrefix("HTTP/1.1 204"))
        #expect(noContent.lowercased().contains("x-tailscale-response: response abc-123"))
        let badChallenge = try await curl(["-sS", "-i", "-H", "X-Tailscale-Challenge: a/b", "\(base)/generate_204"])
        #expect(!badChallenge.lowercased().contains("x-tailscale-response"))
        let plain = try await curl(["-sS", "-i", "\(base)/derp"])
        #expect(plain.hasPrefix("HTTP/1.1 426"))
        #expect(plain.contains("DERP requires connection upgrade"))
        // After the 101 the server speaks DERP and curl waits: read its trace.
        let upgrade = try await curl(["-sS", "-v", "--max-time", "1", "-H", "Connection: Upgrade", "-H", "Upgrade: DERP", "\(base)/derp"]).lowercased()
        #expect(upgrade.contains("< http/1.1 101 switching protocols"))
        #expect(upgrade.contains("< upgrade: derp"))
        #expect(upgrade.contains("< derp-version: 2"))
        #expect(upgrade.contains("< derp-public-key: \(server.server.publicKey.raw.hex)"))
        let metrics = try await curl(["-sS", "\(base)/metrics"])
        #expect(metrics.contains("# TYPE derp_packets_dropped_total counter"))
        #expect(metrics.contains("derp_clients 0"))
        #expect(try await curl(["-sS", "-i", "\(base)/nope"]).hasPrefix("HTTP/1.1 404"))
        try await server.close()
    }

    func curl(_ arguments: [String]) async throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}

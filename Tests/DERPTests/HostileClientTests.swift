import CryptoPrimitives
import DERP
import NIOCore
import Testing

/// Raw TCP peers that misbehave: each is closed with a logged reason, and
/// well-behaved clients on the same server carry on.
@Suite struct HostileClientTests {
    /// Upgrades, reads ServerKey, and returns the server's key.
    func upgrade(_ peer: RawPeer) async throws -> NodeKey {
        try await peer.write(upgradeRequest)
        let head = try #require(await peer.readHTTPHead())
        #expect(head.hasPrefix("HTTP/1.1 101"))
        var buffer = ByteBuffer(bytes: try #require(await peer.read(45)))
        guard case .serverKey(let key) = try FrameDecoder().decode(&buffer) else {
            Issue.record("no ServerKey")
            return NodeKey(.zero)
        }
        return key
    }

    /// Logs in properly over the raw connection.
    func login(_ peer: RawPeer, key: borrowing X25519.PrivateKey) async throws {
        let serverKey = try await upgrade(peer)
        let sealed = try Login.sealClientInfo(ClientInfo(), clientKey: key, serverKey: serverKey)
        try await peer.write(Frame.clientInfo(sealed).encoded())
        // ServerInfo: header, nonce, box of {"version":2}.
        _ = try #require(await peer.read(5 + 24 + 16 + 13))
    }

    @Test func clientCannotSendAsAnotherKey() async throws {
        let capture = LogCapture()
        let server = try await startServer { $0.logger = capture.logger }
        let victim = makeClient(server)
        try await victim.connect()
        let peer = try await RawPeer(port: server.port)
        do {
            let serverKey = try await upgrade(peer)
            // Claims the victim's key but can only seal with its own.
            let attacker = X25519.PrivateKey()
            var sealed = try Login.sealClientInfo(ClientInfo(), clientKey: attacker, serverKey: serverKey)
            sealed.clientKey = victim.publicKey
            try await peer.write(Frame.clientInfo(sealed).encoded())
            #expect(await peer.closes(within: .seconds(5)))
        }
        #expect(capture.contains("does not open with client key \(victim.publicKey)"))
        #expect(server.server.metrics.snapshot["handshakes_failed"] == 1)
        // The real holder of the key is still connected and reachable.
        let other = makeClient(server)
        try await other.connect()
        try await other.send(to: victim.publicKey, packet: [1])
        #expect(await nextEvent(victim, where: isPacket) == .packet(source: other.publicKey, packet: ByteBuffer(bytes: [1])))
        await victim.close()
        await other.close()
        try await server.close()
    }

    @Test func silentClientHitsTheHandshakeDeadline() async throws {
        let capture = LogCapture()
        let server = try await startServer {
            $0.logger = capture.logger
            $0.handshakeTimeout = .milliseconds(300)
        }
        let peer = try await RawPeer(port: server.port)
        do {
            _ = try await upgrade(peer)
            #expect(await peer.closes(within: .seconds(5)))
        }
        #expect(capture.contains("login not finished within 300 ms"))
        try await server.close()
    }

    @Test(arguments: [
        ("oversized packet", [0x04, 0x00, 0x01, 0x00, 0x21] as [UInt8], "exceeds the limit"),
        ("frame over 1 MiB", [0x14, 0x00, 0x20, 0x00, 0x00], "exceeds the limit"),
        ("short SendPacket", [0x04, 0x00, 0x00, 0x00, 0x03, 1, 2, 3], "malformed frame type 0x04"),
        ("WatchConns without mesh key", [0x10, 0, 0, 0, 0], "needs the mesh key"),
        ("ForwardPacket without mesh key", [0x0a, 0, 0, 0, 64] + [UInt8](repeating: 1, count: 64), "needs the mesh key"),
        // Bytes that are no DERP at all: read as a header, a length of
        // 0xadbeef42 bytes.
        ("garbage after login", [0xde, 0xad, 0xbe, 0xef, 0x42, 0x13, 0x37, 0x00, 0xff], "exceeds the limit"),
        ("short Ping", [0x12, 0, 0, 0, 3, 1, 2, 3], "malformed frame type 0x12"),
    ])
    func badFrameClosesOnlyThatConnection(name: String, bytes: [UInt8], reason: String) async throws {
        let capture = LogCapture()
        let server = try await startServer { $0.logger = capture.logger }
        let a = makeClient(server)
        let b = makeClient(server)
        try await a.connect()
        try await b.connect()
        let peer = try await RawPeer(port: server.port)
        do {
            try await login(peer, key: X25519.PrivateKey())
            try await peer.write(ByteBuffer(bytes: bytes))
            #expect(await peer.closes(within: .seconds(5)), "\(name)")
        }
        #expect(capture.contains(reason), "\(name): \(capture.records.withLock { $0 })")
        try await a.send(to: b.publicKey, packet: [7])
        #expect(await nextEvent(b, where: isPacket) == .packet(source: a.publicKey, packet: ByteBuffer(bytes: [7])))
        #expect(server.server.clientCount == 2)
        await a.close()
        await b.close()
        try await server.close()
    }

    /// Garbage in place of the login, and a stream cut inside a frame: each
    /// closes only that connection, and the log says why.
    @Test func truncatedAndGarbageStreamsCloseOnlyThatConnection() async throws {
        let capture = LogCapture()
        let server = try await startServer { $0.logger = capture.logger }
        let a = makeClient(server)
        try await a.connect()
        // Garbage instead of ClientInfo.
        let peer = try await RawPeer(port: server.port)
        do {
            _ = try await upgrade(peer)
            try await peer.write(ByteBuffer(bytes: [0x99, 0, 0, 0, 1, 0]))
            #expect(await peer.closes(within: .seconds(5)))
        }
        #expect(capture.contains("expected ClientInfo, got frame type 0x99"))
        // Half a frame, then the peer goes away.
        let half = try await RawPeer(port: server.port)
        do {
            try await login(half, key: X25519.PrivateKey())
            try await half.write(ByteBuffer(bytes: [0x04, 0, 0, 0, 100, 1, 2]))
            #expect(await eventually { server.server.clientCount == 2 })
            half.close()
        }
        #expect(await eventually { server.server.clientCount == 1 })
        #expect(await eventually { capture.contains("truncated frame: the stream ended with 7 of the 105 bytes of a frame") })
        #expect(try await a.ping() < .seconds(5))
        await a.close()
        try await server.close()
    }

    @Test func unknownFrameTypesAreSkipped() async throws {
        let server = try await startServer()
        let b = makeClient(server)
        try await b.connect()
        let peer = try await RawPeer(port: server.port)
        let key = X25519.PrivateKey()
        let sender = key.publicKey
        do {
            try await login(peer, key: key)
            var bytes = ByteBuffer(bytes: [0x7e, 0, 0, 0, 4, 1, 2, 3, 4])
            Frame.sendPacket(destination: b.publicKey, packet: ByteBuffer(bytes: [5])).encode(into: &bytes)
            try await peer.write(bytes)
            #expect(await nextEvent(b, where: isPacket) == .packet(source: sender, packet: ByteBuffer(bytes: [5])))
            peer.close()
        }
        #expect(server.server.metrics.snapshot["unknown_frames"] == 1)
        await b.close()
        try await server.close()
    }
}

import CryptoPrimitives
import DERP
import NIOCore
import NIOPosix
import Testing

/// The client's side of "bad frames close only the offending connection
/// with a logged reason": a front that accepts the upgrade and then sends
/// frames no DERP server sends (an oversized one, a malformed ServerKey).
@Suite struct HostileServerTests {
    /// Answers `GET /derp` with 101 and then `bytes`, as a broken or
    /// hostile server would.
    final class BadServer: Sendable {
        let channel: any Channel

        init(sending bytes: [UInt8]) async throws {
            channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(Answer(bytes: bytes))
                    }
                }
                .bind(host: "127.0.0.1", port: 0).get()
        }

        var url: DERPURL { DERPURL(host: "127.0.0.1", port: channel.localAddress!.port!) }

        final class Answer: ChannelInboundHandler, Sendable {
            typealias InboundIn = ByteBuffer
            typealias OutboundOut = ByteBuffer
            let bytes: [UInt8]
            init(bytes: [UInt8]) { self.bytes = bytes }

            func channelRead(context: ChannelHandlerContext, data: NIOAny) {
                let head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: DERP\r\nConnection: Upgrade\r\n\r\n"
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: Array(head.utf8) + bytes)), promise: nil)
            }
        }
    }

    @Test(arguments: [
        ("oversized frame", [0x14, 0x00, 0x20, 0x00, 0x00] as [UInt8], "exceeds the limit"),
        ("garbage", [0xde, 0xad, 0xbe, 0xef, 0x42, 0x13, 0x37], "exceeds the limit"),
        ("ServerKey with a bad magic", [0x01, 0, 0, 0, 40] + [UInt8](repeating: 0x41, count: 40), "bad magic"),
        ("no ServerKey first", [0x06, 0, 0, 0, 0], "expected ServerKey"),
    ])
    func badServerFramesCloseOnlyThatConnection(name: String, bytes: [UInt8], reason: String) async throws {
        let capture = LogCapture()
        let good = try await startServer()
        let a = makeClient(good)
        let b = makeClient(good)
        try await a.connect()
        try await b.connect()
        let bad = try await BadServer(sending: bytes)
        var options = DERPClient.Options()
        options.transport = .upgrade
        options.logger = capture.logger
        options.loginTimeout = .seconds(5)
        let victim = DERPClient(url: bad.url, privateKey: X25519.PrivateKey(), options: options)
        await #expect(throws: DERPError.self, "\(name)") { try await victim.connect() }
        #expect(capture.contains(reason), "\(name): \(capture.records.withLock { $0 })")
        #expect(!victim.isConnected)
        // The other connections of this process are untouched.
        try await a.send(to: b.publicKey, packet: [3])
        #expect(await nextEvent(b, where: isPacket) == .packet(source: a.publicKey, packet: ByteBuffer(bytes: [3])))
        await victim.close()
        await a.close()
        await b.close()
        try await bad.channel.close()
        try await good.close()
    }
}

import CryptoPrimitives
import DERP
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import Testing

/// `.automatic` dials `Upgrade: DERP` first and falls back to WebSocket when
/// the path cannot carry the upgrade: a front that refuses it, or one that
/// speaks HTTP/2 (TLS ALPN settles on `h2`). Each front here is a fixture in
/// front of a real `DERPServer`, standing in for a proxy or CDN.
@Suite struct FallbackTests {
    /// A TLS front that prefers HTTP/2. When ALPN settles on `h2` it speaks
    /// only HTTP/2: its server preface (an empty SETTINGS frame, RFC 9113
    /// §3.4) and GOAWAY with HTTP_1_1_REQUIRED (§7), then it closes. When the
    /// client offers only `http/1.1` it hands the connection to the DERP
    /// server's HTTP/1.1 pipeline.
    final class HTTP2Front: Sendable {
        let channel: any Channel
        let server: DERPServer

        init(server: DERPServer) async throws {
            var tls = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMBytes(Array(testCertificatePEM.utf8)).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(testKeyPEM.utf8), format: .pem)))
            tls.applicationProtocols = ["h2", "http/1.1"]
            let context = try NIOSSLContext(configuration: tls)
            self.server = server
            channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                        try channel.pipeline.syncOperations.addHandler(
                            ApplicationProtocolNegotiationHandler { result, channel in
                                if case .negotiated("h2") = result {
                                    return channel.pipeline.addHandler(HTTP2Refuser())
                                }
                                return server.configureHTTP(on: channel)
                            })
                    }
                }
                .bind(host: "127.0.0.1", port: 0).get()
        }

        var url: DERPURL { DERPURL(host: "127.0.0.1", port: channel.localAddress!.port!, useTLS: true) }

        func close() async throws {
            try await channel.close()
            server.closeAll(reason: "test over")
        }
    }

    final class HTTP2Refuser: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        func handlerAdded(context: ChannelHandlerContext) {
            // SETTINGS (type 4), no parameters; GOAWAY (type 7), last stream
            // 0, error HTTP_1_1_REQUIRED (0xd).
            let bytes: [UInt8] = [0, 0, 0, 4, 0, 0, 0, 0, 0] + [0, 0, 8, 7, 0, 0, 0, 0, 0] + [0, 0, 0, 0, 0, 0, 0, 0x0d]
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.writeAndFlush(NIOAny(ByteBuffer(bytes: bytes))).whenComplete { _ in bound.value.close(promise: nil) }
        }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
    }

    func tlsOptions(_ transport: DERPClient.Transport, alpn: [String]) throws -> DERPClient.Options {
        var options = DERPClient.Options()
        options.tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(testCertificatePEM.utf8)))
        options.tls.applicationProtocols = alpn
        options.transport = transport
        return options
    }

    @Test func http2PathFallsBackToWebSocket() async throws {
        let front = try await HTTP2Front(server: DERPServer(privateKey: X25519.PrivateKey()))
        // The caller's TLS configuration offers h2 (as a shared one might);
        // the front picks it, so the upgrade cannot be spoken there.
        let a = DERPClient(url: front.url, privateKey: X25519.PrivateKey(), options: try tlsOptions(.automatic, alpn: ["h2", "http/1.1"]))
        let b = DERPClient(url: front.url, privateKey: X25519.PrivateKey(), options: try tlsOptions(.upgrade, alpn: ["h2", "http/1.1"]))
        try await a.connect()
        #expect(a.transportInUse == .webSocket)
        // Without the fallback the same path fails.
        do {
            try await b.connect()
            Issue.record("upgrade over an HTTP/2 path succeeded")
        } catch let error as DERPError {
            #expect(error.kind == .upgradeRefused)
            #expect("\(error)".contains("h2"))
        }
        let c = DERPClient(url: front.url, privateKey: X25519.PrivateKey(), options: try tlsOptions(.automatic, alpn: []))
        try await c.connect()
        // Offering http/1.1 only, the upgrade itself goes through.
        #expect(c.transportInUse == .upgrade)
        try await a.send(to: c.publicKey, packet: [4, 2])
        #expect(await nextEvent(c, where: isPacket) == .packet(source: a.publicKey, packet: ByteBuffer(bytes: [4, 2])))
        await a.close()
        await b.close()
        await c.close()
        try await front.close()
    }

    /// A plain-HTTP front that refuses `Upgrade: DERP` (answers 426, as
    /// a proxy that strips the upgrade makes the server do) and passes every
    /// other request to the DERP server.
    final class UpgradeRefusingFront: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let server: DERPServer
        init(server: DERPServer) { self.server = server }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let bytes = unwrapInboundIn(data)
            let head = String(buffer: bytes).lowercased()
            if head.contains("\r\nupgrade: derp\r\n") {
                let answer = "HTTP/1.1 426 Upgrade Required\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: answer))).whenComplete { _ in bound.value.close(promise: nil) }
                return
            }
            _ = server.configureHTTP(on: context.channel)
            context.fireChannelRead(data)
            context.pipeline.syncOperations.removeHandler(self, promise: nil)
        }
    }

    @Test func refusedUpgradeFallsBackToWebSocket() async throws {
        let server = DERPServer(privateKey: X25519.PrivateKey())
        let front = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(UpgradeRefusingFront(server: server))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let frontURL = DERPURL(host: "127.0.0.1", port: front.localAddress!.port!)
        var options = DERPClient.Options()
        options.transport = .automatic
        let a = DERPClient(url: frontURL, privateKey: X25519.PrivateKey(), options: options)
        options.transport = .upgrade
        let b = DERPClient(url: frontURL, privateKey: X25519.PrivateKey(), options: options)
        try await a.connect()
        #expect(a.transportInUse == .webSocket)
        do {
            try await b.connect()
            Issue.record("upgrade through a refusing front succeeded")
        } catch let error as DERPError {
            #expect(error.kind == .upgradeRefused)
            #expect("\(error)".contains("426"))
        }
        #expect(try await a.ping() < .seconds(5))
        await a.close()
        await b.close()
        try await front.close()
        server.closeAll(reason: "test over")
    }
}

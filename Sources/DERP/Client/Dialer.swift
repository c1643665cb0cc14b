import CryptoPrimitives
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOTLS
import NIOWebSocket

/// Opens one DERP connection: TCP, TLS for `https`, then `GET /derp` with
/// `Upgrade: DERP` or, for `.webSocket`, a WebSocket upgrade offering the
/// subprotocol `derp`; then the login. Fails with `.upgradeRefused` when the
/// server (or a proxy) answers anything but `101`, or when TLS ALPN settles
/// on `h2`: HTTP/2 has no `Upgrade` (RFC 9113 §8.6), so the caller falls
/// back to WebSocket, which always offers only `http/1.1`.
struct Dialer {
    let url: DERPURL
    let transport: DERPClient.Transport
    let tls: TLSConfiguration
    let connectTimeout: TimeAmount
    let readTimeout: TimeAmount
    let loginTimeout: TimeAmount
    let logger: Logger

    func dial(
        group: any EventLoopGroup, identity: Identity, info: ClientInfo, expectedServerKey: NodeKey?,
        writabilityChanged: @escaping @Sendable (any Channel) -> Void, onEvent: @escaping @Sendable (DERPEvent) -> Void
    ) async throws -> (channel: any Channel, login: LoginResult) {
        let loop = group.next()
        let loggedIn = loop.makePromise(of: LoginResult.self)
        let sslContext = url.useTLS ? try Self.sslContext(tls, for: transport) : nil
        let url = self.url
        let transport = self.transport
        let readTimeout = self.readTimeout
        let logger = self.logger
        let installDERP: @Sendable (any Channel) -> EventLoopFuture<Void> = { channel in
            channel.eventLoop.makeCompletedFuture {
                let ops = channel.pipeline.syncOperations
                try ops.addHandler(IdleStateHandler(readTimeout: readTimeout))
                if transport == .webSocket { try ops.addHandler(WebSocketByteStream(isClient: true)) }
                try ops.addHandler(
                    ClientConnection(
                        identity: identity, info: info, expectedServerKey: expectedServerKey, loggedIn: loggedIn,
                        logger: logger, onEvent: onEvent))
                try ops.addHandler(WritabilityObserver(onChange: writabilityChanged))
            }
        }
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let ops = channel.pipeline.syncOperations
                    if let sslContext {
                        let sni = url.host.isIPAddress ? nil : url.host
                        try ops.addHandler(NIOSSLClientHandler(context: sslContext, serverHostname: sni))
                        try ops.addHandler(HTTP2Detector(loggedIn: loggedIn))
                    }
                    let refusal = UpgradeRefusalCatcher(loggedIn: loggedIn)
                    let upgrader: any NIOHTTPClientProtocolUpgrader & Sendable =
                        transport == .webSocket
                        ? NIOWebSocketClientUpgrader(maxFrameSize: DERPWire.maxFrameLength + 64, upgradePipelineHandler: { channel, _ in installDERP(channel) })
                        : DERPClientUpgrader(install: installDERP)
                    try ops.addHTTPClientHandlers(
                        leftOverBytesStrategy: .forwardBytes,
                        withClientUpgrade: (upgraders: [upgrader], completionHandler: { context in
                            context.pipeline.syncOperations.removeHandler(refusal, promise: nil)
                        }))
                    try ops.addHandler(refusal)
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: url.host, port: url.port).get()
        } catch {
            loggedIn.fail(error)
            throw error
        }

        var headers: HTTPHeaders = ["Host": url.hostHeader, "Content-Length": "0"]
        if transport == .webSocket { headers.add(name: "Sec-WebSocket-Protocol", value: DERPWire.webSocketSubprotocol) }
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: url.path, headers: headers)
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)

        let timeout = loop.scheduleTask(in: loginTimeout) {
            loggedIn.fail(DERPError(.timeout, "no login from \(url) within \(loginTimeout.nanoseconds / 1_000_000) ms"))
        }
        do {
            let login = try await loggedIn.futureResult.get()
            timeout.cancel()
            return (channel, login)
        } catch {
            timeout.cancel()
            channel.close(promise: nil)
            throw error
        }
    }
}

extension Dialer {
    /// The TLS context for one dial: WebSocket offers only `http/1.1` in
    /// ALPN; the upgrade offers the caller's list, or `http/1.1` when empty.
    /// (Kept out of the async `dial`: the large configuration is copied in
    /// this synchronous frame only.)
    static func sslContext(_ base: TLSConfiguration, for transport: DERPClient.Transport) throws -> NIOSSLContext {
        var tls = base
        if transport == .webSocket || tls.applicationProtocols.isEmpty { tls.applicationProtocols = ["http/1.1"] }
        return try NIOSSLContext(configuration: tls)
    }
}

/// What a finished login yields: the server's key and its ServerInfo.
///
/// A class, so that an async frame only ever holds a reference to it. A
/// `NodeKey` is a 32-byte SIMD vector; Swift 6.3's LLVM lays out async
/// frames that hold such a vector beside reference-counted values (here:
/// the tuple `(any Channel, NodeKey, ServerInfo)` that `dial` returned
/// across its `await`) with the vector's alignment capped at 16 bytes but
/// emits them with its real 32-byte alignment, so the frame overruns the
/// context the task allocator gave it and corrupts the heap in release
/// builds (swiftlang/swift#91639, fixed in the 6.4 toolchain). Keys that
/// must live across an `await` in this module are boxed like this, or held
/// as `KeyWords`.
final class LoginResult: Sendable {
    let serverKey: NodeKey
    let serverInfo: ServerInfo

    init(serverKey: NodeKey, serverInfo: ServerInfo) {
        self.serverKey = serverKey
        self.serverInfo = serverInfo
    }
}

/// A node key as four plain words, for holding one across an `await`
/// without a 32-byte vector in the async frame (see `LoginResult`).
struct KeyWords: Sendable {
    private let words: (UInt64, UInt64, UInt64, UInt64)

    init(_ key: NodeKey) {
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        key.withUnsafeBytes { source in withUnsafeMutableBytes(of: &words) { $0.copyMemory(from: source) } }
        self.words = words
    }

    var key: NodeKey {
        NodeKey(Bytes32(filling: { target in withUnsafeBytes(of: words) { target.copyMemory(from: $0) } }))
    }
}

/// A private key shared by the client object and each connection's login.
final class Identity: Sendable {
    let privateKey: X25519.PrivateKey
    let publicKey: NodeKey
    init(_ key: consuming X25519.PrivateKey) {
        publicKey = key.publicKey
        privateKey = key
    }
}

/// `Upgrade: DERP` from the client side: accept the `101` and install the
/// DERP handlers in place of HTTP.
struct DERPClientUpgrader: NIOHTTPClientProtocolUpgrader, Sendable {
    let supportedProtocol = DERPWire.upgradeToken
    let requiredUpgradeHeaders: [String] = []
    let install: @Sendable (any Channel) -> EventLoopFuture<Void>

    func addCustom(upgradeRequestHeaders: inout HTTPHeaders) {}
    func shouldAllowUpgrade(upgradeResponse: HTTPResponseHead) -> Bool { true }
    func upgrade(context: ChannelHandlerContext, upgradeResponse: HTTPResponseHead) -> EventLoopFuture<Void> {
        install(context.channel)
    }
}

/// Sits after the HTTP client handlers until the upgrade succeeds: any
/// plain HTTP response means the upgrade was refused.
final class UpgradeRefusalCatcher: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = HTTPClientResponsePart
    let loggedIn: EventLoopPromise<LoginResult>

    init(loggedIn: EventLoopPromise<LoginResult>) { self.loggedIn = loggedIn }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data) {
            loggedIn.fail(DERPError(.upgradeRefused, "server answered \(head.status.code) \(head.status.reasonPhrase) instead of 101"))
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        loggedIn.fail(DERPError(.upgradeRefused, "upgrade failed: \(error)"))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        loggedIn.fail(DERPError(.connectionClosed, "connection closed during the upgrade"))
        context.fireChannelInactive()
    }
}

/// Fails the dial when TLS ALPN negotiated `h2`: the path speaks HTTP/2,
/// where neither `Upgrade: DERP` nor an RFC 6455 WebSocket upgrade exists.
final class HTTP2Detector: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let loggedIn: EventLoopPromise<LoginResult>

    init(loggedIn: EventLoopPromise<LoginResult>) { self.loggedIn = loggedIn }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tls = event as? TLSUserEvent, case .handshakeCompleted(let negotiated) = tls {
            if negotiated == "h2" {
                loggedIn.fail(DERPError(.upgradeRefused, "TLS ALPN negotiated h2: an HTTP/2 path cannot carry an HTTP/1.1 upgrade"))
                context.close(promise: nil)
                return
            }
            context.fireUserInboundEventTriggered(event)
            context.pipeline.syncOperations.removeHandler(self, promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}

/// Tells the client when the channel can take more bytes.
final class WritabilityObserver: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    let onChange: @Sendable (any Channel) -> Void
    init(onChange: @escaping @Sendable (any Channel) -> Void) { self.onChange = onChange }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { onChange(context.channel) }
        context.fireChannelWritabilityChanged()
    }
}

extension String {
    var isIPAddress: Bool {
        (try? SocketAddress(ipAddress: self, port: 0)) != nil
    }
}

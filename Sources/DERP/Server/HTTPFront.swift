import CryptoPrimitives
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket

/// The HTTP side of a DERP server, as Tailscale's `derphttp` and `derper`
/// serve it:
///
/// | request | answer |
/// |---|---|
/// | `GET /derp`, `Upgrade: DERP` | `101`, `Derp-Version: 2`, `Derp-Public-Key: <hex>`, then DERP |
/// | `GET /derp`, `Upgrade: websocket`, subprotocol `derp` | `101`, then DERP in binary messages |
/// | `GET /derp` without upgrade | `426 Upgrade Required` |
/// | `GET`/`HEAD /derp/probe`, `/derp/latency-check` | `200`, empty, CORS `*` |
/// | `GET /generate_204` | `204`; `X-Tailscale-Response: response <challenge>` |
/// | `GET /metrics` | the counters, Prometheus text |
extension DERPServer {
    /// Installs the HTTP/1.1 server pipeline with both upgrades on a new
    /// channel (after TLS, if any). Use it to mount DERP on a listener
    /// you own.
    public func configureHTTP(on channel: any Channel) -> EventLoopFuture<Void> {
        channel.eventLoop.makeCompletedFuture {
            try self.configureHTTPSync(on: channel)
        }
    }

    func configureHTTPSync(on channel: any Channel) throws {
        let http = DERPHTTPHandler(server: self)
        let derpUpgrader = DERPUpgrader(server: self)
        let wsUpgrader = NIOWebSocketServerUpgrader(
            maxFrameSize: DERPWire.maxFrameLength + 64,
            automaticErrorHandling: true,
            shouldUpgrade: { channel, head in
                let offered = head.headers["Sec-WebSocket-Protocol"].flatMap { $0.split(separator: ",") }
                    .map { $0.trimmingCharacters(in: " ") }
                guard head.uri.pathOnly == DERPWire.path, offered.contains(DERPWire.webSocketSubprotocol) else {
                    return channel.eventLoop.makeSucceededFuture(nil)
                }
                return channel.eventLoop.makeSucceededFuture(["Sec-WebSocket-Protocol": DERPWire.webSocketSubprotocol])
            },
            upgradePipelineHandler: { channel, _ in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(WebSocketByteStream(isClient: false))
                    try channel.pipeline.syncOperations.addHandler(ServerConnection(server: self, remoteAddress: channel.remoteAddress))
                }
            })
        try channel.pipeline.syncOperations.configureHTTPServerPipeline(
            withServerUpgrade: (
                upgraders: [derpUpgrader, wsUpgrader],
                completionHandler: { context in
                    context.pipeline.removeHandler(name: DERPHTTPHandler.name, promise: nil)
                }
            ))
        try channel.pipeline.syncOperations.addHandler(http, name: DERPHTTPHandler.name)
    }

    /// For an embedder that did the HTTP upgrade itself: speaks DERP on
    /// `channel`, whose pipeline now carries the raw byte stream.
    public func serveStream(on channel: any Channel) -> EventLoopFuture<Void> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(ServerConnection(server: self, remoteAddress: channel.remoteAddress))
        }
    }

    /// The `101` headers Tailscale's server sends with `Upgrade: DERP`.
    var upgradeResponseHeaders: HTTPHeaders {
        ["Derp-Version": "\(DERPWire.protocolVersion)", "Derp-Public-Key": publicKey.raw.hex]
    }
}

/// A listening DERP server: TCP, optionally TLS, HTTP front, relay.
public final class DERPHTTPServer: Sendable {
    public let server: DERPServer
    public let channel: any Channel

    private init(server: DERPServer, channel: any Channel) {
        self.server = server
        self.channel = channel
    }

    /// The bound address (useful with port 0).
    public var localAddress: SocketAddress? { channel.localAddress }
    public var port: Int { channel.localAddress?.port ?? 0 }

    /// Binds `host:port` and serves until `close()`. With `tls`, every
    /// connection is TLS first (ALPN `http/1.1`).
    public static func bind(
        _ server: DERPServer, host: String, port: Int, tls: NIOSSLContext? = nil,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> DERPHTTPServer {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
                    }
                    try server.configureHTTPSync(on: channel)
                }
            }
            .bind(host: host, port: port).get()
        server.startMesh(group: group)
        return DERPHTTPServer(server: server, channel: channel)
    }

    /// Stops listening, leaves the mesh and closes every client, telling
    /// each in a Restarting frame when to come back (see
    /// `Configuration.restarting`).
    public func close() async throws {
        server.stopMesh()
        try await channel.close()
        server.closeAllRestarting(reason: "server shutting down")
    }
}

/// `Upgrade: DERP` on `/derp` (NIO lower-cases the token when matching).
final class DERPUpgrader: HTTPServerProtocolUpgrader, Sendable {
    let supportedProtocol = DERPWire.upgradeToken
    let requiredUpgradeHeaders: [String] = []
    let server: DERPServer

    init(server: DERPServer) { self.server = server }

    func buildUpgradeResponse(channel: any Channel, upgradeRequest: HTTPRequestHead, initialResponseHeaders: HTTPHeaders) -> EventLoopFuture<HTTPHeaders> {
        guard upgradeRequest.uri.pathOnly == DERPWire.path else {
            return channel.eventLoop.makeFailedFuture(DERPError(.upgradeRefused, "DERP upgrade on \(upgradeRequest.uri)"))
        }
        var headers = initialResponseHeaders
        headers.add(contentsOf: server.upgradeResponseHeaders)
        return channel.eventLoop.makeSucceededFuture(headers)
    }

    func upgrade(context: ChannelHandlerContext, upgradeRequest: HTTPRequestHead) -> EventLoopFuture<Void> {
        let channel = context.channel
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(ServerConnection(server: self.server, remoteAddress: channel.remoteAddress))
        }
    }
}

/// Answers the plain HTTP requests (everything that is not an upgrade).
final class DERPHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    static let name = "derp-http"
    private let server: DERPServer
    private var head: HTTPRequestHead?

    init(server: DERPServer) { self.server = server }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end:
            guard let head else { return }
            self.head = nil
            respond(to: head, context: context)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A refused upgrade (wrong path, no `derp` subprotocol) arrives here
        // just before the request itself, which then gets its answer; parse
        // errors were already answered with 400 by NIO's error handler.
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        var status = HTTPResponseStatus.notFound
        var body = ""
        switch String(head.uri.pathOnly) {
        case DERPWire.path:
            status = .upgradeRequired
            body = "DERP requires connection upgrade"
            headers.add(name: "Content-Type", value: "text/plain")
        case "/derp/probe", "/derp/latency-check":
            if head.method == .GET || head.method == .HEAD {
                status = .ok
                headers.add(name: "Access-Control-Allow-Origin", value: "*")
            } else {
                status = .methodNotAllowed
                body = "bogus probe method"
            }
        case "/generate_204":
            status = .noContent
            if let challenge = head.headers.first(name: "X-Tailscale-Challenge"), challenge.count <= 64,
                challenge.unicodeScalars.allSatisfy(isChallengeCharacter)
            {
                headers.add(name: "X-Tailscale-Response", value: "response " + challenge)
            }
        case "/metrics" where server.configuration.servesMetrics:
            status = .ok
            body = server.metrics.prometheusText()
            headers.add(name: "Content-Type", value: "text/plain; version=0.0.4")
        case "/":
            status = .ok
            body = "DERP server \(server.publicKey.raw.hex)\n"
            headers.add(name: "Content-Type", value: "text/plain")
        default:
            body = "not found"
        }
        if status != .noContent { headers.add(name: "Content-Length", value: "\(body.utf8.count)") }
        let keepAlive = head.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        if !body.isEmpty && head.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
        }
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            written.whenComplete { _ in bound.value.close(promise: nil) }
        }
    }
}

/// Tailscale's `isChallengeChar`: letters, digits, `.`, `-`, `_`, `:`.
private func isChallengeCharacter(_ c: Unicode.Scalar) -> Bool {
    switch c {
    case "a"..."z", "A"..."Z", "0"..."9", ".", "-", "_", ":": true
    default: false
    }
}

extension String {
    var pathOnly: Substring { self[..<(firstIndex(where: { $0 == "?" || $0 == "#" }) ?? endIndex)] }

    fileprivate func trimmingCharacters(in set: Character) -> String {
        String(drop(while: { $0 == set }).reversed().drop(while: { $0 == set }).reversed())
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: Character) -> String {
        String(self).trimmingCharacters(in: set)
    }
}

import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOHTTP1

/// Authenticates WebSocket upgrades before the upgrade is considered.
///
/// hummingbird-websocket answers every refused upgrade with a bare
/// `400 Bad Request`, whatever the reason. Tokens are checked here instead,
/// between the HTTP decoder and NIO's upgrade handler: a request for a
/// guarded path whose bearer token does not authenticate loses its
/// `Upgrade` header, so it reaches the router as a plain `GET`, whose route
/// answers `401` with no body and the connection closes. A request that
/// authenticates passes unchanged and is upgraded as before.
///
/// Only the first request of a connection can be upgraded (RFC 6455 §4.1
/// opens the handshake on a fresh connection; NIO's upgrader looks at the
/// first request only), so the gate decides once and leaves the pipeline.
struct AuthenticatedUpgradeChannel: ServerChildChannel {
    typealias Value = HTTP1WebSocketUpgradeChannel.Value

    let inner: HTTP1WebSocketUpgradeChannel
    /// Paths (without query) whose upgrades need a bearer token.
    let guardedPaths: Set<String>
    /// Whether a bearer token (nil when missing) may open `path`.
    let authenticate: @Sendable (_ path: String, _ token: String?) async -> Bool

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        inner.setup(channel: channel, logger: logger).flatMapThrowing { value in
            let pipeline = channel.pipeline.syncOperations
            let decoder = try pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try pipeline.addHandler(
                UpgradeGate(guardedPaths: guardedPaths, authenticate: authenticate),
                position: .after(decoder))
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}

extension HTTPServerBuilder {
    /// HTTP/1.1 with WebSocket upgrades whose tokens are checked first
    /// (see `AuthenticatedUpgradeChannel`).
    static func http1AuthenticatedWebSocketUpgrade<Router: HTTPResponderBuilder & _HB_SendableMetatype>(
        webSocketRouter: Router,
        configuration: HTTP1WebSocketUpgradeChannel.Configuration,
        guardedPaths: Set<String>,
        authenticate: @escaping @Sendable (_ path: String, _ token: String?) async -> Bool
    ) -> HTTPServerBuilder where Router.Responder.Context: WebSocketRequestContext {
        let webSocketResponder = webSocketRouter.buildResponder()
        return .init { responder in
            AuthenticatedUpgradeChannel(
                inner: HTTP1WebSocketUpgradeChannel(
                    responder: responder, webSocketResponder: webSocketResponder, configuration: configuration),
                guardedPaths: guardedPaths,
                authenticate: authenticate)
        }
    }
}

/// The channel handler of `AuthenticatedUpgradeChannel`: holds the first
/// request's parts while its token is checked, then forwards them (the head
/// without `Upgrade` when refused) and removes itself.
final class UpgradeGate: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart

    private enum State {
        case firstRequest
        case checking(held: [HTTPServerRequestPart])
        case passing
    }

    private var state = State.firstRequest
    private let guardedPaths: Set<String>
    private let authenticate: @Sendable (String, String?) async -> Bool

    init(guardedPaths: Set<String>, authenticate: @escaping @Sendable (String, String?) async -> Bool) {
        self.guardedPaths = guardedPaths
        self.authenticate = authenticate
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch state {
        case .passing:
            context.fireChannelRead(data)
        case .checking(var held):
            held.append(unwrapInboundIn(data))
            state = .checking(held: held)
        case .firstRequest:
            guard case .head(let head) = unwrapInboundIn(data), Self.asksToUpgrade(head) else {
                return pass(context: context, data)
            }
            let path = String(head.uri.prefix { $0 != "?" })
            guard guardedPaths.contains(path) else { return pass(context: context, data) }
            state = .checking(held: [])
            let token = bearerToken(head.headers["authorization"].first)
            let authenticate = self.authenticate
            context.eventLoop.makeFutureWithTask { await authenticate(path, token) }
                .assumeIsolated()
                .whenComplete { result in
                    let admitted = (try? result.get()) ?? false
                    self.release(context: context, head: admitted ? head : Self.refused(head))
                }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // Held parts are forwarded (and read-complete fired) on release.
        if case .checking = state { return }
        context.fireChannelReadComplete()
    }

    private func pass(context: ChannelHandlerContext, _ data: NIOAny) {
        state = .passing
        context.fireChannelRead(data)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    private func release(context: ChannelHandlerContext, head: HTTPRequestHead) {
        guard case .checking(let held) = state else { return }
        state = .passing
        context.fireChannelRead(wrapInboundOut(.head(head)))
        for part in held { context.fireChannelRead(wrapInboundOut(part)) }
        context.fireChannelReadComplete()
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    /// RFC 6455 §4.2.1: `Upgrade: websocket` asks for the handshake.
    static func asksToUpgrade(_ head: HTTPRequestHead) -> Bool {
        head.headers["upgrade"].contains { $0.lowercased().contains("websocket") }
    }

    /// The head the router sees for a refused upgrade: a plain request on
    /// a connection that closes after the answer.
    static func refused(_ head: HTTPRequestHead) -> HTTPRequestHead {
        var head = head
        head.headers.remove(name: "upgrade")
        head.headers.replaceOrAdd(name: "connection", value: "close")
        return head
    }
}

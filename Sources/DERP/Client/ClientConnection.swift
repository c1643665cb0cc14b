import CryptoPrimitives
import Logging
import NIOCore

/// What a DERP client hears from its server.
public enum DERPEvent: Sendable, Equatable {
    case packet(source: NodeKey, packet: ByteBuffer)
    case peerGone(NodeKey, reason: PeerGoneReason)
    case peerPresent(PeerPresent)
    case health(String)
    case restarting(reconnectInMilliseconds: UInt32, tryForMilliseconds: UInt32)
    case pong(PingData)
    /// Logged in (again) to the server with this key.
    case connected(serverKey: NodeKey)
    /// The connection ended; a reconnecting client will dial again.
    case disconnected(reason: String)
}

/// The client's side of one DERP byte stream: login, then frames to
/// events. Answers Ping with Pong itself (it declares `CanAckPings`).
/// Lives on the channel's event loop.
final class ClientConnection: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State {
        case awaitingServerKey
        case awaitingServerInfo(NodeKey)
        case ready(NodeKey)
        case closed
    }

    private let identity: Identity
    private let info: ClientInfo
    private let expectedServerKey: NodeKey?
    private let loggedIn: EventLoopPromise<LoginResult>
    private let onEvent: @Sendable (DERPEvent) -> Void
    private var state = State.awaitingServerKey
    private var stream = FrameStream()
    private let logger: Logger
    private(set) var closeReason: String?

    init(
        identity: Identity, info: ClientInfo, expectedServerKey: NodeKey?,
        loggedIn: EventLoopPromise<LoginResult>, logger: Logger, onEvent: @escaping @Sendable (DERPEvent) -> Void
    ) {
        self.identity = identity
        self.info = info
        self.expectedServerKey = expectedServerKey
        self.loggedIn = loggedIn
        self.logger = logger
        self.onEvent = onEvent
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if case .closed = state { return }
        stream.append(&bytes)
        while true {
            let frame: Frame?
            do {
                frame = try stream.next()
            } catch {
                fail(context: context, DERPError(.malformedFrame, "from server: \(error)"))
                return
            }
            guard let frame else { return }
            handle(frame, context: context)
            if case .closed = state { return }
        }
    }

    private func handle(_ frame: Frame, context: ChannelHandlerContext) {
        switch state {
        case .awaitingServerKey:
            guard case .serverKey(let serverKey) = frame else {
                return fail(context: context, DERPError(.loginFailed, "expected ServerKey, got frame type 0x\(DERPError.hex(frame.type))"))
            }
            if let expectedServerKey, expectedServerKey != serverKey {
                return fail(context: context, DERPError(.loginFailed, "server key \(serverKey) is not the expected \(expectedServerKey)"))
            }
            do {
                let sealed = try Login.sealClientInfo(info, clientKey: identity.privateKey, serverKey: serverKey)
                context.writeAndFlush(wrapOutboundOut(Frame.clientInfo(sealed).encoded(allocator: context.channel.allocator)), promise: nil)
            } catch {
                return fail(context: context, DERPError(.loginFailed, "cannot seal ClientInfo: \(error)"))
            }
            state = .awaitingServerInfo(serverKey)
        case .awaitingServerInfo(let serverKey):
            guard case .serverInfo(let sealed) = frame else {
                return fail(context: context, DERPError(.loginFailed, "expected ServerInfo, got frame type 0x\(DERPError.hex(frame.type))"))
            }
            do {
                let serverInfo = try Login.openServerInfo(sealed, clientKey: identity.privateKey, serverKey: serverKey)
                state = .ready(serverKey)
                loggedIn.succeed(LoginResult(serverKey: serverKey, serverInfo: serverInfo))
            } catch {
                return fail(context: context, error as? DERPError ?? DERPError(.loginFailed, "\(error)"))
            }
        case .ready:
            handleReady(frame, context: context)
        case .closed:
            break
        }
    }

    private func handleReady(_ frame: Frame, context: ChannelHandlerContext) {
        switch frame {
        case .recvPacket(let source, let packet): onEvent(.packet(source: source, packet: packet))
        case .ping(let data):
            context.writeAndFlush(wrapOutboundOut(Frame.pong(data).encoded(allocator: context.channel.allocator)), promise: nil)
        case .pong(let data): onEvent(.pong(data))
        case .peerGone(let key, let reason): onEvent(.peerGone(key, reason: reason))
        case .peerPresent(let present): onEvent(.peerPresent(present))
        case .health(let text): onEvent(.health(text))
        case .restarting(let a, let b): onEvent(.restarting(reconnectInMilliseconds: a, tryForMilliseconds: b))
        case .keepAlive: break
        default:
            logger.debug("skipping frame", metadata: ["type": "0x\(DERPError.hex(frame.type))"])
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            // The server sends KeepAlive every 60 s; two missed ones mean
            // the path is dead even if TCP has not noticed.
            fail(context: context, DERPError(.timeout, "nothing read from the server for 120 s"))
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(context: context, DERPError(.connectionClosed, "connection closed by server"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(context: context, DERPError(.connectionClosed, "transport error: \(error)"))
    }

    /// Closes this connection only, logging why: a hostile or broken
    /// server's frame is news (info); the server closing is not (debug).
    private func fail(context: ChannelHandlerContext, _ error: DERPError) {
        if case .closed = state { return }
        state = .closed
        closeReason = error.description
        logger.log(
            level: error.kind == .connectionClosed ? .debug : .info, "closing DERP connection",
            metadata: ["reason": "\(error)", "peer": "\(context.channel.remoteAddress.map { "\($0)" } ?? "?")"])
        stream.reset()
        loggedIn.fail(error)
        context.close(promise: nil)
    }
}

import Agent
import CryptoPrimitives
import FoundationEssentials
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOWebSocket
import Netstack

/// RFC 6455 frames as `Agent` reads and writes them (NIOWebSocket has a
/// type of the same name).
private typealias Frame = Agent.WebSocketFrame

/// A WebSocket through the app proxy (code-server, Jupyter and most dev
/// servers' live reload need one):
///
/// ```
/// browser ──WebSocket──▶ control plane ──WebSocket over the tailnet──▶ app
///          (Hummingbird)               (this relay is the client: RFC 6455 §4.1)
/// ```
///
/// The proxy first makes its own handshake with the app, passing the
/// browser's end-to-end fields (`Sec-WebSocket-Protocol`, `Origin`,
/// cookies but the control plane's) but with a key of its own and no
/// extensions. Only if the app answers 101 is the browser's upgrade
/// accepted, with the subprotocol the app chose. Then whole messages go
/// both ways: the browser's as masked frames to the app (§5.3), the app's
/// as frames to the browser. Pings from the app are answered here; a close
/// from either side closes the other with its code.
///
/// The app's `Sec-WebSocket-Accept` is not checked: the answer to check it
/// against needs SHA-1, which nothing else here uses, and the app is the
/// user's own, reached through the user's own tunnel.
struct AppWebSocketRelay: Sendable {
    let proxy: AppProxy
    /// The largest message relayed in either direction: the server's
    /// WebSocket frame limit (`ControlPlaneServer`), as a browser sends a
    /// message as one frame.
    static let maxMessageBytes = 4 * ControlLimits.maxMessageBytes

    static func isUpgrade(_ request: Request) -> Bool {
        guard request.method == .get, let upgrade = request.headers[.upgrade], request.headers[.secWebSocketKey] != nil
        else { return false }
        return upgrade.lowercased().split(separator: ",").contains {
            $0.trimmingCharacters(in: .whitespaces) == "websocket"
        }
    }

    /// Answers a browser's upgrade. Refusals are made after the upgrade, as
    /// a close frame with the reason (1008 for the user's access, 1014 for
    /// the app): the WebSocket layer turns a refused upgrade into a
    /// redirect to the same URL, which a client would follow in a loop.
    func respond(_ request: Request, _ context: BasicWebSocketRequestContext) async -> Response {
        let route: AppProxy.Route
        let app: (stream: TCPStream, head: HTTP1ResponseHead, leftover: [UInt8])
        do {
            route = try await proxy.resolve(request, context)
            app = try await handshake(request, route)
        } catch {
            let (code, reason) = Self.refusal(error)
            proxy.api.logger.info("app proxy: WebSocket refused: \(reason)")
            return await accept(request, context, headers: [:]) { _, outbound, _ in
                try? await outbound.close(code, reason: reason)
            }
        }
        var headers = HTTPFields()
        if let chosen = app.head.field("sec-websocket-protocol") { headers[.secWebSocketProtocol] = chosen }
        let logger = proxy.api.logger
        return await accept(request, context, headers: headers) { inbound, outbound, _ in
            await relay(
                inbound: inbound, outbound: outbound, app: app.stream, leftover: app.leftover, prefix: route.prefix,
                logger: logger)
        }
    }

    private func accept(
        _ request: Request, _ context: BasicWebSocketRequestContext, headers: HTTPFields,
        _ handler: @escaping WebSocketDataHandler<WebSocketRouterContext<BasicWebSocketRequestContext>>
    ) async -> Response {
        let upgrade = WebSocketUpgradeMiddleware<BasicWebSocketRequestContext>(
            shouldUpgrade: { _, _ in .upgrade(headers) }, onUpgrade: handler)
        return (try? await upgrade.handle(request, context: context) { _, _ in Response(status: .notFound) })
            ?? Response(status: .internalServerError)
    }

    /// The close code and reason for a refused upgrade.
    static func refusal(_ error: any Error) -> (WebSocketErrorCode, String) {
        let text: String
        let code: WebSocketErrorCode
        if let http = error as? HTTPError {
            text = "\(http.status.code) \(http.body ?? http.status.reasonPhrase)"
            code = http.status == .badGateway ? WebSocketErrorCode(codeNumber: 1014) : .policyViolation
        } else {
            text = "502 \(error)"
            code = WebSocketErrorCode(codeNumber: 1014)
        }
        // A close frame's reason fits in 123 bytes (RFC 6455 §5.5).
        var reason = text
        while reason.utf8.count > 123 { reason.removeLast() }
        return (code, reason)
    }

    /// Dials the app and makes the proxy's own handshake with it; throws
    /// `HTTPError(.badGateway)` with what went wrong.
    func handshake(_ request: Request, _ route: AppProxy.Route) async throws -> (
        stream: TCPStream, head: HTTP1ResponseHead, leftover: [UInt8]
    ) {
        let stream = try await proxy.dial(route)
        let key = Data(SecureRandom.bytes(16)).base64EncodedString()
        let (head, leftover): (HTTP1ResponseHead, [UInt8])
        do {
            // An app that takes the connection and never answers is cut off.
            let timer = Task {
                guard (try? await Task.sleep(for: .seconds(10))) != nil else { return }
                stream.abort()
            }
            defer { timer.cancel() }
            try await stream.write(
                proxy.requestHead(
                    request, upstream: route.upstream, prefix: route.prefix, rest: route.rest, bodyBytes: 0,
                    webSocketKey: key))
            (head, leftover) = try await AppProxy.readResponseHead(stream, skippingInterim: false)
        } catch {
            stream.abort()
            throw HTTPError(.badGateway, message: "app \(route.slug) did not answer the WebSocket handshake: \(error)")
        }
        guard head.status == 101, head.field("upgrade")?.lowercased() == "websocket" else {
            stream.abort()
            throw HTTPError(.badGateway, message: "app \(route.slug) refused the WebSocket: HTTP \(head.status)")
        }
        return (stream, head, leftover)
    }

    /// Relays until either side closes; then closes the other.
    func relay(
        inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, app stream: TCPStream, leftover: [UInt8],
        prefix: String, logger: Logger
    ) async {
        let app = AppSide(stream)
        await withTaskGroup(of: Void.self) { group in
            // app → browser
            group.addTask {
                var reader = WebSocketReader(maxMessageBytes: Self.maxMessageBytes, expectMasked: false)
                reader.append(leftover)
                do {
                    while true {
                        while let frame = try reader.next() {
                            switch frame.opcode {
                            case .text: try await outbound.write(.text(String(decoding: frame.payload, as: UTF8.self)))
                            case .binary: try await outbound.write(.binary(ByteBuffer(bytes: frame.payload)))
                            case .ping: try await app.send(Frame(opcode: .pong, payload: frame.payload))
                            case .pong, .continuation: break
                            case .close:
                                let (code, reason) = Frame.parseClose(frame.payload)
                                try? await app.send(Frame(opcode: .close, payload: frame.payload))
                                try await outbound.close(Self.browserCloseCode(code), reason: reason)
                                return
                            }
                        }
                        let chunk = try await stream.read()
                        if chunk.isEmpty {
                            try await outbound.close(.goingAway, reason: "app closed the connection")
                            return
                        }
                        reader.append(chunk)
                    }
                } catch let error as WebSocketProtocolError {
                    logger.info("app proxy \(prefix): WebSocket from the app: \(error)")
                    let payload = Frame.closePayload(code: error.closeCode, reason: error.description)
                    try? await app.send(Frame(opcode: .close, payload: payload))
                    try? await outbound.close(.unexpectedServerError, reason: "app broke the WebSocket protocol")
                } catch {
                    try? await outbound.close(.goingAway, reason: "app connection failed")
                }
            }
            // browser → app: each message is written before the next is
            // read, so a browser that sends faster than the app reads waits.
            group.addTask {
                do {
                    for try await message in inbound.messages(maxSize: Self.maxMessageBytes) {
                        switch message {
                        case .text(let text): try await app.send(Frame(opcode: .text, payload: Array(text.utf8)))
                        case .binary(let buffer):
                            try await app.send(Frame(opcode: .binary, payload: Array(buffer: buffer)))
                        }
                    }
                } catch {
                    logger.info("app proxy \(prefix): WebSocket from the browser: \(error)")
                }
                try? await app.send(Frame(opcode: .close, payload: Frame.closePayload(code: 1000, reason: "")))
            }
            // Whichever direction ends first has sent its close on; the
            // other ends when its side answers, or after 5 s (an abort
            // wakes a read or write of the app's stream).
            _ = await group.next()
            group.addTask {
                guard (try? await Task.sleep(for: .seconds(5))) != nil else { return }
                stream.abort()
            }
            _ = await group.next()
            group.cancelAll()
        }
        stream.close()
    }

    /// The app's close code as the browser may receive it: codes an
    /// endpoint must not send (1005, 1006, 1015, §7.4.1) become 1000.
    static func browserCloseCode(_ code: UInt16) -> WebSocketErrorCode {
        switch code {
        case 1005, 1006, 1015: .normalClosure
        default: WebSocketErrorCode(codeNumber: Int(code))
        }
    }
}

/// The app's end of a relay: one write at a time, so frames from both
/// directions (the browser's messages, answers to the app's pings) never
/// interleave and each writer waits for the app to take its bytes; at most
/// one close frame, and nothing after it (RFC 6455 §5.5.1).
private actor AppSide {
    let stream: TCPStream
    private var writing = false
    private var waiting: [CheckedContinuation<Void, Never>] = []
    private var closeSent = false

    init(_ stream: TCPStream) { self.stream = stream }

    func send(_ frame: Frame) async throws {
        guard !closeSent else { return }
        if frame.opcode == .close { closeSent = true }
        while writing { await withCheckedContinuation { waiting.append($0) } }
        writing = true
        defer {
            writing = false
            if !waiting.isEmpty { waiting.removeFirst().resume() }
        }
        try await stream.write(frame.encoded(maskKey: SecureRandom.bytes(4)))
    }
}

import DERP
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOTLS

/// Measures the latency to a DERP server over HTTP(S), the way Tailscale's
/// netcheck does when it cannot (or also wants to) use STUN: connect, finish
/// TLS, then time one request.
///
///     client                               DERP server
///       │ TCP connect, TLS handshake          │   (not timed)
///       │ GET /derp/latency-check HTTP/1.1 ──▶│ ┐
///       │◀── HTTP/1.1 200 OK (empty body) ────│ ┘ timed: request written →
///       │ close                               │   response head read
///
/// Only the request/response exchange is timed, so the figure is one round
/// trip plus the server's (trivial) handling, comparable with a STUN round
/// trip, and not inflated by the handshakes' extra round trips.
package enum HTTPSLatencyProbe {
    /// The path every DERP server answers with an empty `200`.
    package static let path = "/derp/latency-check"

    package struct ProbeError: Error, CustomStringConvertible {
        package var description: String
    }

    /// One probe to `url`'s server (its host, port and scheme; the path is
    /// always `/derp/latency-check`).
    package static func measure(
        _ url: DERPURL, tls: TLSConfiguration = .makeClientConfiguration(),
        timeout: Duration = PathConstants.httpsProbeTimeout,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> Duration {
        let loop = group.next()
        let result = loop.makePromise(of: Duration.self)
        let sslContext = url.useTLS ? try NIOSSLContext(configuration: tls) : nil
        let host = url.host.contains(":") ? "[\(url.host)]" : url.host
        let hostHeader = url.port == (url.useTLS ? 443 : 80) ? host : "\(host):\(url.port)"
        let timeAmount = TimeAmount.nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000
            + Int64(timeout.components.attoseconds / 1_000_000_000))
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(timeAmount)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let ops = channel.pipeline.syncOperations
                    if let sslContext {
                        let sni = url.host.isIPAddressLiteral ? nil : url.host
                        try ops.addHandler(NIOSSLClientHandler(context: sslContext, serverHostname: sni))
                    }
                    try ops.addHTTPClientHandlers()
                    try ops.addHandler(
                        LatencyCheckHandler(hostHeader: hostHeader, waitsForTLS: sslContext != nil, result: result))
                }
            }
        let timer = loop.scheduleTask(in: timeAmount) {
            result.fail(ProbeError(description: "no answer from \(url) within \(timeout)"))
        }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: url.host, port: url.port).get()
        } catch {
            timer.cancel()
            result.fail(error)
            throw error
        }
        defer {
            timer.cancel()
            channel.close(promise: nil)
        }
        return try await result.futureResult.get()
    }
}

/// Sends the request once the connection is usable (after TLS) and
/// completes `result` with the time to the response head.
private final class LatencyCheckHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let hostHeader: String
    private let waitsForTLS: Bool
    private let result: EventLoopPromise<Duration>
    private var sentAt: NIODeadline?

    init(hostHeader: String, waitsForTLS: Bool, result: EventLoopPromise<Duration>) {
        self.hostHeader = hostHeader
        self.waitsForTLS = waitsForTLS
        self.result = result
    }

    func channelActive(context: ChannelHandlerContext) {
        if !waitsForTLS { sendRequest(context: context) }
        context.fireChannelActive()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive && !waitsForTLS { sendRequest(context: context) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if waitsForTLS, case .handshakeCompleted = event as? TLSUserEvent { sendRequest(context: context) }
        context.fireUserInboundEventTriggered(event)
    }

    private func sendRequest(context: ChannelHandlerContext) {
        guard sentAt == nil else { return }
        let head = HTTPRequestHead(
            version: .http1_1, method: .GET, uri: HTTPSLatencyProbe.path,
            headers: ["Host": hostHeader, "Connection": "close", "Content-Length": "0"])
        sentAt = .now()
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data), let sentAt else { return }
        let elapsed = NIODeadline.now() - sentAt
        if head.status == .ok {
            result.succeed(.nanoseconds(elapsed.nanoseconds))
        } else {
            result.fail(HTTPSLatencyProbe.ProbeError(description: "latency check answered \(head.status.code)"))
        }
        context.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        result.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        result.fail(HTTPSLatencyProbe.ProbeError(description: "connection closed before the answer"))
        context.fireChannelInactive()
    }
}

extension String {
    /// An IPv4 or IPv6 literal (no SNI for those, RFC 6066 §3).
    fileprivate var isIPAddressLiteral: Bool {
        contains(":") || (split(separator: ".").count == 4 && allSatisfy { $0.isNumber || $0 == "." })
    }
}

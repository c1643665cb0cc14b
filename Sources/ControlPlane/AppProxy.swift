import Agent
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import Netstack

/// The app proxy: `/apps/WORKSPACE/AGENT/SLUG/…` reaches the app of that
/// slug in the workspace through the tailnet (`AppTunnel`), for the
/// workspace's owner only (token or dashboard session). The request goes
/// to the app URL's port on the workspace's loopback, below the app URL's
/// path, over HTTP/1.1 with `Connection: close`; the user's control-plane
/// credentials never cross (`AppProxyRules`). The response streams back as
/// it arrives. Request bodies are limited to `maxRequestBody`. A WebSocket
/// upgrade (RFC 6455 §4) is answered by a handshake of the proxy's own with
/// the app, and then messages are relayed both ways (`AppWebSocketRelay`).
struct AppProxy: Sendable {
    let api: API
    let tunnel: AppTunnel
    static let maxRequestBody = 16 << 20

    func register(_ router: Router<BasicWebSocketRequestContext>) {
        let methods: [HTTPRequest.Method] = [.get, .head, .post, .put, .patch, .delete, .options]
        for method in methods {
            for path in ["/apps/:workspace/:agent/:slug", "/apps/:workspace/:agent/:slug/**"] {
                router.on(RouterPath(stringLiteral: path), method: method) { request, context in
                    try await handle(request, context)
                }
            }
        }
    }

    /// Where a request under `/apps/…` goes, once the user may go there.
    struct Route: Sendable {
        let prefix: String
        let slug: String
        let agentID: String
        let upstream: AppProxyRules.Target
        /// The path below the prefix, without its leading `/`.
        let rest: String
    }

    func handle(_ request: Request, _ context: BasicWebSocketRequestContext) async throws -> Response {
        if AppWebSocketRelay.isUpgrade(request) {
            return await AppWebSocketRelay(proxy: self).respond(request, context)
        }
        let route = try await resolve(request, context)
        let (prefix, slug, upstream, rest) = (route.prefix, route.slug, route.upstream, route.rest)
        // `/apps/w/a/s` → `/apps/w/a/s/`, so the app's relative links resolve under its prefix.
        if request.uri.path == prefix {
            let query = request.uri.query.map { "?" + $0 } ?? ""
            return Response(status: .permanentRedirect, headers: [.location: prefix + "/" + query])
        }
        let body = try await request.body.collect(upTo: Self.maxRequestBody)
        let stream = try await dial(route)
        do {
            try await stream.write(
                requestHead(request, upstream: upstream, prefix: prefix, rest: rest, bodyBytes: body.readableBytes))
            if body.readableBytes > 0 { try await stream.write(Array(buffer: body)) }
            return try await response(from: stream, requestWasHead: request.method == .head)
        } catch {
            stream.abort()
            api.logger.warning("app proxy \(prefix): \(error)")
            throw HTTPError(.badGateway, message: "app \(slug) did not answer with HTTP/1.x: \(error)")
        }
    }

    /// The user, the workspace, the agent and its app, each checked in
    /// turn; throws the HTTP error that the first failing check deserves.
    func resolve(_ request: Request, _ context: BasicWebSocketRequestContext) async throws -> Route {
        let user = try await api.requireUser(request)
        let workspace = try context.parameters.require("workspace")
        let agentName = try context.parameters.require("agent")
        let slug = try context.parameters.require("slug")
        let prefix = "/apps/\(workspace)/\(agentName)/\(slug)"
        let path = request.uri.path
        guard path == prefix || path.hasPrefix(prefix + "/") else { throw HTTPError(.notFound) }
        let rest = String(path.dropFirst(min(path.count, prefix.count + 1)))

        guard case .found(let target) = try await api.store.findAgent(workspace: workspace, agent: agentName),
            target.ownerID == user.id
        else { throw HTTPError(.notFound, message: "no agent \(agentName) in a workspace \(workspace) of yours") }
        guard let view = await api.hub.views.first(where: { $0.id == target.agentID }) else { throw HTTPError(.notFound) }
        guard let app = view.apps.first(where: { $0.slug == slug }) else {
            throw HTTPError(.notFound, message: "agent \(agentName) has no app \(slug); its apps: \(view.apps.map(\.slug).joined(separator: ", "))")
        }
        let upstream: AppProxyRules.Target
        do { upstream = try AppProxyRules.target(appURL: app.url) } catch { throw HTTPError(.badGateway, message: error.description) }
        guard view.connected else { throw HTTPError(.badGateway, message: "agent \(workspace).\(agentName) is not connected") }
        return Route(prefix: prefix, slug: slug, agentID: target.agentID, upstream: upstream, rest: rest)
    }

    /// A connection to the app's port through the tailnet; throws
    /// `HTTPError(.badGateway)` saying why there is none.
    func dial(_ route: Route) async throws -> TCPStream {
        do {
            let (node, address) = try await tunnel.reach(agentID: route.agentID)
            return try await node.dial(address, port: route.upstream.port)
        } catch {
            api.logger.warning("app proxy \(route.prefix): \(error)")
            throw HTTPError(
                .badGateway,
                message: "cannot reach app \(route.slug) on port \(route.upstream.port) of the workspace: \(error)")
        }
    }

    /// Reads the app's response head; returns it and the bytes after it.
    /// Interim 1xx responses (100 Continue) are skipped unless the caller
    /// waits for one (a WebSocket handshake's 101).
    static func readResponseHead(_ stream: TCPStream, skippingInterim: Bool) async throws -> (
        HTTP1ResponseHead, [UInt8]
    ) {
        var received: [UInt8] = []
        while true {
            if let (head, consumed) = try HTTP1ResponseHead.parse(received) {
                if skippingInterim && head.status < 200 {
                    received.removeFirst(consumed)
                    continue
                }
                return (head, Array(received[consumed...]))
            }
            let chunk = try await stream.read()
            if chunk.isEmpty { throw HTTP1ResponseHead.Malformed(description: "connection closed before a response head") }
            received += chunk
        }
    }

    /// The upstream request head: the target under the app's path, the
    /// end-to-end fields without the user's credentials, `Host` as the app
    /// URL would send it, and the `X-Forwarded-*` fields.
    /// With a `webSocketKey`, the head is the proxy's own WebSocket
    /// handshake (RFC 6455 §4.1) instead, without a body.
    func requestHead(
        _ request: Request, upstream: AppProxyRules.Target, prefix: String, rest: String, bodyBytes: Int,
        webSocketKey: String? = nil
    ) -> [UInt8] {
        let target = AppProxyRules.upstreamTarget(basePath: upstream.basePath, rest: rest, query: request.uri.query)
        var head = "\(request.method.rawValue) \(target) HTTP/1.1\r\nHost: 127.0.0.1:\(upstream.port)\r\n"
        for field in request.headers {
            let name = field.name.canonicalName
            if AppProxyRules.droppedRequestHeaders.contains(name) || name == "content-length" { continue }
            if webSocketKey != nil && AppProxyRules.webSocketHandshakeHeaders.contains(name) { continue }
            if name == "cookie" {
                if let kept = AppProxyRules.cookieWithout(API.sessionCookie, field.value) { head += "Cookie: \(kept)\r\n" }
                continue
            }
            head += "\(field.name.rawName): \(field.value)\r\n"
        }
        if let host = request.head.authority { head += "X-Forwarded-Host: \(host)\r\n" }
        head += "X-Forwarded-Proto: http\r\nX-Forwarded-Prefix: \(prefix)\r\n"
        if let key = webSocketKey {
            head += "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\n\r\n"
            return Array(head.utf8)
        }
        if bodyBytes > 0 || [.post, .put, .patch].contains(request.method) { head += "Content-Length: \(bodyBytes)\r\n" }
        head += "Connection: close\r\n\r\n"
        return Array(head.utf8)
    }

    /// Reads the app's response head, then streams its body as framed.
    func response(from stream: TCPStream, requestWasHead: Bool) async throws -> Response {
        let (head, first) = try await Self.readResponseHead(stream, skippingInterim: true)
        let framing = try head.framing(requestWasHead: requestWasHead)
        var fields = HTTPFields()
        for (name, value) in head.fields {
            guard let fieldName = HTTPField.Name(name), !AppProxyRules.droppedResponseHeaders.contains(fieldName.canonicalName),
                fieldName != .contentLength
            else { continue }
            fields.append(HTTPField(name: fieldName, value: value))
        }
        let status = HTTPResponse.Status(code: head.status, reasonPhrase: head.reason)
        switch framing {
        case .none:
            stream.close()
            if requestWasHead, case .some(let n) = head.field("content-length").flatMap(Int.init) {
                fields[.contentLength] = String(n)
            }
            return Response(status: status, headers: fields, body: .init())
        case .length(let length):
            return Response(
                status: status, headers: fields,
                body: ResponseBody(contentLength: length) { writer in
                    var left = length
                    var pending = first
                    while left > 0 {
                        if pending.isEmpty { pending = try await stream.read() }
                        if pending.isEmpty { throw HTTP1ResponseHead.Malformed(description: "body ended \(left) bytes short") }
                        let piece = pending.prefix(left)
                        left -= piece.count
                        try await writer.write(ByteBuffer(bytes: piece))
                        pending = []
                    }
                    stream.close()
                    try await writer.finish(nil)
                })
        case .chunked, .untilClose:
            let chunked = framing == .chunked
            return Response(
                status: status, headers: fields,
                body: ResponseBody { writer in
                    var decoder = ChunkedDecoder()
                    var pending = first
                    while true {
                        let data = chunked ? try decoder.decode(pending) : pending
                        if !data.isEmpty { try await writer.write(ByteBuffer(bytes: data)) }
                        if chunked && decoder.isDone { break }
                        pending = try await stream.read()
                        if pending.isEmpty {
                            if chunked { throw HTTP1ResponseHead.Malformed(description: "chunked body ended early") }
                            break
                        }
                    }
                    stream.close()
                    try await writer.finish(nil)
                })
        }
    }
}

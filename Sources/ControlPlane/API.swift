import Agent
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// The HTTP API (docs/control-plane.md lists every route).
struct API: Sendable {
    let store: Store
    let hub: Hub
    let metrics: Metrics
    let accessURL: AccessURL
    let download: AgentDownload
    let logger: Logger
    static let sessionCookie = "tether_session"
    static let maxBody = 1 << 20

    func register(_ router: Router<BasicWebSocketRequestContext>) {
        router.get("/healthz") { _, _ in "ok\n" }
        router.get("/metrics") { _, _ in
            let counts = await hub.lifecycleCounts()
            let text = metrics.render(
                connected: await hub.connectedCount,
                lifecycle: LifecycleState.allCases.map { ($0.rawValue, counts[$0] ?? 0) })
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: text)))
        }

        // First-user bootstrap: allowed exactly once, while no user exists.
        router.post("/api/v1/users/first") { request, context in
            struct Body: Decodable { let name: String }
            let body = try await decode(Body.self, request, context)
            guard WorkspaceSpec.isValidName(body.name) else { throw HTTPError(.badRequest, message: "name: 1-32 of a-z, 0-9 and '-'") }
            guard let (user, token) = try await store.bootstrapFirstUser(name: body.name) else {
                throw HTTPError(.conflict, message: "the first user already exists; sign in with a token")
            }
            logger.info("first user \(user.name) created")
            return try json(["user": user.name, "token": token.plaintext], status: .created)
        }
        router.get("/api/v1/users/me") { request, _ in
            let user = try await requireUser(request)
            return try json(["id": user.id, "name": user.name])
        }
        router.post("/api/v1/tokens") { request, _ in
            let user = try await requireUser(request)
            let token = try await store.issueUserToken(userID: user.id)
            return try json(["token": token.plaintext], status: .created)
        }

        router.post("/api/v1/workspaces") { request, context in
            let user = try await requireUser(request)
            let spec = try await decode(WorkspaceSpec.self, request, context)
            do { try spec.validate() } catch let error as SpecError { throw HTTPError(.badRequest, message: error.message) }
            let id: String
            let agents: [Store.CreatedAgent]
            do { (id, agents) = try await store.createWorkspace(spec, ownerID: user.id) } catch Store.CreateError.nameTaken {
                throw HTTPError(.conflict, message: "a workspace named \(spec.name) exists")
            }
            try await hub.reload()
            logger.info("workspace \(spec.name) created by \(user.name)")
            struct Created: Encodable {
                let id: String
                let name: String
                let agents: [Store.CreatedAgent]
                let init_script_url: String
            }
            return try json(Created(id: id, name: spec.name, agents: agents, init_script_url: accessURL.value + "/api/v1/init.sh"), status: .created)
        }
        router.get("/api/v1/workspaces") { request, _ in
            _ = try await requireUser(request)
            return try json(await hub.views)
        }
        router.get("/api/v1/agents/:id/logs") { request, context in
            _ = try await requireUser(request)
            let id = try context.parameters.require("id")
            guard let view = await hub.views.first(where: { $0.id == id }) else { throw HTTPError(.notFound) }
            let session = request.uri.queryParameters.get("session") ?? view.session ?? ""
            let limit = min(request.uri.queryParameters.get("limit", as: Int.self) ?? 10_000, 100_000)
            return try json(try await store.logs(agentID: id, session: session, limit: limit))
        }

        // Dashboard sign-in: a one-time link from `tether dashboard`, or a pasted token.
        router.post("/api/v1/login-links") { request, _ in
            let user = try await requireUser(request)
            let code = try await store.issueLoginCode(userID: user.id)
            return try json(["url": accessURL.value + "/login?code=" + code], status: .created)
        }
        router.get("/login") { request, _ in
            guard let code = request.uri.queryParameters.get("code"), let token = try await store.redeemLoginCode(code) else {
                metrics.authFailures.add(1, ordering: .relaxed)
                return html(DashboardPage.login, status: .unauthorized)
            }
            return signedIn(token.plaintext)
        }
        router.post("/login") { request, context in
            let body = try await request.body.collect(upTo: 4096)
            let form = String(buffer: body)
            let token = form.split(separator: "&").compactMap { pair -> String? in
                let kv = pair.split(separator: "=", maxSplits: 1)
                return kv.count == 2 && kv[0] == "token" ? String(kv[1]).removingPercentEncoding : nil
            }.first
            guard let token, try await store.authenticateUser(token: token) != nil else {
                metrics.authFailures.add(1, ordering: .relaxed)
                return html(DashboardPage.login, status: .unauthorized)
            }
            return signedIn(token)
        }
        router.get("/") { request, _ in
            guard try await user(request) != nil else { return html(DashboardPage.login, status: .ok) }
            return html(DashboardPage.html, status: .ok)
        }
        router.get("/api/v1/events") { request, _ in
            _ = try await requireUser(request)
            let (id, stream) = await hub.subscribe()
            let snapshot = try await snapshotEvent()
            let hub = self.hub
            return Response(
                status: .ok,
                headers: [.contentType: "text/event-stream", .cacheControl: "no-store"],
                body: ResponseBody { writer in
                    defer { Task { await hub.unsubscribe(id) } }
                    try await writer.write(ByteBuffer(string: "event: snapshot\ndata: \(snapshot)\n\n"))
                    // The stream never ends by itself; on server shutdown it
                    // is finished so graceful shutdown does not wait forever.
                    try await withGracefulShutdownHandler {
                        for await frame in stream { try await writer.write(ByteBuffer(string: frame)) }
                    } onGracefulShutdown: {
                        Task { await hub.unsubscribe(id) }
                    }
                    try await writer.finish(nil)
                })
        }

        // Agent bootstrap.
        router.get("/api/v1/init.sh") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/x-shellscript; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: InitScript.render(accessURL: accessURL.value))))
        }
        router.get("/api/v1/bin/tether") { request, _ in
            let arch = machineArchitecture()
            if let wanted = request.uri.queryParameters.get("arch"), wanted != arch {
                throw HTTPError(.notFound, message: "this control plane serves a \(arch) agent, not \(wanted)")
            }
            return try fileResponse("/proc/self/exe")
        }
        router.get("/api/v1/bin/tether.gz") { request, _ in
            let arch = machineArchitecture()
            if let wanted = request.uri.queryParameters.get("arch"), wanted != arch {
                throw HTTPError(.notFound, message: "this control plane serves a \(arch) agent, not \(wanted)")
            }
            let path: String
            do { path = try await download.gzipPath() } catch {
                logger.error("agent download: \(error)")
                throw HTTPError(.internalServerError, message: "cannot compress the agent binary: \(error)")
            }
            return try fileResponse(path)
        }
    }

    // MARK: Helpers

    func user(_ request: Request) async throws -> Store.User? {
        if let token = bearer(request) { return try await store.authenticateUser(token: token) }
        if let cookie = request.cookies[Self.sessionCookie]?.value { return try await store.authenticateUser(token: cookie) }
        return nil
    }

    func requireUser(_ request: Request) async throws -> Store.User {
        guard let user = try await user(request) else {
            metrics.authFailures.add(1, ordering: .relaxed)
            throw HTTPError(.unauthorized)
        }
        return user
    }

    func signedIn(_ token: String) -> Response {
        var response = Response(status: .seeOther, headers: [.location: "/"])
        response.setCookie(.init(name: Self.sessionCookie, value: token, maxAge: 7 * 86_400, path: "/", httpOnly: true, sameSite: .strict))
        return response
    }

    func snapshotEvent() async throws -> String {
        let views = await hub.views
        struct Logs: Encodable { let session: String; let entries: [LogEntry] }
        var logs: [String: Logs] = [:]
        for v in views {
            guard let session = v.session else { continue }
            logs[v.id] = Logs(session: session, entries: try await store.logs(agentID: v.id, session: session, limit: 2000))
        }
        struct Snapshot: Encodable { let agents: [AgentView]; let logs: [String: Logs] }
        return Hub.json(Snapshot(agents: views, logs: logs))
    }

    func decode<T: Decodable>(_: T.Type, _ request: Request, _ context: BasicWebSocketRequestContext) async throws -> T {
        let body = try await request.body.collect(upTo: Self.maxBody)
        do {
            return try JSONDecoder().decode(T.self, from: Data(buffer: body))
        } catch {
            throw HTTPError(.badRequest, message: "request body is not valid JSON for this route: \(error)")
        }
    }

    func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(string: Hub.json(value) + "\n")))
    }

    func html(_ text: String, status: HTTPResponse.Status) -> Response {
        Response(
            status: status,
            headers: [.contentType: "text/html; charset=utf-8", .init("Content-Security-Policy")!: "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'"],
            body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    /// A file streamed as `application/octet-stream`: this very binary,
    /// which is also the agent, or its gzip copy.
    func fileResponse(_ path: String) throws -> Response {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw HTTPError(.internalServerError, message: "cannot open \(path)") }
        var st = stat()
        fstat(fd, &st)
        let size = Int(st.st_size)
        return Response(
            status: .ok, headers: [.contentType: "application/octet-stream"],
            body: ResponseBody(contentLength: size) { writer in
                defer { close(fd) }
                var buffer = ByteBuffer()
                while true {
                    buffer.clear(minimumCapacity: 1 << 20)
                    let n = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 1 << 20) { ptr in
                        max(0, read(fd, ptr.baseAddress, ptr.count))
                    }
                    if n == 0 { break }
                    try await writer.write(buffer)
                }
                try await writer.finish(nil)
            })
    }
}

func machineArchitecture() -> String {
    var u = utsname()
    uname(&u)
    return withUnsafeBytes(of: &u.machine) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
}

/// The URL agents and browsers use, known once the listener is bound.
final class AccessURL: Sendable {
    private let mutex: Mutex<String>
    init(_ url: String) { mutex = Mutex(url) }
    var value: String {
        get { mutex.withLock { $0 } }
        set { mutex.withLock { $0 = newValue } }
    }
}

import Agent
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

public struct ServerOptions: Sendable {
    public var host: String
    public var port: Int
    public var dataDirectory: String
    /// The URL agents and browsers use; default `http://host:port`.
    public var accessURL: String?
    /// Ports of the embedded DERP relay (TCP) and STUN server (UDP) on
    /// `host`; 0 lets the kernel pick (the DERP map names the ports).
    public var derpPort = 0
    public var stunPort = 0
    /// `/apps/...`; see docs/control-plane.md, "App proxy", on its origin.
    public var appProxy = true

    public init(host: String, port: Int, dataDirectory: String, accessURL: String? = nil) {
        self.host = host
        self.port = port
        self.dataDirectory = dataDirectory
        self.accessURL = accessURL
    }
}

/// `tether server`: the HTTP API, the agent WebSocket, client coordination,
/// the embedded DERP relay and STUN server, the dashboard and `/metrics`,
/// over one SQLite database in the data directory.
public enum ControlPlaneServer {
    public static func run(_ options: ServerOptions, logger: Logger = Logger(label: "tether.server")) async throws {
        makeDirectory(options.dataDirectory)
        let store = try Store(path: options.dataDirectory + "/tether.sqlite3")
        let metrics = Metrics()
        let hub = Hub(store: store, metrics: metrics, logger: logger)
        try await hub.reload()
        let accessURL = AccessURL(options.accessURL ?? "http://\(options.host):\(options.port)")

        let knownKeys = NodeKeyRegistry()
        let relay = try await EmbeddedRelay.start(
            host: options.host, derpPort: options.derpPort, stunPort: options.stunPort,
            advertisedHost: EmbeddedRelay.host(ofURL: accessURL.value), knownKeys: knownKeys, logger: logger)
        defer { Task { await relay.stop() } }
        logger.info("embedded DERP relay at \(relay.derpMap[0].url), STUN at \(relay.derpMap[0].stun ?? "(not advertised)")")
        let coordinator = Coordinator(derpMap: relay.derpMap, knownKeys: knownKeys, logger: logger)

        let api = API(
            store: store, hub: hub, metrics: metrics, accessURL: accessURL,
            download: AgentDownload(dataDirectory: options.dataDirectory, logger: logger), logger: logger)
        let router = Router(context: BasicWebSocketRequestContext.self)
        api.register(router)
        if options.appProxy {
            AppProxy(api: api, tunnel: AppTunnel(coordinator: coordinator, derpMap: relay.derpMap, logger: logger)).register(router)
        }
        let socket = AgentSocket(store: store, hub: hub, coordinator: coordinator, metrics: metrics)
        let clients = ClientSocket(coordinator: coordinator, metrics: metrics)
        router.ws(RouterPath(stringLiteral: ClientSocket.path)) { request, _ in
            _ = try await coordinationTarget(request, store: store, metrics: metrics)
            return .upgrade([:])
        } onUpgrade: { inbound, outbound, context in
            guard let target = try? await coordinationTarget(context.request, store: store, metrics: metrics) else {
                try? await outbound.close(.policyViolation, reason: "unauthorized")
                return
            }
            await clients.handle(inbound, outbound, target: target, logger: context.logger)
        }
        router.ws(RouterPath(stringLiteral: ControlProtocolVersion.agentPath)) { request, _ in
            guard let token = bearer(request), try await store.authenticateAgent(token: token) != nil else {
                metrics.authFailures.add(1, ordering: .relaxed)
                throw HTTPError(.unauthorized)
            }
            return .upgrade([:])
        } onUpgrade: { inbound, outbound, context in
            await socket.handle(inbound, outbound, token: bearer(context.request), logger: context.logger)
        }

        let app = Application(
            router: router,
            server: .http1AuthenticatedWebSocketUpgrade(
                webSocketRouter: router,
                // Frames up to 4× the message limit reach the handler, which
                // refuses messages over the limit with a logged reason;
                // larger frames are cut off by the WebSocket layer (1009).
                configuration: .init(ws: .init(maxFrameSize: 4 * ControlLimits.maxMessageBytes, autoPing: .enabled(timePeriod: .seconds(15)))),
                // Refused upgrades get 401 from the route, not the library's 400.
                guardedPaths: [ControlProtocolVersion.agentPath, ClientSocket.path],
                authenticate: { path, token in
                    guard let token else { return false }
                    if path == ClientSocket.path { return (try? await store.authenticateUser(token: token)) != nil }
                    return (try? await store.authenticateAgent(token: token)) != nil
                }),
            configuration: .init(address: .hostname(options.host, port: options.port), serverName: "tether"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? options.port
                if options.accessURL == nil { accessURL.value = "http://\(options.host):\(port)" }
                let url = accessURL.value
                logger.info("tether server listening on \(url), data in \(options.dataDirectory)")
                print("tether server listening on \(url)")
                fflush(nil)
            },
            logger: logger)

        let flusher = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(2))
                let (metadata, seen) = await hub.takeDirty()
                do { try await store.flush(metadata: metadata, lastSeen: seen) } catch { logger.error("flushing metadata: \(error)") }
            }
        }
        defer { flusher.cancel() }
        try await app.runService()
    }

    static func makeDirectory(_ path: String) {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            mkdir(current, 0o700)
        }
    }
}

/// The agent a coordination request names (`workspace`, optional `agent`),
/// if its user token is good and the user owns the workspace; otherwise the
/// HTTP error that says which of these failed.
func coordinationTarget(_ request: Request, store: Store, metrics: Metrics) async throws -> Store.AgentTarget {
    guard let token = bearer(request), let user = try await store.authenticateUser(token: token) else {
        metrics.authFailures.add(1, ordering: .relaxed)
        throw HTTPError(.unauthorized)
    }
    guard let workspace = request.uri.queryParameters.get("workspace"), !workspace.isEmpty else {
        throw HTTPError(.badRequest, message: "give ?workspace=NAME")
    }
    let agent = request.uri.queryParameters.get("agent").flatMap { $0.isEmpty ? nil : $0 }
    switch try await store.findAgent(workspace: workspace, agent: agent) {
    case .found(let target) where target.ownerID == user.id:
        return target
    case .found, .noWorkspace:
        // Another user's workspace looks the same as none at all.
        throw HTTPError(.notFound, message: "no workspace named \(workspace)")
    case .noAgent(let names):
        throw HTTPError(.notFound, message: "workspace \(workspace) has no agent \(agent ?? ""); its agents: \(names.joined(separator: ", "))")
    case .ambiguous(let names):
        throw HTTPError(.badRequest, message: "workspace \(workspace) has several agents; name one of: \(names.joined(separator: ", "))")
    }
}

/// The token of `Authorization: Bearer <token>`.
func bearer(_ request: Request) -> String? {
    bearerToken(request.headers[.authorization])
}

/// The token of an `Authorization` header value `Bearer <token>`.
func bearerToken(_ authorization: String?) -> String? {
    guard let value = authorization, value.hasPrefix("Bearer ") else { return nil }
    return String(value.dropFirst(7)).trimmingCharacters(in: .whitespaces)
}


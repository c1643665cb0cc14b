import Agent
import Logging

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// What the dashboard shows of one agent; also the JSON of its `agent` event.
public struct AgentView: Codable, Sendable {
    public var id: String
    public var workspace: String
    public var name: String
    public var connected: Bool
    public var lastSeenAt: Int64?
    public var version: String
    public var hostname: String
    public var session: String?
    public var lifecycle: LifecycleState
    public var lifecycleChangedAt: Int64
    public var metadata: [MetadataResult]
    public var metadataNames: [String: String]
    public var apps: [AppView]
    public var ports: [ListeningPort]
    public var stats: Stats?

    public struct AppView: Codable, Sendable {
        public var slug: String
        public var name: String
        public var url: String
        public var health: AppHealth
    }

    enum CodingKeys: String, CodingKey {
        case id, workspace, name, connected, version, hostname, session, lifecycle, metadata, apps, ports, stats
        case lastSeenAt = "last_seen_at"
        case lifecycleChangedAt = "lifecycle_changed_at"
        case metadataNames = "metadata_names"
    }
}

/// Live state of every agent, the connection that owns each, and the
/// dashboard subscribers. An actor: agent sockets report into it, the
/// dashboard and metrics read from it, and the database sees only what
/// must persist.
public actor Hub {
    struct Live {
        var view: AgentView
        var connectionID: Int?
        var closeConnection: (@Sendable (ProtocolError) -> Void)?
        var metadataDirty: Set<String> = []
    }

    let store: Store
    let metrics: Metrics
    let logger: Logger
    private var agents: [String: Live] = [:]
    private var subscribers: [Int: AsyncStream<String>.Continuation] = [:]
    private var nextID = 0
    private var lastSeenDirty: [String: Int64] = [:]

    init(store: Store, metrics: Metrics, logger: Logger) {
        self.store = store
        self.metrics = metrics
        self.logger = logger
    }

    /// Loads every agent from the database (at start and after a workspace
    /// is created).
    func reload() async throws {
        let records = try await store.allAgents()
        let metadata = try await store.allMetadata()
        for r in records where agents[r.id] == nil {
            agents[r.id] = Live(view: Self.view(r, metadata: metadata[r.id] ?? []))
        }
        broadcast("reload", "{}")
    }

    static func view(_ r: Store.AgentRecord, metadata: [MetadataResult]) -> AgentView {
        AgentView(
            id: r.id, workspace: r.workspaceName, name: r.spec.name, connected: false, lastSeenAt: r.lastSeenAt,
            version: r.version, hostname: r.hostname, session: r.session, lifecycle: r.lifecycle,
            lifecycleChangedAt: r.lifecycleChangedAt, metadata: metadata,
            metadataNames: Dictionary(uniqueKeysWithValues: (r.spec.metadata ?? []).map { ($0.key, $0.displayName ?? $0.key) }),
            apps: (r.spec.apps ?? []).map {
                .init(slug: $0.slug, name: $0.displayName ?? $0.slug, url: $0.url, health: $0.healthcheck == nil ? .disabled : .initializing)
            },
            ports: [], stats: nil)
    }

    // MARK: Agent connections

    /// Registers a connection after `hello`; an older connection of the
    /// same agent is told it was replaced and closed.
    func connect(agentID: String, hello: Hello, close: @escaping @Sendable (ProtocolError) -> Void) -> Int {
        nextID += 1
        let id = nextID
        guard var live = agents[agentID] else { return id }
        live.closeConnection?(ProtocolError(code: "replaced", message: "a newer connection of this agent took over"))
        live.connectionID = id
        live.closeConnection = close
        live.view.connected = true
        live.view.version = String(hello.agentVersion.prefix(64))
        live.view.hostname = String(hello.hostname.prefix(255))
        live.view.lastSeenAt = nowMS()
        if live.view.session != hello.session {
            live.view.session = hello.session
            live.view.lifecycle = .created
            live.view.lifecycleChangedAt = hello.startedAt
        }
        agents[agentID] = live
        publish(agentID)
        return id
    }

    func disconnect(agentID: String, connectionID: Int) {
        guard var live = agents[agentID], live.connectionID == connectionID else { return }
        live.connectionID = nil
        live.closeConnection = nil
        live.view.connected = false
        live.view.lastSeenAt = nowMS()
        agents[agentID] = live
        publish(agentID)
    }

    func isCurrent(agentID: String, connectionID: Int) -> Bool { agents[agentID]?.connectionID == connectionID }

    func seen(_ agentID: String) {
        let now = nowMS()
        agents[agentID]?.view.lastSeenAt = now
        lastSeenDirty[agentID] = now
    }

    /// Applies a lifecycle update if it moves the session forward along the
    /// lifecycle graph; returns whether it did (and should be stored).
    func lifecycle(agentID: String, _ update: LifecycleUpdate) -> Bool {
        guard var live = agents[agentID] else { return false }
        let current = live.view.lifecycle
        guard update.changedAt >= live.view.lifecycleChangedAt, current.canTransition(to: update.state) else { return false }
        live.view.lifecycle = update.state
        live.view.lifecycleChangedAt = update.changedAt
        agents[agentID] = live
        publish(agentID)
        return true
    }

    func metadata(agentID: String, _ results: [MetadataResult]) {
        guard var live = agents[agentID] else { return }
        let allowed = Set(live.view.metadataNames.keys)
        for r in results where allowed.contains(r.key) {
            var r = r
            if r.value.utf8.count > ControlLimits.maxMetadataValueBytes {
                r.value = String(decoding: r.value.utf8.prefix(ControlLimits.maxMetadataValueBytes), as: UTF8.self)
            }
            if r.error.utf8.count > ControlLimits.maxMetadataValueBytes {
                r.error = String(decoding: r.error.utf8.prefix(ControlLimits.maxMetadataValueBytes), as: UTF8.self)
            }
            if let i = live.view.metadata.firstIndex(where: { $0.key == r.key }) { live.view.metadata[i] = r } else { live.view.metadata.append(r) }
            live.metadataDirty.insert(r.key)
        }
        live.view.metadata.sort { $0.key < $1.key }
        agents[agentID] = live
        publish(agentID)
    }

    func appHealth(agentID: String, _ report: AppHealthReport) {
        guard var live = agents[agentID] else { return }
        for item in report.apps {
            if let i = live.view.apps.firstIndex(where: { $0.slug == item.slug }) { live.view.apps[i].health = item.health }
        }
        agents[agentID] = live
        publish(agentID)
    }

    func ports(agentID: String, _ ports: ListeningPorts) {
        agents[agentID]?.view.ports = Array(ports.ports.prefix(ControlLimits.maxItemsPerReport))
        publish(agentID)
    }

    func stats(agentID: String, _ stats: Stats) {
        agents[agentID]?.view.stats = stats
        publish(agentID)
    }

    func logs(agentID: String, session: String, _ entries: [LogEntry]) {
        guard !entries.isEmpty, !subscribers.isEmpty else { return }
        struct Event: Encodable { let agent_id: String; let session: String; let entries: [LogEntry] }
        broadcast("logs", Self.json(Event(agent_id: agentID, session: session, entries: entries)))
    }

    /// Takes the metadata and last-seen times changed since the last call.
    func takeDirty() -> ([(String, MetadataResult)], [String: Int64]) {
        var out: [(String, MetadataResult)] = []
        for (id, live) in agents where !live.metadataDirty.isEmpty {
            for r in live.view.metadata where live.metadataDirty.contains(r.key) { out.append((id, r)) }
            agents[id]?.metadataDirty = []
        }
        let seen = lastSeenDirty
        lastSeenDirty = [:]
        return (out, seen)
    }

    // MARK: Readers

    var views: [AgentView] { agents.values.map(\.view).sorted { ($0.workspace, $0.name) < ($1.workspace, $1.name) } }
    var connectedCount: Int { agents.values.filter(\.view.connected).count }
    func lifecycleCounts() -> [LifecycleState: Int] {
        var out: [LifecycleState: Int] = [:]
        for live in agents.values { out[live.view.lifecycle, default: 0] += 1 }
        return out
    }

    // MARK: Dashboard subscribers

    /// A stream of server-sent events (`event:` + `data:` lines), starting
    /// with a snapshot; the oldest events are dropped for a slow reader.
    func subscribe() -> (Int, AsyncStream<String>) {
        nextID += 1
        let id = nextID
        let (stream, continuation) = AsyncStream<String>.makeStream(bufferingPolicy: .bufferingNewest(4096))
        subscribers[id] = continuation
        continuation.onTermination = { [weak self] _ in Task { await self?.unsubscribe(id) } }
        metrics.dashboardSubscribers.add(1, ordering: .relaxed)
        return (id, stream)
    }

    func unsubscribe(_ id: Int) {
        if let c = subscribers.removeValue(forKey: id) {
            metrics.dashboardSubscribers.subtract(1, ordering: .relaxed)
            c.finish()
        }
    }

    private func publish(_ agentID: String) {
        guard !subscribers.isEmpty, let live = agents[agentID] else { return }
        broadcast("agent", Self.json(live.view))
    }

    private func broadcast(_ event: String, _ data: String) {
        let frame = "event: \(event)\ndata: \(data)\n\n"
        for c in subscribers.values { c.yield(frame) }
    }

    static func json(_ value: some Encodable) -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? String(decoding: e.encode(value), as: UTF8.self)) ?? "{}"
    }
}

import Synchronization

/// Everything the agent has to tell the control plane, shared between the
/// workers that produce it (scripts, metadata, health checks, scanners) and
/// the connection that sends it. Producers record and `notify`; the
/// connection asks `drain` for the messages its cursor has not sent.
public final class Reporter: Sendable {
    struct State {
        var logs: LogBuffer
        var lifecycle: [LifecycleUpdate] = []
        var metadata: [String: MetadataResult] = [:]
        var metadataDirty: Set<String> = []
        var apps: [String: AppHealth] = [:]
        var appsVersion = 0
        var ports: [ListeningPort] = []
        var portsVersion = 0
        var stats: Stats?
        var statsVersion = 0
        /// The tunnel node's own description (coordination), latest only.
        var node: NodeInfo?
        var nodeVersion = 0
        /// Peers just added (coordination events, sent once).
        var readyPeers: [String] = []
        /// Highest seq the control plane has confirmed.
        var ackedLogSeq: UInt64 = 0
    }

    /// What one connection has already sent.
    public struct Cursor: Sendable {
        var nextLogSeq: UInt64
        var lifecycleSent = 0
        var appsVersion = -1
        var portsVersion = -1
        var statsVersion = -1
        var nodeVersion = -1
        var metadataAll = true
    }

    public let session: String
    let state: Mutex<State>
    let wake = WakeSignal()

    public init(session: String) {
        self.session = session
        state = Mutex(State(logs: LogBuffer(session: session)))
    }

    // MARK: Producers

    public func log(source: String, level: LogLevel, _ line: String, at: UnixMillis = nowMillis()) {
        state.withLock { $0.logs.append(source: source, level: level, at: at, output: line) }
        wake.notify()
    }

    /// Records a lifecycle change if it is an edge of the lifecycle graph;
    /// returns whether it was.
    @discardableResult
    public func setLifecycle(_ next: LifecycleState, at: UnixMillis = nowMillis()) -> Bool {
        let ok = state.withLock { s -> Bool in
            let current = s.lifecycle.last?.state
            if let current, !current.canTransition(to: next) { return false }
            if current == nil, next != .created { s.lifecycle.append(LifecycleUpdate(state: .created, changedAt: at)) }
            s.lifecycle.append(LifecycleUpdate(state: next, changedAt: at))
            return true
        }
        if ok { wake.notify() }
        return ok
    }

    public var lifecycle: LifecycleState? { state.withLock { $0.lifecycle.last?.state } }

    public func setMetadata(_ result: MetadataResult) {
        state.withLock {
            $0.metadata[result.key] = result
            $0.metadataDirty.insert(result.key)
        }
        wake.notify()
    }

    public func setAppHealth(_ slug: String, _ health: AppHealth) {
        let changed = state.withLock { s -> Bool in
            guard s.apps[slug] != health else { return false }
            s.apps[slug] = health
            s.appsVersion += 1
            return true
        }
        if changed { wake.notify() }
    }

    public func setPorts(_ ports: [ListeningPort]) {
        let changed = state.withLock { s -> Bool in
            guard s.ports != ports else { return false }
            s.ports = ports
            s.portsVersion += 1
            return true
        }
        if changed { wake.notify() }
    }

    public func setStats(_ stats: Stats) {
        state.withLock {
            $0.stats = stats
            $0.statsVersion += 1
        }
        wake.notify()
    }

    /// The tunnel node's description; each connection sends the latest.
    public func setNode(_ node: NodeInfo) {
        state.withLock {
            $0.node = node
            $0.nodeVersion += 1
        }
        wake.notify()
    }

    /// The tunnel added a peer: its client may start its handshake.
    public func readyForHandshake(nodeKey: String) {
        state.withLock { $0.readyPeers.append(nodeKey) }
        wake.notify()
    }

    // MARK: Connection side

    /// A cursor for a fresh connection whose `welcome` said the control
    /// plane holds logs through `resumeLogSeq`.
    public func resume(at resumeLogSeq: UInt64) -> Cursor {
        state.withLock { s in
            s.logs.acknowledge(through: resumeLogSeq)
            s.ackedLogSeq = max(s.ackedLogSeq, resumeLogSeq)
            return Cursor(nextLogSeq: max(resumeLogSeq, s.ackedLogSeq) + 1)
        }
    }

    public func acknowledgeLogs(through seq: UInt64) {
        state.withLock {
            $0.logs.acknowledge(through: seq)
            $0.ackedLogSeq = max($0.ackedLogSeq, seq)
        }
    }

    /// Messages not yet sent on the connection owning `cursor`, lifecycle
    /// first so a state change is never stuck behind a flood of logs.
    public func drain(_ cursor: inout Cursor, maxLogBatches: Int = 4) -> [AgentMessage] {
        state.withLock { s in
            var out: [AgentMessage] = []
            while cursor.lifecycleSent < s.lifecycle.count {
                out.append(.lifecycle(s.lifecycle[cursor.lifecycleSent]))
                cursor.lifecycleSent += 1
            }
            for _ in 0..<maxLogBatches {
                let batch = s.logs.batch(from: cursor.nextLogSeq)
                guard let last = batch.last else { break }
                out.append(.logs(LogBatch(session: session, entries: batch)))
                cursor.nextLogSeq = last.seq + 1
            }
            let keys = cursor.metadataAll ? Set(s.metadata.keys) : s.metadataDirty
            if !keys.isEmpty {
                let results = keys.sorted().compactMap { s.metadata[$0] }
                for start in stride(from: 0, to: results.count, by: ControlLimits.maxItemsPerReport) {
                    out.append(.metadata(MetadataBatch(results: Array(results[start..<min(results.count, start + ControlLimits.maxItemsPerReport)]))))
                }
            }
            s.metadataDirty = []
            cursor.metadataAll = false
            if cursor.appsVersion != s.appsVersion, !s.apps.isEmpty {
                out.append(.appHealth(AppHealthReport(apps: s.apps.keys.sorted().map { .init(slug: $0, health: s.apps[$0]!) })))
            }
            cursor.appsVersion = s.appsVersion
            if cursor.portsVersion != s.portsVersion {
                out.append(.listeningPorts(ListeningPorts(ports: Array(s.ports.prefix(ControlLimits.maxItemsPerReport)))))
            }
            cursor.portsVersion = s.portsVersion
            if cursor.statsVersion != s.statsVersion, let stats = s.stats { out.append(.stats(stats)) }
            cursor.statsVersion = s.statsVersion
            if cursor.nodeVersion != s.nodeVersion, let node = s.node { out.append(.node(NodeUpdate(node: node))) }
            cursor.nodeVersion = s.nodeVersion
            for key in s.readyPeers { out.append(.readyForHandshake(ReadyForHandshake(nodeKey: key))) }
            s.readyPeers = []
            return out
        }
    }

    /// Whether `cursor` still has logs to send (more than one drain's worth).
    public func hasUnsentLogs(_ cursor: Cursor) -> Bool {
        state.withLock { cursor.nextLogSeq <= $0.logs.lastSeq }
    }

    /// A lifecycle change is waiting: it goes out at once, not after the
    /// pause that lets log lines gather into one batch.
    public func hasUnsentLifecycle(_ cursor: Cursor) -> Bool {
        state.withLock { cursor.lifecycleSent < $0.lifecycle.count }
    }

    /// All logs acknowledged and all `lifecycleDelivered` lifecycle updates
    /// written.
    public func isFlushed(lifecycleDelivered: Int) -> Bool {
        state.withLock { s in s.ackedLogSeq >= s.logs.lastSeq && lifecycleDelivered == s.lifecycle.count }
    }

    public var pendingLogBytes: Int { state.withLock { $0.logs.unackedBytes } }
}

/// Messages of the control protocol, version 1 (docs/control-protocol.md).
///
/// Every message is one WebSocket text frame holding one JSON object whose
/// `type` names it; the other keys are that type's fields, snake_case:
///
/// ```
/// agent                                         control plane
///   │── GET /api/v1/agent/ws (Authorization: Bearer <agent token>) ──▶│
///   │◀──────────────────────── 101 Switching Protocols ───────────────│  (401 if the token is bad)
///   │── hello {protocol_version, agent_version, session, ...} ───────▶│
///   │◀── welcome {protocol_version, manifest, resume_log_seq} ────────│
///   │── logs {session, entries:[{seq,...}]} ─────────────────────────▶│
///   │◀── logs_ack {session, seq} ─────────────────────────────────────│
///   │── lifecycle / metadata / app_health / stats / listening_ports ─▶│
///   │◀── error {code, message} then close (only on a broken rule) ────│
/// ```
///
/// Log `seq` numbers start at 1 for each agent process (`session`) and
/// rise by one per entry. The control plane stores an entry only if its
/// seq is higher than any stored for that session, and `welcome` tells a
/// reconnecting agent the highest it has: the agent then resends exactly
/// the entries after it, so a reconnect neither loses nor duplicates lines.
/// A receiver skips (and counts) messages of an unknown `type`, so new
/// message types do not need a new version.

/// Milliseconds since the Unix epoch, UTC.
public typealias UnixMillis = Int64

// MARK: Agent → control plane

public struct Hello: Codable, Sendable, Equatable {
    public var protocolVersion: Int
    public var agentVersion: String
    /// Random per agent process (32 hex digits): the log stream's identity.
    public var session: String
    public var startedAt: UnixMillis
    public var hostname: String
    public var os: String
    public var arch: String

    enum CodingKeys: String, CodingKey {
        case session, hostname, os, arch
        case protocolVersion = "protocol_version"
        case agentVersion = "agent_version"
        case startedAt = "started_at"
    }

    public init(
        protocolVersion: Int = ControlProtocolVersion.current, agentVersion: String, session: String,
        startedAt: UnixMillis, hostname: String, os: String, arch: String
    ) {
        self.protocolVersion = protocolVersion
        self.agentVersion = agentVersion
        self.session = session
        self.startedAt = startedAt
        self.hostname = hostname
        self.os = os
        self.arch = arch
    }
}

public struct LifecycleUpdate: Codable, Sendable, Equatable {
    public var state: LifecycleState
    public var changedAt: UnixMillis

    enum CodingKeys: String, CodingKey {
        case state
        case changedAt = "changed_at"
    }

    public init(state: LifecycleState, changedAt: UnixMillis) {
        self.state = state
        self.changedAt = changedAt
    }
}

public enum LogLevel: String, Codable, Sendable {
    case info, warn, error
}

public struct LogEntry: Codable, Sendable, Equatable {
    public var seq: UInt64
    /// The script's `display_name`, or `agent` for the agent's own lines.
    public var source: String
    public var level: LogLevel
    public var at: UnixMillis
    public var output: String

    public init(seq: UInt64, source: String, level: LogLevel, at: UnixMillis, output: String) {
        self.seq = seq
        self.source = source
        self.level = level
        self.at = at
        self.output = output
    }
}

public struct LogBatch: Codable, Sendable, Equatable {
    public var session: String
    /// Consecutive seqs, ascending.
    public var entries: [LogEntry]

    public init(session: String, entries: [LogEntry]) {
        self.session = session
        self.entries = entries
    }
}

public struct MetadataResult: Codable, Sendable, Equatable {
    public var key: String
    /// Trimmed standard output; empty when `error` is set.
    public var value: String
    /// Why there is no value: a timeout, a non-zero exit, a spawn failure.
    public var error: String
    public var collectedAt: UnixMillis

    enum CodingKeys: String, CodingKey {
        case key, value, error
        case collectedAt = "collected_at"
    }

    public init(key: String, value: String, error: String, collectedAt: UnixMillis) {
        self.key = key
        self.value = value
        self.error = error
        self.collectedAt = collectedAt
    }
}

public struct MetadataBatch: Codable, Sendable, Equatable {
    public var results: [MetadataResult]
    public init(results: [MetadataResult]) { self.results = results }
}

public enum AppHealth: String, Codable, Sendable {
    /// No check yet, or fewer failures than the threshold since start.
    case initializing
    case healthy
    case unhealthy
    /// The app has no health check.
    case disabled
}

public struct AppHealthReport: Codable, Sendable, Equatable {
    public struct Item: Codable, Sendable, Equatable {
        public var slug: String
        public var health: AppHealth
        public init(slug: String, health: AppHealth) {
            self.slug = slug
            self.health = health
        }
    }
    public var apps: [Item]
    public init(apps: [Item]) { self.apps = apps }
}

/// The agent's own vital signs, sent every `stats` interval.
public struct Stats: Codable, Sendable, Equatable {
    public var collectedAt: UnixMillis
    public var uptimeSeconds: Int64
    public var residentBytes: Int64
    public var load1: Double
    public var scriptsRunning: Int
    /// Bytes the agent wrote to / read from the control connection.
    public var txBytes: Int64
    public var rxBytes: Int64

    enum CodingKeys: String, CodingKey {
        case load1
        case collectedAt = "collected_at"
        case uptimeSeconds = "uptime_seconds"
        case residentBytes = "resident_bytes"
        case scriptsRunning = "scripts_running"
        case txBytes = "tx_bytes"
        case rxBytes = "rx_bytes"
    }

    public init(
        collectedAt: UnixMillis, uptimeSeconds: Int64, residentBytes: Int64, load1: Double, scriptsRunning: Int,
        txBytes: Int64, rxBytes: Int64
    ) {
        self.collectedAt = collectedAt
        self.uptimeSeconds = uptimeSeconds
        self.residentBytes = residentBytes
        self.load1 = load1
        self.scriptsRunning = scriptsRunning
        self.txBytes = txBytes
        self.rxBytes = rxBytes
    }
}

public struct ListeningPort: Codable, Sendable, Equatable, Hashable, Comparable {
    /// `tcp` or `tcp6`.
    public var network: String
    public var address: String
    public var port: Int

    public init(network: String, address: String, port: Int) {
        self.network = network
        self.address = address
        self.port = port
    }

    public static func < (a: Self, b: Self) -> Bool {
        (a.port, a.network, a.address) < (b.port, b.network, b.address)
    }
}

public struct ListeningPorts: Codable, Sendable, Equatable {
    public var ports: [ListeningPort]
    public init(ports: [ListeningPort]) { self.ports = ports }
}

// MARK: Control plane → agent

public struct Welcome: Codable, Sendable, Equatable {
    public var protocolVersion: Int
    public var manifest: Manifest
    /// Highest log seq stored for the agent's `session`; 0 if none.
    public var resumeLogSeq: UInt64

    enum CodingKeys: String, CodingKey {
        case manifest
        case protocolVersion = "protocol_version"
        case resumeLogSeq = "resume_log_seq"
    }

    public init(protocolVersion: Int = ControlProtocolVersion.current, manifest: Manifest, resumeLogSeq: UInt64) {
        self.protocolVersion = protocolVersion
        self.manifest = manifest
        self.resumeLogSeq = resumeLogSeq
    }
}

public struct LogsAck: Codable, Sendable, Equatable {
    public var session: String
    /// Every entry with a seq up to this one is stored.
    public var seq: UInt64
    public init(session: String, seq: UInt64) {
        self.session = session
        self.seq = seq
    }
}

public struct ProtocolError: Codable, Sendable, Equatable, Error {
    /// Machine-readable: `unsupported_version`, `malformed`, `too_large`,
    /// `unexpected`, `replaced` (another connection took over this agent).
    public var code: String
    public var message: String
    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }
}

/// Everything an agent sends.
public enum AgentMessage: Sendable, Equatable {
    case hello(Hello)
    case lifecycle(LifecycleUpdate)
    case logs(LogBatch)
    case metadata(MetadataBatch)
    case appHealth(AppHealthReport)
    case stats(Stats)
    case listeningPorts(ListeningPorts)
    /// Coordination: the sender's own node (agents and clients).
    case node(NodeUpdate)
    /// Coordination: the agent added the client with this key.
    case readyForHandshake(ReadyForHandshake)
    /// A `type` this version does not know; skipped by the receiver.
    case unknown(type: String)
}

/// Everything the control plane sends.
public enum ServerMessage: Sendable, Equatable {
    case welcome(Welcome)
    case logsAck(LogsAck)
    case error(ProtocolError)
    /// Coordination (see `Coordination.swift`).
    case tunnel(TunnelConfig)
    case peerUpsert(PeerUpsert)
    case peerRemove(PeerRemove)
    /// The agent is ready for this client's handshake.
    case readyForHandshake(ReadyForHandshake)
    case unknown(type: String)
}

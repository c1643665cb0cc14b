import Agent
import GRDB

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The control plane's SQLite database (`<data-dir>/tether.sqlite3`, WAL).
/// Users, tokens, workspaces and agents are rows; logs are appended with
/// their per-session seq; metadata values are written through in batches
/// by the hub.
public final class Store: Sendable {
    let db: DatabasePool

    public init(path: String) throws {
        var config = Configuration()
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        db = try DatabasePool(path: path, configuration: config)
        try Self.migrator.migrate(db)
    }

    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE users (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL);
                    CREATE TABLE user_tokens (id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                        hash BLOB NOT NULL, created_at INTEGER NOT NULL);
                    CREATE TABLE login_codes (id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                        hash BLOB NOT NULL, expires_at INTEGER NOT NULL);
                    CREATE TABLE workspaces (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE,
                        owner_id TEXT NOT NULL REFERENCES users(id), spec TEXT NOT NULL, created_at INTEGER NOT NULL);
                    CREATE TABLE agents (id TEXT PRIMARY KEY, workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
                        name TEXT NOT NULL, spec TEXT NOT NULL, token_id TEXT NOT NULL UNIQUE, token_hash BLOB NOT NULL,
                        session TEXT, lifecycle TEXT NOT NULL DEFAULT 'created', lifecycle_changed_at INTEGER NOT NULL DEFAULT 0,
                        version TEXT NOT NULL DEFAULT '', hostname TEXT NOT NULL DEFAULT '',
                        first_connected_at INTEGER, last_connected_at INTEGER, disconnected_at INTEGER, last_seen_at INTEGER,
                        UNIQUE (workspace_id, name));
                    CREATE TABLE agent_sessions (agent_id TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE, session TEXT NOT NULL,
                        last_log_seq INTEGER NOT NULL DEFAULT 0, started_at INTEGER NOT NULL, PRIMARY KEY (agent_id, session));
                    CREATE TABLE agent_logs (id INTEGER PRIMARY KEY AUTOINCREMENT, agent_id TEXT NOT NULL, session TEXT NOT NULL,
                        seq INTEGER NOT NULL, source TEXT NOT NULL, level TEXT NOT NULL, at INTEGER NOT NULL, output TEXT NOT NULL,
                        UNIQUE (agent_id, session, seq));
                    CREATE TABLE lifecycle_events (agent_id TEXT NOT NULL, session TEXT NOT NULL, state TEXT NOT NULL, changed_at INTEGER NOT NULL);
                    CREATE TABLE agent_metadata (agent_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, error TEXT NOT NULL,
                        collected_at INTEGER NOT NULL, PRIMARY KEY (agent_id, key));
                    """)
        }
        return m
    }

    // MARK: Users and tokens

    public struct User: Sendable, Codable {
        public let id: String
        public let name: String
    }

    /// Creates the first user and a token for it; nil if any user exists.
    public func bootstrapFirstUser(name: String) async throws -> (User, IssuedToken)? {
        try await db.write { db in
            guard try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM users") == 0 else { return nil }
            let user = User(id: Tokens.newID(), name: name)
            try db.execute(sql: "INSERT INTO users (id, name, created_at) VALUES (?, ?, ?)", arguments: [user.id, user.name, nowMS()])
            return (user, try Self.insertUserToken(db, userID: user.id))
        }
    }

    public func issueUserToken(userID: String) async throws -> IssuedToken {
        try await db.write { db in try Self.insertUserToken(db, userID: userID) }
    }

    private static func insertUserToken(_ db: Database, userID: String) throws -> IssuedToken {
        let token = Tokens.issue(.user)
        try db.execute(
            sql: "INSERT INTO user_tokens (id, user_id, hash, created_at) VALUES (?, ?, ?, ?)",
            arguments: [token.id, userID, Data(token.hash), nowMS()])
        return token
    }

    public func authenticateUser(token: String) async throws -> User? {
        guard let (id, hash) = Tokens.parse(token, kind: .user) else { return nil }
        let found = try await db.read { db -> (hash: Data, user: User)? in
            guard let row = try Row.fetchOne(db, sql: "SELECT t.hash, u.id, u.name FROM user_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = ?", arguments: [id])
            else { return nil }
            return (row["hash"], User(id: row["id"], name: row["name"]))
        }
        guard Tokens.matches(presented: hash, stored: found.map { [UInt8]($0.hash) }), let found else { return nil }
        return found.user
    }

    /// A single-use code for the dashboard login link, valid 60 s.
    public func issueLoginCode(userID: String) async throws -> String {
        let token = Tokens.issue(.user)
        try await db.write { db in
            try db.execute(
                sql: "INSERT INTO login_codes (id, user_id, hash, expires_at) VALUES (?, ?, ?, ?)",
                arguments: [token.id, userID, Data(token.hash), nowMS() + 60_000])
        }
        return token.plaintext
    }

    /// Spends a login code; returns a fresh session token for its user.
    public func redeemLoginCode(_ code: String) async throws -> IssuedToken? {
        guard let (id, hash) = Tokens.parse(code, kind: .user) else { return nil }
        return try await db.write { db -> IssuedToken? in
            let row = try Row.fetchOne(db, sql: "SELECT user_id, hash, expires_at FROM login_codes WHERE id = ?", arguments: [id])
            try db.execute(sql: "DELETE FROM login_codes WHERE id = ? OR expires_at < ?", arguments: [id, nowMS()])
            let stored = (row?["hash"] as Data?).map { [UInt8]($0) }
            guard Tokens.matches(presented: hash, stored: stored), let row, (row["expires_at"] as Int64) >= nowMS() else { return nil }
            return try Self.insertUserToken(db, userID: row["user_id"])
        }
    }

    // MARK: Workspaces and agents

    public struct AgentRecord: Sendable {
        public let id: String
        public let workspaceID: String
        public let workspaceName: String
        public let spec: AgentSpec
        public var lifecycle: LifecycleState
        public var lifecycleChangedAt: Int64
        public var session: String?
        public var version: String
        public var hostname: String
        public var lastSeenAt: Int64?
    }

    public struct CreatedAgent: Sendable, Codable {
        public let id: String
        public let name: String
        /// Shown once; only its hash is stored.
        public let token: String
    }

    public enum CreateError: Error { case nameTaken }

    public func createWorkspace(_ spec: WorkspaceSpec, ownerID: String) async throws -> (String, [CreatedAgent]) {
        let specJSON = String(decoding: try JSONEncoder().encode(spec), as: UTF8.self)
        return try await db.write { db in
            guard try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM workspaces WHERE name = ?", arguments: [spec.name]) == 0 else {
                throw CreateError.nameTaken
            }
            let wsID = Tokens.newID()
            try db.execute(
                sql: "INSERT INTO workspaces (id, name, owner_id, spec, created_at) VALUES (?, ?, ?, ?, ?)",
                arguments: [wsID, spec.name, ownerID, specJSON, nowMS()])
            var created: [CreatedAgent] = []
            for agent in spec.agents {
                let id = Tokens.newID()
                let token = Tokens.issue(.agent)
                let agentJSON = String(decoding: try JSONEncoder().encode(agent), as: UTF8.self)
                try db.execute(
                    sql: "INSERT INTO agents (id, workspace_id, name, spec, token_id, token_hash) VALUES (?, ?, ?, ?, ?, ?)",
                    arguments: [id, wsID, agent.name, agentJSON, token.id, Data(token.hash)])
                created.append(CreatedAgent(id: id, name: agent.name, token: token.plaintext))
            }
            return (wsID, created)
        }
    }

    static let agentColumns = """
        a.id, a.workspace_id, w.name AS workspace_name, a.spec, a.lifecycle, a.lifecycle_changed_at, a.session,
        a.version, a.hostname, a.last_seen_at
        """

    static func agentRecord(_ row: Row) throws -> AgentRecord {
        let spec = try JSONDecoder().decode(AgentSpec.self, from: Data((row["spec"] as String).utf8))
        return AgentRecord(
            id: row["id"], workspaceID: row["workspace_id"], workspaceName: row["workspace_name"], spec: spec,
            lifecycle: LifecycleState(rawValue: row["lifecycle"]) ?? .created, lifecycleChangedAt: row["lifecycle_changed_at"],
            session: row["session"], version: row["version"], hostname: row["hostname"], lastSeenAt: row["last_seen_at"])
    }

    public func authenticateAgent(token: String) async throws -> AgentRecord? {
        guard let (id, hash) = Tokens.parse(token, kind: .agent) else { return nil }
        let found = try await db.read { db -> (hash: Data, agent: AgentRecord)? in
            guard let row = try Row.fetchOne(
                db, sql: "SELECT a.token_hash, \(Self.agentColumns) FROM agents a JOIN workspaces w ON w.id = a.workspace_id WHERE a.token_id = ?",
                arguments: [id])
            else { return nil }
            return (row["token_hash"], try Self.agentRecord(row))
        }
        guard Tokens.matches(presented: hash, stored: found.map { [UInt8]($0.hash) }), let found else { return nil }
        return found.agent
    }

    /// An agent a client asks for by name, with the workspace's owner.
    public struct AgentTarget: Sendable, Equatable {
        public let agentID: String
        public let workspaceName: String
        public let agentName: String
        public let ownerID: String
    }

    public enum AgentLookup: Sendable, Equatable {
        case found(AgentTarget)
        case noWorkspace
        /// No agent of that name; the workspace's agents are listed.
        case noAgent([String])
        /// No name given and the workspace has several agents.
        case ambiguous([String])
    }

    /// Finds `workspace`'s agent `agent`, or its only agent when `agent` is nil.
    public func findAgent(workspace: String, agent: String?) async throws -> AgentLookup {
        let rows = try await db.read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT a.id, a.name, w.name AS workspace_name, w.owner_id FROM agents a JOIN workspaces w ON w.id = a.workspace_id WHERE w.name = ? ORDER BY a.name",
                arguments: [workspace])
        }
        guard !rows.isEmpty else { return .noWorkspace }
        let targets = rows.map {
            AgentTarget(agentID: $0["id"], workspaceName: $0["workspace_name"], agentName: $0["name"], ownerID: $0["owner_id"])
        }
        if let agent {
            guard let t = targets.first(where: { $0.agentName == agent }) else { return .noAgent(targets.map(\.agentName)) }
            return .found(t)
        }
        guard targets.count == 1 else { return .ambiguous(targets.map(\.agentName)) }
        return .found(targets[0])
    }

    public func allAgents() async throws -> [AgentRecord] {
        try await db.read { db in
            try Row.fetchAll(db, sql: "SELECT \(Self.agentColumns) FROM agents a JOIN workspaces w ON w.id = a.workspace_id ORDER BY w.name, a.name")
                .map(Self.agentRecord)
        }
    }

    public func allMetadata() async throws -> [String: [MetadataResult]] {
        try await db.read { db in
            var out: [String: [MetadataResult]] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT * FROM agent_metadata ORDER BY key") {
                out[row["agent_id"], default: []].append(
                    MetadataResult(key: row["key"], value: row["value"], error: row["error"], collectedAt: row["collected_at"]))
            }
            return out
        }
    }

    /// Records a `hello`: returns the highest log seq stored for its session.
    public func startSession(agentID: String, hello: Hello, now: Int64) async throws -> UInt64 {
        try await db.write { db in
            try db.execute(
                sql: "INSERT OR IGNORE INTO agent_sessions (agent_id, session, started_at) VALUES (?, ?, ?)",
                arguments: [agentID, hello.session, now])
            try db.execute(
                sql: """
                    UPDATE agents SET version = ?, hostname = ?, last_connected_at = ?, last_seen_at = ?,
                      first_connected_at = COALESCE(first_connected_at, ?) WHERE id = ?
                    """, arguments: [String(hello.agentVersion.prefix(64)), String(hello.hostname.prefix(255)), now, now, now, agentID])
            return UInt64(try Int64.fetchOne(db, sql: "SELECT last_log_seq FROM agent_sessions WHERE agent_id = ? AND session = ?", arguments: [agentID, hello.session]) ?? 0)
        }
    }

    /// Stores the entries of `batch` above the session's highest seq, in one
    /// transaction with the new highest; returns (highest, stored entries).
    public func appendLogs(agentID: String, batch: LogBatch) async throws -> (UInt64, [LogEntry]) {
        try await db.write { db in
            let last = UInt64(try Int64.fetchOne(db, sql: "SELECT last_log_seq FROM agent_sessions WHERE agent_id = ? AND session = ?", arguments: [agentID, batch.session]) ?? 0)
            let fresh = batch.entries.filter { $0.seq > last }
            guard !fresh.isEmpty else { return (last, []) }
            let stmt = try db.cachedStatement(sql: "INSERT OR IGNORE INTO agent_logs (agent_id, session, seq, source, level, at, output) VALUES (?, ?, ?, ?, ?, ?, ?)")
            for e in fresh {
                try stmt.execute(arguments: [agentID, batch.session, Int64(e.seq), e.source, e.level.rawValue, e.at, e.output])
            }
            let high = max(last, fresh.map(\.seq).max()!)
            try db.execute(sql: "UPDATE agent_sessions SET last_log_seq = ? WHERE agent_id = ? AND session = ?", arguments: [Int64(high), agentID, batch.session])
            return (high, fresh)
        }
    }

    public func setLifecycle(agentID: String, session: String, _ update: LifecycleUpdate) async throws {
        try await db.write { db in
            try db.execute(
                sql: "UPDATE agents SET lifecycle = ?, lifecycle_changed_at = ?, session = ? WHERE id = ?",
                arguments: [update.state.rawValue, update.changedAt, session, agentID])
            try db.execute(
                sql: "INSERT INTO lifecycle_events (agent_id, session, state, changed_at) VALUES (?, ?, ?, ?)",
                arguments: [agentID, session, update.state.rawValue, update.changedAt])
        }
    }

    public func setDisconnected(agentID: String, at: Int64) async throws {
        try await db.write { db in
            try db.execute(sql: "UPDATE agents SET disconnected_at = ?, last_seen_at = ? WHERE id = ?", arguments: [at, at, agentID])
        }
    }

    /// The newest `limit` log entries of an agent's session, oldest first.
    public func logs(agentID: String, session: String, limit: Int) async throws -> [LogEntry] {
        try await db.read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM (SELECT seq, source, level, at, output FROM agent_logs WHERE agent_id = ? AND session = ? ORDER BY seq DESC LIMIT ?) ORDER BY seq",
                arguments: [agentID, session, limit]
            ).map { LogEntry(seq: UInt64($0["seq"] as Int64), source: $0["source"], level: LogLevel(rawValue: $0["level"]) ?? .info, at: $0["at"], output: $0["output"]) }
        }
    }

    /// Writes the latest metadata values and last-seen times (the hub
    /// batches them: at 1,000 agents reporting every second, one
    /// transaction every two seconds instead of a thousand a second).
    public func flush(metadata: [(String, MetadataResult)], lastSeen: [String: Int64]) async throws {
        guard !metadata.isEmpty || !lastSeen.isEmpty else { return }
        try await db.write { db in
            let m = try db.cachedStatement(sql: "INSERT OR REPLACE INTO agent_metadata (agent_id, key, value, error, collected_at) VALUES (?, ?, ?, ?, ?)")
            for (agent, r) in metadata { try m.execute(arguments: [agent, r.key, r.value, r.error, r.collectedAt]) }
            let s = try db.cachedStatement(sql: "UPDATE agents SET last_seen_at = ? WHERE id = ?")
            for (agent, t) in lastSeen { try s.execute(arguments: [t, agent]) }
        }
    }
}

func nowMS() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded()) }

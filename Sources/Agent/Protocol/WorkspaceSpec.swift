/// The workspace spec file: what `tether create --spec FILE` and
/// `POST /api/v1/workspaces` take. JSON, snake_case keys; every field but
/// `name` and `agents[].name` is optional. docs/workspace-spec.md is its
/// reference; `validate()` enforces it with messages that name the field.
///
/// ```json
/// { "name": "dev",
///   "agents": [ { "name": "main", "directory": "/work", "env": {"A": "1"},
///                 "motd_path": "/etc/motd",
///                 "scripts":  [ { "display_name": "setup", "script": "make deps",
///                                 "run_on_start": true, "timeout_seconds": 300,
///                                 "start_blocks_login": true } ],
///                 "apps":     [ { "slug": "web", "url": "http://127.0.0.1:8080",
///                                 "healthcheck": { "url": "http://127.0.0.1:8080/healthz",
///                                                  "interval_seconds": 5, "threshold": 3 } } ],
///                 "metadata": [ { "key": "load", "script": "cut -d' ' -f1 /proc/loadavg",
///                                 "interval_seconds": 1, "timeout_seconds": 1 } ] } ] }
/// ```
public struct WorkspaceSpec: Codable, Sendable, Equatable {
    public var name: String
    public var agents: [AgentSpec]

    public init(name: String, agents: [AgentSpec]) {
        self.name = name
        self.agents = agents
    }
}

/// One agent of a workspace: what its manifest will carry.
public struct AgentSpec: Codable, Sendable, Equatable {
    public var name: String
    /// Working directory of scripts (and later of SSH sessions); `~` expands
    /// to the agent user's home. Default: the home directory.
    public var directory: String?
    public var env: [String: String]?
    /// File shown as the message of the day on login.
    public var motdPath: String?
    public var scripts: [ScriptSpec]?
    public var apps: [AppSpec]?
    public var metadata: [MetadataSpec]?

    enum CodingKeys: String, CodingKey {
        case name, directory, env, scripts, apps, metadata
        case motdPath = "motd_path"
    }

    public init(
        name: String, directory: String? = nil, env: [String: String]? = nil, motdPath: String? = nil,
        scripts: [ScriptSpec]? = nil, apps: [AppSpec]? = nil, metadata: [MetadataSpec]? = nil
    ) {
        self.name = name
        self.directory = directory
        self.env = env
        self.motdPath = motdPath
        self.scripts = scripts
        self.apps = apps
        self.metadata = metadata
    }
}

/// A script run by `sh -c` in the agent's directory and environment.
public struct ScriptSpec: Codable, Sendable, Equatable {
    /// Names the script in logs and on the dashboard; unique per agent.
    public var displayName: String
    public var script: String
    public var runOnStart: Bool
    public var runOnStop: Bool
    /// Cron schedule (5 fields, or 6 with seconds first); runs after startup.
    public var cron: String?
    /// 0 means no timeout. A start script over it makes `start_timeout`, a
    /// stop script `shutdown_timeout`.
    public var timeoutSeconds: Int
    /// Reported to clients: logins wait until this script has finished.
    public var startBlocksLogin: Bool

    enum CodingKeys: String, CodingKey {
        case script, cron
        case displayName = "display_name"
        case runOnStart = "run_on_start"
        case runOnStop = "run_on_stop"
        case timeoutSeconds = "timeout_seconds"
        case startBlocksLogin = "start_blocks_login"
    }

    public init(
        displayName: String, script: String, runOnStart: Bool = false, runOnStop: Bool = false,
        cron: String? = nil, timeoutSeconds: Int = 0, startBlocksLogin: Bool = false
    ) {
        self.displayName = displayName
        self.script = script
        self.runOnStart = runOnStart
        self.runOnStop = runOnStop
        self.cron = cron
        self.timeoutSeconds = timeoutSeconds
        self.startBlocksLogin = startBlocksLogin
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        displayName = try c.decode(String.self, forKey: .displayName)
        script = try c.decode(String.self, forKey: .script)
        runOnStart = try c.decodeIfPresent(Bool.self, forKey: .runOnStart) ?? false
        runOnStop = try c.decodeIfPresent(Bool.self, forKey: .runOnStop) ?? false
        cron = try c.decodeIfPresent(String.self, forKey: .cron)
        timeoutSeconds = try c.decodeIfPresent(Int.self, forKey: .timeoutSeconds) ?? 0
        startBlocksLogin = try c.decodeIfPresent(Bool.self, forKey: .startBlocksLogin) ?? false
    }
}

/// A web app inside the workspace, with an optional health check.
public struct AppSpec: Codable, Sendable, Equatable {
    public var slug: String
    public var displayName: String?
    public var url: String
    public var healthcheck: HealthcheckSpec?

    enum CodingKeys: String, CodingKey {
        case slug, url, healthcheck
        case displayName = "display_name"
    }

    public init(slug: String, displayName: String? = nil, url: String, healthcheck: HealthcheckSpec? = nil) {
        self.slug = slug
        self.displayName = displayName
        self.url = url
        self.healthcheck = healthcheck
    }
}

/// `GET url` every `interval_seconds`; a 2xx or 3xx answer within the
/// interval is a success. `threshold` consecutive failures make the app
/// `unhealthy`; one success makes it `healthy` again (Coder's rule).
public struct HealthcheckSpec: Codable, Sendable, Equatable {
    public var url: String
    public var intervalSeconds: Int
    public var threshold: Int

    enum CodingKeys: String, CodingKey {
        case url, threshold
        case intervalSeconds = "interval_seconds"
    }

    public init(url: String, intervalSeconds: Int = 5, threshold: Int = 3) {
        self.url = url
        self.intervalSeconds = intervalSeconds
        self.threshold = threshold
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        url = try c.decode(String.self, forKey: .url)
        intervalSeconds = try c.decodeIfPresent(Int.self, forKey: .intervalSeconds) ?? 5
        threshold = try c.decodeIfPresent(Int.self, forKey: .threshold) ?? 3
    }
}

/// A value shown on the dashboard: the trimmed output of `script`, run
/// every `interval_seconds`, killed after `timeout_seconds`.
public struct MetadataSpec: Codable, Sendable, Equatable {
    public var key: String
    public var displayName: String?
    public var script: String
    public var intervalSeconds: Int
    public var timeoutSeconds: Int

    enum CodingKeys: String, CodingKey {
        case key, script
        case displayName = "display_name"
        case intervalSeconds = "interval_seconds"
        case timeoutSeconds = "timeout_seconds"
    }

    public init(key: String, displayName: String? = nil, script: String, intervalSeconds: Int = 10, timeoutSeconds: Int = 5) {
        self.key = key
        self.displayName = displayName
        self.script = script
        self.intervalSeconds = intervalSeconds
        self.timeoutSeconds = timeoutSeconds
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        key = try c.decode(String.self, forKey: .key)
        displayName = try c.decodeIfPresent(String.self, forKey: .displayName)
        script = try c.decode(String.self, forKey: .script)
        intervalSeconds = try c.decodeIfPresent(Int.self, forKey: .intervalSeconds) ?? 10
        timeoutSeconds = try c.decodeIfPresent(Int.self, forKey: .timeoutSeconds) ?? 5
    }
}

// MARK: - Validation

/// A spec that breaks a rule; `message` names the field, as in
/// `agents[0].scripts[1].timeout_seconds: must be 0 or more`.
public struct SpecError: Error, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension WorkspaceSpec {
    /// Names of workspaces, agents, app slugs and metadata keys: they appear
    /// in URLs and host names.
    public static func isValidName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...32).contains(bytes.count), bytes.first != UInt8(ascii: "-"), bytes.last != UInt8(ascii: "-")
        else { return false }
        return bytes.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == UInt8(ascii: "-") }
    }

    /// Throws the first broken rule.
    public func validate() throws(SpecError) {
        guard Self.isValidName(name) else {
            throw SpecError("name: \"\(name)\" must be 1-32 of a-z, 0-9 and '-', not starting or ending with '-'")
        }
        guard !agents.isEmpty else { throw SpecError("agents: a workspace needs at least one agent") }
        guard agents.count <= 16 else { throw SpecError("agents: at most 16 per workspace") }
        var agentNames = Set<String>()
        for (i, agent) in agents.enumerated() {
            let at = "agents[\(i)]"
            guard Self.isValidName(agent.name) else {
                throw SpecError("\(at).name: \"\(agent.name)\" must be 1-32 of a-z, 0-9 and '-'")
            }
            guard agentNames.insert(agent.name).inserted else { throw SpecError("\(at).name: \"\(agent.name)\" is used twice") }
            try agent.validate(at: at)
        }
    }
}

extension AgentSpec {
    func validate(at: String) throws(SpecError) {
        for key in (env ?? [:]).keys {
            guard !key.isEmpty, !key.utf8.contains(UInt8(ascii: "=")), !key.utf8.contains(0) else {
                throw SpecError("\(at).env: \"\(key)\" is not a valid variable name")
            }
        }
        var scriptNames = Set<String>()
        for (i, s) in (scripts ?? []).enumerated() {
            let here = "\(at).scripts[\(i)]"
            guard !s.displayName.isEmpty, s.displayName.utf8.count <= 64 else {
                throw SpecError("\(here).display_name: must be 1-64 bytes")
            }
            guard scriptNames.insert(s.displayName).inserted else {
                throw SpecError("\(here).display_name: \"\(s.displayName)\" is used twice")
            }
            guard s.runOnStart || s.runOnStop || s.cron != nil else {
                throw SpecError("\(here): set run_on_start, run_on_stop or cron, or the script never runs")
            }
            guard s.timeoutSeconds >= 0 else { throw SpecError("\(here).timeout_seconds: must be 0 (none) or more") }
            if let cron = s.cron {
                do { _ = try CronSchedule(parsing: cron) } catch { throw SpecError("\(here).cron: \(error.message)") }
            }
        }
        var slugs = Set<String>()
        for (i, app) in (apps ?? []).enumerated() {
            let here = "\(at).apps[\(i)]"
            guard WorkspaceSpec.isValidName(app.slug) else { throw SpecError("\(here).slug: \"\(app.slug)\" must be 1-32 of a-z, 0-9 and '-'") }
            guard slugs.insert(app.slug).inserted else { throw SpecError("\(here).slug: \"\(app.slug)\" is used twice") }
            guard HTTPURL(app.url) != nil else { throw SpecError("\(here).url: \"\(app.url)\" is not an http:// URL") }
            if let h = app.healthcheck {
                guard HTTPURL(h.url) != nil else { throw SpecError("\(here).healthcheck.url: \"\(h.url)\" is not an http:// URL") }
                guard h.intervalSeconds >= 1 else { throw SpecError("\(here).healthcheck.interval_seconds: must be 1 or more") }
                guard h.threshold >= 1 else { throw SpecError("\(here).healthcheck.threshold: must be 1 or more") }
            }
        }
        var keys = Set<String>()
        for (i, m) in (metadata ?? []).enumerated() {
            let here = "\(at).metadata[\(i)]"
            guard WorkspaceSpec.isValidName(m.key) else { throw SpecError("\(here).key: \"\(m.key)\" must be 1-32 of a-z, 0-9 and '-'") }
            guard keys.insert(m.key).inserted else { throw SpecError("\(here).key: \"\(m.key)\" is used twice") }
            guard m.intervalSeconds >= 1 else { throw SpecError("\(here).interval_seconds: must be 1 or more") }
            guard m.timeoutSeconds >= 1 else { throw SpecError("\(here).timeout_seconds: must be 1 or more") }
        }
        guard (metadata ?? []).count <= ControlLimits.maxItemsPerReport, (apps ?? []).count <= ControlLimits.maxItemsPerReport
        else { throw SpecError("\(at): at most \(ControlLimits.maxItemsPerReport) apps and metadata items") }
    }
}

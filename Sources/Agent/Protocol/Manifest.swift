/// What the control plane tells an agent in `welcome`: who it is and what to
/// run. Built from the agent's `AgentSpec` plus the identities the control
/// plane assigned.
public struct Manifest: Codable, Sendable, Equatable {
    public var agentID: String
    public var agentName: String
    public var workspaceID: String
    public var workspaceName: String
    public var directory: String
    public var env: [String: String]
    public var motdPath: String
    public var scripts: [ScriptSpec]
    public var apps: [AppSpec]
    public var metadata: [MetadataSpec]

    enum CodingKeys: String, CodingKey {
        case directory, env, scripts, apps, metadata
        case agentID = "agent_id"
        case agentName = "agent_name"
        case workspaceID = "workspace_id"
        case workspaceName = "workspace_name"
        case motdPath = "motd_path"
    }

    public init(agentID: String, workspaceID: String, workspaceName: String, spec: AgentSpec) {
        self.agentID = agentID
        self.agentName = spec.name
        self.workspaceID = workspaceID
        self.workspaceName = workspaceName
        self.directory = spec.directory ?? "~"
        self.env = spec.env ?? [:]
        self.motdPath = spec.motdPath ?? ""
        self.scripts = spec.scripts ?? []
        self.apps = spec.apps ?? []
        self.metadata = spec.metadata ?? []
    }
}

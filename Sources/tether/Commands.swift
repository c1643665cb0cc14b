import Agent
import ArgumentParser
import ControlPlane
import Logging

import Foundation

/// `tether server`: the control plane.
struct Server: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "server", abstract: "Run the control plane: API, agent endpoint, dashboard, metrics.")

    @Option(help: "Address to listen on, HOST:PORT (port 0 picks a free one).")
    var address = "127.0.0.1:3000"
    @Option(help: "Directory for the SQLite database.")
    var dataDir = (ProcessInfo.processInfo.environment["HOME"] ?? ".") + "/.local/share/tether"
    @Option(help: "URL agents and browsers use to reach this server (default: http://ADDRESS).")
    var accessURL: String?
    @Option(help: "TCP port of the embedded DERP relay on the same host (0: any free port; the DERP map names it).")
    var derpPort = 0
    @Option(help: "UDP port of the embedded STUN server on the same host (0: any free port).")
    var stunPort = 0
    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel = "info"
    @Flag(help: "Turn the app proxy (/apps/...) off. Proxied apps share this server's origin, so an app's scripts can call the API as the signed-in user; turn it off if workspaces may serve untrusted pages.")
    var disableAppProxy = false

    func run() async throws {
        guard (0...65535).contains(derpPort), (0...65535).contains(stunPort) else {
            throw ValidationError("--derp-port and --stun-port must be 0-65535")
        }
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else {
            throw ValidationError("--address must be HOST:PORT, e.g. 127.0.0.1:3000")
        }
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
        let host = String(address[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        var options = ServerOptions(host: host, port: port, dataDirectory: dataDir, accessURL: accessURL)
        options.derpPort = derpPort
        options.stunPort = stunPort
        options.appProxy = !disableAppProxy
        try await ControlPlaneServer.run(options)
    }
}

/// `tether agent`: the workspace agent.
struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent", abstract: "Run the workspace agent (dials out to the control plane).")

    @Option(help: "Control plane URL (or TETHER_AGENT_URL).")
    var url: String?
    @Option(help: "Agent token (prefer TETHER_AGENT_TOKEN: arguments are visible to other users).")
    var token: String?
    @Option(help: "Directory of the agent's rotating log file (or TETHER_AGENT_LOG_DIR).")
    var logDir: String?
    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel = "info"
    @Flag(
        inversion: .prefixedNo,
        help: "Let go of code pages the agent stopped using (every 60 s; they stay cached and return when touched).")
    var trimMemory = true

    func run() async throws {
        let env = ProcessInfo.processInfo.environment
        guard let url = url ?? env["TETHER_AGENT_URL"] else { throw ValidationError("give --url or set TETHER_AGENT_URL") }
        guard let token = token ?? env["TETHER_AGENT_TOKEN"], !token.isEmpty else {
            throw ValidationError("give --token or set TETHER_AGENT_TOKEN")
        }
        let dir = logDir ?? env["TETHER_AGENT_LOG_DIR"] ?? ((env["TMPDIR"] ?? "/tmp") + "/tether-agent")
        AgentLogging.bootstrap(directory: dir, level: Logger.Level(rawValue: logLevel) ?? .info)
        var options = AgentOptions(url: url, token: token)
        if !trimMemory { options.trimInterval = nil }
        let status = await AgentRuntime(options: options).run()
        if status != 0 { throw ExitCode(status) }
    }
}

/// `tether login`: bootstrap the first user, or store an existing token.
struct Login: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "login", abstract: "Sign in to a control plane (creating the first user if asked).")

    @Argument(help: "Control plane URL, e.g. http://127.0.0.1:3000")
    var url: String
    @Option(help: "Create the first user with this name (only works on a new control plane).")
    var firstUser: String?
    @Option(help: "An API token to use.")
    var token: String?

    func run() throws {
        var session: CLISession
        if let firstUser {
            let body = try JSONEncoder().encode(["name": firstUser])
            let (status, data) = try APIClient(baseURL: url, token: nil).request("POST", "/api/v1/users/first", json: body)
            guard status == 201, let reply = try? JSONDecoder().decode([String: String].self, from: data), let t = reply["token"] else {
                throw ValidationError("first-user bootstrap failed (HTTP \(status)): \(String(decoding: data, as: UTF8.self))")
            }
            session = CLISession(url: url, token: t)
        } else if let token {
            session = CLISession(url: url, token: token)
        } else {
            throw ValidationError("give --first-user NAME (new control plane) or --token TOKEN")
        }
        let (status, data) = try APIClient(baseURL: url, token: session.token).request("GET", "/api/v1/users/me")
        guard status == 200 else { throw ValidationError("the control plane refused the token (HTTP \(status))") }
        try session.save()
        let me = (try? JSONDecoder().decode([String: String].self, from: data))?["name"] ?? "?"
        print("signed in to \(url) as \(me); session saved in \(CLISession.directory)/session.json")
    }
}

/// `tether create --spec FILE`: a workspace from a spec file.
struct Create: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create", abstract: "Create a workspace from a spec file (docs/workspace-spec.md).")

    @Option(help: "Workspace spec file (JSON).")
    var spec: String
    @Option(help: "Override the spec's workspace name.")
    var name: String?
    @Flag(help: "Print the reply as JSON (agent tokens included).")
    var json = false

    func run() throws {
        guard let data = FileManager.default.contents(atPath: spec) else { throw ValidationError("cannot read \(spec)") }
        var parsed: WorkspaceSpec
        do { parsed = try JSONDecoder().decode(WorkspaceSpec.self, from: data) } catch {
            throw ValidationError("\(spec) is not a valid workspace spec: \(error)")
        }
        if let name { parsed.name = name }
        do { try parsed.validate() } catch { throw ValidationError("\(spec): \(error.message)") }
        let session = try CLISession.load()
        let (status, reply) = try APIClient(baseURL: session.url, token: session.token)
            .request("POST", "/api/v1/workspaces", json: try JSONEncoder().encode(parsed))
        guard status == 201 else { throw ValidationError("create failed (HTTP \(status)): \(String(decoding: reply, as: UTF8.self))") }
        if json {
            print(String(decoding: reply, as: UTF8.self), terminator: "")
            return
        }
        struct Created: Decodable {
            struct A: Decodable { let name: String; let token: String }
            let name: String
            let agents: [A]
            let init_script_url: String
        }
        let created = try JSONDecoder().decode(Created.self, from: reply)
        print("workspace \(created.name) created. Start each agent inside the workspace with:")
        for a in created.agents {
            print("\n  # agent \(a.name)")
            print("  TETHER_AGENT_TOKEN=\(a.token) sh -c \"$(curl -fsSL \(created.init_script_url))\"")
        }
        print("\nThe tokens are shown only now; the control plane keeps only their hashes.")
    }
}

/// `tether list`: workspaces and their agents' state.
struct List: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List workspaces and agents.")

    func run() throws {
        let session = try CLISession.load()
        let (status, data) = try APIClient(baseURL: session.url, token: session.token).request("GET", "/api/v1/workspaces")
        guard status == 200 else { throw ValidationError("HTTP \(status): \(String(decoding: data, as: UTF8.self))") }
        struct View: Decodable { let workspace: String; let name: String; let connected: Bool; let lifecycle: String; let version: String }
        for v in try JSONDecoder().decode([View].self, from: data) {
            print("\(v.workspace).\(v.name)\t\(v.lifecycle)\t\(v.connected ? "connected" : "disconnected")\t\(v.version)")
        }
    }
}

/// `tether dashboard`: a one-time sign-in link for the browser.
struct Dashboard: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dashboard", abstract: "Print a one-time link that signs a browser in to the dashboard.")

    func run() throws {
        let session = try CLISession.load()
        let (status, data) = try APIClient(baseURL: session.url, token: session.token).request("POST", "/api/v1/login-links")
        guard status == 201, let url = (try? JSONDecoder().decode([String: String].self, from: data))?["url"] else {
            throw ValidationError("HTTP \(status): \(String(decoding: data, as: UTF8.self))")
        }
        print(url)
    }
}

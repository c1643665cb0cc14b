import Agent
import ArgumentParser
import CryptoPrimitives
import HTTPTypes
import Logging
import Mesh
import Synchronization
import NIOPosix
import WSClient
import WireGuardCore

import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// `tether ssh --stdio WORKSPACE[.AGENT][.SUFFIX]`: OpenSSH's ProxyCommand.
/// Joins the tailnet in this process (a mesh node with the address the
/// control plane assigns), dials the agent's SSH port through it and moves
/// the bytes between that connection and stdin/stdout. The path starts on
/// the DERP relay and moves to a direct UDP path when disco finds one,
/// without the SSH session noticing.
struct SSHCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ssh",
        abstract: "Carry an SSH connection to a workspace over the tailnet (OpenSSH's ProxyCommand).",
        discussion: """
            Used by the Host block `tether config-ssh` writes: `ssh NAME.coder` runs
            `tether ssh --stdio NAME.coder`. NAME is a workspace, or WORKSPACE.AGENT when
            the workspace has several agents.
            """)

    @Flag(help: "Use stdin and stdout as the connection (required: how OpenSSH runs a ProxyCommand).")
    var stdio = false
    @Argument(help: "WORKSPACE[.AGENT], optionally followed by the host suffix (.coder).")
    var target: String
    @Option(help: "Host suffix to strip from the target.")
    var suffix = "coder"
    @Option(help: "Seconds to wait for the agent's tunnel before giving up.")
    var timeout: Double = 30
    @Option(help: "Tunnel port of the agent's SSH server.")
    var port: UInt16 = 22

    func run() async throws {
        guard stdio else {
            throw ValidationError("only --stdio is supported: run `tether config-ssh`, then `ssh WORKSPACE.\(suffix)`")
        }
        // stdout carries the SSH stream: every log line goes to stderr, and
        // only warnings and errors.
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = .warning
            return h
        }
        let (workspace, agent) = Self.parse(target, suffix: suffix)
        let session = try CLISession.load()
        try Self.checkAgent(session: session, workspace: workspace, agent: agent)

        var query = "workspace=\(workspace)"
        if let agent { query += "&agent=\(agent)" }
        var headers = HTTPFields()
        headers[.authorization] = "Bearer \(session.token)"
        let config = WebSocketClientConfiguration(
            maxFrameSize: ControlLimits.maxMessageBytes, additionalHeaders: headers, autoPing: .enabled(timePeriod: .seconds(15)))
        let url = Self.socketURL(base: session.url) + "?" + query
        let deadline = timeout
        let name = target
        // Nothing arrives in time: say so and give up (the bridge exits the
        // process itself once connected).
        let watchdog = Task {
            try await Task.sleep(for: .seconds(deadline))
            Self.fail("no tunnel to \(name) within \(Int(deadline)) s: the agent did not answer through the control plane")
        }
        let client = WebSocketClient(
            url: url, configuration: config, eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
            logger: Logger(label: "tether.ssh")
        ) { inbound, outbound, _ in
            let (updates, update) = AsyncStream<NodeInfo>.makeStream()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await node in updates {
                        let bytes = ControlCodec.encode(AgentMessage.node(NodeUpdate(node: node)))
                        try await outbound.write(.text(String(decoding: bytes, as: UTF8.self)))
                    }
                }
                var node: MeshNode?
                var agentAddress: IPAddress?
                let dialer = Dialer(port: port, watchdog: watchdog)
                for try await frame in inbound.messages(maxSize: ControlLimits.maxMessageBytes) {
                    guard case .text(let text) = frame else { continue }
                    switch try ControlCodec.decodeServerMessage(text.utf8) {
                    case .tunnel(let tunnel):
                        guard node == nil else { continue }
                        let address = try tunnel.tailnetAddress()
                        let made = try MeshNode(
                            privateKey: X25519.PrivateKey(),
                            configuration: MeshNode.Configuration(addresses: [address], derpMap: try tunnel.meshDERPMap()))
                        made.onEndpointsChanged = { [weak made] _ in
                            if let made { update.yield(NodeInfo(of: made, address: address)) }
                        }
                        await made.start()
                        update.yield(NodeInfo(of: made, address: address))
                        node = made
                    case .peerUpsert(let upsert):
                        guard let node else { continue }
                        let peer = try upsert.node.meshPeer()
                        try node.upsertPeer(peer)
                        if agentAddress == nil, let address = peer.addresses.first?.address {
                            agentAddress = address
                            Task {
                                try await Task.sleep(for: .seconds(2))
                                dialer.dial(node, address)
                            }
                        }
                    case .readyForHandshake:
                        if let node, let agentAddress { dialer.dial(node, agentAddress) }
                    case .peerRemove(let remove):
                        if let key = try? X25519.PublicKey(base64: remove.nodeKey) { node?.removePeer(nodeKey: key) }
                    case .error(let error):
                        Self.fail("the control plane refused: \(error.message)")
                    default:
                        break
                    }
                }
                update.finish()
                group.cancelAll()
            }
        }
        do {
            try await client.run()
        } catch {
            Self.fail("coordination with \(session.url) failed: \(error)")
        }
        Self.fail("the control plane closed the coordination connection")
    }

    /// Dials once: when the agent said it knows us (`ready_for_handshake`),
    /// or, with an agent that never says so, a moment after its node arrived.
    final class Dialer: Sendable {
        let port: UInt16
        let watchdog: Task<Void, any Error>
        private let dialed = Atomic<Bool>(false)

        init(port: UInt16, watchdog: Task<Void, any Error>) {
            self.port = port
            self.watchdog = watchdog
        }

        func dial(_ node: MeshNode, _ address: IPAddress) {
            guard !dialed.exchange(true, ordering: .relaxed) else { return }
            let (port, watchdog) = (self.port, self.watchdog)
            Task { await SSHCommand.connect(node, to: address, port: port, watchdog: watchdog) }
        }
    }

    /// Dials the agent and bridges stdin/stdout; exits when both directions end.
    static func connect(_ node: MeshNode, to address: IPAddress, port: UInt16, watchdog: Task<Void, any Error>) async {
        do {
            let stream = try await node.dial(address, port: port)
            watchdog.cancel()
            stream.setNoDelay(true)
            StreamBridge.run(stream, readFD: 0, writeFD: 1, closeDescriptors: false) { Glibc.exit(0) }
        } catch {
            fail("cannot reach the agent's SSH server at [\(address)]:\(port): \(error)")
        }
    }

    /// `ws.agent.coder` → ("ws", "agent"); `ws.coder` → ("ws", nil).
    static func parse(_ target: String, suffix: String) -> (String, String?) {
        var name = Substring(target)
        if let at = name.lastIndex(of: "@") { name = name[name.index(after: at)...] }
        if !suffix.isEmpty, name.hasSuffix("." + suffix) { name = name.dropLast(suffix.count + 1) }
        let parts = name.split(separator: ".", maxSplits: 1)
        return (String(parts.first ?? ""), parts.count > 1 ? String(parts[1]) : nil)
    }

    /// Clear errors before any tunnel work: the workspace and agent exist
    /// and the agent is connected.
    static func checkAgent(session: CLISession, workspace: String, agent: String?) throws {
        let (status, data) = try APIClient(baseURL: session.url, token: session.token).request("GET", "/api/v1/workspaces")
        guard status == 200 else {
            fail(
                status == 401
                    ? "the control plane at \(session.url) refused the saved token: run `tether login \(session.url) --token …`"
                    : "listing workspaces failed (HTTP \(status)): \(String(decoding: data, as: UTF8.self))")
        }
        struct View: Decodable { let workspace: String; let name: String; let connected: Bool; let lifecycle: String }
        let views = try JSONDecoder().decode([View].self, from: data).filter { $0.workspace == workspace }
        guard !views.isEmpty else { fail("no workspace named \(workspace) (`tether list` shows yours)") }
        let chosen: View
        if let agent {
            guard let v = views.first(where: { $0.name == agent }) else {
                fail("workspace \(workspace) has no agent \(agent); its agents: \(views.map(\.name).joined(separator: ", "))")
            }
            chosen = v
        } else {
            guard views.count == 1 else {
                fail("workspace \(workspace) has several agents; use \(workspace).AGENT with one of: \(views.map(\.name).joined(separator: ", "))")
            }
            chosen = views[0]
        }
        guard chosen.connected else {
            fail("agent \(workspace).\(chosen.name) is not connected to the control plane (lifecycle \(chosen.lifecycle)); is the workspace running?")
        }
    }

    static func socketURL(base: String) -> String {
        var b = base
        while b.hasSuffix("/") { b.removeLast() }
        if b.hasPrefix("https://") { b = "wss://" + b.dropFirst(8) } else if b.hasPrefix("http://") { b = "ws://" + b.dropFirst(7) }
        return b + "/api/v1/coordinate"
    }

    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("tether ssh: \(message)\n".utf8))
        Glibc.exit(1)
    }
}

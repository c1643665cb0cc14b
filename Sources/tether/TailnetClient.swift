import Agent
import CryptoPrimitives
import Foundation
import HTTPTypes
import Logging
import Mesh
import NIOPosix
import Synchronization
import WSClient
import WireGuardCore

#if canImport(Glibc)
    import Glibc
#endif

/// The client side of the tailnet, shared by `tether ssh`, `port-forward`
/// and `ping`: checks that the workspace's agent exists and is connected,
/// joins the tailnet in this process (a mesh node with the address the
/// control plane assigns, through `GET /api/v1/coordinate`), and calls
/// `ready` once with the node and the agent's tailnet address, when the
/// agent said it knows us (`ready_for_handshake`) or, with an agent that
/// never says so, a moment after its node arrived. The path starts on DERP
/// and moves to a direct UDP path when disco finds one.
///
/// Every failure ends the process with a message on stderr naming the
/// command, because each caller is a command-line tool with nothing left to
/// do without the tunnel.
struct TailnetClient {
    /// The subcommand, for messages: "ssh", "port-forward", "ping".
    let command: String
    /// WORKSPACE[.AGENT][.SUFFIX] as the user typed it.
    let target: String
    let suffix: String
    /// Seconds to wait for the agent's tunnel.
    let timeout: Double

    /// Joins and never returns: the process ends through `ready`'s work or
    /// through `fail`. `ready` runs once; it cancels the returned watchdog
    /// when its own work got through (until then, the watchdog ends the
    /// process after `timeout` seconds with a clear message).
    func join(ready: @escaping @Sendable (MeshNode, IPAddress, Task<Void, any Error>) -> Void) async -> Never {
        let (workspace, agent) = Self.parse(target, suffix: suffix)
        let session: CLISession
        do { session = try CLISession.load() } catch { fail("\(error)") }
        checkAgent(session: session, workspace: workspace, agent: agent)

        var query = "workspace=\(workspace)"
        if let agent { query += "&agent=\(agent)" }
        var headers = HTTPFields()
        headers[.authorization] = "Bearer \(session.token)"
        let config = WebSocketClientConfiguration(
            maxFrameSize: ControlLimits.maxMessageBytes, additionalHeaders: headers,
            autoPing: .enabled(timePeriod: .seconds(15)))
        let url = Self.socketURL(base: session.url) + "?" + query
        let (deadline, name) = (timeout, target)
        let watchdog = Task {
            try await Task.sleep(for: .seconds(deadline))
            fail("no tunnel to \(name) within \(Int(deadline)) s: the agent did not answer through the control plane")
        }
        let once = Once(ready)
        let client = WebSocketClient(
            url: url, configuration: config, eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
            logger: Logger(label: "tether.\(command)")
        ) { [self] inbound, outbound, _ in
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
                        // Introduced before it dials DERP: the relay admits known keys only.
                        update.yield(NodeInfo(of: made, address: address))
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
                                once.run(node, address, watchdog)
                            }
                        }
                    case .readyForHandshake:
                        if let node, let agentAddress { once.run(node, agentAddress, watchdog) }
                    case .peerRemove(let remove):
                        if let key = try? X25519.PublicKey(base64: remove.nodeKey) { node?.removePeer(nodeKey: key) }
                    case .error(let error):
                        fail("the control plane refused: \(error.message)")
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
            fail("coordination with \(session.url) failed: \(error)")
        }
        fail("the control plane closed the coordination connection")
    }

    /// Runs the ready callback at most once.
    final class Once: Sendable {
        private let body: @Sendable (MeshNode, IPAddress, Task<Void, any Error>) -> Void
        private let done = Atomic<Bool>(false)

        init(_ body: @escaping @Sendable (MeshNode, IPAddress, Task<Void, any Error>) -> Void) { self.body = body }

        func run(_ node: MeshNode, _ address: IPAddress, _ watchdog: Task<Void, any Error>) {
            guard !done.exchange(true, ordering: .relaxed) else { return }
            body(node, address, watchdog)
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
    func checkAgent(session: CLISession, workspace: String, agent: String?) {
        let status: Int
        let data: Data
        do {
            (status, data) = try APIClient(baseURL: session.url, token: session.token).request("GET", "/api/v1/workspaces")
        } catch {
            fail("cannot reach the control plane at \(session.url): \(error)")
        }
        guard status == 200 else {
            fail(
                status == 401
                    ? "the control plane at \(session.url) refused the saved token: run `tether login \(session.url) --token …`"
                    : "listing workspaces failed (HTTP \(status)): \(String(decoding: data, as: UTF8.self))")
        }
        struct View: Decodable { let workspace: String; let name: String; let connected: Bool; let lifecycle: String }
        guard let all = try? JSONDecoder().decode([View].self, from: data) else {
            fail("the control plane at \(session.url) answered the workspace list with something that is not one")
        }
        let views = all.filter { $0.workspace == workspace }
        guard !views.isEmpty else { fail("no workspace named \(workspace) (`tether list` shows yours)") }
        let chosen: View
        if let agent {
            guard let v = views.first(where: { $0.name == agent }) else {
                fail("workspace \(workspace) has no agent \(agent); its agents: \(views.map(\.name).joined(separator: ", "))")
            }
            chosen = v
        } else {
            guard views.count == 1 else {
                fail(
                    "workspace \(workspace) has several agents; use \(workspace).AGENT with one of: \(views.map(\.name).joined(separator: ", "))"
                )
            }
            chosen = views[0]
        }
        guard chosen.connected else {
            fail(
                "agent \(workspace).\(chosen.name) is not connected to the control plane (lifecycle \(chosen.lifecycle)); is the workspace running?"
            )
        }
    }

    static func socketURL(base: String) -> String {
        var b = base
        while b.hasSuffix("/") { b.removeLast() }
        if b.hasPrefix("https://") { b = "wss://" + b.dropFirst(8) } else if b.hasPrefix("http://") { b = "ws://" + b.dropFirst(7) }
        return b + "/api/v1/coordinate"
    }

    func fail(_ message: String) -> Never {
        TailnetClient.fail(command, message)
    }

    static func fail(_ command: String, _ message: String) -> Never {
        FileHandle.standardError.write(Data("tether \(command): \(message)\n".utf8))
        Glibc.exit(1)
    }
}

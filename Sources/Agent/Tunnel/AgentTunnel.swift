import CryptoPrimitives
import Logging
import Mesh
import Netstack
import SSHServer
import Synchronization
import WireGuardCore

/// The agent's side of the tailnet: a mesh node (WireGuard + disco + STUN
/// + DERP + Netstack, no TUN device, no inbound port) whose peers come from
/// coordination, the SSH server on tunnel ports 22 and 1 and the speedtest
/// on port 3 (DESIGN.md, "Addresses and ports inside the tunnel"), and every
/// other TCP port forwarded to the workspace's loopback
/// (`LoopbackForwarder`).
///
/// Coordination messages are applied in arrival order by one task, so a
/// `peer_upsert` that follows a `tunnel` always finds the node started.
public final class AgentTunnel: Sendable {
    /// Tunnel ports served by the SSH server.
    public static let sshPorts: [UInt16] = [22, 1]

    let ssh: SSHServer
    let logger: Logger
    /// Tunnel connections to other ports go to the workspace's loopback.
    public let forwarder: LoopbackForwarder
    /// Sends this node's description to the control plane (and again on
    /// every endpoint change).
    let publish: @Sendable (NodeInfo) -> Void
    /// Tells the control plane a peer was added (`ready_for_handshake`).
    let peerReady: @Sendable (String) -> Void
    private let commands: AsyncStream<Command>.Continuation
    private let worker: Task<Void, Never>
    private let current = Mutex<Running?>(nil)

    enum Command: Sendable {
        case configure(TunnelConfig)
        case upsert(NodeInfo)
        case remove(String)
    }

    struct Running: Sendable {
        let node: MeshNode
        let config: TunnelConfig
        let address: WireGuardCore.IPAddress
        let listeners: [TCPListener]
    }

    /// `identity` is a secret only this agent has (its token): the SSH host
    /// key derives from it, so `known_hosts` entries survive restarts.
    public init(
        identity: String, motdPath: String?, logger: Logger, publish: @escaping @Sendable (NodeInfo) -> Void,
        peerReady: @escaping @Sendable (String) -> Void
    ) {
        let seed = BLAKE2s.hash(Array("tether ssh host key".utf8), Array(identity.utf8))
        var configuration = SSHServerConfiguration(hostKeySeed: seed, authentication: .none, motdPath: motdPath)
        let log = logger
        configuration.log = { line in log.info("\(line)") }
        ssh = SSHServer(configuration: configuration)
        self.logger = logger
        forwarder = LoopbackForwarder(logger: logger)
        self.publish = publish
        self.peerReady = peerReady
        let (stream, continuation) = AsyncStream<Command>.makeStream()
        commands = continuation
        let box = WeakBox()
        worker = Task {
            for await command in stream { await box.value?.apply(command) }
        }
        box.value = self
    }

    /// The SSH host key, `ssh-ed25519 AAAA…`.
    public var hostPublicKey: String { ssh.hostPublicKey }

    public func configure(_ config: TunnelConfig) { commands.yield(.configure(config)) }
    public func upsertPeer(_ node: NodeInfo) { commands.yield(.upsert(node)) }
    public func removePeer(nodeKey: String) { commands.yield(.remove(nodeKey)) }

    /// Stops the node and the listeners.
    public func stop() async {
        commands.finish()
        worker.cancel()
        if let running = current.withLock({ r -> Running? in defer { r = nil }; return r }) {
            for l in running.listeners { l.close() }
            await running.node.stop()
        }
    }

    private func apply(_ command: Command) async {
        switch command {
        case .configure(let config):
            await start(config)
        case .upsert(let info):
            guard let node = current.withLock({ $0?.node }) else {
                logger.warning("peer_upsert before tunnel: ignored")
                return
            }
            do {
                try node.upsertPeer(try info.meshPeer())
                logger.debug("tunnel peer \(info.nodeKey.prefix(8))… \(info.addresses.joined(separator: ",")) added or updated")
                peerReady(info.nodeKey)
            } catch {
                logger.warning("peer_upsert refused: \(error)")
            }
        case .remove(let key):
            guard let node = current.withLock({ $0?.node }), let k = try? X25519.PublicKey(base64: key) else { return }
            node.removePeer(nodeKey: k)
            logger.info("tunnel peer \(key.prefix(8))… removed")
        }
    }

    /// Starts the node for `config`, or restarts it when the address or the
    /// DERP map changed (peers come again from the control plane, which
    /// re-sends them after every `tunnel`).
    private func start(_ config: TunnelConfig) async {
        if let running = current.withLock({ $0 }) {
            if running.config == config {
                publish(NodeInfo(of: running.node, address: running.address))
                return
            }
            current.withLock { $0 = nil }
            for l in running.listeners { l.close() }
            await running.node.stop()
        }
        do {
            let address = try config.tailnetAddress()
            let map = try config.meshDERPMap()
            var configuration = MeshNode.Configuration(addresses: [address], derpMap: map)
            configuration.forwarder = forwarder.netstackForwarder
            let node = try MeshNode(privateKey: X25519.PrivateKey(), configuration: configuration)
            forwarder.attach(node.stack)
            let publish = self.publish
            node.onEndpointsChanged = { [weak node] _ in
                if let node { publish(NodeInfo(of: node, address: address)) }
            }
            // Introduce the key before dialing DERP: the control plane's
            // relay admits only keys coordination knows.
            publish(NodeInfo(of: node, address: address))
            await node.start()
            var listeners: [TCPListener] = []
            for port in Self.sshPorts {
                let listener = try node.listen(port: port)
                listeners.append(listener)
                Task { [ssh, logger] in await Self.acceptSSH(listener, ssh: ssh, logger: logger) }
            }
            let speedtest = try node.listen(port: Speedtest.port)
            listeners.append(speedtest)
            Task { [logger] in await SpeedtestServer.serve(speedtest, logger: logger) }
            current.withLock { $0 = Running(node: node, config: config, address: address, listeners: listeners) }
            logger.info("tunnel up: \(address), home DERP region \(node.homeRegion.map(String.init) ?? "none"), SSH on ports \(Self.sshPorts), speedtest on \(Speedtest.port)")
            publish(NodeInfo(of: node, address: address))
        } catch {
            logger.error("tunnel not started: \(error)")
        }
    }

    /// Hands each connection to the SSH server through a socketpair.
    private static func acceptSSH(_ listener: TCPListener, ssh: SSHServer, logger: Logger) async {
        while true {
            let stream: TCPStream
            do { stream = try await listener.accept() } catch { return }
            stream.setNoDelay(true)
            let endpoints = SSHConnectionEndpoints(
                clientAddress: "\(stream.remoteAddress.address)", clientPort: stream.remoteAddress.port,
                serverAddress: "\(stream.localAddress.address)", serverPort: stream.localAddress.port)
            do {
                let fd = try ssh.serveBridged(endpoints: endpoints)
                StreamBridge.run(stream, readFD: fd, writeFD: fd, closeDescriptors: true)
            } catch {
                logger.warning("SSH connection from \(stream.remoteAddress) dropped: \(error)")
                stream.abort()
            }
        }
    }
}

/// Lets the worker task reach the tunnel without keeping it alive.
private final class WeakBox: @unchecked Sendable {
    weak var value: AgentTunnel?
}

import Logging
import NIOCore
import Synchronization

/// This server's connection to one neighbour of its region. It logs in
/// with the server's own key and the mesh key, sends WatchConns, and turns
/// the neighbour's PeerPresent / PeerGone stream into routes here; packets
/// for the neighbour's clients leave through it as ForwardPacket. When the
/// link breaks, every route through it is dropped and it dials again.
/// A neighbour that stays unreachable longer than `meshHealthGrace` is a
/// health problem the server reports to its clients.
final class MeshLink: Sendable {
    let client: DERPClient
    let peer: DERPURL
    private weak let server: DERPServer?
    private let eventLoop: any EventLoop
    private let isUp = Atomic<Bool>(false)
    /// Bumped on every up or down, so a stale grace timer does nothing.
    private let generation = Atomic<Int>(0)

    init(server: DERPServer, peer: DERPURL, meshKey: String, group: any EventLoopGroup) {
        self.server = server
        self.peer = peer
        eventLoop = group.next()
        var options = DERPClient.Options()
        // A neighbour coming back is noticed within seconds.
        options.maximumBackoff = .seconds(2)
        options.meshKey = meshKey
        options.watchConnectionChanges = true
        options.transport = .upgrade
        options.logger = server.logger
        options.logger[metadataKey: "mesh_peer"] = "\(peer)"
        client = DERPClient(url: peer, privateKey: server.privateKey.duplicate(), options: options, group: group) { _, _ in }
    }

    func start() {
        wentDown()
        client.start()
        Task { [self] in
            for await event in client.events {
                guard let server else { return }
                switch event {
                case .connected:
                    isUp.store(true, ordering: .relaxed)
                    generation.add(1, ordering: .relaxed)
                    server.setMeshProblem(nil, for: peer)
                case .peerPresent(let present):
                    guard !present.flags.contains(.meshPeer), present.key != server.publicKey else { continue }
                    server.remotePresent(present.key, via: self)
                case .peerGone(let key, _):
                    server.remoteGone(key, via: self)
                case .disconnected:
                    server.linkDown(self)
                    wentDown()
                default:
                    break
                }
            }
        }
    }

    /// Starts the grace period after which an unreachable neighbour is a
    /// health problem.
    private func wentDown() {
        isUp.store(false, ordering: .relaxed)
        let current = generation.add(1, ordering: .relaxed).newValue
        guard let grace = server?.configuration.meshHealthGrace else { return }
        eventLoop.scheduleTask(in: grace) { [weak self] in
            guard let self, let server = self.server, !self.isUp.load(ordering: .relaxed),
                self.generation.load(ordering: .relaxed) == current, !self.stopped.load(ordering: .relaxed)
            else { return }
            server.setMeshProblem("mesh peer \(self.peer) unreachable", for: self.peer)
        }
    }

    func forward(source: NodeKey, destination: NodeKey, packet: ByteBuffer) -> Bool {
        client.forward(source: source, destination: destination, packet: packet)
    }

    private let stopped = Atomic<Bool>(false)

    func stop() async {
        stopped.store(true, ordering: .relaxed)
        server?.setMeshProblem(nil, for: peer)
        await client.close()
    }
}

extension DERPServer {
    /// Starts watching the configured mesh neighbours (once).
    public func startMesh(group: any EventLoopGroup) {
        guard let meshKey = configuration.meshKey, !configuration.meshPeers.isEmpty else { return }
        let links = mesh.withLock { links -> [MeshLink] in
            guard links.isEmpty else { return [] }
            links = configuration.meshPeers.map { MeshLink(server: self, peer: $0, meshKey: meshKey, group: group) }
            return links
        }
        for link in links { link.start() }
    }

    public func stopMesh() {
        let links = mesh.withLock { links in
            defer { links = [] }
            return links
        }
        for link in links { Task { await link.stop() } }
    }
}

import Logging
import NIOCore

/// This server's connection to one neighbour of its region. It logs in
/// with the server's own key and the mesh key, sends WatchConns, and turns
/// the neighbour's PeerPresent / PeerGone stream into routes here; packets
/// for the neighbour's clients leave through it as ForwardPacket. When the
/// link breaks, every route through it is dropped and it dials again.
final class MeshLink: Sendable {
    let client: DERPClient
    private weak let server: DERPServer?

    init(server: DERPServer, peer: DERPURL, meshKey: String, group: any EventLoopGroup) {
        self.server = server
        var options = DERPClient.Options()
        options.meshKey = meshKey
        options.watchConnectionChanges = true
        options.transport = .upgrade
        options.logger = server.logger
        options.logger[metadataKey: "mesh_peer"] = "\(peer)"
        client = DERPClient(url: peer, privateKey: server.privateKey.duplicate(), options: options, group: group) { _, _ in }
    }

    func start() {
        client.start()
        Task { [self] in
            for await event in client.events {
                guard let server else { return }
                switch event {
                case .peerPresent(let present):
                    guard !present.flags.contains(.meshPeer), present.key != server.publicKey else { continue }
                    server.remotePresent(present.key, via: self)
                case .peerGone(let key, _):
                    server.remoteGone(key, via: self)
                case .disconnected:
                    server.linkDown(self)
                default:
                    break
                }
            }
        }
    }

    func forward(source: NodeKey, destination: NodeKey, packet: ByteBuffer) -> Bool {
        client.forward(source: source, destination: destination, packet: packet)
    }

    func stop() async { await client.close() }
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

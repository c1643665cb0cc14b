import CryptoPrimitives
import Logging
import NIOCore
import Synchronization

/// A DERP relay: the table of logged-in clients, routing between them,
/// PeerGone bookkeeping and the regional mesh. Transport-free: connections
/// reach it through `ServerConnection` (a channel handler for a byte stream
/// after `GET /derp` upgraded it) and `DERPHTTPServer` (the HTTP front).
///
/// Embedding: the control plane creates one `DERPServer` and either binds
/// it (`DERPHTTPServer.bind`) or mounts it on its own NIO pipeline with
/// `configureHTTP(on:)` or, after its own upgrade, `serveStream(on:)`.
public final class DERPServer: Sendable {
    public let publicKey: NodeKey
    let privateKey: X25519.PrivateKey
    public let configuration: Configuration
    public let metrics = DERPMetrics()
    var logger: Logger { configuration.logger }
    let registry = Mutex(Registry())
    let mesh = Mutex<[MeshLink]>([])
    let health = Mutex(HealthState())

    struct Registry: ~Copyable {
        var clients: [NodeKey: ClientHandle] = [:]
        /// Clients of mesh neighbours, and the link that reaches each.
        var remotes: [NodeKey: MeshLink] = [:]
        var watchers: [UInt64: ClientHandle] = [:]
        /// Who exchanged packets with whom through this server (both
        /// directions), so that when one leaves the others hear PeerGone.
        var talkedWith: [NodeKey: Set<NodeKey>] = [:]
        var nextConnectionID: UInt64 = 1
    }

    /// Largest buffer one drain writes at a time: big enough for few
    /// syscalls, small enough that the allocator recycles it.
    static let writeChunk = 64 << 10

    public init(privateKey: consuming X25519.PrivateKey, configuration: Configuration = Configuration()) {
        publicKey = privateKey.publicKey
        self.privateKey = privateKey
        self.configuration = configuration
    }

    /// Whether `meshKey` is this server's mesh key (constant time).
    func isMeshKey(_ meshKey: String) -> Bool {
        guard let ours = configuration.meshKey, !ours.isEmpty, !meshKey.isEmpty else { return false }
        return constantTimeEquals(Array(ours.utf8), Array(meshKey.utf8))
    }

    func nextConnectionID() -> UInt64 {
        registry.withLock { r in
            defer { r.nextConnectionID += 1 }
            return r.nextConnectionID
        }
    }

    public var clientCount: Int { registry.withLock { $0.clients.count } }

    public func isConnected(_ key: NodeKey) -> Bool { registry.withLock { $0.clients[key] != nil } }

    /// Whether a mesh neighbour announced `key`.
    public func isKnownRemotely(_ key: NodeKey) -> Bool { registry.withLock { $0.remotes[key] != nil } }

    // MARK: - Registration

    func register(_ handle: ClientHandle) {
        let (replaced, watchers) = registry.withLock { r -> (ClientHandle?, [ClientHandle]) in
            let old = r.clients.updateValue(handle, forKey: handle.key)
            return (old, Array(r.watchers.values))
        }
        metrics.clientsTotal.add(1, ordering: .relaxed)
        if replaced == nil { metrics.clientsCurrent.add(1, ordering: .relaxed) }
        if handle.canMesh { metrics.clientsMesh.add(1, ordering: .relaxed) }
        if let replaced {
            replaced.requestClose(reason: "replaced by a newer connection with the same key")
        }
        if let problem = healthProblem { handle.enqueue(frame: Frame.health(problem).encoded()) }
        let present = Frame.peerPresent(PeerPresent(key: handle.key, endpoint: handle.endpoint, flags: handle.presentFlags)).encoded()
        for watcher in watchers where watcher !== handle { watcher.enqueue(frame: present) }
    }

    func unregister(_ handle: ClientHandle) {
        let queued = handle.close()
        if queued > 0 { metrics.drop(.gone, count: queued) }
        if handle.canMesh { metrics.clientsMesh.add(-1, ordering: .relaxed) }
        if handle.isPreferred.load(ordering: .relaxed) { metrics.homeClients.add(-1, ordering: .relaxed) }
        let (wasCurrent, peers, watchers) = registry.withLock { r -> (Bool, [ClientHandle], [ClientHandle]) in
            r.watchers[handle.connectionID] = nil
            guard r.clients[handle.key] === handle else { return (false, [], []) }
            r.clients[handle.key] = nil
            // A client of a neighbour may still be reachable after a local
            // connection with the same key left; the routes stay as they are.
            return (true, r.forgetLocked(handle.key), Array(r.watchers.values))
        }
        guard wasCurrent else { return }
        metrics.clientsCurrent.add(-1, ordering: .relaxed)
        let gone = Frame.peerGone(handle.key, reason: .disconnected).encoded()
        for peer in peers { peer.enqueue(frame: gone) }
        for watcher in watchers { watcher.enqueue(frame: gone) }
    }

    func addWatcher(_ handle: ClientHandle) {
        let current = registry.withLock { r -> [ClientHandle] in
            r.watchers[handle.connectionID] = handle
            return Array(r.clients.values)
        }
        for client in current {
            handle.enqueue(frame: Frame.peerPresent(PeerPresent(key: client.key, endpoint: client.endpoint, flags: client.presentFlags)).encoded())
        }
    }

    /// Closes every client connection (shutdown).
    public func closeAll(reason: String) {
        let all = registry.withLock { Array($0.clients.values) }
        for client in all { client.requestClose(reason: reason) }
    }

    /// Closes a local client's connection (ClosePeer from a mesh peer).
    func closeClient(_ key: NodeKey, reason: String) {
        registry.withLock { $0.clients[key] }?.requestClose(reason: reason)
    }

    // MARK: - Routing

    enum Route {
        case local(ClientHandle)
        case remote(MeshLink)
    }

    /// Finds where `destination` is and records that `source` talked to it.
    func route(from source: NodeKey, to destination: NodeKey) -> Route? {
        registry.withLock { r -> Route? in
            let route: Route
            if let local = r.clients[destination] {
                route = .local(local)
            } else if let link = r.remotes[destination] {
                route = .remote(link)
            } else {
                return nil
            }
            r.noteTalkedLocked(source, destination)
            return route
        }
    }

    /// Delivers a packet a local client sent. Returns false when the
    /// destination is unknown (the caller may answer PeerGone(NotHere)).
    func relay(from source: NodeKey, to destination: NodeKey, packet: ByteBuffer, route: Route?) -> Bool {
        switch route {
        case .local(let handle):
            if !handle.enqueue(source: source, packet: packet, metrics: metrics) { metrics.drop(.gone) }
            return true
        case .remote(let link):
            if link.forward(source: source, destination: destination, packet: packet) {
                metrics.packetsForwardedOut.add(1, ordering: .relaxed)
            } else {
                metrics.drop(.writeError)
            }
            return true
        case nil:
            metrics.drop(.unknownDestination)
            return false
        }
    }

    /// Delivers a packet a mesh neighbour forwarded: local clients only, so
    /// a packet crosses at most one hop between servers.
    func deliverForwarded(source: NodeKey, destination: NodeKey, packet: ByteBuffer) {
        metrics.packetsForwardedIn.add(1, ordering: .relaxed)
        let handle = registry.withLock { r -> ClientHandle? in
            guard let handle = r.clients[destination] else { return nil }
            r.noteTalkedLocked(source, destination)
            return handle
        }
        guard let handle else {
            metrics.drop(.unknownDestinationOnForward)
            return
        }
        if !handle.enqueue(source: source, packet: packet, metrics: metrics) { metrics.drop(.gone) }
    }

    // MARK: - Mesh bookkeeping

    /// A neighbour announced one of its clients.
    func remotePresent(_ key: NodeKey, via link: MeshLink) {
        registry.withLock { $0.remotes[key] = link }
    }

    /// A neighbour's client left (or the link to the neighbour broke).
    /// Local clients that talked with it hear PeerGone.
    func remoteGone(_ key: NodeKey, via link: MeshLink) {
        let peers = registry.withLock { r -> [ClientHandle] in
            guard r.remotes[key] === link else { return [] }
            r.remotes[key] = nil
            guard r.clients[key] == nil else { return [] }
            return r.forgetLocked(key)
        }
        let gone = Frame.peerGone(key, reason: .disconnected).encoded()
        for peer in peers { peer.enqueue(frame: gone) }
    }

    /// The link to a neighbour went down: forget every route through it.
    func linkDown(_ link: MeshLink) {
        let keys = registry.withLock { r in r.remotes.filter { $0.value === link }.map(\.key) }
        for key in keys { remoteGone(key, via: link) }
    }
}

extension DERPServer.Registry {
    mutating func noteTalkedLocked(_ a: NodeKey, _ b: NodeKey) {
        if talkedWith[a]?.contains(b) != true { talkedWith[a, default: []].insert(b) }
        if talkedWith[b]?.contains(a) != true { talkedWith[b, default: []].insert(a) }
    }

    /// Drops `key` from the talked-with table; returns the local clients
    /// that had talked with it.
    mutating func forgetLocked(_ key: NodeKey) -> [ClientHandle] {
        guard let peers = talkedWith.removeValue(forKey: key) else { return [] }
        var local: [ClientHandle] = []
        for peer in peers {
            talkedWith[peer]?.remove(key)
            if talkedWith[peer]?.isEmpty == true { talkedWith[peer] = nil }
            if let handle = clients[peer] { local.append(handle) }
        }
        return local
    }
}

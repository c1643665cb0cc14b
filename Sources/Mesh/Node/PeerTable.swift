import CryptoPrimitives
import WireGuardCore

/// The node's view of its peers, kept behind the node's lock: each peer's
/// coordination record, disco shared key, path state and counters, with
/// the lookups the data path needs (by handle, node key, disco key, and
/// by the UDP addresses disco proved to be the peer's).
struct PeerTable: Sendable {
    struct Entry: Sendable {
        var peer: MeshPeer
        var id: PeerID
        let handle: Endpoint
        var discoShared: NaClBox.SharedKey
        var path = PeerPath()
        var counters = PeerCounters()
    }

    private(set) var entries: [Endpoint: Entry] = [:]
    private var byNodeKey: [X25519.PublicKey: Endpoint] = [:]
    private var byDiscoKey: [X25519.PublicKey: Endpoint] = [:]
    /// Real UDP source → handle, for addresses a disco ping or pong proved.
    private var byAddress: [Endpoint: Endpoint] = [:]
    private var nextHandle: UInt64 = 1

    /// The WireGuard core knows each peer by one stable endpoint in
    /// 100::/64, the discard-only prefix (RFC 6666): never a real address.
    static let handlePrefix: UInt128 = 0x0100 << 112

    static func isHandle(_ e: Endpoint) -> Bool {
        if case .v6(let a) = e.address { return a >> 64 == handlePrefix >> 64 }
        return false
    }

    mutating func makeHandle() -> Endpoint {
        defer { nextHandle += 1 }
        return Endpoint(address: .v6(Self.handlePrefix | UInt128(nextHandle)), port: 1)
    }

    mutating func insert(_ entry: Entry) {
        entries[entry.handle] = entry
        byNodeKey[entry.peer.nodeKey] = entry.handle
        byDiscoKey[entry.peer.discoKey] = entry.handle
    }

    mutating func remove(_ handle: Endpoint) -> Entry? {
        guard let entry = entries.removeValue(forKey: handle) else { return nil }
        byNodeKey[entry.peer.nodeKey] = nil
        byDiscoKey[entry.peer.discoKey] = nil
        byAddress = byAddress.filter { $0.value != handle }
        return entry
    }

    mutating func rekeyDisco(_ handle: Endpoint, old: X25519.PublicKey) {
        byDiscoKey[old] = nil
        if let key = entries[handle]?.peer.discoKey { byDiscoKey[key] = handle }
    }

    func handle(nodeKey: X25519.PublicKey) -> Endpoint? { byNodeKey[nodeKey] }
    func handle(discoKey: X25519.PublicKey) -> Endpoint? { byDiscoKey[discoKey] }
    func handle(address: Endpoint) -> Endpoint? { byAddress[address] }

    /// Disco proved `address` belongs to the peer (latest proof wins: a NAT
    /// may hand a port to another peer after a mapping expired).
    mutating func bind(address: Endpoint, to handle: Endpoint) { byAddress[address] = handle }

    subscript(handle: Endpoint) -> Entry? {
        get { entries[handle] }
        _modify { yield &entries[handle] }
    }

    /// Runs every peer's path timers; returns the peers with actions.
    mutating func tick(now: Instant) -> [([PeerPath.Action], MeshPeer, NaClBox.SharedKey)] {
        var out: [([PeerPath.Action], MeshPeer, NaClBox.SharedKey)] = []
        for handle in Array(entries.keys) {
            guard var entry = entries[handle] else { continue }
            let actions = entry.path.tick(now: now)
            entries[handle] = entry
            if !actions.isEmpty { out.append((actions, entry.peer, entry.discoShared)) }
        }
        return out
    }
}

/// Per-peer packet counters kept by the node (bytes come from WireGuard).
public struct PeerCounters: Sendable, Equatable {
    public var sentDirect = 0
    public var sentRelayed = 0
    public var receivedDirect = 0
    public var receivedRelayed = 0
}

/// What `MeshNode.statistics` reports per peer.
public struct MeshPeerStatistics: Sendable, Equatable {
    public var nodeKey: X25519.PublicKey
    public var path: PeerPath.Kind
    /// Round trip of the best direct path's last pong.
    public var latency: Duration?
    public var sentBytes: UInt64
    public var receivedBytes: UInt64
    public var packets: PeerCounters
    public var lastHandshakeUnixNanoseconds: Int64?
}

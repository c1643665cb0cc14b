import CryptoPrimitives
import DERP
import NIOSSL
import Netstack
import Synchronization
import WireGuardCore

/// One node of the tailnet: a WireGuard device whose single UDP socket
/// (dual-stack, so one per address family at once) also carries disco and
/// STUN, a DERP relay fallback, path selection per peer, and a userspace
/// TCP/IP stack (Netstack) as the device's packet end.
///
///     Netstack ⇄ NetstackLink ⇄ WireGuardDevice ⇄ MeshNode (DatagramPath)
///                                                   ├─ UDP socket: WireGuard,
///                                                   │  disco, STUN by shape
///                                                   └─ DERP clients
///
/// The protocol decisions live in pure state machines (`PeerPath`,
/// `HomeRegion`); this class is their shell.
public final class MeshNode: @unchecked Sendable {
    public struct Configuration: Sendable {
        /// Tailnet addresses of this node (Netstack answers on them).
        public var addresses: [WireGuardCore.IPAddress]
        /// UDP port (0: any free one).
        public var listenPort: UInt16 = 0
        public var derpMap: DERPMap
        /// A fixed home region; nil chooses by measured latency.
        public var homeRegion: Int?
        /// The tunnel MTU (Netstack's link MTU).
        public var mtu = 1280
        /// Discover endpoints and probe paths (off: DERP only, for tests).
        public var directPaths = true
        /// TLS for `https` DERP servers: their connections and latency probes.
        public var derpTLS = TLSConfiguration.makeClientConfiguration()
        /// Where TCP connections and UDP datagrams to tunnel ports nobody
        /// listens on go (the agent forwards them to the workspace's
        /// loopback); nil refuses them (RST, ICMP port unreachable).
        public var forwarder: NetStack.Forwarder?

        public init(addresses: [WireGuardCore.IPAddress], derpMap: DERPMap) {
            self.addresses = addresses
            self.derpMap = derpMap
        }
    }

    public let configuration: Configuration
    public let stack: NetStack
    let device: WireGuardDevice
    let link: NetstackLink
    let nodeKey: X25519.PublicKey
    let discoPrivate: X25519.PrivateKey
    public let discoKey: X25519.PublicKey
    let state: Mutex<NodeState>
    let running = Atomic<Bool>(false)
    let timerStopped = Atomic<Bool>(true)
    let derp: DERPConnections

    struct NodeState: Sendable {
        var peers = PeerTable()
        var ownEndpoints = OwnEndpoints()
        var apiPings: [Disco.TxID: APIPing] = [:]
        var home: Int?
        var regionLatency: [Int: Duration] = [:]
        var probeRound: RegionProbeRound?
        var droppedUnknownSource = 0
        var droppedDisco = 0
    }

    /// Called (off the data path) whenever the node's own endpoints change,
    /// for coordination to publish them.
    public var onEndpointsChanged: (@Sendable ([Endpoint]) -> Void)? {
        get { callbacks.withLock { $0?.call } }
        set { callbacks.withLock { $0 = newValue.map(EndpointsCallback.init(call:)) } }
    }
    /// In a struct so `Mutex` does not re-wrap the closure on each access
    /// (see `DERPConnections.PacketHandler`).
    private struct EndpointsCallback: Sendable { let call: @Sendable ([Endpoint]) -> Void }
    private let callbacks = Mutex<EndpointsCallback?>(nil)

    public init(
        privateKey: consuming X25519.PrivateKey, discoKey: consuming X25519.PrivateKey = X25519.PrivateKey(),
        configuration: Configuration
    ) throws {
        self.configuration = configuration
        nodeKey = privateKey.publicKey
        self.discoKey = discoKey.publicKey
        discoPrivate = discoKey
        link = NetstackLink(mtu: configuration.mtu)
        let derpKey = privateKey.duplicate()
        device = try WireGuardDevice(end: link, listenPort: configuration.listenPort, privateKey: privateKey)
        stack = NetStack(
            NetStack.Configuration(addresses: configuration.addresses.map(Self.netstackAddress)), link: link,
            forwarder: configuration.forwarder)
        var initial = NodeState()
        initial.home = configuration.homeRegion ?? configuration.derpMap.regions.keys.min()
        state = Mutex(initial)
        derp = DERPConnections(map: configuration.derpMap, privateKey: derpKey, tls: configuration.derpTLS)
        link.attach(stack)
        device.setPath(self)
        derp.onPackets = { [weak self] batch in self?.receivedFromDERP(batch) }
    }

    public var publicKey: X25519.PublicKey { nodeKey }
    public var listenPort: UInt16 { device.listenPort }
    public var homeRegion: Int? { state.withLock { $0.home } }

    // MARK: - Lifecycle

    /// Starts the device and timers and connects to the home DERP region,
    /// waiting up to `derpTimeout` for that connection.
    public func start(derpTimeout: Duration = .seconds(5)) async {
        running.store(true, ordering: .releasing)
        device.start()
        let home = state.withLock { $0.home }
        if let home {
            derp.keepHome(home)
            await derp.waitConnected(home, timeout: derpTimeout)
        }
        if configuration.directPaths { discoverEndpoints(now: DeviceClock.now()) }
        timerStopped.store(false, ordering: .releasing)
        startThread { [self] in self.timerLoop() }
    }

    public func stop() async {
        running.store(false, ordering: .releasing)
        while !timerStopped.load(ordering: .acquiring) { try? await Task.sleep(for: .milliseconds(5)) }
        device.setPath(nil)
        device.stop()
        stack.stop()
        await derp.closeAll()
    }

    // MARK: - Peers

    /// Adds a peer or updates it (same node key) from coordination.
    public func upsertPeer(_ peer: MeshPeer) throws {
        let shared = try NaClBox.SharedKey(privateKey: discoPrivate, peer: peer.discoKey)
        let now = DeviceClock.now()
        let existing = state.withLock { $0.peers.handle(nodeKey: peer.nodeKey) }
        if let handle = existing {
            let id = state.withLock { s -> PeerID in
                let old = s.peers[handle]!.peer.discoKey
                s.peers[handle]!.peer = peer
                s.peers[handle]!.discoShared = shared
                s.peers[handle]!.path.setAdvertised(peer.endpoints, now: now)
                s.peers.rekeyDisco(handle, old: old)
                return s.peers[handle]!.id
            }
            device.withInterface { c in
                c.clearAllowedIPs(id)
                for prefix in peer.addresses { c.addAllowedIP(id, prefix) }
            }
            return
        }
        let handle = state.withLock { $0.peers.makeHandle() }
        let id = try device.withInterface { c throws -> PeerID in
            let id = try c.addPeer(publicKey: peer.nodeKey)
            c.setEndpoint(id, handle)
            for prefix in peer.addresses { c.addAllowedIP(id, prefix) }
            return id
        }
        state.withLock { s in
            var entry = PeerTable.Entry(peer: peer, id: id, handle: handle, discoShared: shared)
            entry.path.setAdvertised(peer.endpoints, now: now)
            s.peers.insert(entry)
        }
    }

    public func removePeer(nodeKey: X25519.PublicKey) {
        let entry = state.withLock { s -> PeerTable.Entry? in
            guard let handle = s.peers.handle(nodeKey: nodeKey) else { return nil }
            return s.peers.remove(handle)
        }
        if let entry { device.withInterface { $0.removePeer(entry.id) } }
    }

    // MARK: - Sockets through Netstack

    public func dial(_ address: WireGuardCore.IPAddress, port: UInt16) async throws -> TCPStream {
        try await stack.dial(Netstack.SocketAddress(Self.netstackAddress(address), port))
    }

    public func listen(port: UInt16) throws -> TCPListener { try stack.listen(port: port) }

    public func bindUDP(port: UInt16) throws -> Netstack.UDPSocket { try stack.bindUDP(port: port) }

    // MARK: - Observing

    public func statistics() -> [MeshPeerStatistics] {
        let now = DeviceClock.now()
        let rows = state.withLock { s in
            s.peers.entries.values.map { e in
                (e.id, e.peer.nodeKey, e.path.kind(now: now), e.path.latency, e.counters)
            }
        }
        return device.withInterface { c in
            rows.map { id, key, kind, latency, counters in
                let wg = c.statistics(of: id)
                return MeshPeerStatistics(
                    nodeKey: key, path: kind, latency: latency, sentBytes: wg?.sentBytes ?? 0,
                    receivedBytes: wg?.receivedBytes ?? 0, packets: counters,
                    lastHandshakeUnixNanoseconds: wg?.lastHandshakeUnixNanoseconds)
            }
        }
    }

    public func statistics(of nodeKey: X25519.PublicKey) -> MeshPeerStatistics? {
        statistics().first { $0.nodeKey == nodeKey }
    }

    /// The node's endpoints as last discovered (interfaces and STUN).
    public var endpoints: [Endpoint] { state.withLock { $0.ownEndpoints.all } }

    public static func netstackAddress(_ a: WireGuardCore.IPAddress) -> Netstack.IPAddress {
        switch a {
        case .v4(let v): .v4(IPv4Address(value: v))
        case .v6(let v): .v6(IPv6Address(high: UInt64(truncatingIfNeeded: v >> 64), low: UInt64(truncatingIfNeeded: v)))
        }
    }
}

/// The node's own candidate endpoints: interface addresses and STUN results.
struct OwnEndpoints: Sendable {
    var local: [Endpoint] = []
    var reflexive: [Endpoint: Endpoint] = [:]  // STUN server → mapped address
    var pendingSTUN: [STUN.TransactionID: (server: Endpoint, region: Int, sent: Instant)] = [:]
    var lastDiscovery: Instant?
    var lastLinkCheck: Instant?
    /// After a probe round that measured no region at all (every probe
    /// lost or timed out, e.g. at start-up on a busy machine or while
    /// offline), the next round runs at this instant, whether or not a
    /// session is active; the wait doubles per empty round
    /// (`PathConstants.emptyRoundRetry` up to `rediscoveryInterval`).
    var retryDiscoveryAt: Instant?
    var emptyRounds = 0

    var all: [Endpoint] {
        var seen = Set<Endpoint>()
        return (reflexive.values.sorted { $0.description < $1.description } + local).filter { seen.insert($0).inserted }
    }
}

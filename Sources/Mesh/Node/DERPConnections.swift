import CryptoPrimitives
import DERP
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization
import WireGuardCore

/// The node's DERP clients, one per region in use: the home region's kept
/// up (and marked preferred), others opened when a peer homed there needs
/// one and closed after `PathConstants.derpIdleTimeout` without use.
final class DERPConnections: @unchecked Sendable {
    private struct Connection {
        let client: DERPClient
        var lastUse: Instant
    }

    private let map: DERPMap
    private let privateKey: X25519.PrivateKey
    private let options: DERPClient.Options
    private let connections = Mutex<[Int: Connection]>([:])
    private let home = Mutex<Int?>(nil)
    private let handler = Mutex<PacketHandler?>(nil)
    private let inbox = Mutex<Inbox>(Inbox())

    /// Packets received but not yet handed over, and whether a hand-over
    /// is already scheduled on the event loop.
    private struct Inbox: Sendable {
        var packets: [(source: X25519.PublicKey, packet: ByteBuffer)] = []
        var scheduled = false
    }

    /// The closure inside a struct: `Mutex.withLock` hands its value over
    /// `inout` as a generic parameter, and a bare function type there is
    /// re-abstracted on the way in and out, so every access stored the
    /// closure back wrapped in two more thunks: the nth packet paid for a
    /// chain of 2n calls (DERP throughput fell with every packet). A
    /// struct field keeps one representation.
    private struct PacketHandler: Sendable {
        let call: @Sendable ([(source: X25519.PublicKey, packet: ByteBuffer)]) -> Void
    }

    init(map: DERPMap, privateKey: consuming X25519.PrivateKey, tls: TLSConfiguration) {
        self.map = map
        self.privateKey = privateKey
        var options = DERPClient.Options()
        options.tls = tls
        self.options = options
    }

    /// Where received packets go, a batch at a time (source node key,
    /// bytes as NIO read them: no copy until the receiver makes one).
    var onPackets: (@Sendable ([(source: X25519.PublicKey, packet: ByteBuffer)]) -> Void)? {
        get { handler.withLock { $0?.call } }
        set { handler.withLock { $0 = newValue.map(PacketHandler.init(call:)) } }
    }

    /// Makes `region` home: connected, preferred; the old home becomes an
    /// ordinary connection that closes when idle.
    func keepHome(_ region: Int) {
        let old = home.withLock { h -> Int? in
            defer { h = region }
            return h
        }
        if let old, old != region, let client = connections.withLock({ $0[old]?.client }) {
            client.notePreferred(false)
        }
        client(for: region, now: DeviceClock.now())?.notePreferred(true)
    }

    func waitConnected(_ region: Int, timeout: Duration) async {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if connections.withLock({ $0[region]?.client.isConnected }) == true { return }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    func isConnected(_ region: Int) -> Bool { connections.withLock { $0[region]?.client.isConnected ?? false } }

    /// Sends to `destination` through `region`'s server (its home), opening
    /// the connection if needed. False when it is not up yet (dropped).
    @discardableResult
    func send(_ bytes: UnsafeRawBufferPointer, to destination: X25519.PublicKey, region: Int, now: Instant) -> Bool {
        guard let client = client(for: region, now: now) else { return false }
        return client.trySend(to: destination, packet: bytes)
    }

    private func client(for region: Int, now: Instant) -> DERPClient? {
        guard let url = map.regions[region]?.url else { return nil }
        let (client, fresh) = connections.withLock { c -> (DERPClient, Bool) in
            if c[region] != nil {
                c[region]!.lastUse = now
                return (c[region]!.client, false)
            }
            let made = DERPClient(url: url, privateKey: privateKey.duplicate(), options: options) { [weak self] source, buffer in
                self?.received(buffer, from: source)
            }
            c[region] = Connection(client: made, lastUse: now)
            return (made, true)
        }
        if fresh { client.start() }
        return client
    }

    /// Called on the event loop for each packet frame. The packets of one
    /// read are gathered and handed over together once the loop has
    /// finished that read (NIO runs queued tasks after its I/O), so the
    /// device decrypts them under one lock and Netstack takes them as one
    /// batch (one ACK for many segments), as on the UDP path.
    private func received(_ packet: ByteBuffer, from source: X25519.PublicKey) {
        let first = inbox.withLock { i -> Bool in
            i.packets.append((source, packet))
            defer { i.scheduled = true }
            return !i.scheduled
        }
        guard first else { return }
        if let loop = MultiThreadedEventLoopGroup.currentEventLoop {
            loop.execute { self.handOver() }
        } else {
            handOver()
        }
    }

    private func handOver() {
        let batch = inbox.withLock { i in
            defer {
                i.packets.removeAll(keepingCapacity: true)
                i.scheduled = false
            }
            return i.packets
        }
        if !batch.isEmpty { onPackets?(batch) }
    }

    /// Closes connections other than home that sat idle.
    func closeIdle(now: Instant) {
        let home = home.withLock { $0 }
        let idle = connections.withLock { c -> [DERPClient] in
            let stale = c.filter { $0.key != home && now - $0.value.lastUse >= PathConstants.derpIdleTimeout }
            for key in stale.keys { c[key] = nil }
            return stale.values.map(\.client)
        }
        for client in idle { Task { await client.close() } }
    }

    /// Closes every connection and dials home again (after a network
    /// change: a TCP connection from an address that is gone never notices).
    func reconnectAll() {
        let all = connections.withLock { c -> [DERPClient] in
            defer { c = [:] }
            return c.values.map(\.client)
        }
        for client in all { Task { await client.close() } }
        if let home = home.withLock({ $0 }) { client(for: home, now: DeviceClock.now())?.notePreferred(true) }
    }

    var openRegions: [Int] { connections.withLock { Array($0.keys).sorted() } }

    func closeAll() async {
        let all = connections.withLock { c -> [DERPClient] in
            defer { c = [:] }
            return c.values.map(\.client)
        }
        for client in all { await client.close() }
    }
}

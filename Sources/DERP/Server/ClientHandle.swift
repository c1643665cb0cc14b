import NIOCore
import Synchronization

/// A logged-in client as the rest of the server sees it: its key, and the
/// queues other connections put packets on. Thread-safe; the writing
/// happens on the client's own event loop (`ServerConnection.drain`).
///
/// Three queues, drained in this order: control frames, disco packets,
/// data packets. Disco has its own queue so that a bulk sender cannot
/// push out the few packets that find a direct path (Tailscale's
/// `discoSendQueue`). Data and disco queues drop their oldest packet when
/// full; control frames are few and never dropped.
final class ClientHandle: Sendable {
    let key: NodeKey
    let connectionID: UInt64
    let eventLoop: any EventLoop
    let info: ClientInfo
    let canMesh: Bool
    let endpoint: PeerEndpoint?
    private let connection: NIOLoopBound<ServerConnection>
    private let state: Mutex<State>
    let isPreferred = Atomic<Bool>(false)

    struct State: ~Copyable {
        var control = DropOldestQueue<ByteBuffer>(capacity: .max)
        var disco: DropOldestQueue<Outbound>
        var data: DropOldestQueue<Outbound>
        /// A drain is scheduled or running on the event loop.
        var drainScheduled = false
        var closed = false
    }

    init(
        key: NodeKey, connectionID: UInt64, info: ClientInfo, canMesh: Bool, endpoint: PeerEndpoint?,
        connection: ServerConnection, eventLoop: any EventLoop, queueDepth: Int, discoQueueDepth: Int
    ) {
        self.key = key
        self.connectionID = connectionID
        self.info = info
        self.canMesh = canMesh
        self.endpoint = endpoint
        self.eventLoop = eventLoop
        self.connection = NIOLoopBound(connection, eventLoop: eventLoop)
        state = Mutex(State(disco: DropOldestQueue(capacity: discoQueueDepth), data: DropOldestQueue(capacity: queueDepth)))
    }

    var presentFlags: PeerPresentFlags {
        var flags: PeerPresentFlags = []
        if info.isProber { flags.insert(.prober) }
        if canMesh { flags.insert(.meshPeer) }
        return flags.isEmpty ? .regular : flags
    }

    var isClosed: Bool { state.withLock { $0.closed } }

    /// Queues a relayed packet. Returns the number of packets dropped to
    /// make room (0 or 1), or nil when the client is gone.
    func enqueue(source: NodeKey, packet: ByteBuffer, metrics: DERPMetrics) -> Bool {
        let disco = isDiscoPacket(packet)
        let (accepted, dropped, schedule) = state.withLock { s -> (Bool, Bool, Bool) in
            guard !s.closed else { return (false, false, false) }
            let dropped =
                disco
                ? s.disco.append(.packet(source: source, packet: packet))
                : s.data.append(.packet(source: source, packet: packet))
            let schedule = !s.drainScheduled
            s.drainScheduled = true
            return (true, dropped, schedule)
        }
        if dropped { metrics.drop(.queueHead) }
        if schedule { scheduleDrain() }
        return accepted
    }

    /// Queues an encoded control frame.
    func enqueue(frame: ByteBuffer) {
        let schedule = state.withLock { s -> Bool in
            guard !s.closed else { return false }
            _ = s.control.append(frame)
            let schedule = !s.drainScheduled
            s.drainScheduled = true
            return schedule
        }
        if schedule { scheduleDrain() }
    }

    private func scheduleDrain() {
        eventLoop.execute { self.connection.value.drain() }
    }

    /// Moves up to `max` items into `batch` (control first, then disco, then
    /// data). When none are left it clears the scheduled flag under the same
    /// lock, so a concurrent `enqueue` schedules the next drain.
    func takeBatch(into batch: inout [Outbound], max: Int) {
        state.withLock { s in
            while batch.count < max, let frame = s.control.popFirst() { batch.append(.frame(frame)) }
            while batch.count < max, let item = s.disco.popFirst() { batch.append(item) }
            while batch.count < max, let item = s.data.popFirst() { batch.append(item) }
            if batch.isEmpty { s.drainScheduled = false }
        }
    }

    /// Marks the handle closed and returns how many packets were still queued.
    func close() -> Int {
        state.withLock { s in
            s.closed = true
            _ = s.control.removeAll()
            return s.disco.removeAll() + s.data.removeAll()
        }
    }

    /// Asks the connection to close (from any thread), e.g. for ClosePeer or
    /// when a newer connection with the same key replaces it.
    func requestClose(reason: String) {
        eventLoop.execute { self.connection.value.close(reason: reason) }
    }
}

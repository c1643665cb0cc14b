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

    /// Queues a relayed packet. Returns false when the client is gone.
    func enqueue(source: NodeKey, packet: ByteBuffer, metrics: DERPMetrics) -> Bool {
        var one = [Outbound.packet(source: source, packet: packet)]
        return enqueue(packets: &one, metrics: metrics)
    }

    /// Queues packets that one read brought for this client, under one
    /// lock, and empties `packets` (keeping its storage for the next
    /// read). Returns false when the client is gone.
    func enqueue(packets: inout [Outbound], metrics: DERPMetrics) -> Bool {
        let (accepted, dropped, schedule) = state.withLock { s -> (Bool, Int, Bool) in
            guard !s.closed else { return (false, 0, false) }
            var dropped = 0
            if s.data.isEmpty && s.disco.isEmpty && packets.count <= s.data.capacity && !packets.contains(where: \.isDisco) {
                // The common case: an idle queue takes the whole batch.
                s.data.moveAll(from: &packets)
            } else {
                for item in packets {
                    let drop = item.isDisco ? s.disco.append(item) : s.data.append(item)
                    if drop { dropped += 1 }
                }
            }
            let schedule = !s.drainScheduled
            s.drainScheduled = true
            return (true, dropped, schedule)
        }
        packets.removeAll(keepingCapacity: true)
        if dropped > 0 { metrics.drop(.queueHead, count: dropped) }
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

    /// On this client's own event loop (the reader shares it), writes at
    /// once; from another loop, as the next task there.
    private func scheduleDrain() {
        if eventLoop.inEventLoop {
            connection.value.drain()
        } else {
            eventLoop.execute { self.connection.value.drain() }
        }
    }

    /// Moves everything queued into `batch`: control frames first, then
    /// disco, then data. When nothing is left it clears the scheduled flag
    /// under the same lock, so a concurrent `enqueue` schedules the next
    /// drain.
    func takeAll(into batch: inout [Outbound]) {
        state.withLock { s in
            while let frame = s.control.popFirst() { batch.append(.frame(frame)) }
            s.disco.moveAll(into: &batch)
            s.data.moveAll(into: &batch)
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

    /// Asks the connection to write `frame` last and close (from any thread).
    func requestClose(after frame: Frame, reason: String) {
        eventLoop.execute { self.connection.value.close(after: frame, reason: reason) }
    }

    /// Asks the connection to close (from any thread), e.g. for ClosePeer or
    /// when a newer connection with the same key replaces it.
    func requestClose(reason: String) {
        eventLoop.execute { self.connection.value.close(reason: reason) }
    }
}

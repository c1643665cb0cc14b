/// The stack without threads or clocks: one interface's addresses, the TCP
/// connection table, listeners, UDP bindings, ICMP echo. Packets come in
/// through `input`, leave through `outbound`; `handleTimers` runs due timers.
/// `NetStack` wraps it in a lock and gives it an async API; tests drive it
/// directly with a fake clock.
package struct StackCore {
    package typealias ConnectionID = Int

    package struct ConnectionKey: Hashable {
        var local: SocketAddress
        var remote: SocketAddress
    }

    struct Slot {
        var connection: TCPConnection
        var key: ConnectionKey
        /// Port of the listener that must hand this connection to `accept`, until it does.
        var pendingAcceptPort: UInt16?
        /// Offered to the forwarder hook rather than a listener.
        var forwarded: Bool
        /// The application holds a handle; when it lets go the slot may be reclaimed once closed.
        var hasHandle: Bool
    }

    struct Listener {
        var backlog: Int
        var synReceived = 0
        var acceptQueue: [ConnectionID] = []
    }

    package struct Datagram: Sendable {
        package var source: SocketAddress
        package var destination: SocketAddress
        package var payload: [UInt8]
    }

    struct UDPBinding {
        var queue: [Datagram] = []
        var queuedBytes = 0
    }

    package struct Counters: Sendable {
        package var packetsIn = 0
        package var packetsOut = 0
        package var malformed = 0
        package var badChecksum = 0
        package var unsupported = 0
        package var notForUs = 0
        package var resetsSent = 0
        package var udpDropped = 0
        package var echoRepliesSent = 0
    }

    package var addresses: [IPAddress]
    package var mtu: Int
    /// The link segments and checksums TCP (`NetLink.offloadsTCP`): TCP
    /// goes out as super-packets of up to `maximumOffloadPacket` bytes with
    /// partial checksums.
    package var offloadsTCP = false
    static let maximumOffloadPacket = 65535
    package var tcpOptions: TCPConnection.Options
    /// Packets ready for the link, each a complete IP packet no larger than
    /// `mtu` (TCP super-packets aside, when the link `offloadsTCP`).
    package var outbound: [[UInt8]] = []
    package private(set) var counters = Counters()

    /// Connections, listeners and UDP ports whose readiness may have changed.
    package var changedConnections: Set<ConnectionID> = []
    package var changedListeners: Set<UInt16> = []
    package var changedUDPPorts: Set<UInt16> = []
    package var forwardedConnections: [ConnectionID] = []
    package var forwardedDatagrams: [Datagram] = []

    /// When set, TCP connections and UDP datagrams to ports nobody listens on are
    /// accepted and queued for the forwarder instead of refused.
    package var forwardUnlistened = false

    private var slots: [ConnectionID: Slot] = [:]
    private var table: [ConnectionKey: ConnectionID] = [:]
    private var listeners: [UInt16: Listener] = [:]
    private var udp: [UInt16: UDPBinding] = [:]
    private var timers = DeadlineQueue<ConnectionID>()
    private var nextID = 1
    private let sequenceNumbers: SequenceNumberGenerator
    private var forwarderSynReceived = 0
    private var timeWaitCount = 0
    private var rng: any RandomNumberGenerator
    /// Connections whose queues hold storage, checked every `bufferTrimInterval`.
    private var buffered: Set<ConnectionID> = []
    /// Between `beginBatch` and `endBatch`: connections that received
    /// segments and are serviced once at the end of the batch.
    private var batching = false
    private var deferredService: [ConnectionID] = []
    private var deferredSet: Set<ConnectionID> = []
    private var nextBufferTrim: NetInstant?
    static let bufferTrimInterval: Duration = .milliseconds(50)

    static let maximumUDPQueueBytes = 1 << 20
    static let maximumTimeWait = 16 * 1024
    package static let defaultBacklog = 1024

    package init(
        addresses: [IPAddress], mtu: Int, tcpOptions: TCPConnection.Options = .init(),
        sequenceNumbers: SequenceNumberGenerator = SequenceNumberGenerator(),
        rng: any RandomNumberGenerator = SystemRandomNumberGenerator()
    ) {
        self.addresses = addresses
        self.mtu = mtu
        var o = tcpOptions
        o.mtu = mtu
        self.tcpOptions = o
        self.sequenceNumbers = sequenceNumbers
        self.rng = rng
    }

    package var connectionCount: Int { slots.count }
    package var nextDeadline: NetInstant? {
        mutating get { .earliest(timers.earliest(), nextBufferTrim) }
    }

    // MARK: Input

    /// Starts a batch of `input` calls: connections are serviced (ACKs and
    /// new data sent, timers rescheduled) once at `endBatch` rather than after
    /// every segment, as receive offload does in a kernel. One ACK then
    /// answers a run of in-order segments and one ACK-clocked burst answers a
    /// run of ACKs; RFC 5681 §4.2's "ACK every second segment" is a SHOULD
    /// that stretch ACKs of this kind relax (RFC 2525 §2.13 notes Linux's).
    package mutating func beginBatch() {
        batching = true
    }

    package mutating func endBatch(now: NetInstant) {
        batching = false
        for id in deferredService { service(id, now: now) }
        deferredService.removeAll(keepingCapacity: true)
        deferredSet.removeAll(keepingCapacity: true)
    }

    /// `checksumVerified`: the link vouches for the TCP checksum (see
    /// `TCPRepr.parse`); the IP header's own checksum is still checked.
    package mutating func input(_ bytes: UnsafeRawBufferPointer, now: NetInstant, checksumVerified: Bool = false) {
        counters.packetsIn += 1
        do {
            let (ip, payload) = try IPRepr.parse(bytes)
            guard addresses.contains(ip.destination) else {
                counters.notForUs += 1
                return
            }
            switch ip.protocolNumber {
            case .tcp: try inputTCP(ip, payload, checksumVerified: checksumVerified, now: now)
            case .udp: try inputUDP(ip, payload)
            case .icmp: try inputICMPv4(ip, payload, now: now)
            case .icmpv6: try inputICMPv6(ip, payload, now: now)
            default: counters.unsupported += 1
            }
        } catch let e as WireError {
            switch e {
            case .truncated, .malformed: counters.malformed += 1
            case .badChecksum: counters.badChecksum += 1
            case .unsupported: counters.unsupported += 1
            }
        } catch {
            counters.malformed += 1
        }
    }

    private mutating func inputTCP(
        _ ip: IPRepr, _ bytes: UnsafeRawBufferPointer, checksumVerified: Bool, now: NetInstant
    ) throws {
        let segment = try TCPSegment(checking: bytes)
        let repr = try TCPRepr.parse(
            segment, source: ip.source, destination: ip.destination, checksumVerified: checksumVerified)
        let key = ConnectionKey(
            local: SocketAddress(ip.destination, repr.destinationPort),
            remote: SocketAddress(ip.source, repr.sourcePort))
        if let id = table[key], let index = slots.index(forKey: id) {
            // RFC 9293 §3.10.7.4 / RFC 6191: a new SYN may reopen a connection in TIME_WAIT
            // if its sequence number is beyond the old one's.
            let reuse = slots.values[index].connection.state == .timeWait && repr.control == .syn
                && repr.acknowledgmentNumber == nil && repr.sequenceNumber > slots.values[index].connection.rcvNxt
            if !reuse {
                // In place: a copy of the slot would share, then copy, the connection's buffers.
                slots.values[index].connection.receive(repr, payload: segment.payload, now: now)
                if batching && !slots.values[index].connection.needsPromptService {
                    if deferredSet.insert(id).inserted { deferredService.append(id) }
                } else {
                    service(id, now: now)
                }
                return
            }
            remove(id)
        }
        guard repr.control != .rst else { return }
        if repr.control == .syn && repr.acknowledgmentNumber == nil {
            if var listener = listeners[repr.destinationPort] {
                guard listener.synReceived + listener.acceptQueue.count < listener.backlog else { return }
                listener.synReceived += 1
                listeners[repr.destinationPort] = listener
                openPassive(key, syn: repr, listenerPort: repr.destinationPort, forwarded: false, now: now)
                return
            }
            if forwardUnlistened && forwarderSynReceived + forwardedConnections.count < Self.defaultBacklog {
                forwarderSynReceived += 1
                openPassive(key, syn: repr, listenerPort: nil, forwarded: true, now: now)
                return
            }
        }
        sendReset(
            TCPConnection.reset(for: repr, payloadLength: repr.payloadLength), local: key.local, remote: key.remote)
    }

    private mutating func openPassive(
        _ key: ConnectionKey, syn: TCPRepr, listenerPort: UInt16?, forwarded: Bool, now: NetInstant
    ) {
        let (isn, tsOffset) = sequenceNumbers.generate(local: key.local, remote: key.remote, now: now)
        let c = TCPConnection(
            local: key.local, remote: key.remote, syn: syn, isn: isn, timestampOffset: tsOffset, options: tcpOptions,
            now: now)
        let id = insert(
            Slot(connection: c, key: key, pendingAcceptPort: listenerPort, forwarded: forwarded, hasHandle: false))
        service(id, now: now)
    }

    private mutating func insert(_ slot: Slot) -> ConnectionID {
        let id = nextID
        nextID += 1
        slots[id] = slot
        table[slot.key] = id
        return id
    }

    private mutating func remove(_ id: ConnectionID) {
        guard let slot = slots.removeValue(forKey: id) else { return }
        if table[slot.key] == id { table[slot.key] = nil }
        timers.schedule(id, at: nil)
        if slot.connection.state == .timeWait { timeWaitCount -= 1 }
        if slot.pendingAcceptPort != nil || slot.forwarded {
            releaseAcceptSlot(id, slot)
        }
    }

    private mutating func releaseAcceptSlot(_ id: ConnectionID, _ slot: Slot) {
        if let port = slot.pendingAcceptPort, var l = listeners[port] {
            if let i = l.acceptQueue.firstIndex(of: id) {
                l.acceptQueue.remove(at: i)
            } else {
                l.synReceived -= 1
            }
            listeners[port] = l
        } else if slot.forwarded {
            if let i = forwardedConnections.firstIndex(of: id) {
                forwardedConnections.remove(at: i)
            } else {
                forwarderSynReceived -= 1
            }
        }
    }

    /// After any event on a connection: send what it wants to send, move it
    /// along the accept path, reschedule its timer, reclaim it when done.
    private mutating func service(_ id: ConnectionID, now: NetInstant) {
        guard let index = slots.index(forKey: id) else { return }
        let wasTimeWait = slots.values[index].connection.state == .timeWait
        while let out = slots.values[index].connection.nextSegment(now: now) {
            emitTCP(index, out)
        }
        let slot = slots.values[index]
        if !wasTimeWait && slot.connection.state == .timeWait {
            timeWaitCount += 1
        }
        changedConnections.insert(id)
        if slot.connection.isEstablished && !slot.hasHandle {
            if let port = slot.pendingAcceptPort, var l = listeners[port], !l.acceptQueue.contains(id) {
                l.synReceived -= 1
                l.acceptQueue.append(id)
                listeners[port] = l
                changedListeners.insert(port)
            } else if slot.forwarded && !forwardedConnections.contains(id) {
                forwarderSynReceived -= 1
                forwardedConnections.append(id)
            }
        }
        if slot.connection.isClosed && !slot.hasHandle {
            remove(id)
            return
        }
        timers.schedule(id, at: slot.connection.nextDeadline)
        if slot.connection.bufferCapacity > 0 && buffered.insert(id).inserted && nextBufferTrim == nil {
            nextBufferTrim = now + Self.bufferTrimInterval
        }
        if timeWaitCount > Self.maximumTimeWait { reclaimOneTimeWait() }
    }

    /// TIME_WAIT is bounded: past the limit the oldest goes first.
    private mutating func reclaimOneTimeWait() {
        if let (id, _) = slots.first(where: { $0.value.connection.state == .timeWait }) {
            remove(id)
        }
    }

    // MARK: Timers

    package mutating func handleTimers(now: NetInstant) {
        for id in timers.popDue(now: now) {
            guard let index = slots.index(forKey: id) else { continue }
            slots.values[index].connection.handleTimers(now: now)
            service(id, now: now)
        }
        if let t = nextBufferTrim, t <= now { releaseIdleBuffers(now: now) }
    }

    /// Frees the queues of connections that went idle, so idle connections
    /// cost no buffer memory while busy ones keep theirs.
    private mutating func releaseIdleBuffers(now: NetInstant) {
        for id in buffered {
            guard let index = slots.index(forKey: id) else {
                buffered.remove(id)
                continue
            }
            if !slots.values[index].connection.releaseIdleBuffers() { buffered.remove(id) }
        }
        nextBufferTrim = buffered.isEmpty ? nil : now + Self.bufferTrimInterval
    }

    // MARK: Output

    /// Builds IP packets for one output of a connection, splitting payloads
    /// larger than the segment size (segmentation offload in software), or,
    /// on a link that `offloadsTCP`, into super-packets of whole segments
    /// that the link splits at its MTU, when that split is the segment size.
    private mutating func emitTCP(_ index: Dictionary<ConnectionID, Slot>.Index, _ out: TCPOutput) {
        let total = out.repr.payloadLength
        if total <= out.segmentSize || out.segmentSize <= 0 {
            emitTCPPacket(index, out, repr: out.repr, offset: 0)
            return
        }
        // Bytes of payload per packet: one segment, or on an offloading link
        // as many whole segments as fit a 64 KiB packet.
        var chunk = out.segmentSize
        let ipHeader = slots.values[index].key.local.address.isIPv6 ? IPv6Repr.headerLength : IPv4Repr.headerLength
        let headers = ipHeader + out.repr.headerLength
        if offloadsTCP && out.segmentSize == mtu - headers {
            chunk = (Self.maximumOffloadPacket - headers) / out.segmentSize * out.segmentSize
        }
        var offset = 0
        while offset < total {
            let n = Swift.min(chunk, total - offset)
            var piece = out.repr
            piece.sequenceNumber = out.repr.sequenceNumber + offset
            piece.payloadLength = n
            let last = offset + n == total
            if !last {
                piece.control = .none
                piece.push = false
            }
            emitTCPPacket(index, out, repr: piece, offset: offset)
            offset += n
        }
    }

    private mutating func emitTCPPacket(
        _ index: Dictionary<ConnectionID, Slot>.Index, _ out: TCPOutput, repr: TCPRepr, offset: Int
    ) {
        let key = slots.values[index].key
        guard
            var ip = IPRepr(
                source: key.local.address, destination: key.remote.address, protocolNumber: .tcp, payloadLength: 0)
        else { return }
        ip.payloadLength = repr.bufferLength
        let packet = [UInt8](unsafeUninitializedCapacity: ip.bufferLength) { raw, initialized in
            let buf = UnsafeMutableRawBufferPointer(raw)
            let t = UnsafeMutableRawBufferPointer(rebasing: buf[ip.headerLength...])
            if repr.payloadLength > 0 {
                slots.values[index].connection.copyPayload(
                    out, offset: offset, count: repr.payloadLength,
                    into: UnsafeMutableRawBufferPointer(rebasing: t[repr.headerLength...]))
            }
            repr.emit(into: t, source: ip.source, destination: ip.destination, partialChecksum: offloadsTCP)
            ip.emit(into: buf)
            initialized = raw.count
        }
        outbound.append(packet)
        counters.packetsOut += 1
    }

    private mutating func sendReset(_ repr: TCPRepr, local: SocketAddress, remote: SocketAddress) {
        guard
            var ip = IPRepr(source: local.address, destination: remote.address, protocolNumber: .tcp, payloadLength: 0)
        else { return }
        ip.payloadLength = repr.bufferLength
        var packet = [UInt8](repeating: 0, count: ip.bufferLength)
        packet.withUnsafeMutableBytes { buf in
            repr.emit(
                into: UnsafeMutableRawBufferPointer(rebasing: buf[ip.headerLength...]), source: ip.source,
                destination: ip.destination, partialChecksum: offloadsTCP)
            ip.emit(into: buf)
        }
        outbound.append(packet)
        counters.resetsSent += 1
        counters.packetsOut += 1
    }

    // MARK: TCP application calls

    package mutating func listen(port: UInt16, backlog: Int = StackCore.defaultBacklog) throws(NetstackError) {
        guard port != 0 else { throw NetstackError(.invalidArgument, "port 0") }
        guard listeners[port] == nil else { throw NetstackError(.addressInUse, "port \(port)") }
        listeners[port] = Listener(backlog: backlog)
    }

    package mutating func unlisten(port: UInt16, now: NetInstant) {
        guard let l = listeners.removeValue(forKey: port) else { return }
        for id in l.acceptQueue {
            slots[id]?.pendingAcceptPort = nil
            abort(id, now: now)
        }
        for (id, slot) in slots where slot.pendingAcceptPort == port {
            slots[id]?.pendingAcceptPort = nil
            abort(id, now: now)
        }
        changedListeners.insert(port)
    }

    package func isListening(port: UInt16) -> Bool { listeners[port] != nil }

    package func hasPendingAccept(port: UInt16) -> Bool { listeners[port]?.acceptQueue.isEmpty == false }

    /// The next established connection on `port`, now owned by the caller.
    package mutating func accept(port: UInt16) -> ConnectionID? {
        guard var l = listeners[port], !l.acceptQueue.isEmpty else { return nil }
        let id = l.acceptQueue.removeFirst()
        listeners[port] = l
        slots[id]?.pendingAcceptPort = nil
        slots[id]?.hasHandle = true
        return id
    }

    /// The next connection for the forwarder hook, now owned by the caller.
    package mutating func acceptForwarded() -> ConnectionID? {
        guard !forwardedConnections.isEmpty else { return nil }
        let id = forwardedConnections.removeFirst()
        slots[id]?.hasHandle = true
        slots[id]?.forwarded = false  // handed over: from now on an ordinary connection
        return id
    }

    /// Active open from a local address of the remote's family and an ephemeral port.
    package mutating func connect(
        to remote: SocketAddress, from localPort: UInt16? = nil, options: TCPConnection.Options? = nil, now: NetInstant
    ) throws(NetstackError) -> ConnectionID {
        guard remote.port != 0 else { throw NetstackError(.invalidArgument, "port 0") }
        guard let localAddress = addresses.first(where: { $0.isIPv6 == remote.address.isIPv6 }) else {
            throw NetstackError(.unreachable, "no local address of the family of \(remote.address)")
        }
        var key = ConnectionKey(local: SocketAddress(localAddress, localPort ?? 0), remote: remote)
        if let p = localPort {
            if let existing = table[key] {
                guard slots[existing]?.connection.state == .timeWait else {
                    throw NetstackError(.addressInUse, "\(key.local) → \(remote)")
                }
                remove(existing)
            }
            key.local.port = p
        } else {
            var found = false
            for _ in 0..<64 {
                key.local.port = UInt16.random(in: 49152...65535, using: &rng)
                if table[key] == nil && listeners[key.local.port] == nil {
                    found = true
                    break
                }
            }
            guard found else { throw NetstackError(.addressInUse, "no free ephemeral port toward \(remote)") }
        }
        var o = options ?? tcpOptions
        o.mtu = mtu
        let (isn, tsOffset) = sequenceNumbers.generate(local: key.local, remote: key.remote, now: now)
        let c = TCPConnection(
            local: key.local, remote: remote, isn: isn, timestampOffset: tsOffset, options: o, now: now)
        let id = insert(Slot(connection: c, key: key, pendingAcceptPort: nil, forwarded: false, hasHandle: true))
        service(id, now: now)
        return id
    }

    package func connection(_ id: ConnectionID) -> TCPConnection? { slots[id]?.connection }

    /// Runs `body` on a connection, then sends what it wants to send.
    package mutating func withConnection<R>(
        _ id: ConnectionID, now: NetInstant, _ body: (inout TCPConnection) -> R
    ) -> R? {
        guard let index = slots.index(forKey: id) else { return nil }
        let r = body(&slots.values[index].connection)
        service(id, now: now)
        return r
    }

    package mutating func write(_ id: ConnectionID, _ bytes: UnsafeRawBufferPointer, now: NetInstant) -> Int {
        withConnection(id, now: now) { $0.write(bytes) } ?? 0
    }

    package mutating func read(_ id: ConnectionID, into buffer: UnsafeMutableRawBufferPointer, now: NetInstant) -> Int {
        guard let index = slots.index(forKey: id) else { return 0 }
        let n = slots.values[index].connection.read(into: buffer)
        if slots.values[index].connection.ackNow { service(id, now: now) }
        return n
    }

    /// What a reader needs to know, without copying the connection.
    package struct ReadStatus {
        package var readable: Int
        package var atEnd: Bool
        package var closed: Bool
        package var error: NetstackError.Kind?
    }

    package func readStatus(_ id: ConnectionID) -> ReadStatus? {
        guard let index = slots.index(forKey: id) else { return nil }
        let c = slots.values[index].connection
        return ReadStatus(readable: c.readableBytes, atEnd: c.isReadAtEnd, closed: c.isClosed, error: c.error)
    }

    package func readableBytes(_ id: ConnectionID) -> Int {
        guard let index = slots.index(forKey: id) else { return 0 }
        return slots.values[index].connection.readableBytes
    }

    /// Why a write cannot proceed: the connection's error, or `.closed`; nil if it can.
    package func writeError(_ id: ConnectionID) -> NetstackError.Kind? {
        guard let index = slots.index(forKey: id) else { return .closed }
        let c = slots.values[index].connection
        if let e = c.error { return e }
        return c.isWriteClosed ? .closed : nil
    }

    /// A writer should look again: there is room, or writing became impossible.
    package func writeReady(_ id: ConnectionID) -> Bool {
        guard let index = slots.index(forKey: id) else { return true }
        let c = slots.values[index].connection
        return c.canWrite || c.isWriteClosed || c.isClosed
    }

    /// Everything written was acknowledged, or the connection ended.
    package func flushed(_ id: ConnectionID) -> Bool {
        guard let index = slots.index(forKey: id) else { return true }
        let c = slots.values[index].connection
        return c.unacknowledgedBytes == 0 || c.isClosed
    }

    package func connectionError(_ id: ConnectionID) -> NetstackError.Kind? {
        guard let index = slots.index(forKey: id) else { return nil }
        return slots.values[index].connection.error
    }

    package mutating func shutdownWrite(_ id: ConnectionID, now: NetInstant) {
        _ = withConnection(id, now: now) { $0.shutdownWrite() }
    }

    /// The application lets go of the connection: graceful close, reclaimed when finished.
    package mutating func close(_ id: ConnectionID, now: NetInstant) {
        guard slots[id] != nil else { return }
        _ = withConnection(id, now: now) { $0.close(now: now) }
        release(id)
    }

    package mutating func abort(_ id: ConnectionID, now: NetInstant) {
        _ = withConnection(id, now: now) { $0.abort() }
        release(id)
    }

    private mutating func release(_ id: ConnectionID) {
        guard var slot = slots[id] else { return }
        slot.hasHandle = false
        slots[id] = slot
        if slot.connection.isClosed { remove(id) }
    }

    // MARK: UDP

    package mutating func bindUDP(port: UInt16) throws(NetstackError) {
        guard port != 0 else { throw NetstackError(.invalidArgument, "port 0") }
        guard udp[port] == nil else { throw NetstackError(.addressInUse, "udp port \(port)") }
        udp[port] = UDPBinding()
    }

    package mutating func unbindUDP(port: UInt16) {
        udp[port] = nil
        changedUDPPorts.insert(port)
    }

    package mutating func receiveUDP(port: UInt16) -> Datagram? {
        guard var b = udp[port], !b.queue.isEmpty else { return nil }
        let d = b.queue.removeFirst()
        b.queuedBytes -= d.payload.count
        udp[port] = b
        return d
    }

    package func isBoundUDP(port: UInt16) -> Bool { udp[port] != nil }

    package func hasQueuedUDP(port: UInt16) -> Bool { udp[port]?.queue.isEmpty == false }

    /// Sends one datagram; `source` must be one of our addresses.
    package mutating func sendUDP(from source: SocketAddress, to destination: SocketAddress, payload: [UInt8])
        throws(NetstackError)
    {
        guard addresses.contains(source.address) else { throw NetstackError(.invalidArgument, "not our address") }
        let repr = UDPRepr(sourcePort: source.port, destinationPort: destination.port, payloadLength: payload.count)
        guard
            var ip = IPRepr(
                source: source.address, destination: destination.address, protocolNumber: .udp, payloadLength: 0)
        else { throw NetstackError(.invalidArgument, "address families differ") }
        ip.payloadLength = repr.bufferLength
        guard ip.bufferLength <= mtu else { throw NetstackError(.invalidArgument, "datagram larger than the MTU") }
        var packet = [UInt8](repeating: 0, count: ip.bufferLength)
        packet.withUnsafeMutableBytes { buf in
            let u = UnsafeMutableRawBufferPointer(rebasing: buf[ip.headerLength...])
            payload.withUnsafeBytes {
                u.baseAddress!.advanced(by: UDPDatagram.headerLength).copyMemory(
                    from: $0.baseAddress!, byteCount: $0.count)
            }
            repr.emit(into: u, source: ip.source, destination: ip.destination)
            ip.emit(into: buf)
        }
        outbound.append(packet)
        counters.packetsOut += 1
    }

    /// Sends one datagram from our address of the destination's family.
    package mutating func sendUDP(fromPort: UInt16, to destination: SocketAddress, payload: [UInt8])
        throws(NetstackError)
    {
        guard let a = addresses.first(where: { $0.isIPv6 == destination.address.isIPv6 }) else {
            throw NetstackError(.unreachable, "no local address of the family of \(destination.address)")
        }
        try sendUDP(from: SocketAddress(a, fromPort), to: destination, payload: payload)
    }

    private mutating func inputUDP(_ ip: IPRepr, _ bytes: UnsafeRawBufferPointer) throws {
        let d = try UDPDatagram(checking: bytes)
        let repr = try UDPRepr.parse(d, source: ip.source, destination: ip.destination)
        let datagram = Datagram(
            source: SocketAddress(ip.source, repr.sourcePort),
            destination: SocketAddress(ip.destination, repr.destinationPort),
            payload: Array(d.payload))
        if var b = udp[repr.destinationPort] {
            guard b.queuedBytes + datagram.payload.count <= Self.maximumUDPQueueBytes else {
                counters.udpDropped += 1
                return
            }
            b.queue.append(datagram)
            b.queuedBytes += datagram.payload.count
            udp[repr.destinationPort] = b
            changedUDPPorts.insert(repr.destinationPort)
        } else if forwardUnlistened {
            guard forwardedDatagrams.count < 4096 else {
                counters.udpDropped += 1
                return
            }
            forwardedDatagrams.append(datagram)
        } else {
            sendUnreachable(ip, bytes)
        }
    }

    // MARK: ICMP

    private mutating func inputICMPv4(_ ip: IPRepr, _ bytes: UnsafeRawBufferPointer, now: NetInstant) throws {
        let p = try ICMPv4Packet(checking: bytes)
        let repr = try ICMPv4Repr.parse(p)
        switch repr {
        case .echoRequest(let id, let seq, let n):
            let reply = ICMPv4Repr.echoReply(identifier: id, sequence: seq, dataLength: n)
            emitICMP(to: ip.source, from: ip.destination, protocolNumber: .icmp, length: reply.bufferLength) { buf in
                buf.baseAddress!.advanced(by: ICMPv4Packet.headerLength).copyMemory(
                    from: p.data.baseAddress!, byteCount: n)
                reply.emit(into: buf)
            }
            counters.echoRepliesSent += 1
        case .destinationUnreachable(let code, let mtu, _):
            icmpError(embedded: p.data, now: now) { c in
                if code == ICMPv4Repr.UnreachableCode.fragmentationNeeded {
                    c.pathMTUDecreased(to: Int(mtu))
                } else {
                    c.destinationUnreachable()
                }
            }
        case .echoReply:
            break
        }
    }

    private mutating func inputICMPv6(_ ip: IPRepr, _ bytes: UnsafeRawBufferPointer, now: NetInstant) throws {
        guard case .v6(let src) = ip.source, case .v6(let dst) = ip.destination else { return }
        let p = try ICMPv6Packet(checking: bytes)
        let repr = try ICMPv6Repr.parse(p, source: src, destination: dst)
        switch repr {
        case .echoRequest(let id, let seq, let n):
            let reply = ICMPv6Repr.echoReply(identifier: id, sequence: seq, dataLength: n)
            emitICMP(to: ip.source, from: ip.destination, protocolNumber: .icmpv6, length: reply.bufferLength) { buf in
                if n > 0 {
                    buf.baseAddress!.advanced(by: ICMPv6Packet.headerLength).copyMemory(
                        from: p.data.baseAddress!, byteCount: n)
                }
                reply.emit(into: buf, source: dst, destination: src)
            }
            counters.echoRepliesSent += 1
        case .packetTooBig(let mtu, _):
            icmpError(embedded: p.data, now: now) { $0.pathMTUDecreased(to: Int(Swift.min(mtu, 65535))) }
        case .destinationUnreachable:
            icmpError(embedded: p.data, now: now) { $0.destinationUnreachable() }
        case .echoReply:
            break
        }
    }

    /// Finds the connection an ICMP error is about, from the IP header and
    /// first 8 bytes of the packet it quotes (RFC 792, RFC 4443 §2.4).
    private mutating func icmpError(
        embedded: UnsafeRawBufferPointer, now: NetInstant, _ body: (inout TCPConnection) -> Void
    ) {
        guard embedded.count >= 1 else { return }
        let src: IPAddress
        let dst: IPAddress
        let proto: IPProtocol
        let transport: UnsafeRawBufferPointer
        switch embedded.u8(0) >> 4 {
        case 4:
            guard embedded.count >= IPv4Packet.minimumHeaderLength else { return }
            let ihl = Int(embedded.u8(0) & 0x0F) * 4
            guard ihl >= 20, embedded.count >= ihl + 8 else { return }
            src = .v4(IPv4Address(value: embedded.be32(12)))
            dst = .v4(IPv4Address(value: embedded.be32(16)))
            proto = IPProtocol(rawValue: embedded.u8(9))
            transport = embedded.slice(ihl..<embedded.count)
        case 6:
            guard embedded.count >= IPv6Packet.headerLength + 8 else { return }
            src = .v6(IPv6Address(high: embedded.be64(8), low: embedded.be64(16)))
            dst = .v6(IPv6Address(high: embedded.be64(24), low: embedded.be64(32)))
            proto = IPProtocol(rawValue: embedded.u8(6))
            transport = embedded.slice(IPv6Packet.headerLength..<embedded.count)
        default:
            return
        }
        guard proto == .tcp, transport.count >= 4 else { return }
        let key = ConnectionKey(
            local: SocketAddress(src, transport.be16(0)), remote: SocketAddress(dst, transport.be16(2)))
        guard let id = table[key] else { return }
        _ = withConnection(id, now: now, body)
    }

    private mutating func emitICMP(
        to destination: IPAddress, from source: IPAddress, protocolNumber: IPProtocol, length: Int,
        _ fill: (UnsafeMutableRawBufferPointer) -> Void
    ) {
        guard
            var ip = IPRepr(source: source, destination: destination, protocolNumber: protocolNumber, payloadLength: 0)
        else { return }
        ip.payloadLength = length
        guard ip.bufferLength <= 65535 else { return }
        var packet = [UInt8](repeating: 0, count: ip.bufferLength)
        packet.withUnsafeMutableBytes { buf in
            fill(UnsafeMutableRawBufferPointer(rebasing: buf[ip.headerLength...]))
            ip.emit(into: buf)
        }
        outbound.append(packet)
        counters.packetsOut += 1
    }

    /// ICMP port unreachable for a UDP datagram nobody wanted (RFC 1122 §4.1.3.1).
    private mutating func sendUnreachable(_ ip: IPRepr, _ transport: UnsafeRawBufferPointer) {
        // Quote our reconstruction of the offending IP header plus up to 8 bytes of its payload... the
        // whole transport header would do; we quote what RFC 792 requires.
        var original = ip
        original.payloadLength = transport.count
        let quoted = Swift.min(transport.count, 8)
        let quoteLength = original.headerLength + quoted
        var quote = [UInt8](repeating: 0, count: quoteLength)
        quote.withUnsafeMutableBytes { q in
            original.emit(into: q)
            if quoted > 0 {
                q.baseAddress!.advanced(by: original.headerLength).copyMemory(
                    from: transport.baseAddress!, byteCount: quoted)
            }
        }
        switch (ip.source, ip.destination) {
        case (.v4, _):
            let r = ICMPv4Repr.destinationUnreachable(
                code: ICMPv4Repr.UnreachableCode.port, nextHopMTU: 0, dataLength: quoteLength)
            emitICMP(to: ip.source, from: ip.destination, protocolNumber: .icmp, length: r.bufferLength) { buf in
                quote.withUnsafeBytes {
                    buf.baseAddress!.advanced(by: 8).copyMemory(from: $0.baseAddress!, byteCount: $0.count)
                }
                r.emit(into: buf)
            }
        case (.v6(let s), .v6(let d)):
            let r = ICMPv6Repr.destinationUnreachable(code: ICMPv6Repr.UnreachableCode.port, dataLength: quoteLength)
            emitICMP(to: ip.source, from: ip.destination, protocolNumber: .icmpv6, length: r.bufferLength) { buf in
                quote.withUnsafeBytes {
                    buf.baseAddress!.advanced(by: 8).copyMemory(from: $0.baseAddress!, byteCount: $0.count)
                }
                r.emit(into: buf, source: d, destination: s)
            }
        default:
            break
        }
    }
}

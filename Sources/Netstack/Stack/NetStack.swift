import Dispatch

/// A userspace TCP/IP stack on one link: the async face of `StackCore`.
///
/// One lock guards the core; packets leave and waiters wake outside it. A
/// background task runs the timers. Sockets (`TCPStream`, `TCPListener`,
/// `UDPSocket`) are thin handles that call back into the stack.
public final class NetStack: Sendable {
    public struct Configuration: Sendable {
        public var addresses: [IPAddress]
        /// Nagle off for every new connection (each socket can still choose).
        public var noDelay = false
        public var keepalive = false
        public var maximumReceiveBuffer = TCPConstants.maximumReceiveBuffer
        public var sendBuffer = TCPConstants.sendBuffer

        public init(addresses: [IPAddress]) { self.addresses = addresses }
    }

    /// Where connections and datagrams to ports nobody listens on go (the
    /// agent forwards them to the workspace's loopback).
    public struct Forwarder: Sendable {
        public var tcp: @Sendable (TCPStream) -> Void
        public var udp: @Sendable (UDPMessage) -> Void

        public init(tcp: @escaping @Sendable (TCPStream) -> Void, udp: @escaping @Sendable (UDPMessage) -> Void) {
            self.tcp = tcp
            self.udp = udp
        }
    }

    enum WaitKey: Hashable {
        case connection(Int)
        case listener(UInt16)
        case udp(UInt16)
    }

    struct State {
        var core: StackCore
        var waiters: [WaitKey: [CheckedContinuation<Void, Never>]] = [:]
        var running = true
        /// The timer task, parked until `parkedUntil` (nil: until a timer
        /// is scheduled at all). `withCore` wakes it early when the core's
        /// next deadline moves before that.
        var parkedTimer: CheckedContinuation<Void, Never>?
        var parkedUntil: NetInstant?
        /// Tells a parking's alarm from a later parking's.
        var parkGeneration = 0
        /// Passes of the timer task (tests check that an idle stack sleeps).
        var timerPasses = 0
    }

    private let state: Locked<State>
    let link: any NetLink
    private let forwarder: Forwarder?
    private let timerTask = Locked<Task<Void, Never>?>(nil)

    public init(_ configuration: Configuration, link: any NetLink, forwarder: Forwarder? = nil) {
        var o = TCPConnection.Options()
        o.noDelay = configuration.noDelay
        o.keepalive = configuration.keepalive
        o.maximumReceiveBuffer = configuration.maximumReceiveBuffer
        o.sendBufferSize = configuration.sendBuffer
        var core = StackCore(addresses: configuration.addresses, mtu: link.mtu, tcpOptions: o)
        core.forwardUnlistened = forwarder != nil
        core.offloadsTCP = link.offloadsTCP
        state = Locked(State(core: core))
        self.link = link
        self.forwarder = forwarder
        // The timer task runs when the core's next deadline is due and
        // sleeps in between (not at all while nothing is scheduled: an idle
        // stack, e.g. an agent nobody is connected to, never wakes).
        let state = self.state
        let task = Task.detached { [weak self] in
            while self?.runTimers() == true {
                await Self.sleepUntilDue(state)
            }
        }
        timerTask.withLock { $0 = task }
    }

    deinit {
        timerTask.withLock { $0?.cancel() }
        state.withLock { s in s.parkedTimer.take() }?.resume()
    }

    /// Suspends the timer task until the core's next deadline (an alarm on
    /// a Dispatch queue resumes it), or, with none, until `withCore` sees one
    /// scheduled; `withCore` also resumes it early for a sooner deadline.
    private static func sleepUntilDue(_ state: Locked<State>) async {
        await withCheckedContinuation { (cont: CheckedContinuation<Void, Never>) in
            let now = NetInstant.now()
            let plan = state.withLock { s -> (resumeNow: Bool, alarm: (generation: Int, delay: Duration)?) in
                guard s.running else { return (true, nil) }
                let next = s.core.nextDeadline
                if let next, next <= now { return (true, nil) }
                s.parkedTimer = cont
                s.parkedUntil = next
                s.parkGeneration &+= 1
                return (false, next.map { (s.parkGeneration, $0 - now) })
            }
            if plan.resumeNow {
                cont.resume()
                return
            }
            guard let alarm = plan.alarm else { return }
            DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(alarm.delay.nanoseconds))) {
                let due = state.withLock { s -> CheckedContinuation<Void, Never>? in
                    guard s.parkGeneration == alarm.generation else { return nil }
                    s.parkedUntil = nil
                    return s.parkedTimer.take()
                }
                due?.resume()
            }
        }
    }

    /// Stops the timer task and fails every waiting call.
    public func stop() {
        let waiters = state.withLock { s in
            s.running = false
            var w = s.waiters.values.flatMap { $0 }
            s.waiters = [:]
            if let t = s.parkedTimer.take() { w.append(t) }
            return w
        }
        timerTask.withLock { $0?.cancel() }
        for w in waiters { w.resume() }
    }

    /// Feeds one IP packet that arrived on the link.
    public func input(_ packet: UnsafeRawBufferPointer) {
        withCore { core, now in core.input(packet, now: now) }
    }

    public func input(_ packet: [UInt8]) {
        packet.withUnsafeBytes { input($0) }
    }

    /// Feeds a batch of IP packets under one lock. Connections are serviced
    /// once after the whole batch: in-order segments coalesce in the receive
    /// buffer behind one ACK, and a run of ACKs releases one burst. Links
    /// that read several packets at a time (recvmmsg, a queue) should use it.
    public func input(_ packets: [[UInt8]]) {
        guard !packets.isEmpty else { return }
        withCore { core, now in
            core.beginBatch()
            for p in packets { p.withUnsafeBytes { core.input($0, now: now) } }
            core.endBatch(now: now)
        }
    }

    /// Feeds a batch of packets that live in caller buffers (no copies into
    /// arrays). `checksumVerified[i]`, when given, says the link vouches for
    /// packet i's TCP checksum: a TUN device with a virtio-net header hands
    /// the local kernel's TCP segments over with `NEEDS_CSUM`, their
    /// checksum never computed because they never left the machine.
    public func input(_ packets: [UnsafeRawBufferPointer], checksumVerified: [Bool] = []) {
        precondition(checksumVerified.isEmpty || checksumVerified.count == packets.count)
        guard !packets.isEmpty else { return }
        withCore { core, now in
            core.beginBatch()
            for (i, p) in packets.enumerated() {
                core.input(p, now: now, checksumVerified: !checksumVerified.isEmpty && checksumVerified[i])
            }
            core.endBatch(now: now)
        }
    }

    /// Counters of what came in and what was dropped why.
    package var counters: StackCore.Counters { state.withLock { $0.core.counters } }

    private func runTimers() -> Bool {
        withCore { core, now in
            if let d = core.nextDeadline, d <= now { core.handleTimers(now: now) }
        }
        return state.withLock { s in
            s.timerPasses += 1
            return s.running
        }
    }

    /// How many times the timer task has run (see `sleepUntilDue`).
    package var timerPasses: Int { state.withLock { $0.timerPasses } }

    /// Runs `body` on the core under the lock; afterwards, outside it, sends
    /// the packets it produced, wakes waiters whose sockets changed and hands
    /// new work to the forwarder.
    @discardableResult
    func withCore<R>(_ body: (inout StackCore, NetInstant) throws -> R) rethrows -> R {
        let now = NetInstant.now()
        var forwardedIDs: [Int] = []
        var datagrams: [StackCore.Datagram] = []
        let (result, packets, wake) = try state.withLock { s in
            let r = try body(&s.core, now)
            let packets = s.core.outbound
            s.core.outbound = []
            var wake: [CheckedContinuation<Void, Never>] = []
            for id in s.core.changedConnections {
                if let w = s.waiters.removeValue(forKey: .connection(id)) { wake += w }
            }
            for p in s.core.changedListeners {
                if let w = s.waiters.removeValue(forKey: .listener(p)) { wake += w }
            }
            for p in s.core.changedUDPPorts {
                if let w = s.waiters.removeValue(forKey: .udp(p)) { wake += w }
            }
            s.core.changedConnections.removeAll(keepingCapacity: true)
            s.core.changedListeners.removeAll(keepingCapacity: true)
            s.core.changedUDPPorts.removeAll(keepingCapacity: true)
            if s.parkedTimer != nil, let next = s.core.nextDeadline, s.parkedUntil.map({ next < $0 }) ?? true,
                let t = s.parkedTimer.take()
            {
                s.parkedUntil = nil
                wake.append(t)
            }
            if forwarder != nil {
                while let id = s.core.acceptForwarded() { forwardedIDs.append(id) }
                datagrams = s.core.forwardedDatagrams
                s.core.forwardedDatagrams = []
            }
            return (r, packets, wake)
        }
        if !packets.isEmpty { link.send(packets) }
        for w in wake { w.resume() }
        if let forwarder {
            for id in forwardedIDs {
                guard let c = state.withLock({ $0.core.connection(id) }) else { continue }
                forwarder.tcp(TCPStream(stack: self, id: id, local: c.local, remote: c.remote))
            }
            for d in datagrams {
                forwarder.udp(UDPMessage(source: d.source, destination: d.destination, payload: d.payload))
            }
        }
        return result
    }

    /// Suspends until `ready` holds on the core, re-checking after every change
    /// to `key`. False if the stack stopped instead.
    @discardableResult
    func wait(_ key: WaitKey, until ready: (inout StackCore) -> Bool) async -> Bool {
        while true {
            let (running, isReady) = state.withLock { s in (s.running, s.running && ready(&s.core)) }
            if !running { return false }
            if isReady { return true }
            await withCheckedContinuation { (cont: CheckedContinuation<Void, Never>) in
                let immediate = state.withLock { s -> Bool in
                    if !s.running || ready(&s.core) { return true }
                    s.waiters[key, default: []].append(cont)
                    return false
                }
                if immediate { cont.resume() }
            }
        }
    }

    // MARK: TCP

    /// Starts accepting connections on `port` (all local addresses).
    public func listen(port: UInt16, backlog: Int = 1024) throws(NetstackError) -> TCPListener {
        let r: Result<Void, NetstackError> = state.withLock { s in
            do throws(NetstackError) {
                try s.core.listen(port: port, backlog: backlog)
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        try r.get()
        return TCPListener(stack: self, port: port)
    }

    /// Opens a connection; returns once it is established.
    public func dial(_ remote: SocketAddress, noDelay: Bool? = nil) async throws(NetstackError) -> TCPStream {
        let result: Result<Int, NetstackError> = withCore { core, now in
            var o = core.tcpOptions
            if let noDelay { o.noDelay = noDelay }
            do throws(NetstackError) {
                return .success(try core.connect(to: remote, options: o, now: now))
            } catch {
                return .failure(error)
            }
        }
        let id = try result.get()
        await wait(.connection(id)) { core in
            guard let c = core.connection(id) else { return true }
            return c.isEstablished || c.isClosed
        }
        let c = state.withLock { $0.core.connection(id) }
        guard let c, c.isEstablished, !c.isClosed || c.error == nil else {
            let kind = c?.error ?? .closed
            withCore { core, now in core.abort(id, now: now) }
            throw NetstackError(kind, "dial \(remote)")
        }
        return TCPStream(stack: self, id: id, local: c.local, remote: c.remote)
    }

    // MARK: UDP

    public func bindUDP(port: UInt16) throws(NetstackError) -> UDPSocket {
        let r: Result<Void, NetstackError> = state.withLock { s in
            do throws(NetstackError) {
                try s.core.bindUDP(port: port)
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        try r.get()
        return UDPSocket(stack: self, port: port)
    }

    /// Sends a datagram from any of our addresses and any port (the forwarder replies this way).
    public func sendUDP(from source: SocketAddress, to destination: SocketAddress, payload: [UInt8])
        throws(NetstackError)
    {
        let r: Result<Void, NetstackError> = withCore { core, _ in
            do throws(NetstackError) {
                try core.sendUDP(from: source, to: destination, payload: payload)
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        try r.get()
    }
}

/// One UDP datagram with both ends.
public struct UDPMessage: Sendable {
    public var source: SocketAddress
    public var destination: SocketAddress
    public var payload: [UInt8]
}

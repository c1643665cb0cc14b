import CryptoPrimitives
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// A DERP client: dials a server, logs in with its node key, sends packets
/// to other keys and hears packets and peer events.
///
/// `connect()` makes one connection; `start()` keeps one up, dialing again
/// with exponential backoff (100 ms doubling to 10 s, with jitter) after
/// every loss, and re-sending NotePreferred (and WatchConns for a mesh
/// watcher) on each new connection.
///
/// Sending copies the packet into a per-connection buffer that is written
/// in one go on the event loop; when more than `sendBufferHighWater` bytes
/// wait, `send` suspends until the socket drains (back-pressure instead of
/// loss on the client side).
public final class DERPClient: Sendable {
    public enum Transport: Sendable, Equatable {
        /// `Upgrade: DERP`, falling back to WebSocket when the path cannot
        /// carry it: the upgrade is refused, or TLS ALPN settles on `h2`.
        case automatic
        case upgrade
        case webSocket
    }

    public struct Options: Sendable {
        public var transport: Transport = .automatic
        public var meshKey = ""
        /// Subscribe to the server's connection changes (mesh key needed).
        public var watchConnectionChanges = false
        public var isProber = false
        /// Refuse a server whose key is not this one.
        public var expectedServerKey: NodeKey?
        public var tls = TLSConfiguration.makeClientConfiguration()
        public var connectTimeout: TimeAmount = .seconds(10)
        public var loginTimeout: TimeAmount = .seconds(10)
        /// Close when nothing arrives for this long (two KeepAlives missed).
        public var readTimeout: TimeAmount = .seconds(120)
        public var initialBackoff: TimeAmount = .milliseconds(100)
        public var maximumBackoff: TimeAmount = .seconds(10)
        public var sendBufferHighWater = 1 << 20
        public var logger = Logger(label: "tether.derp.client")
        public init() {}
    }

    public let url: DERPURL
    public let options: Options
    public var publicKey: NodeKey { identity.publicKey }
    let identity: Identity
    private let group: any EventLoopGroup
    /// Everything the server says, in order. Packets go here too unless a
    /// `packetHandler` takes them.
    public let events: AsyncStream<DERPEvent>
    private let continuation: AsyncStream<DERPEvent>.Continuation
    private let packetHandler: (@Sendable (NodeKey, ByteBuffer) -> Void)?
    private let state = Mutex(State())

    private struct State: ~Copyable {
        var channel: (any Channel)?
        var serverKey: NodeKey?
        var serverInfo: ServerInfo?
        var pending: ByteBuffer?
        var flushScheduled = false
        var waiters: [CheckedContinuation<Void, Never>] = []
        var preferred: Bool?
        var closed = false
        var running: Task<Void, Never>?
        var pings: [UInt64: CheckedContinuation<Void, any Error>] = [:]
        var transport: Transport?
        var healthProblem: String?
        /// From a Restarting frame, for the reconnect after this connection:
        /// reconnect-in and try-for, in milliseconds as on the wire. (Plain
        /// integers: a `Duration` here would raise the alignment of the
        /// whole locked state.)
        var restart: (reconnectIn: UInt32, tryFor: UInt32)?
    }

    /// - Parameter packetHandler: called on the event loop for each
    ///   received packet (the fast path); nil sends packets to `events`.
    public init(
        url: DERPURL, privateKey: consuming X25519.PrivateKey, options: Options = Options(),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        packetHandler: (@Sendable (NodeKey, ByteBuffer) -> Void)? = nil
    ) {
        self.url = url
        self.options = options
        self.group = group
        self.packetHandler = packetHandler
        identity = Identity(privateKey)
        (events, continuation) = AsyncStream.makeStream(of: DERPEvent.self, bufferingPolicy: .unbounded)
    }

    public var serverKey: NodeKey? { state.withLock { $0.serverKey } }
    public var serverInfo: ServerInfo? { state.withLock { $0.serverInfo } }
    public var isConnected: Bool { state.withLock { $0.channel != nil } }
    /// How the current (or last) connection was made: `.upgrade` or
    /// `.webSocket`.
    public var transportInUse: Transport? { state.withLock { $0.transport } }
    /// The problem the server last reported in a Health frame; nil when
    /// none (or an empty Health frame cleared it).
    public var healthProblem: String? { state.withLock { $0.healthProblem } }

    // MARK: - Connecting

    /// Dials and logs in once. Throws `.upgradeRefused`, `.loginFailed`,
    /// `.timeout` or a transport error.
    public func connect() async throws {
        switch options.transport {
        case .automatic:
            do {
                try await connectOnce(transport: .upgrade)
            } catch let error as DERPError where error.kind == .upgradeRefused {
                options.logger.info("DERP upgrade refused, trying WebSocket", metadata: ["url": "\(url)", "reason": "\(error)"])
                try await connectOnce(transport: .webSocket)
            }
        case let transport:
            try await connectOnce(transport: transport)
        }
    }

    /// Keeps a connection up until `close()`.
    public func start() {
        let task = Task { await self.reconnectLoop() }
        state.withLock { $0.running = task }
    }

    /// Dials until connected, waits for the connection to end, and again:
    /// with exponential backoff and jitter after failures, or, after the
    /// server said Restarting, first after its reconnect-in delay and then
    /// quickly (100 ms doubling to 1 s) for its try-for period.
    private func reconnectLoop() async {
        var backoff = options.initialBackoff
        var delay = Duration.zero
        var keepTryingUntil: ContinuousClock.Instant?
        while !state.withLock({ $0.closed }) {
            if delay > .zero { try? await Task.sleep(for: delay) }
            if state.withLock({ $0.closed }) { break }
            do {
                try await connect()
                backoff = options.initialBackoff
                keepTryingUntil = nil
                if let channel = state.withLock({ $0.channel }) { try? await channel.closeFuture.get() }
            } catch {
                options.logger.debug("DERP dial failed", metadata: ["url": "\(url)", "error": "\(error)"])
            }
            if state.withLock({ $0.closed }) { break }
            if let hint = state.withLock({ s in
                defer { s.restart = nil }
                return s.restart
            }) {
                let restart = (reconnectIn: Duration.milliseconds(Int64(hint.reconnectIn)), tryFor: Duration.milliseconds(Int64(hint.tryFor)))
                options.logger.info(
                    "DERP server restarting", metadata: ["url": "\(url)", "reconnect_in": "\(restart.reconnectIn)", "try_for": "\(restart.tryFor)"])
                delay = restart.reconnectIn
                keepTryingUntil = .now + restart.reconnectIn + restart.tryFor
                backoff = min(options.initialBackoff, .milliseconds(100))
                continue
            }
            if let until = keepTryingUntil, ContinuousClock.now < until {
                delay = Duration.nanoseconds(backoff.nanoseconds)
                backoff = min(backoff * 2, .seconds(1))
                continue
            }
            keepTryingUntil = nil
            let jitter = Int64.random(in: 0...max(1, backoff.nanoseconds / 2))
            delay = .nanoseconds(backoff.nanoseconds + jitter)
            backoff = min(backoff * 2, options.maximumBackoff)
        }
    }

    private func connectOnce(transport: Transport) async throws {
        let dialer = Dialer(
            url: url, transport: transport, tls: options.tls, connectTimeout: options.connectTimeout,
            readTimeout: options.readTimeout, loginTimeout: options.loginTimeout, logger: options.logger)
        let info = ClientInfo(meshKey: options.meshKey, canAckPings: true, isProber: options.isProber)
        // A new server (or the same one restarted) states its own health.
        state.withLock { $0.healthProblem = nil }
        let (channel, login) = try await dialer.dial(
            group: group, identity: identity, info: info, expectedServerKey: options.expectedServerKey,
            writabilityChanged: { [weak self] channel in self?.flush(channel) },
            onEvent: { [weak self] event in self?.deliver(event) })
        let serverKey = login.serverKey
        let serverInfo = login.serverInfo
        let (closed, preferred) = state.withLock { s -> (Bool, Bool?) in
            if s.closed { return (true, nil) }
            s.channel = channel
            s.serverKey = serverKey
            s.serverInfo = serverInfo
            s.pending = nil
            s.flushScheduled = false
            s.transport = transport
            return (false, s.preferred)
        }
        if closed {
            channel.close(promise: nil)
            throw DERPError(.connectionClosed, "client closed")
        }
        if let preferred { write(.notePreferred(preferred), on: channel) }
        if options.watchConnectionChanges { write(.watchConns, on: channel) }
        continuation.yield(.connected(serverKey: serverKey))
        channel.closeFuture.whenComplete { [weak self] _ in self?.connectionEnded(channel) }
    }

    private func connectionEnded(_ channel: any Channel) {
        let (waiters, pings) = state.withLock { s -> ([CheckedContinuation<Void, Never>], [CheckedContinuation<Void, any Error>]) in
            guard s.channel === channel else { return ([], []) }
            s.channel = nil
            s.pending = nil
            s.flushScheduled = false
            defer {
                s.waiters = []
                s.pings = [:]
            }
            return (s.waiters, Array(s.pings.values))
        }
        for waiter in waiters { waiter.resume() }
        for ping in pings { ping.resume(throwing: DERPError(.connectionClosed, "connection lost")) }
        continuation.yield(.disconnected(reason: "connection to \(url) closed"))
    }

    private func deliver(_ event: DERPEvent) {
        switch event {
        case .packet(let source, let packet):
            if let packetHandler { return packetHandler(source, packet) }
        case .pong(let data):
            if let waiter = state.withLock({ $0.pings.removeValue(forKey: data.value) }) {
                waiter.resume()
                return
            }
        case .health(let text):
            state.withLock { $0.healthProblem = text.isEmpty ? nil : text }
            if !text.isEmpty { options.logger.warning("DERP server reports a problem", metadata: ["url": "\(url)", "problem": "\(text)"]) }
        case .restarting(let reconnectIn, let tryFor):
            state.withLock { $0.restart = (reconnectIn, tryFor) }
        default: break
        }
        continuation.yield(event)
    }

    /// Closes the connection and stops reconnecting; ends `events`.
    public func close() async {
        let (channel, task) = state.withLock { s -> ((any Channel)?, Task<Void, Never>?) in
            s.closed = true
            return (s.channel, s.running)
        }
        task?.cancel()
        try? await channel?.close()
        continuation.finish()
    }

    // MARK: - Sending

    /// Sends `packet` (at most 64 KiB) to the client with key `destination`.
    public func send(to destination: NodeKey, packet: some RawBytes) async throws {
        let count = packet.withUnsafeBytes { $0.count }
        guard count <= DERPWire.maxPacketSize else {
            throw DERPError(.invalidArgument, "packet of \(count) bytes exceeds \(DERPWire.maxPacketSize)")
        }
        // Held as plain words across the wait below (see `LoginResult`).
        let destination = KeyWords(destination)
        while true {
            switch enqueue({ Frame.writeSendPacket(destination: destination.key, packet: packet, into: &$0) }, limit: options.sendBufferHighWater) {
            case .queued: return
            case .notConnected: throw DERPError(.connectionClosed, "not connected to \(url)")
            case .full: await waitForRoom()
            }
        }
    }

    /// Sends without waiting; false when not connected or the buffer holds
    /// more than four times the high-water mark (the packet is dropped).
    @discardableResult
    public func trySend(to destination: NodeKey, packet: some RawBytes) -> Bool {
        guard packet.withUnsafeBytes({ $0.count }) <= DERPWire.maxPacketSize else { return false }
        return enqueue({ Frame.writeSendPacket(destination: destination, packet: packet, into: &$0) }, limit: 4 * options.sendBufferHighWater) == .queued
    }

    /// Mesh only: hands a packet for one of the server's clients to it.
    func forward(source: NodeKey, destination: NodeKey, packet: ByteBuffer) -> Bool {
        enqueue({ Frame.forwardPacket(source: source, destination: destination, packet: packet).encode(into: &$0) }, limit: 4 * options.sendBufferHighWater) == .queued
    }

    /// Tells the server whether it is this client's home (preferred) one;
    /// remembered and sent again after each reconnect.
    public func notePreferred(_ preferred: Bool) {
        let channel = state.withLock { s -> (any Channel)? in
            s.preferred = preferred
            return s.channel
        }
        if let channel { write(.notePreferred(preferred), on: channel) }
    }

    /// Mesh only: asks the server to close the connection of `key`.
    public func closePeer(_ key: NodeKey) {
        if let channel = state.withLock({ $0.channel }) { write(.closePeer(key), on: channel) }
    }

    /// Sends a Ping and waits for its Pong.
    public func ping(timeout: Duration = .seconds(5)) async throws -> Duration {
        guard let channel = state.withLock({ $0.channel }) else { throw DERPError(.connectionClosed, "not connected") }
        let data = PingData(SecureRandom.uint64())
        let clock = ContinuousClock()
        let start = clock.now
        let timer = Task {
            try await Task.sleep(for: timeout)
            if let waiter = self.state.withLock({ $0.pings.removeValue(forKey: data.value) }) {
                waiter.resume(throwing: DERPError(.timeout, "no pong within \(timeout)"))
            }
        }
        defer { timer.cancel() }
        try await withCheckedThrowingContinuation { (waiter: CheckedContinuation<Void, any Error>) in
            state.withLock { $0.pings[data.value] = waiter }
            write(.ping(data), on: channel)
        }
        return clock.now - start
    }

    // MARK: - The send buffer

    private enum EnqueueResult { case queued, notConnected, full }

    private func enqueue(_ encode: (inout ByteBuffer) -> Void, limit: Int) -> EnqueueResult {
        let (result, schedule) = state.withLock { s -> (EnqueueResult, (any Channel)?) in
            guard !s.closed, let channel = s.channel else { return (.notConnected, nil) }
            if let pending = s.pending, pending.readableBytes >= limit { return (.full, nil) }
            if s.pending == nil { s.pending = channel.allocator.buffer(capacity: 16 << 10) }
            encode(&s.pending!)
            guard !s.flushScheduled else { return (.queued, nil) }
            s.flushScheduled = true
            return (.queued, channel)
        }
        if let channel = schedule { channel.eventLoop.execute { self.flush(channel) } }
        return result
    }

    /// On the event loop: writes what is pending if the socket takes it.
    private func flush(_ channel: any Channel) {
        guard channel.isWritable else { return }  // resumed by WritabilityObserver
        let (buffer, waiters) = state.withLock { s -> (ByteBuffer?, [CheckedContinuation<Void, Never>]) in
            guard s.channel === channel else { return (nil, []) }
            let buffer = s.pending
            s.pending = nil
            s.flushScheduled = false
            defer { s.waiters = [] }
            return (buffer, s.waiters)
        }
        if let buffer { channel.writeAndFlush(buffer, promise: nil) }
        for waiter in waiters { waiter.resume() }
    }

    private func waitForRoom() async {
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                guard s.channel != nil, let pending = s.pending, pending.readableBytes >= options.sendBufferHighWater else { return true }
                s.waiters.append(waiter)
                return false
            }
            if now { waiter.resume() }
        }
    }

    private func write(_ frame: Frame, on channel: any Channel) {
        _ = enqueue({ frame.encode(into: &$0) }, limit: .max)
    }
}

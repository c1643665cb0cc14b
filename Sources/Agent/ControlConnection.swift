import Logging
import NIOCore
import NIOPosix
import Synchronization
import HTTPTypes
import WSClient

/// The agent's one connection to the control plane, kept forever: dial,
/// `hello`, `welcome`, then send what the `Reporter` has and apply
/// `logs_ack`s, until the socket breaks; wait a jittered backoff; repeat.
final class ControlConnection: Sendable {
    /// One event-loop thread carries the agent's one socket. NIO's shared
    /// group would start a thread per core (each with its own stack and
    /// malloc arena): dozens on a large VM, for one idle WebSocket.
    static let eventLoopGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    let url: String
    let token: String
    let hello: Hello
    let reporter: Reporter
    let logger: Logger
    /// Called with each `welcome`'s manifest (the agent uses the first).
    let onManifest: @Sendable (Manifest) -> Void
    /// Called with each coordination message (`tunnel`, `peer_upsert`,
    /// `peer_remove`), in arrival order.
    let onCoordination: @Sendable (ServerMessage) -> Void
    /// Set while a connection is up and has sent everything (logs
    /// acknowledged, last lifecycle state written): shutdown waits for it.
    let connected = Atomic<Bool>(false)
    /// The live connection's cursor, if any.
    private let current = Locked<CursorBox?>(nil)
    /// Set by `finish`: close normally and do not reconnect.
    private let finishing = Flag()
    let txBytes = Atomic<Int64>(0)
    let rxBytes = Atomic<Int64>(0)

    init(
        url: String, token: String, hello: Hello, reporter: Reporter, logger: Logger,
        onManifest: @escaping @Sendable (Manifest) -> Void,
        onCoordination: @escaping @Sendable (ServerMessage) -> Void = { _ in }
    ) {
        self.url = url
        self.token = token
        self.hello = hello
        self.reporter = reporter
        self.logger = logger
        self.onManifest = onManifest
        self.onCoordination = onCoordination
    }

    /// The WebSocket URL for a control plane base URL (http→ws, https→wss).
    static func socketURL(base: String) -> String {
        var b = base
        while b.hasSuffix("/") { b.removeLast() }
        if b.hasPrefix("https://") { b = "wss://" + b.dropFirst(8) } else if b.hasPrefix("http://") { b = "ws://" + b.dropFirst(7) }
        return b + ControlProtocolVersion.agentPath
    }

    /// Runs until the task is cancelled.
    func run() async {
        var backoff = Backoff()
        var rng = SystemRandomNumberGenerator()
        while !Task.isCancelled, !finishing.value.load(ordering: .relaxed) {
            let welcomed = Flag()
            do {
                try await connectOnce(welcomed: welcomed)
                logger.info(finishing.value.load(ordering: .relaxed) ? "control connection closed" : "control connection closed by the control plane")
            } catch is CancellationError {
                break
            } catch {
                logger.warning("control connection: \(error)")
            }
            connected.store(false, ordering: .relaxed)
            current.withLock { $0 = nil }
            if finishing.value.load(ordering: .relaxed) { break }
            if welcomed.value.load(ordering: .relaxed) { backoff.reset() }
            let delay = backoff.next(unit: Double.random(in: 0..<1, using: &rng))
            logger.debug("reconnecting in \(delay)")
            try? await Task.sleep(for: delay)
        }
    }

    /// Everything recorded so far is delivered: logs acknowledged, and the
    /// last lifecycle state written on the live connection.
    var isFlushed: Bool {
        guard let box = current.value else { return false }
        let delivered = box.delivered.withLock { $0 }
        return reporter.isFlushed(lifecycleDelivered: delivered)
    }

    /// Waits until `isFlushed`, or `limit`.
    func waitFlushed(limit: Duration) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if isFlushed { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return isFlushed
    }

    /// Closes the connection normally (WebSocket close handshake, so the
    /// control plane reads every message before it) and stops reconnecting.
    func finish() {
        finishing.value.store(true, ordering: .relaxed)
        reporter.wake.notify()
    }

    private func connectOnce(welcomed: Flag) async throws {
        var headers = HTTPFields()
        headers[.authorization] = "Bearer \(token)"
        let config = WebSocketClientConfiguration(
            maxFrameSize: ControlLimits.maxMessageBytes, additionalHeaders: headers,
            closeTimeout: .seconds(2), autoPing: .enabled(timePeriod: .seconds(15)))
        let client = WebSocketClient(
            url: Self.socketURL(base: url), configuration: config, eventLoopGroup: Self.eventLoopGroup, logger: logger
        ) {
            [self] inbound, outbound, _ in
            try await send(.hello(hello), outbound)
            var messages = inbound.messages(maxSize: ControlLimits.maxMessageBytes).makeAsyncIterator()
            guard let first = try await messages.next() else { return }
            guard case .welcome(let welcome) = try decode(first) else {
                throw ProtocolError(code: "unexpected", message: "first message was not welcome")
            }
            welcomed.value.store(true, ordering: .relaxed)
            connected.store(true, ordering: .relaxed)
            logger.info("connected to control plane; resuming logs after seq \(welcome.resumeLogSeq)")
            onManifest(welcome.manifest)
            let cursor = CursorBox(reporter.resume(at: welcome.resumeLogSeq))
            current.withLock { $0 = cursor }

            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { [self] in
                    while !Task.isCancelled {
                        if finishing.value.load(ordering: .relaxed) {
                            try await outbound.close(.normalClosure, reason: "agent stopped")
                            return
                        }
                        let (batch, lifecycleCount) = cursor.mutex.withLock { c in (reporter.drain(&c), c.lifecycleSent) }
                        for message in batch { try await send(message, outbound) }
                        cursor.delivered.withLock { $0 = lifecycleCount }
                        if batch.isEmpty || !cursor.mutex.withLock({ reporter.hasUnsentLogs($0) }) {
                            await reporter.wake.wait()
                        }
                        // Let lines that arrive meanwhile join the next batch
                        // (a lifecycle change does not wait for them).
                        if !cursor.mutex.withLock({ reporter.hasUnsentLifecycle($0) }) {
                            try await Task.sleep(for: .milliseconds(10))
                        }
                    }
                }
                while let message = try await messages.next() {
                    let decoded = try decode(message)
                    switch decoded {
                    case .logsAck(let ack) where ack.session == reporter.session:
                        reporter.acknowledgeLogs(through: ack.seq)
                    case .error(let error):
                        logger.error("control plane closed the connection: \(error.code): \(error.message)")
                    case .tunnel, .peerUpsert, .peerRemove:
                        onCoordination(decoded)
                    case .welcome, .logsAck, .readyForHandshake, .unknown:
                        break
                    }
                }
                group.cancelAll()
            }
        }
        try await client.run()
    }

    private func send(_ message: AgentMessage, _ outbound: WebSocketOutboundWriter) async throws {
        let bytes = ControlCodec.encode(message)
        txBytes.add(Int64(bytes.count), ordering: .relaxed)
        try await outbound.write(.text(String(decoding: bytes, as: UTF8.self)))
    }

    private func decode(_ message: WebSocketMessage) throws -> ServerMessage {
        switch message {
        case .text(let text):
            rxBytes.add(Int64(text.utf8.count), ordering: .relaxed)
            return try ControlCodec.decodeServerMessage(Array(text.utf8))
        case .binary:
            throw ProtocolError(code: "unexpected", message: "binary frame from control plane")
        }
    }
}

final class Flag: Sendable {
    let value = Atomic<Bool>(false)
}

/// One connection's send cursor, shared by its reader and writer tasks.
final class CursorBox: Sendable {
    let mutex: Mutex<Reporter.Cursor>
    /// Lifecycle updates fully written to the socket.
    let delivered = Mutex(0)
    init(_ cursor: Reporter.Cursor) { mutex = Mutex(cursor) }
}

/// One TCP connection, as the application sees it. Reads and writes suspend
/// with backpressure: `write` returns once the send buffer took every byte,
/// `read` once some bytes (or the end) arrived.
public final class TCPStream: Sendable {
    let stack: NetStack
    let id: Int
    public let localAddress: SocketAddress
    public let remoteAddress: SocketAddress

    init(stack: NetStack, id: Int, local: SocketAddress, remote: SocketAddress) {
        self.stack = stack
        self.id = id
        localAddress = local
        remoteAddress = remote
    }

    deinit {
        stack.withCore { core, now in core.close(id, now: now) }
    }

    private enum ReadOutcome {
        case data(Int)
        case end
        case failure(NetstackError.Kind)
        case wait
    }

    /// Up to `maximumCount` bytes; an empty array means the peer finished sending.
    public func read(maximumCount: Int = 64 * 1024) async throws(NetstackError) -> [UInt8] {
        var out = [UInt8]()
        try await readLoop { core, now in
            let n = Swift.min(maximumCount, core.readableBytes(id))
            out = [UInt8](unsafeUninitializedCapacity: n) { buf, initialized in
                initialized = core.read(id, into: UnsafeMutableRawBufferPointer(buf), now: now)
            }
            return out.count
        }
        return out
    }

    /// Moves up to `buffer.count` received bytes into `buffer` without an
    /// intermediate array; returns how many, 0 once the peer finished sending.
    public func read(into buffer: UnsafeMutableRawBufferPointer) async throws(NetstackError) -> Int {
        guard buffer.count > 0 else { return 0 }
        return try await readLoop { core, now in core.read(id, into: buffer, now: now) }
    }

    /// Waits for readable bytes (or the end) and moves them with `take`.
    private func readLoop(_ take: (inout StackCore, NetInstant) -> Int) async throws(NetstackError) -> Int {
        while true {
            let outcome: ReadOutcome = stack.withCore { core, now in
                guard let status = core.readStatus(id) else { return .failure(.closed) }
                if status.readable > 0 { return .data(take(&core, now)) }
                if status.atEnd { return .end }
                if let e = status.error { return .failure(e) }
                if status.closed { return .end }
                return .wait
            }
            switch outcome {
            case .data(let n): return n
            case .end: return 0
            case .failure(let k): throw NetstackError(k, "read from \(remoteAddress)")
            case .wait:
                let running = await stack.wait(.connection(id)) { core in
                    guard let s = core.readStatus(id) else { return true }
                    return s.readable > 0 || s.atEnd || s.closed
                }
                if !running { throw NetstackError(.closed, "read from \(remoteAddress): stack stopped") }
            }
        }
    }

    /// Queues all of `bytes`, waiting for send-buffer space as needed.
    public func write(_ bytes: [UInt8]) async throws(NetstackError) {
        var offset = 0
        while offset < bytes.count {
            let r: Result<Int, NetstackError> = stack.withCore { core, now in
                if let e = core.writeError(id) { return .failure(NetstackError(e)) }
                let n = bytes.withUnsafeBytes {
                    core.write(id, UnsafeRawBufferPointer(rebasing: $0[offset...]), now: now)
                }
                return .success(n)
            }
            switch r {
            case .failure(let e): throw NetstackError(e.kind, "write to \(remoteAddress)")
            case .success(let n):
                offset += n
                if offset < bytes.count {
                    let running = await stack.wait(.connection(id)) { core in
                        core.writeReady(id)
                    }
                    if !running { throw NetstackError(.closed, "write to \(remoteAddress): stack stopped") }
                }
            }
        }
    }

    /// Waits until the peer acknowledged everything written (or the connection ended).
    public func flush() async throws(NetstackError) {
        let running = await stack.wait(.connection(id)) { core in
            core.flushed(id)
        }
        if !running { throw NetstackError(.closed, "flush to \(remoteAddress): stack stopped") }
        if let e = stack.withCore({ core, _ in core.connectionError(id) }) {
            throw NetstackError(e, "flush to \(remoteAddress)")
        }
    }

    /// Half-close: sends FIN after the queued data; reading goes on.
    public func shutdownWrite() {
        stack.withCore { core, now in core.shutdownWrite(id, now: now) }
    }

    /// Graceful close; the stack finishes sending in the background. Unread data turns it into a reset.
    public func close() {
        stack.withCore { core, now in core.close(id, now: now) }
    }

    /// Resets the connection at once.
    public func abort() {
        stack.withCore { core, now in core.abort(id, now: now) }
    }

    /// Nagle's algorithm off (true) or on (false) for this connection.
    public func setNoDelay(_ on: Bool) {
        stack.withCore { core, now in
            _ = core.withConnection(id, now: now) { $0.options.noDelay = on }
        }
    }

    public func setKeepalive(_ on: Bool) {
        stack.withCore { core, now in
            _ = core.withConnection(id, now: now) { c in
                c.options.keepalive = on
                c.armKeepalive(now: now)
            }
        }
    }
}

/// Accepts connections on one port.
public final class TCPListener: Sendable {
    let stack: NetStack
    public let port: UInt16

    init(stack: NetStack, port: UInt16) {
        self.stack = stack
        self.port = port
    }

    deinit { close() }

    /// The next established connection; throws `.closed` once the listener is closed.
    public func accept() async throws(NetstackError) -> TCPStream {
        while true {
            let r: (Int, SocketAddress, SocketAddress)?? = stack.withCore { core, _ in
                guard core.isListening(port: port) else { return .some(nil) }
                guard let id = core.accept(port: port), let c = core.connection(id) else { return nil }
                return .some((id, c.local, c.remote))
            }
            switch r {
            case .some(.some(let (id, local, remote))):
                return TCPStream(stack: stack, id: id, local: local, remote: remote)
            case .some(.none): throw NetstackError(.closed, "listener on port \(port)")
            case .none:
                let running = await stack.wait(.listener(port)) { [port] core in
                    !core.isListening(port: port) || core.hasPendingAccept(port: port)
                }
                if !running { throw NetstackError(.closed, "listener on port \(port): stack stopped") }
            }
        }
    }

    public func close() {
        stack.withCore { core, now in core.unlisten(port: port, now: now) }
    }
}

/// A bound UDP port.
public final class UDPSocket: Sendable {
    let stack: NetStack
    public let port: UInt16

    init(stack: NetStack, port: UInt16) {
        self.stack = stack
        self.port = port
    }

    deinit { close() }

    public func send(_ payload: [UInt8], to destination: SocketAddress) throws(NetstackError) {
        let r: Result<Void, NetstackError> = stack.withCore { core, _ in
            do throws(NetstackError) {
                try core.sendUDP(fromPort: port, to: destination, payload: payload)
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        try r.get()
    }

    /// The next datagram; throws `.closed` once the socket is closed.
    public func receive() async throws(NetstackError) -> UDPMessage {
        while true {
            let r: StackCore.Datagram?? = stack.withCore { core, _ in
                guard core.isBoundUDP(port: port) else { return .some(nil) }
                return core.receiveUDP(port: port).map { .some($0) }
            }
            switch r {
            case .some(.some(let d)):
                return UDPMessage(source: d.source, destination: d.destination, payload: d.payload)
            case .some(.none): throw NetstackError(.closed, "udp port \(port)")
            case .none:
                let running = await stack.wait(.udp(port)) { [port] core in
                    !core.isBoundUDP(port: port) || core.hasQueuedUDP(port: port)
                }
                if !running { throw NetstackError(.closed, "udp port \(port): stack stopped") }
            }
        }
    }

    public func close() {
        stack.withCore { core, _ in core.unbindUDP(port: port) }
    }
}

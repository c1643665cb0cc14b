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
        case data([UInt8])
        case end
        case failure(NetstackError.Kind)
        case wait
    }

    /// Up to `maximumCount` bytes; an empty array means the peer finished sending.
    public func read(maximumCount: Int = 64 * 1024) async throws(NetstackError) -> [UInt8] {
        while true {
            let outcome: ReadOutcome = stack.withCore { core, now in
                guard let c = core.connection(id) else { return .failure(.closed) }
                if c.readableBytes > 0 {
                    var out = [UInt8](repeating: 0, count: Swift.min(maximumCount, c.readableBytes))
                    let n = out.withUnsafeMutableBytes { core.read(id, into: $0, now: now) }
                    out.removeLast(out.count - n)
                    return .data(out)
                }
                if c.isReadAtEnd { return .end }
                if let e = c.error { return .failure(e) }
                if c.isClosed { return .end }
                return .wait
            }
            switch outcome {
            case .data(let d): return d
            case .end: return []
            case .failure(let k): throw NetstackError(k, "read from \(remoteAddress)")
            case .wait:
                await stack.wait(.connection(id)) { core in
                    guard let c = core.connection(id) else { return true }
                    return c.readableBytes > 0 || c.isReadAtEnd || c.isClosed
                }
            }
        }
    }

    /// Queues all of `bytes`, waiting for send-buffer space as needed.
    public func write(_ bytes: [UInt8]) async throws(NetstackError) {
        var offset = 0
        while offset < bytes.count {
            let r: Result<Int, NetstackError> = stack.withCore { core, now in
                guard let c = core.connection(id) else { return .failure(NetstackError(.closed)) }
                if let e = c.error { return .failure(NetstackError(e)) }
                if c.isWriteClosed { return .failure(NetstackError(.closed)) }
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
                    await stack.wait(.connection(id)) { core in
                        guard let c = core.connection(id) else { return true }
                        return c.canWrite || c.isWriteClosed || c.isClosed
                    }
                }
            }
        }
    }

    /// Waits until the peer acknowledged everything written (or the connection ended).
    public func flush() async throws(NetstackError) {
        await stack.wait(.connection(id)) { core in
            guard let c = core.connection(id) else { return true }
            return c.unacknowledgedBytes == 0 || c.isClosed
        }
        if let e = stack.withCore({ core, _ in core.connection(id)?.error }) {
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
                await stack.wait(.listener(port)) { [port] core in
                    !core.isListening(port: port) || core.hasPendingAccept(port: port)
                }
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
                await stack.wait(.udp(port)) { [port] core in
                    !core.isBoundUDP(port: port) || core.hasQueuedUDP(port: port)
                }
            }
        }
    }

    public func close() {
        stack.withCore { core, _ in core.unbindUDP(port: port) }
    }
}

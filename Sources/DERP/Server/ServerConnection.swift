import CryptoPrimitives
import Logging
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// One client's DERP byte stream on the server, after the HTTP upgrade (or
/// inside WebSocket binary messages). Lives on the channel's event loop.
///
/// States: `awaitingClientInfo` (ServerKey sent, 10 s deadline running) →
/// `admitting` (box opened, admission hook running; later frames wait in
/// the buffer) → `loggedIn` → `closed`. A malformed, oversized or
/// forbidden frame closes this connection only, with the reason logged.
public final class ServerConnection: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private enum State {
        case idle
        case awaitingClientInfo
        case admitting
        case loggedIn(ClientHandle)
        case closed

        var isOpen: Bool {
            switch self {
            case .idle, .closed: false
            default: true
            }
        }
    }

    private let server: DERPServer
    private let remoteEndpoint: PeerEndpoint?
    private var state = State.idle
    private var context: ChannelHandlerContext?
    private var stream = FrameStream()
    private var handshakeDeadline: Scheduled<Void>?
    private var keepAlive: RepeatedTask?
    private var bucket: TokenBucket?
    private var readPaused = false
    /// What `drain` writes: everything taken from this client's queues.
    private var scratch: [Outbound] = []
    /// Packets of the current read for `outboxTarget`, handed over under
    /// one lock when the read is done or the destination changes.
    private var outbox: [Outbound] = []
    private var outboxTarget: ClientHandle?
    /// Counted per read, added to the shared counters once per read.
    private var readPackets = 0
    private var readBytes = 0
    /// The last destination and its route: consecutive packets to the same
    /// peer skip the server's table lock.
    private var lastRoute: (key: NodeKey, handle: ClientHandle)?
    private var logger: Logger

    init(server: DERPServer, remoteAddress: SocketAddress?) {
        self.server = server
        self.remoteEndpoint = remoteAddress.flatMap(PeerEndpoint.init(socketAddress:))
        logger = server.logger
        if let remoteAddress { logger[metadataKey: "peer"] = "\(remoteAddress)" }
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { start(context: context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    private func start(context: ChannelHandlerContext) {
        guard case .idle = state else { return }
        state = .awaitingClientInfo
        context.writeAndFlush(wrapOutboundOut(Frame.serverKey(server.publicKey).encoded(allocator: context.channel.allocator)), promise: nil)
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        handshakeDeadline = context.eventLoop.scheduleTask(in: server.configuration.handshakeTimeout) {
            let this = bound.value
            switch this.state {
            case .awaitingClientInfo, .admitting:
                this.server.metrics.handshakesFailed.add(1, ordering: .relaxed)
                this.close(reason: "login not finished within \(this.server.configuration.handshakeTimeout.nanoseconds / 1_000_000) ms")
            default: break
            }
        }
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if case .closed = state { return }
        stream.append(&bytes)
        processFrames()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        if stream.bufferedBytes > 0, state.isOpen {
            // The peer went away mid-frame: that frame is dropped, and only
            // this connection ends.
            let of = stream.pendingFrameLength.map { "of the \($0) bytes" } ?? "of the 5-byte header"
            logger.info("closing DERP connection", metadata: ["reason": "truncated frame: the stream ended with \(stream.bufferedBytes) \(of) of a frame"])
        }
        finish()
        self.context = nil
        context.fireChannelInactive()
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A reset or a TLS failure is how clients often leave: not news.
        close(reason: "transport error: \(error)", level: .debug)
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { drain() }
        context.fireChannelWritabilityChanged()
    }

    // MARK: - Frames in

    private func processFrames() {
        defer { flushOutbox() }
        while true {
            switch state {
            case .admitting, .closed, .idle: return
            default: break
            }
            if readPaused { return }
            let frame: Frame?
            do {
                frame = try stream.next()
            } catch {
                server.metrics.connectionsClosedBadFrame.add(1, ordering: .relaxed)
                close(reason: "\(error)")
                return
            }
            guard let frame else { return }
            handle(frame)
            if bucket != nil, case .sendPacket(_, let packet) = frame {
                // Pace per frame, as Tailscale's reader waits on its limiter
                // before each packet: in debt, stop handling frames and stop
                // reading; TCP then pushes back on the sender.
                let pause = bucket!.take(DERPWire.frameHeaderLength + DERPWire.keyLength + packet.readableBytes, now: .now())
                if pause > .zero { pauseReading(for: pause) }
            }
        }
    }

    private func handle(_ frame: Frame) {
        switch state {
        case .awaitingClientInfo:
            guard case .clientInfo(let sealed) = frame else {
                server.metrics.handshakesFailed.add(1, ordering: .relaxed)
                close(reason: "expected ClientInfo, got frame type 0x\(DERPError.hex(frame.type))")
                return
            }
            login(sealed)
        case .loggedIn(let handle):
            handleLoggedIn(frame, handle: handle)
        default:
            break
        }
    }

    private func login(_ sealed: SealedClientInfo) {
        let info: ClientInfo
        do {
            info = try Login.openClientInfo(sealed, serverKey: server.privateKey)
        } catch {
            server.metrics.handshakesFailed.add(1, ordering: .relaxed)
            close(reason: "login failed: \(error)")
            return
        }
        let key = sealed.clientKey
        logger[metadataKey: "client"] = "\(key)"
        let canMesh = server.isMeshKey(info.meshKey)
        if !info.meshKey.isEmpty && !canMesh {
            server.metrics.handshakesFailed.add(1, ordering: .relaxed)
            close(reason: "login failed: wrong mesh key")
            return
        }
        guard let admission = server.configuration.admission, !canMesh else {
            finishLogin(key: key, info: info, canMesh: canMesh)
            return
        }
        state = .admitting
        let loop = context!.eventLoop
        let bound = NIOLoopBound(self, eventLoop: loop)
        // The key crosses the `await` as plain words, not as a 32-byte
        // vector in the task's frame (see `LoginResult`).
        let words = KeyWords(key)
        Task {
            let admitted = await admission(words.key, info)
            loop.execute {
                let this = bound.value
                guard case .admitting = this.state else { return }
                let key = words.key
                if admitted {
                    this.finishLogin(key: key, info: info, canMesh: false)
                    this.processFrames()
                } else {
                    this.server.metrics.admissionRefused.add(1, ordering: .relaxed)
                    this.close(reason: "admission refused key \(key)")
                }
            }
        }
    }

    private func finishLogin(key: NodeKey, info: ClientInfo, canMesh: Bool) {
        guard let context else { return }
        handshakeDeadline?.cancel()
        handshakeDeadline = nil
        var serverInfo = ServerInfo()
        if let limit = server.configuration.rateLimit, !canMesh {
            serverInfo.tokenBucketBytesPerSecond = limit.bytesPerSecond
            serverInfo.tokenBucketBytesBurst = limit.burst
            bucket = TokenBucket(bytesPerSecond: limit.bytesPerSecond, burst: limit.burst, now: .now())
        }
        let sealed: SealedServerInfo
        do {
            sealed = try Login.sealServerInfo(serverInfo, serverKey: server.privateKey, clientKey: key)
        } catch {
            close(reason: "login failed: \(error)")
            return
        }
        let handle = ClientHandle(
            key: key, connectionID: server.nextConnectionID(), info: info, canMesh: canMesh, endpoint: remoteEndpoint,
            connection: self, eventLoop: context.eventLoop, queueDepth: server.configuration.queueDepth,
            discoQueueDepth: server.configuration.discoQueueDepth)
        state = .loggedIn(handle)
        // ServerInfo is queued on the channel before the client is
        // registered, so it stays the first frame even when a packet for
        // the client is drained on this loop within `register`; it is
        // flushed only after `register`, so a client that has its
        // ServerInfo is reachable: a peer told "logged in" may send to it at
        // once without the packets meeting an unknown destination.
        context.write(wrapOutboundOut(Frame.serverInfo(sealed).encoded(allocator: context.channel.allocator)), promise: nil)
        server.register(handle)
        context.flush()
        logger.debug("client logged in", metadata: ["mesh": "\(canMesh)", "version": "\(info.version)"])
        let interval = server.configuration.keepAliveInterval
        // Jitter (up to a tenth) keeps many clients from waking in step.
        let jitter = TimeAmount.nanoseconds(Int64.random(in: 0...max(1, interval.nanoseconds / 10)))
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        keepAlive = context.eventLoop.scheduleRepeatedTask(initialDelay: interval + jitter, delay: interval) { _ in
            bound.value.writeFrame(.keepAlive)
        }
    }

    private func handleLoggedIn(_ frame: Frame, handle: ClientHandle) {
        let metrics = server.metrics
        switch frame {
        case .sendPacket(let destination, let packet):
            readPackets += 1
            readBytes += packet.readableBytes
            if let last = lastRoute, last.key == destination {
                // Same destination as the packet before: no table lookup;
                // the packet joins this read's batch for it.
                if isDiscoPacket(packet) { metrics.discoPacketsReceived.add(1, ordering: .relaxed) }
                if outboxTarget !== last.handle {
                    flushOutbox()
                    outboxTarget = last.handle
                }
                outbox.append(.packet(source: handle.key, packet: packet))
                if outbox.count >= server.configuration.queueDepth { flushOutbox() }
                return
            }
            let disco = isDiscoPacket(packet)
            if disco { metrics.discoPacketsReceived.add(1, ordering: .relaxed) }
            let route = server.route(from: handle.key, to: destination)
            if case .local(let target) = route {
                lastRoute = (destination, target)
                if outboxTarget !== target {
                    flushOutbox()
                    outboxTarget = target
                }
                outbox.append(.packet(source: handle.key, packet: packet))
                return
            }
            lastRoute = nil
            if !server.relay(from: handle.key, to: destination, packet: packet, route: route), disco {
                // Tell the sender its disco message went nowhere, so it
                // stops waiting on a path through here.
                writeFrame(.peerGone(destination, reason: .notHere))
            }
        case .forwardPacket(let source, let destination, let packet):
            guard handle.canMesh else { return forbidden(frame) }
            server.deliverForwarded(source: source, destination: destination, packet: packet)
        case .ping(let data):
            metrics.pingsAnswered.add(1, ordering: .relaxed)
            writeFrame(.pong(data))
        case .notePreferred(let preferred):
            if handle.isPreferred.exchange(preferred, ordering: .relaxed) != preferred {
                metrics.homeClients.add(preferred ? 1 : -1, ordering: .relaxed)
            }
        case .watchConns:
            guard handle.canMesh else { return forbidden(frame) }
            server.addWatcher(handle)
        case .closePeer(let key):
            guard handle.canMesh else { return forbidden(frame) }
            server.closeClient(key, reason: "closed by mesh peer \(handle.key)")
        case .keepAlive, .pong:
            break
        default:
            // Unknown types and frames only a server sends are skipped, as
            // Tailscale's server does.
            metrics.unknownFrames.add(1, ordering: .relaxed)
        }
    }

    private func forbidden(_ frame: Frame) {
        server.metrics.connectionsClosedBadFrame.add(1, ordering: .relaxed)
        close(reason: "frame type 0x\(DERPError.hex(frame.type)) needs the mesh key")
    }

    private func pauseReading(for pause: TimeAmount) {
        guard !readPaused, let context else { return }
        readPaused = true
        context.channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: pause) {
            let this = bound.value
            this.readPaused = false
            guard let context = this.context, case .loggedIn = this.state else { return }
            context.channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in }
            context.read()
            this.processFrames()
        }
    }

    /// Hands this read's packets to their destination's queue and adds
    /// the read's counts to the server's counters.
    private func flushOutbox() {
        if readPackets > 0 {
            server.metrics.packetsReceived.add(readPackets, ordering: .relaxed)
            server.metrics.bytesReceived.add(readBytes, ordering: .relaxed)
            readPackets = 0
            readBytes = 0
        }
        guard let target = outboxTarget else { return }
        outboxTarget = nil
        guard !outbox.isEmpty else { return }
        let count = outbox.count
        if !target.enqueue(packets: &outbox, metrics: server.metrics) {
            outbox.removeAll(keepingCapacity: true)
            server.metrics.drop(.gone, count: count)
            if lastRoute?.handle === target { lastRoute = nil }
        }
    }

    // MARK: - Frames out

    private func writeFrame(_ frame: Frame) {
        guard let context, context.channel.isActive else { return }
        context.writeAndFlush(wrapOutboundOut(frame.encoded(allocator: context.channel.allocator)), promise: nil)
    }

    /// Writes what other connections queued for this client, while the
    /// channel is writable: everything queued at once, copied into buffers
    /// of up to `DERPServer.writeChunk` bytes (a few writes, one flush at
    /// the end). RecvPacket headers are written in front of the payload
    /// bytes as they came in; nothing is re-encoded.
    func drain() {
        guard let context, case .loggedIn(let handle) = state else { return }
        var rounds = 0
        while context.channel.isWritable {
            handle.takeAll(into: &scratch)
            if scratch.isEmpty { break }
            var remaining = 0
            for item in scratch { remaining += item.encodedLength }
            var out: ByteBuffer?
            var packets = 0
            var bytes = 0
            for item in scratch {
                let size = item.encodedLength
                if let full = out, full.readableBytes + size > DERPServer.writeChunk {
                    context.write(wrapOutboundOut(full), promise: nil)
                    out = nil
                }
                if out == nil {
                    out = context.channel.allocator.buffer(capacity: max(size, min(remaining, DERPServer.writeChunk)))
                }
                remaining -= size
                switch item {
                case .packet(let source, let packet):
                    Frame.writeRecvPacket(source: source, packet: packet, into: &out!)
                    packets += 1
                    bytes += packet.readableBytes
                case .frame(let frame):
                    out!.writeImmutableBuffer(frame)
                }
            }
            scratch.removeAll(keepingCapacity: true)
            server.metrics.packetsSent.add(packets, ordering: .relaxed)
            server.metrics.bytesSent.add(bytes, ordering: .relaxed)
            if let out { context.write(wrapOutboundOut(out), promise: nil) }
            rounds += 1
            if rounds == 16 {
                // Yield to the other channels of this event loop; the drain
                // flag stays set, so this continues as the next task.
                context.flush()
                let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
                context.eventLoop.execute { bound.value.drain() }
                return
            }
        }
        if rounds > 0 { context.flush() }
    }

    /// Writes `frame` (Restarting, on shutdown) as the last thing this
    /// client hears, then closes.
    func close(after frame: Frame, reason: String) {
        guard let context, state.isOpen else { return close(reason: reason) }
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        drain()
        context.writeAndFlush(wrapOutboundOut(frame.encoded(allocator: context.channel.allocator))).whenComplete { _ in
            bound.value.close(reason: reason)
        }
    }

    /// Closes this connection only, logging why.
    func close(reason: String, level: Logger.Level = .info) {
        if case .closed = state { return }
        logger.log(level: level, "closing DERP connection", metadata: ["reason": "\(reason)"])
        finish()
        context?.close(promise: nil)
    }

    private func finish() {
        let previous = state
        state = .closed
        handshakeDeadline?.cancel()
        handshakeDeadline = nil
        keepAlive?.cancel()
        keepAlive = nil
        lastRoute = nil
        outboxTarget = nil
        outbox = []
        scratch = []
        stream.reset()
        if case .loggedIn(let handle) = previous { server.unregister(handle) }
    }
}

extension PeerEndpoint {
    init?(socketAddress: SocketAddress) {
        guard let port = socketAddress.port else { return nil }
        switch socketAddress {
        case .v4(let a):
            let ip = a.address.sin_addr.s_addr.bigEndian
            self.init(ipv4: UInt8(ip >> 24), UInt8((ip >> 16) & 0xff), UInt8((ip >> 8) & 0xff), UInt8(ip & 0xff), port: UInt16(port))
        case .v6(let a):
            var addr = a.address.sin6_addr
            let bytes = withUnsafeBytes(of: &addr) { Array($0) }
            guard let b = try? Bytes16(bytes) else { return nil }
            self.init(address: b, port: UInt16(port))
        default:
            return nil
        }
    }
}

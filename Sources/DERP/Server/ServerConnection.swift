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
    private var batch: [Outbound] = []
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
        if stream.bufferedBytes > 0, case .loggedIn = state {
            logger.debug("connection ended inside a frame", metadata: ["buffered": "\(stream.bufferedBytes)"])
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
        Task {
            let admitted = await admission(key, info)
            loop.execute {
                let this = bound.value
                guard case .admitting = this.state else { return }
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
        // Registered before ServerInfo goes out: a client that has finished
        // its login is reachable at once. Packets queued meanwhile are
        // drained after this write, so ServerInfo stays the first frame.
        server.register(handle)
        context.writeAndFlush(wrapOutboundOut(Frame.serverInfo(sealed).encoded(allocator: context.channel.allocator)), promise: nil)
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
            metrics.packetsReceived.add(1, ordering: .relaxed)
            metrics.bytesReceived.add(packet.readableBytes, ordering: .relaxed)
            let disco = isDiscoPacket(packet)
            if disco { metrics.discoPacketsReceived.add(1, ordering: .relaxed) }
            if let last = lastRoute, last.key == destination, !last.handle.isClosed {
                if !last.handle.enqueue(source: handle.key, packet: packet, metrics: metrics) { metrics.drop(.gone) }
                return
            }
            let route = server.route(from: handle.key, to: destination)
            if case .local(let target) = route { lastRoute = (destination, target) } else { lastRoute = nil }
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

    // MARK: - Frames out

    private func writeFrame(_ frame: Frame) {
        guard let context, context.channel.isActive else { return }
        context.writeAndFlush(wrapOutboundOut(frame.encoded(allocator: context.channel.allocator)), promise: nil)
    }

    /// Writes what other connections queued for this client, while the
    /// channel is writable. Packets are copied into one buffer per batch
    /// (one write, one syscall per batch at most).
    func drain() {
        guard let context, case .loggedIn(let handle) = state else { return }
        var rounds = 0
        while context.channel.isWritable {
            batch.removeAll(keepingCapacity: true)
            handle.takeBatch(into: &batch, max: 64)
            if batch.isEmpty { break }
            var size = 0
            for item in batch {
                switch item {
                case .packet(_, let packet): size += DERPWire.frameHeaderLength + DERPWire.keyLength + packet.readableBytes
                case .frame(let frame): size += frame.readableBytes
                }
            }
            var out = context.channel.allocator.buffer(capacity: size)
            var packets = 0
            var bytes = 0
            for item in batch {
                switch item {
                case .packet(let source, let packet):
                    Frame.writeRecvPacket(source: source, packet: packet, into: &out)
                    packets += 1
                    bytes += packet.readableBytes
                case .frame(let frame):
                    out.writeImmutableBuffer(frame)
                }
            }
            batch.removeAll(keepingCapacity: true)
            server.metrics.packetsSent.add(packets, ordering: .relaxed)
            server.metrics.bytesSent.add(bytes, ordering: .relaxed)
            context.write(wrapOutboundOut(out), promise: nil)
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

    // MARK: - Closing

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

import Logging
import Netstack
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Port forwarding on the agent's side: a TCP connection through the tunnel
/// to a port the agent does not serve itself (everything but SSH's 22 and
/// 1) is connected to the same port on the workspace's loopback, first
/// 127.0.0.1, then ::1, the way Coder's agent and Tailscale's netstack
/// forward to localhost. A port nobody listens on answers the tunnel peer
/// with a reset, as a closed port does.
///
/// UDP flows (a tunnel peer's address and port, and our port) each get a
/// socket connected to 127.0.0.1 and that port; replies go back from the
/// port the peer sent to. A flow idle for `udpIdleTimeout` is closed; past
/// `maximumUDPFlows` new flows are dropped and counted.
public final class LoopbackForwarder: Sendable {
    private let logger: Logger
    private let tally = Mutex(Counts())
    private let stack = Mutex<NetStack?>(nil)
    private let flows = Mutex<[FlowKey: UDPFlow]>([:])

    static let maximumUDPFlows = 256
    static let udpIdleTimeout: Duration = .seconds(60)

    public struct Counts: Sendable, Equatable {
        public var connections = 0
        public var refused = 0
        public var udpFlows = 0
        public var datagramsDropped = 0
    }

    struct FlowKey: Hashable {
        let peer: SocketAddress
        let port: UInt16
    }

    /// One UDP flow's socket toward the workspace's loopback.
    final class UDPFlow: Sendable {
        let fd: Int32
        let lastActive = Atomic<Int64>(0)
        init(fd: Int32) { self.fd = fd }
    }

    public init(logger: Logger) {
        self.logger = logger
    }

    public var counts: Counts { tally.withLock { $0 } }

    /// The stack replies are sent from (the mesh node's, once it exists).
    public func attach(_ stack: NetStack) {
        self.stack.withLock { $0 = stack }
    }

    /// The hook to give `MeshNode.Configuration.forwarder`.
    public var netstackForwarder: NetStack.Forwarder {
        NetStack.Forwarder(
            tcp: { [self] stream in forward(stream) },
            udp: { [self] message in forward(message) })
    }

    /// Sends a datagram on its flow's socket, opening the flow first.
    private func forward(_ message: UDPMessage) {
        let key = FlowKey(peer: message.source, port: message.destination.port)
        var flow = flows.withLock { $0[key] }
        if flow == nil {
            flow = openFlow(key, replyFrom: message.destination)
        }
        guard let flow else {
            tally.withLock { $0.datagramsDropped += 1 }
            return
        }
        flow.lastActive.store(Self.nowSeconds(), ordering: .relaxed)
        let sent = message.payload.withUnsafeBytes { send(flow.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        if sent < 0 { tally.withLock { $0.datagramsDropped += 1 } }
    }

    private func openFlow(_ key: FlowKey, replyFrom local: SocketAddress) -> UDPFlow? {
        guard let stack = stack.withLock({ $0 }),
            let fd = Self.connect(family: AF_INET, type: Int32(SOCK_DGRAM.rawValue), port: key.port)
        else { return nil }
        let flow = UDPFlow(fd: fd)
        let added = flows.withLock { f -> Bool in
            guard f[key] == nil, f.count < Self.maximumUDPFlows else { return false }
            f[key] = flow
            return true
        }
        guard added else {
            close(fd)
            return flows.withLock { $0[key] }
        }
        tally.withLock { $0.udpFlows += 1 }
        flow.lastActive.store(Self.nowSeconds(), ordering: .relaxed)
        startThread(name: "udp-forward") { [self] in
            relayReplies(flow, key: key, from: local, stack: stack)
        }
        return flow
    }

    /// Carries the workspace's replies back through the tunnel until the
    /// flow has been idle for `udpIdleTimeout`.
    private func relayReplies(_ flow: UDPFlow, key: FlowKey, from local: SocketAddress, stack: NetStack) {
        var buffer = [UInt8](repeating: 0, count: 65_535)
        let idle = Self.udpIdleTimeout.components.seconds
        while true {
            var pfd = pollfd(fd: flow.fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, 1000)
            if ready <= 0 {
                if ready < 0 && errno == EINTR { continue }
                if Self.nowSeconds() - flow.lastActive.load(ordering: .relaxed) >= idle { break }
                continue
            }
            let n = buffer.withUnsafeMutableBytes { recv(flow.fd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                if errno == EINTR || errno == ECONNREFUSED { continue }  // nothing listens (yet)
                break
            }
            flow.lastActive.store(Self.nowSeconds(), ordering: .relaxed)
            try? stack.sendUDP(from: local, to: key.peer, payload: Array(buffer[0..<n]))
        }
        flows.withLock { f in if f[key] === flow { f[key] = nil } }
        close(flow.fd)
    }

    private static func nowSeconds() -> Int64 {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Int64(t.tv_sec)
    }

    /// Connects on a thread of its own (connect(2) blocks), then bridges.
    private func forward(_ stream: TCPStream) {
        let port = stream.localAddress.port
        startThread(name: "forward") { [self] in
            guard let fd = Self.connectLoopback(port: port) else {
                tally.withLock { $0.refused += 1 }
                logger.debug("forward to loopback port \(port) from \(stream.remoteAddress): nothing listens")
                stream.abort()
                return
            }
            tally.withLock { $0.connections += 1 }
            stream.setNoDelay(true)
            StreamBridge.run(stream, readFD: fd, writeFD: fd, closeDescriptors: true)
        }
    }

    /// A connected TCP socket to 127.0.0.1:`port`, else [::1]:`port`, or nil.
    static func connectLoopback(port: UInt16) -> Int32? {
        let stream = Int32(SOCK_STREAM.rawValue)
        guard let fd = connect(family: AF_INET, type: stream, port: port)
            ?? connect(family: AF_INET6, type: stream, port: port)
        else { return nil }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        return fd
    }

    /// A socket of `type` connected to the loopback address of `family` at `port`, or nil.
    private static func connect(family: Int32, type: Int32, port: UInt16) -> Int32? {
        let fd = socket(family, type | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        var rc: Int32
        if family == AF_INET {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
            rc = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        } else {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = port.bigEndian
            address.sin6_addr = in6addr_loopback
            rc = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                }
            }
        }
        while rc < 0 && errno == EINTR {
            // An interrupted connect continues in the background; wait for it.
            var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            _ = poll(&pfd, 1, 5000)
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
            rc = error == 0 ? 0 : -1
        }
        guard rc == 0 else {
            close(fd)
            return nil
        }
        return fd
    }
}

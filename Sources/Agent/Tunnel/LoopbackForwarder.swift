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
/// UDP is not forwarded yet: datagrams are counted and dropped.
public final class LoopbackForwarder: Sendable {
    private let logger: Logger
    private let tally = Mutex(Counts())

    public struct Counts: Sendable, Equatable {
        public var connections = 0
        public var refused = 0
        public var datagramsDropped = 0
    }

    public init(logger: Logger) {
        self.logger = logger
    }

    public var counts: Counts { tally.withLock { $0 } }

    /// The hook to give `MeshNode.Configuration.forwarder`.
    public var netstackForwarder: NetStack.Forwarder {
        NetStack.Forwarder(
            tcp: { [self] stream in forward(stream) },
            udp: { [self] message in
                let first = tally.withLock { c -> Bool in
                    c.datagramsDropped += 1
                    return c.datagramsDropped == 1
                }
                if first {
                    logger.notice("UDP to tunnel port \(message.destination.port) dropped: the agent forwards TCP only")
                }
            })
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
        if let fd = connect(family: AF_INET, port: port) { return fd }
        return connect(family: AF_INET6, port: port)
    }

    private static func connect(family: Int32, port: UInt16) -> Int32? {
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
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
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        return fd
    }
}

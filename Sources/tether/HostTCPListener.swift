import Agent

#if canImport(Glibc)
    import Glibc
#endif

/// A listening TCP socket on this machine, for `tether port-forward`.
/// Accepting runs on a thread of its own: accept(2) blocks.
final class HostTCPListener: Sendable {
    let fd: Int32
    let port: UInt16

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Binds `host` (an IPv4 or IPv6 literal) and `port` (0: any free one).
    init(host: String, port: UInt16) throws(Failure) {
        (fd, self.port) = try Self.bound(host: host, port: port, type: Int32(SOCK_STREAM.rawValue))
        guard listen(fd, 128) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw Failure(description: "cannot listen on \(Self.describe(host, port)): \(reason)")
        }
    }

    /// A socket of `type` bound to `host` (an IPv4 or IPv6 literal) and
    /// `port` (0: any free one), and the port it got.
    static func bound(host: String, port: UInt16, type: Int32) throws(Failure) -> (fd: Int32, port: UInt16) {
        let v6 = host.contains(":")
        let fd = socket(v6 ? AF_INET6 : AF_INET, type | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var storage = socketAddress(host: host, port: port)
        var length = socklen_t(v6 ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p -> Bool in
                bind(fd, p, length) == 0 && getsockname(fd, p, &length) == 0
            }
        }
        guard ok else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw Failure(description: "cannot bind \(describe(host, port)): \(reason)")
        }
        // sin_port and sin6_port sit at the same offset.
        let boundPort = withUnsafeBytes(of: &storage) { UInt16(bigEndian: $0.load(fromByteOffset: 2, as: UInt16.self)) }
        return (fd, boundPort)
    }

    static func describe(_ host: String, _ port: UInt16) -> String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// Calls `handle` with each accepted connection, forever, on a thread.
    func acceptLoop(_ handle: @escaping @Sendable (Int32) -> Void) {
        let fd = fd
        startThread(name: "accept") {
            while true {
                let client = accept(fd, nil, nil)
                if client < 0 {
                    if errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE { continue }
                    return
                }
                _ = fcntl(client, F_SETFD, FD_CLOEXEC)
                var one: Int32 = 1
                setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                handle(client)
            }
        }
    }

    /// `host` (an IPv4 or IPv6 literal) and `port` as a socket address.
    static func socketAddress(host: String, port: UInt16) -> sockaddr_storage {
        var storage = sockaddr_storage()
        withUnsafeMutableBytes(of: &storage) { raw in
            if host.contains(":") {
                let a = raw.baseAddress!.assumingMemoryBound(to: sockaddr_in6.self)
                a.pointee.sin6_family = sa_family_t(AF_INET6)
                a.pointee.sin6_port = port.bigEndian
                _ = inet_pton(AF_INET6, host, &a.pointee.sin6_addr)
            } else {
                let a = raw.baseAddress!.assumingMemoryBound(to: sockaddr_in.self)
                a.pointee.sin_family = sa_family_t(AF_INET)
                a.pointee.sin_port = port.bigEndian
                _ = inet_pton(AF_INET, host, &a.pointee.sin_addr)
            }
        }
        return storage
    }

    static func isAddressLiteral(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }
}

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
        let v6 = host.contains(":")
        let fd = socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var storage = Self.socketAddress(host: host, port: port)
        var length = socklen_t(v6 ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p -> Bool in
                bind(fd, p, length) == 0 && listen(fd, 128) == 0 && getsockname(fd, p, &length) == 0
            }
        }
        guard bound else {
            let reason = String(cString: strerror(errno))
            close(fd)
            let where_ = v6 ? "[\(host)]:\(port)" : "\(host):\(port)"
            throw Failure(description: "cannot listen on \(where_): \(reason)")
        }
        self.fd = fd
        self.port = withUnsafeBytes(of: &storage) { raw in
            UInt16(bigEndian: raw.load(fromByteOffset: 2, as: UInt16.self))
        }
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

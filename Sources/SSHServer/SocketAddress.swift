import CLibSSH
import Glibc

/// Socket plumbing for forwarding and listeners: names of ends, TCP
/// connect with a deadline, TCP and Unix listeners. All descriptors are
/// created close-on-exec so no session's shell inherits them.
enum SocketAddress {
    struct Endpoint {
        let host: String
        let port: UInt16
    }

    static func peer(of fd: Int32) -> Endpoint? { name(of: fd, peer: true) }
    static func local(of fd: Int32) -> Endpoint? { name(of: fd, peer: false) }

    private static func name(of fd: Int32, peer: Bool) -> Endpoint? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                peer ? getpeername(fd, $0, &length) : getsockname(fd, $0, &length)
            }
        }
        guard rc == 0 else { return nil }
        return endpoint(of: &storage)
    }

    static func endpoint(of storage: inout sockaddr_storage) -> Endpoint? {
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        switch Int32(storage.ss_family) {
        case AF_INET:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                    var addr = sin.pointee.sin_addr
                    inet_ntop(AF_INET, &addr, &host, socklen_t(host.count))
                    return Endpoint(host: String(cString: host), port: UInt16(bigEndian: sin.pointee.sin_port))
                }
            }
        case AF_INET6:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                    var addr = sin6.pointee.sin6_addr
                    inet_ntop(AF_INET6, &addr, &host, socklen_t(host.count))
                    return Endpoint(host: String(cString: host), port: UInt16(bigEndian: sin6.pointee.sin6_port))
                }
            }
        default:
            return nil
        }
    }

    private static func resolve(_ host: String, port: UInt16, passive: Bool) -> UnsafeMutablePointer<addrinfo>? {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = passive ? AI_PASSIVE : 0
        var result: UnsafeMutablePointer<addrinfo>?
        let name: String? = host.isEmpty ? nil : host
        guard getaddrinfo(name, String(port), &hints, &result) == 0 else { return nil }
        return result
    }

    /// Connects to `host:port`, trying each address in turn, within
    /// `timeoutSeconds`. Returns a non-blocking socket.
    static func connectTCP(host: String, port: UInt16, timeoutSeconds: Int32) -> Int32? {
        guard let list = resolve(host, port: port, passive: false) else { return nil }
        defer { freeaddrinfo(list) }
        var cursor: UnsafeMutablePointer<addrinfo>? = list
        while let ai = cursor {
            cursor = ai.pointee.ai_next
            let fd = Glibc.socket(
                ai.pointee.ai_family, ai.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue | SOCK_NONBLOCK.rawValue),
                ai.pointee.ai_protocol)
            guard fd >= 0 else { continue }
            if Glibc.connect(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) == 0 {
                setNoDelay(fd)
                return fd
            }
            if errno == EINPROGRESS {
                var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                if poll(&pfd, 1, timeoutSeconds * 1000) == 1 {
                    var error: Int32 = 0
                    var length = socklen_t(4)
                    getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
                    if error == 0 {
                        setNoDelay(fd)
                        return fd
                    }
                }
            }
            close(fd)
        }
        return nil
    }

    static func setNoDelay(_ fd: Int32) {
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(4))
    }

    /// Listens on every address `host` names (sshd binds each, e.g. both
    /// 127.0.0.1 and ::1 for "localhost"). With port 0 the first bind picks a
    /// port and the rest reuse it. Returns the sockets and the port.
    static func listenTCP(host: String, port: UInt16) -> (fds: [Int32], port: UInt16)? {
        guard let list = resolve(host, port: port, passive: true) else { return nil }
        defer { freeaddrinfo(list) }
        var fds: [Int32] = []
        var boundPort = port
        var cursor: UnsafeMutablePointer<addrinfo>? = list
        while let ai = cursor {
            cursor = ai.pointee.ai_next
            let fd = Glibc.socket(
                ai.pointee.ai_family, ai.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue | SOCK_NONBLOCK.rawValue),
                ai.pointee.ai_protocol)
            guard fd >= 0 else { continue }
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(4))
            if ai.pointee.ai_family == AF_INET6 {
                setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(4))
            }
            // Put the chosen port into this address before binding.
            var storage = sockaddr_storage()
            memcpy(&storage, ai.pointee.ai_addr, Int(ai.pointee.ai_addrlen))
            withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_port = boundPort.bigEndian }
            }
            let bound = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, ai.pointee.ai_addrlen) }
            }
            guard bound == 0, Glibc.listen(fd, 128) == 0 else {
                close(fd)
                continue
            }
            if boundPort == 0, let local = local(of: fd) { boundPort = local.port }
            fds.append(fd)
        }
        guard !fds.isEmpty else { return nil }
        return (fds, boundPort)
    }

    /// A Unix stream listener at `path` (for the forwarded agent).
    static func listenUnix(path: String) -> Int32? {
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue | SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { return nil }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            close(fd)
            return nil
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard rc == 0, Glibc.listen(fd, 16) == 0 else {
            close(fd)
            return nil
        }
        return fd
    }
}

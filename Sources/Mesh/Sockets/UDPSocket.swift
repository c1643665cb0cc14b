#if canImport(Glibc)
    import Glibc
#endif

/// An error from a socket call, with the call's name and `errno` text.
public struct SocketError: Error, CustomStringConvertible, Sendable {
    public let call: String
    public let code: Int32

    init(_ call: String, _ code: Int32 = errno) {
        self.call = call
        self.code = code
    }

    public var description: String { "\(call): \(String(cString: strerror(code)))" }
}

/// A bound UDP socket: the thin shell under STUN, disco and WireGuard. Owns
/// its file descriptor; `close()` (or deinit) releases it.
public final class UDPSocket: @unchecked Sendable {
    public let fd: Int32
    public let isIPv6: Bool

    /// Binds to `endpoint` (port 0 picks a free port). An IPv6 socket bound
    /// to `::` also receives IPv4 (dual stack).
    public init(bind endpoint: Endpoint) throws {
        isIPv6 = !endpoint.isIPv4
        let fd = socket(isIPv6 ? AF_INET6 : AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError("socket") }
        self.fd = fd
        if isIPv6 {
            var off: Int32 = 0
            setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &off, socklen_t(MemoryLayout<Int32>.size))
        }
        let rc = Self.withSockaddr(endpoint, ipv6: isIPv6) { Glibc.bind(fd, $0, $1) }
        guard rc == 0 else {
            let error = SocketError("bind \(endpoint)")
            Glibc.close(fd)
            throw error
        }
    }

    deinit { Glibc.close(fd) }

    /// Shuts the socket so a thread blocked in `receive` wakes up.
    public func shutdownReads() { Glibc.shutdown(fd, Int32(SHUT_RDWR)) }

    public var localEndpoint: Endpoint {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Self.endpoint(from: storage) ?? Endpoint(ipv4: 0, 0, 0, 0, port: 0)
    }

    public func send(_ bytes: UnsafeRawBufferPointer, to endpoint: Endpoint) throws {
        let sent = Self.withSockaddr(endpoint, ipv6: isIPv6) { address, length in
            sendto(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL), address, length)
        }
        guard sent == bytes.count else { throw SocketError("sendto \(endpoint)") }
    }

    public func send(_ bytes: [UInt8], to endpoint: Endpoint) throws {
        try bytes.withUnsafeBytes { try send($0, to: endpoint) }
    }

    /// Waits up to `timeoutMilliseconds` (-1: forever) for a datagram.
    /// Returns nil on timeout.
    public func receive(into buffer: UnsafeMutableRawBufferPointer, timeoutMilliseconds: Int32) throws -> (
        count: Int, from: Endpoint
    )? {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&poller, 1, timeoutMilliseconds)
        if ready == 0 { return nil }
        guard ready > 0 else {
            if errno == EINTR { return nil }
            throw SocketError("poll")
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let count = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                recvfrom(fd, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT), $0, &length)
            }
        }
        if count < 0 {
            if errno == EAGAIN || errno == EINTR { return nil }
            throw SocketError("recvfrom")
        }
        guard let from = Self.endpoint(from: storage) else { return nil }
        return (count, from)
    }

    // MARK: - sockaddr conversion

    static func withSockaddr<R>(_ endpoint: Endpoint, ipv6: Bool, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R)
        -> R
    {
        if ipv6 {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = endpoint.port.bigEndian
            withUnsafeMutableBytes(of: &address.sin6_addr) { raw in for i in 0..<16 { raw[i] = endpoint.address[i] } }
            return withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    body($0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                }
            }
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = endpoint.port.bigEndian
        let v4 = endpoint.ipv4Bytes ?? [0, 0, 0, 0]
        withUnsafeMutableBytes(of: &address.sin_addr) { raw in for i in 0..<4 { raw[i] = v4[i] } }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    }

    static func endpoint(from storage: sockaddr_storage) -> Endpoint? {
        var storage = storage
        switch Int32(storage.ss_family) {
        case AF_INET:
            return withUnsafeBytes(of: &storage) { raw in
                let address = raw.load(as: sockaddr_in.self)
                let b = withUnsafeBytes(of: address.sin_addr) { Array($0) }
                return Endpoint(ipv4: b[0], b[1], b[2], b[3], port: UInt16(bigEndian: address.sin_port))
            }
        case AF_INET6:
            return withUnsafeBytes(of: &storage) { raw in
                let address = raw.load(as: sockaddr_in6.self)
                var bytes = SIMD16<UInt8>.zero
                withUnsafeBytes(of: address.sin6_addr) { a in for i in 0..<16 { bytes[i] = a[i] } }
                return Endpoint(address16: bytes, port: UInt16(bigEndian: address.sin6_port))
            }
        default:
            return nil
        }
    }
}

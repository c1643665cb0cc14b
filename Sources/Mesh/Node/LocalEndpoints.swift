import WireGuardCore

#if canImport(Glibc)
    import Glibc
#endif

/// The host's own addresses, as candidate endpoints on the node's port:
/// every interface that is up, except loopback and IPv6 link-local (which
/// would need a scope ID a peer cannot use).
enum LocalEndpoints {
    static func current(port: UInt16) -> [Endpoint] {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return [] }
        defer { freeifaddrs(list) }
        var out: [Endpoint] = []
        var cursor: UnsafeMutablePointer<ifaddrs>? = first
        while let entry = cursor {
            defer { cursor = entry.pointee.ifa_next }
            let flags = entry.pointee.ifa_flags
            guard flags & UInt32(IFF_UP) != 0, flags & UInt32(IFF_LOOPBACK) == 0,
                let address = entry.pointee.ifa_addr
            else { continue }
            switch Int32(address.pointee.sa_family) {
            case AF_INET:
                let raw = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
                let bytes = withUnsafeBytes(of: raw) { Array($0) }
                if let ip = IPAddress(bytes: bytes) { out.append(Endpoint(address: ip, port: port)) }
            case AF_INET6:
                let raw = address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
                let bytes = withUnsafeBytes(of: raw) { Array($0) }
                if bytes[0] == 0xfe && bytes[1] & 0xc0 == 0x80 { continue }  // fe80::/10
                if let ip = IPAddress(bytes: bytes) { out.append(Endpoint(address: ip, port: port)) }
            default:
                continue
            }
        }
        return out
    }
}

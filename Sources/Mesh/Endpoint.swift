#if canImport(Glibc)
    import Glibc
#endif

/// A UDP endpoint: an IPv4 or IPv6 address and a port. IPv4 is kept as an
/// IPv4-mapped IPv6 address (RFC 4291 §2.5.5.2), the form disco and DERP put
/// on the wire, so one 16-byte representation serves both families.
public struct Endpoint: Hashable, Sendable, CustomStringConvertible {
    /// The address in network byte order, IPv4 as ::ffff:a.b.c.d.
    public var address: SIMD16<UInt8>
    public var port: UInt16

    public init(address16: SIMD16<UInt8>, port: UInt16) {
        self.address = address16
        self.port = port
    }

    /// An IPv4 endpoint from its four bytes in network order.
    public init(ipv4 a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8, port: UInt16) {
        var bytes = SIMD16<UInt8>.zero
        bytes[10] = 0xff
        bytes[11] = 0xff
        bytes[12] = a
        bytes[13] = b
        bytes[14] = c
        bytes[15] = d
        self.init(address16: bytes, port: port)
    }

    /// Parses "1.2.3.4:5", "[::1]:5" or "::1" style text (numeric only, no
    /// name resolution). Returns nil for anything else.
    public init?(_ text: String) {
        var host = Substring(text)
        var port: UInt16 = 0
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return nil }
            let rest = host[host.index(after: close)...]
            host = host[host.index(after: host.startIndex)..<close]
            if !rest.isEmpty {
                guard rest.hasPrefix(":"), let p = UInt16(rest.dropFirst()) else { return nil }
                port = p
            }
        } else if host.filter({ $0 == ":" }).count == 1, let colon = host.lastIndex(of: ":") {
            guard let p = UInt16(host[host.index(after: colon)...]) else { return nil }
            port = p
            host = host[..<colon]
        }
        guard let address = Self.parseAddress(String(host)) else { return nil }
        self.init(address16: address, port: port)
    }

    static func parseAddress(_ text: String) -> SIMD16<UInt8>? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            let b = withUnsafeBytes(of: v4) { Array($0) }
            return Endpoint(ipv4: b[0], b[1], b[2], b[3], port: 0).address
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            var out = SIMD16<UInt8>.zero
            withUnsafeBytes(of: v6) { raw in for i in 0..<16 { out[i] = raw[i] } }
            return out
        }
        return nil
    }

    public var isIPv4: Bool {
        (0..<10).allSatisfy { address[$0] == 0 } && address[10] == 0xff && address[11] == 0xff
    }

    /// The four IPv4 bytes, when `isIPv4`.
    public var ipv4Bytes: [UInt8]? { isIPv4 ? [address[12], address[13], address[14], address[15]] : nil }

    public var addressBytes: [UInt8] { (0..<16).map { address[$0] } }

    public var hostDescription: String {
        if let v4 = ipv4Bytes { return v4.map(String.init).joined(separator: ".") }
        var v6 = in6_addr()
        withUnsafeMutableBytes(of: &v6) { raw in for i in 0..<16 { raw[i] = address[i] } }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(AF_INET6, &v6, &buffer, socklen_t(buffer.count)) != nil else { return "?" }
        let length = buffer.firstIndex(of: 0) ?? buffer.count
        return String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public var description: String { isIPv4 ? "\(hostDescription):\(port)" : "[\(hostDescription)]:\(port)" }
}

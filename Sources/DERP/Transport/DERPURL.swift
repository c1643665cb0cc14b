/// Where a DERP server listens: `http://host:port/derp` or
/// `https://host:port/derp` (the path defaults to `/derp`).
public struct DERPURL: Hashable, Sendable, CustomStringConvertible {
    public var useTLS: Bool
    public var host: String
    public var port: Int
    public var path: String

    public init(host: String, port: Int, useTLS: Bool = false, path: String = DERPWire.path) {
        self.host = host
        self.port = port
        self.useTLS = useTLS
        self.path = path
    }

    /// Parses `http[s]://host[:port][/path]`; IPv6 hosts in brackets.
    public init?(_ text: String) {
        var rest = Substring(text)
        if rest.hasPrefix("https://") {
            useTLS = true
            rest = rest.dropFirst(8)
        } else if rest.hasPrefix("http://") {
            useTLS = false
            rest = rest.dropFirst(7)
        } else {
            return nil
        }
        let authority = rest.prefix(while: { $0 != "/" })
        let pathPart = rest.dropFirst(authority.count)
        path = pathPart.isEmpty ? DERPWire.path : String(pathPart)
        var hostPart = authority
        var portPart: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            hostPart = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") { portPart = after.dropFirst() } else if !after.isEmpty { return nil }
        } else if let colon = authority.lastIndex(of: ":") {
            hostPart = authority[..<colon]
            portPart = authority[authority.index(after: colon)...]
        }
        guard !hostPart.isEmpty else { return nil }
        host = String(hostPart)
        if let portPart {
            guard let p = Int(portPart), (1...65535).contains(p) else { return nil }
            port = p
        } else {
            port = useTLS ? 443 : 80
        }
    }

    public var description: String {
        let h = host.contains(":") ? "[\(host)]" : host
        return "\(useTLS ? "https" : "http")://\(h):\(port)\(path)"
    }

    /// The `Host:` header value.
    var hostHeader: String {
        let h = host.contains(":") ? "[\(host)]" : host
        return (port == (useTLS ? 443 : 80)) ? h : "\(h):\(port)"
    }
}

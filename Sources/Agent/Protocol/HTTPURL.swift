/// The parts of an `http://` URL the agent needs to send a health check:
/// `http://host[:port][/path][?query]`. IPv6 hosts in brackets. No TLS:
/// apps listen on the workspace's own loopback.
public struct HTTPURL: Sendable, Equatable {
    public var host: String
    public var port: Int
    /// Path and query, at least "/".
    public var target: String

    public init?(_ text: String) {
        guard text.hasPrefix("http://") else { return nil }
        let rest = text.dropFirst(7)
        let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = rest[..<slash]
        var t = String(rest[slash...])
        if t.isEmpty { t = "/" } else if t.hasPrefix("?") { t = "/" + t }
        guard !authority.isEmpty, !authority.contains("@"), !t.contains(" ") else { return nil }
        var hostPart = Substring(authority)
        var portPart: Substring? = nil
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            hostPart = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return nil }
                portPart = after.dropFirst()
            }
        } else if let colon = authority.lastIndex(of: ":") {
            hostPart = authority[..<colon]
            portPart = authority[authority.index(after: colon)...]
        }
        var p = 80
        if let portPart {
            guard let n = Int(portPart), (1...65535).contains(n) else { return nil }
            p = n
        }
        guard !hostPart.isEmpty else { return nil }
        host = String(hostPart)
        port = p
        target = t
    }
}

/// The control plane's app proxy (`/apps/WORKSPACE/AGENT/SLUG/…`, see
/// docs/control-plane.md) reaches an app through the tunnel: the agent
/// connects the app's port to the workspace's loopback, so only an app URL
/// on a loopback host can be proxied. These are the proxy's rules, pure:
/// where a request goes and which headers cross.
public enum AppProxyRules {
    public struct Target: Equatable, Sendable {
        /// The tunnel port (the app's port on the workspace's loopback).
        public var port: UInt16
        /// The app URL's path, ending in "/".
        public var basePath: String

        public init(port: UInt16, basePath: String) {
            self.port = port
            self.basePath = basePath
        }
    }

    public struct Refusal: Error, Equatable, CustomStringConvertible {
        public let description: String
    }

    /// The proxy target of an app URL (`http://127.0.0.1:8080/ui`).
    public static func target(appURL: String) throws(Refusal) -> Target {
        guard let url = HTTPURL(appURL) else { throw Refusal(description: "app URL \(appURL) is not an http:// URL") }
        guard ["127.0.0.1", "localhost", "::1"].contains(url.host.lowercased()) else {
            throw Refusal(description: "app URL \(appURL) is not on the workspace's loopback (127.0.0.1, localhost or [::1]), which is all the tunnel reaches")
        }
        var path = String(url.target.prefix { $0 != "?" })
        if !path.hasSuffix("/") { path += "/" }
        return Target(port: UInt16(url.port), basePath: path)
    }

    /// The upstream request target: the app's base path, then what followed
    /// the app's prefix in the proxied path (already without a leading
    /// "/"), then the query.
    public static func upstreamTarget(basePath: String, rest: String, query: String?) -> String {
        var out = basePath + rest.drop { $0 == "/" }
        if let query, !query.isEmpty { out += "?" + query }
        return out
    }

    /// Request headers the proxy does not pass on: hop-by-hop ones (RFC 9110
    /// §7.6.1) and the user's control-plane credentials, which the app must
    /// never see. Lower case.
    public static let droppedRequestHeaders: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer",
        "transfer-encoding", "upgrade", "authorization", "host",
    ]

    /// Fields of a browser's WebSocket handshake (RFC 6455 §4.1) that the
    /// proxy makes anew for its own handshake with the app: its own key, and
    /// no extensions (it does not implement any, so it offers none).
    public static let webSocketHandshakeHeaders: Set<String> = [
        "sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-accept",
    ]

    /// Response headers the proxy does not pass on (hop-by-hop).
    public static let droppedResponseHeaders: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
    ]

    /// A `Cookie` header without the control plane's session cookie; nil
    /// when nothing is left.
    public static func cookieWithout(_ name: String, _ header: String) -> String? {
        let kept = header.split(separator: ";").map { part in
            var s = part
            while s.first == " " { s = s.dropFirst() }
            while s.last == " " { s = s.dropLast() }
            return s
        }.filter { !$0.isEmpty && !$0.hasPrefix(name + "=") }
        return kept.isEmpty ? nil : kept.joined(separator: "; ")
    }
}

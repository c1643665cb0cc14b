import Agent
import CryptoPrimitives
import DERP
import Logging
import Mesh
import WireGuardCore

/// The control plane's own DERP relay and STUN server (DESIGN.md: the
/// control plane embeds both), the one region of the DERP map it hands to
/// every node. They listen on ports of their own next to the API; with the
/// default port 0 the kernel picks free ones and the map names them.
struct EmbeddedRelay {
    static let regionID = 1

    let derp: DERPHTTPServer
    let stun: STUNServer
    let derpMap: [DERPRegionInfo]

    /// How long a login waits for its key to be introduced by coordination.
    static let admissionWait: Duration = .seconds(5)

    /// Binds DERP (TCP) and STUN (UDP) on `host`; the map advertises them
    /// under `advertisedHost` (the access URL's host), and STUN only when
    /// that host is an IP address (a STUN server is named by address).
    /// DERP admits only keys in `knownKeys`: those of connected clients and
    /// agents, waiting `admissionWait` for a key whose introduction is on
    /// its way.
    static func start(
        host: String, derpPort: Int, stunPort: Int, advertisedHost: String, knownKeys: NodeKeyRegistry, logger: Logger
    ) async throws -> EmbeddedRelay {
        var configuration = DERPServer.Configuration()
        configuration.logger = logger
        configuration.admission = { key, _ in await knownKeys.admits(key.base64, within: admissionWait) }
        let server = DERPServer(privateKey: X25519.PrivateKey(), configuration: configuration)
        let derp = try await DERPHTTPServer.bind(server, host: host, port: derpPort)
        let bindAddress = IPAddress(host) ?? IPAddress("0.0.0.0")!
        let stun = try STUNServer(listen: Endpoint(address: bindAddress, port: UInt16(stunPort)))
        stun.start()
        let urlHost = advertisedHost.contains(":") ? "[\(advertisedHost)]" : advertisedHost
        let stunText = IPAddress(advertisedHost).map { "\(Endpoint(address: $0, port: stun.localEndpoint.port))" }
        let map = [DERPRegionInfo(id: regionID, url: "http://\(urlHost):\(derp.port)/derp", stun: stunText)]
        return EmbeddedRelay(derp: derp, stun: stun, derpMap: map)
    }

    func stop() async {
        try? await derp.close()
        stun.stop()
    }

    /// The host part of a URL such as `http://host:port/path` (brackets of
    /// an IPv6 literal removed).
    static func host(ofURL url: String) -> String {
        var rest = Substring(url)
        if let scheme = rest.range(of: "://") { rest = rest[scheme.upperBound...] }
        let authority = rest.prefix { $0 != "/" }
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            return String(authority[authority.index(after: authority.startIndex)..<close])
        }
        return String(authority.prefix { $0 != ":" })
    }
}

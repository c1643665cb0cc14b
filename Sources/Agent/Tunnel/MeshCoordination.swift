import CryptoPrimitives
import DERP
import Mesh
import WireGuardCore

/// Conversions between coordination messages (strings, as JSON carries
/// them) and the Mesh node's types. Every conversion from the wire checks
/// what it parses and says which field is wrong.
public struct CoordinationError: Error, CustomStringConvertible {
    public let description: String
}

extension NodeInfo {
    /// What `MeshNode.upsertPeer` needs. Every address becomes a host prefix.
    public func meshPeer() throws(CoordinationError) -> MeshPeer {
        guard let key = try? X25519.PublicKey(base64: nodeKey) else {
            throw CoordinationError(description: "node_key is not 32 bytes of base64")
        }
        guard let disco = try? X25519.PublicKey(base64: discoKey) else {
            throw CoordinationError(description: "disco_key is not 32 bytes of base64")
        }
        var prefixes: [IPPrefix] = []
        for text in addresses {
            let bare = text.split(separator: "/").first.map(String.init) ?? text
            guard let address = IPAddress(bare), let prefix = IPPrefix(address: address, length: address.isIPv4 ? 32 : 128)
            else { throw CoordinationError(description: "address \(text) is not an IP address") }
            prefixes.append(prefix)
        }
        // Endpoints are hints: one a peer cannot parse is skipped, not fatal.
        let parsed = endpoints.prefix(Self.maxEndpoints).compactMap { Endpoint($0) }
        return MeshPeer(nodeKey: key, discoKey: disco, homeRegion: homeDERP, endpoints: parsed, addresses: prefixes)
    }

    /// The node's own description, for `node` messages.
    public init(of node: MeshNode, address: IPAddress) {
        self.init(
            nodeKey: node.publicKey.base64, discoKey: node.discoKey.base64,
            addresses: ["\(address)/\(address.isIPv4 ? 32 : 128)"],
            endpoints: node.endpoints.prefix(Self.maxEndpoints).map(\.description), homeDERP: node.homeRegion)
    }
}

extension TunnelConfig {
    /// The Mesh DERP map; regions whose URL or STUN address does not parse
    /// are an error (they come from the control plane's own configuration).
    public func meshDERPMap() throws(CoordinationError) -> DERPMap {
        var regions: [DERPMap.Region] = []
        for r in derpMap {
            guard let url = DERPURL(r.url) else { throw CoordinationError(description: "DERP region \(r.id): \(r.url) is not a URL") }
            var stun: Endpoint?
            if let text = r.stun {
                guard let e = Endpoint(text) else { throw CoordinationError(description: "DERP region \(r.id): STUN \(text) is not ip:port") }
                stun = e
            }
            regions.append(DERPMap.Region(id: r.id, url: url, stun: stun))
        }
        guard !regions.isEmpty else { throw CoordinationError(description: "the DERP map has no regions") }
        return DERPMap(regions: regions)
    }

    public func tailnetAddress() throws(CoordinationError) -> IPAddress {
        guard let a = IPAddress(address) else { throw CoordinationError(description: "tunnel address \(address) is not an IP address") }
        return a
    }
}

import CryptoPrimitives
import DERP
import WireGuardCore

/// The DERP regions a node may use (from the control plane): per region
/// its relay URL and the STUN server the node measures latency with and
/// discovers its public endpoint through.
public struct DERPMap: Sendable, Equatable {
    public struct Region: Sendable, Equatable {
        public var id: Int
        public var url: DERPURL
        public var stun: Endpoint?

        public init(id: Int, url: DERPURL, stun: Endpoint? = nil) {
            self.id = id
            self.url = url
            self.stun = stun
        }
    }

    public var regions: [Int: Region]

    public init(regions: [Region]) {
        self.regions = Dictionary(regions.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
    }
}

/// What coordination says about one peer.
public struct MeshPeer: Sendable, Equatable {
    /// Its WireGuard public key, which is also its DERP node key.
    public var nodeKey: X25519.PublicKey
    /// Its per-process disco key.
    public var discoKey: X25519.PublicKey
    public var homeRegion: Int?
    /// Where it might be reached directly (its interfaces, its STUN result).
    public var endpoints: [Endpoint]
    /// Its tailnet addresses (WireGuard allowed IPs).
    public var addresses: [IPPrefix]

    public init(
        nodeKey: X25519.PublicKey, discoKey: X25519.PublicKey, homeRegion: Int?, endpoints: [Endpoint],
        addresses: [IPPrefix]
    ) {
        self.nodeKey = nodeKey
        self.discoKey = discoKey
        self.homeRegion = homeRegion
        self.endpoints = endpoints
        self.addresses = addresses
    }
}

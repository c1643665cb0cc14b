import CryptoPrimitives

/// Coordination messages of the control protocol (docs/control-protocol.md,
/// "Coordination"): how the control plane introduces clients and agents to
/// each other on the tailnet. They travel on the agent's WebSocket and on
/// a client's coordination WebSocket, in the same envelope as every other
/// message; a peer of an older build skips them as unknown types.
///
/// ```
/// client                         control plane                         agent
///   │── GET /api/v1/coordinate ──▶│ (user token; workspace, agent)       │
///   │◀── tunnel {address, derp} ──│◀── node {…} ─────────────────────────│ (after welcome ◀── tunnel)
///   │── node {keys, endpoints} ──▶│── peer_upsert {client's node} ──────▶│
///   │◀── peer_upsert {agent} ─────│◀── ready_for_handshake {client key} ─│
///   │◀── ready_for_handshake ─────│                                      │
///   │   (WireGuard over DERP, then direct once disco finds a path)       │
///   ╳ socket closes ─────────────▶│── peer_remove {client's key} ───────▶│
/// ```
///
/// The control plane assigns every tailnet address (an agent's from its ID,
/// a client's at random per connection) and overwrites whatever a node
/// claims, so no node can take another's address; it introduces a client
/// only to agents of workspaces its user owns (DESIGN.md, Security model).

/// One node as coordination describes it: what a peer needs to reach it.
public struct NodeInfo: Codable, Sendable, Equatable {
    /// WireGuard public key (base64), also its DERP identity.
    public var nodeKey: String
    /// Disco public key (base64), per process.
    public var discoKey: String
    /// Tailnet addresses, `address/length` (assigned by the control plane).
    public var addresses: [String]
    /// Candidate UDP endpoints, `ip:port` / `[ip6]:port`.
    public var endpoints: [String]
    /// DERP region the node keeps its relay connection to.
    public var homeDERP: Int?

    enum CodingKeys: String, CodingKey {
        case addresses, endpoints
        case nodeKey = "node_key"
        case discoKey = "disco_key"
        case homeDERP = "home_derp"
    }

    public init(nodeKey: String, discoKey: String, addresses: [String], endpoints: [String], homeDERP: Int?) {
        self.nodeKey = nodeKey
        self.discoKey = discoKey
        self.addresses = addresses
        self.endpoints = endpoints
        self.homeDERP = homeDERP
    }

    /// The most endpoints a node may advertise.
    public static let maxEndpoints = 32

    /// Checks every field a receiver will parse: both keys are 32 bytes of
    /// base64, endpoints are few and short. Throws `ProtocolError` code
    /// `malformed` with the field named.
    public func validate() throws(ProtocolError) {
        guard (try? Bytes32(base64: nodeKey)) != nil else {
            throw ProtocolError(code: "malformed", message: "node_key must be 32 bytes of base64")
        }
        guard (try? Bytes32(base64: discoKey)) != nil else {
            throw ProtocolError(code: "malformed", message: "disco_key must be 32 bytes of base64")
        }
        guard endpoints.count <= Self.maxEndpoints, endpoints.allSatisfy({ $0.utf8.count <= 64 }) else {
            throw ProtocolError(code: "malformed", message: "at most \(Self.maxEndpoints) endpoints of up to 64 characters")
        }
        guard addresses.count <= 8, addresses.allSatisfy({ $0.utf8.count <= 64 }) else {
            throw ProtocolError(code: "malformed", message: "at most 8 addresses")
        }
    }
}

/// A node's own report (agent → control plane, client → control plane).
public struct NodeUpdate: Codable, Sendable, Equatable {
    public var node: NodeInfo
    public init(node: NodeInfo) { self.node = node }
}

/// One DERP region of the map the control plane hands out.
public struct DERPRegionInfo: Codable, Sendable, Equatable {
    public var id: Int
    /// `http://host:port/derp` or `https://…`.
    public var url: String
    /// The region's STUN server, `ip:port`; nil when it has none.
    public var stun: String?

    public init(id: Int, url: String, stun: String?) {
        self.id = id
        self.url = url
        self.stun = stun
    }
}

/// Control plane → node, before any peer: the node's tailnet address and
/// the DERP map. Sent again when either changes.
public struct TunnelConfig: Codable, Sendable, Equatable {
    /// The node's own tailnet address (no prefix length: a /128 or /32).
    public var address: String
    public var derpMap: [DERPRegionInfo]

    enum CodingKeys: String, CodingKey {
        case address
        case derpMap = "derp_map"
    }

    public init(address: String, derpMap: [DERPRegionInfo]) {
        self.address = address
        self.derpMap = derpMap
    }
}

/// Control plane → node: a peer to add, or to update (same `node_key`).
public struct PeerUpsert: Codable, Sendable, Equatable {
    public var node: NodeInfo
    public init(node: NodeInfo) { self.node = node }
}

/// The agent has added this client as a peer (agent → control plane), so
/// the client's first WireGuard handshake will be answered rather than
/// dropped as from an unknown key and retried only after REKEY_TIMEOUT
/// (5 s, WireGuard whitepaper §6.4). The control plane passes it on to
/// that client (control plane → client).
public struct ReadyForHandshake: Codable, Sendable, Equatable {
    public var nodeKey: String

    enum CodingKeys: String, CodingKey {
        case nodeKey = "node_key"
    }

    public init(nodeKey: String) { self.nodeKey = nodeKey }
}

/// Control plane → node: forget this peer.
public struct PeerRemove: Codable, Sendable, Equatable {
    public var nodeKey: String

    enum CodingKeys: String, CodingKey {
        case nodeKey = "node_key"
    }

    public init(nodeKey: String) { self.nodeKey = nodeKey }
}

/// Tailnet addresses: IPv6 ULAs under one /48 (RFC 4193 §3.1: `fd` and a
/// 40-bit global ID, here the ASCII of "tethe"). An agent's interface ID is
/// a hash of its ID, so its address survives restarts; a client's is random
/// per connection. The agent's SSH server is at port 22 (and 1) of its address.
public enum TailnetAddress {
    /// The /48 prefix's first six bytes.
    public static let prefix: [UInt8] = [0xfd, 0x74, 0x65, 0x74, 0x68, 0x65]

    /// The agent's address: the prefix, subnet 0, and the first 8 bytes of
    /// BLAKE2s("tether agent address" ‖ agent ID) as the interface ID.
    public static func agent(id: String) -> String {
        let digest = BLAKE2s.hash(Array("tether agent address".utf8), Array(id.utf8)).bytes
        return format(prefix + [0, 0] + digest.prefix(8))
    }

    /// A random client address under the prefix, in subnet 1 (so it can never
    /// equal an agent's).
    public static func randomClient() -> String {
        var rng = SystemRandomNumberGenerator()
        let id = (0..<8).map { _ in UInt8.random(in: 0...255, using: &rng) }
        return format(prefix + [0, 1] + id)
    }

    /// Whether `text` is an address under the prefix.
    public static func contains(_ text: String) -> Bool {
        guard let bytes = parse(text) else { return false }
        return Array(bytes.prefix(6)) == prefix
    }

    /// Full-form lower-case IPv6 text (eight groups, no `::`), which every
    /// parser accepts.
    static func format(_ bytes: [UInt8]) -> String {
        stride(from: 0, to: 16, by: 2).map { i in
            let v = UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1])
            return String(v, radix: 16)
        }.joined(separator: ":")
    }

    /// The 16 bytes of a full-form address as `format` writes it.
    static func parse(_ text: String) -> [UInt8]? {
        let groups = text.split(separator: ":", omittingEmptySubsequences: false)
        guard groups.count == 8 else { return nil }
        var out: [UInt8] = []
        for g in groups {
            guard g.count <= 4, let v = UInt16(g, radix: 16) else { return nil }
            out += [UInt8(v >> 8), UInt8(v & 0xff)]
        }
        return out
    }
}

/// Constants of Tailscale's DERP protocol, version 2 (`derp/derp.go`), split
/// into what the wire fixes and what this implementation chooses.
///
/// Every frame on the stream is
///
///     +--------+----------------------+--------------------+
///     | type   | length (u32, BE)     | payload (length)   |
///     | 1 byte | 4 bytes              |                    |
///     +--------+----------------------+--------------------+
///
/// Protocol flow:
///
///     server → client  ServerKey   magic "DERP🔑" ‖ server public key
///     client → server  ClientInfo  client public key ‖ nonce ‖ box(JSON)
///     server → client  ServerInfo  nonce ‖ box(JSON)
///     then             SendPacket → (relay) → RecvPacket, KeepAlive, Ping/Pong, …
public enum DERPWire {
    /// `DERP🔑`: 0x44 0x45 0x52 0x50 0xf0 0x9f 0x94 0x91.
    public static let magic: [UInt8] = Array("DERP🔑".utf8)
    /// The protocol version this implementation speaks: RecvPacket carries the
    /// source key (version 2).
    public static let protocolVersion = 2
    public static let frameHeaderLength = 5
    public static let keyLength = 32
    public static let nonceLength = 24
    /// Largest packet a client may relay (`MaxPacketSize`, 64 KiB).
    public static let maxPacketSize = 64 << 10
    /// Largest frame this implementation reads from a peer (`maxFrameSize`
    /// in Tailscale's server: 1 MiB).
    public static let maxFrameLength = 1 << 20
    /// Largest ClientInfo frame a server reads from a not yet trusted client
    /// (Tailscale limits it to 256 KiB against JSON resource exhaustion).
    public static let maxClientInfoLength = 256 << 10
    /// Largest ServerInfo payload a client reads (`nonceLen + maxInfoLen`).
    public static let maxServerInfoLength = nonceLength + (1 << 20)
    /// Ping and Pong carry exactly eight opaque bytes.
    public static let pingDataLength = 8
    /// The HTTP path a DERP client upgrades on.
    public static let path = "/derp"
    /// `Upgrade:` token of the plain upgrade, and the WebSocket subprotocol.
    public static let upgradeToken = "DERP"
    public static let webSocketSubprotocol = "derp"
    public static let fastStartHeader = "Derp-Fast-Start"
    /// Disco messages (`disco/disco.go`) start with `TS💬` followed by the
    /// sender's 32-byte disco key and a 24-byte nonce.
    public static let discoMagic: [UInt8] = Array("TS💬".utf8)
    public static let discoMinimumLength = 6 + 32 + 24
}

/// Frame type bytes, as `derp.go` numbers them.
public enum FrameType: UInt8, Sendable, CaseIterable {
    case serverKey = 0x01
    case clientInfo = 0x02
    case serverInfo = 0x03
    case sendPacket = 0x04
    case recvPacket = 0x05
    case keepAlive = 0x06
    case notePreferred = 0x07
    case peerGone = 0x08
    case peerPresent = 0x09
    case forwardPacket = 0x0a
    case watchConns = 0x10
    case closePeer = 0x11
    case ping = 0x12
    case pong = 0x13
    case health = 0x14
    case restarting = 0x15
}

/// Why a server says a peer is gone (the byte after the key in PeerGone).
public struct PeerGoneReason: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// The peer was connected here and disconnected.
    public static let disconnected = PeerGoneReason(rawValue: 0x00)
    /// The server has no record of the destination a client sent to.
    public static let notHere = PeerGoneReason(rawValue: 0x01)
    /// Not on the wire: the mesh connection that announced the peer broke.
    public static let meshConnectionBroke = PeerGoneReason(rawValue: 0xf0)

    public var description: String {
        switch self {
        case .disconnected: "disconnected"
        case .notHere: "not here"
        case .meshConnectionBroke: "mesh connection broke"
        default: "reason 0x\(String(rawValue, radix: 16))"
        }
    }
}

/// The optional flags byte at the end of PeerPresent.
public struct PeerPresentFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let regular = PeerPresentFlags(rawValue: 1 << 0)
    public static let meshPeer = PeerPresentFlags(rawValue: 1 << 1)
    public static let prober = PeerPresentFlags(rawValue: 1 << 2)
    public static let notIdeal = PeerPresentFlags(rawValue: 1 << 3)
}

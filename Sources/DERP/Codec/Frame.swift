import CryptoPrimitives
import NIOCore

/// A node's identity on DERP: its Curve25519 public key (Tailscale's
/// `key.NodePublic`). Packets are addressed by it.
public typealias NodeKey = X25519.PublicKey

/// One DERP frame, decoded. Payload layouts (after the 5-byte header), as
/// `derp.go` defines them:
///
///     0x01 ServerKey      magic(8) ‖ server key(32) ‖ ignored…
///     0x02 ClientInfo     client key(32) ‖ nonce(24) ‖ box(JSON)
///     0x03 ServerInfo     nonce(24) ‖ box(JSON)
///     0x04 SendPacket     destination key(32) ‖ packet
///     0x05 RecvPacket     source key(32) ‖ packet            (version 2)
///     0x06 KeepAlive      (empty)
///     0x07 NotePreferred  1 byte: 0x01 home server, 0x00 not
///     0x08 PeerGone       key(32) ‖ reason(1)
///     0x09 PeerPresent    key(32) [‖ IPv6 or v4-mapped(16) ‖ port BE(2) [‖ flags(1)]]
///     0x0a ForwardPacket  source key(32) ‖ destination key(32) ‖ packet
///     0x10 WatchConns     (empty; mesh key required)
///     0x11 ClosePeer      key(32)                         (mesh key required)
///     0x12 Ping           8 opaque bytes
///     0x13 Pong           the 8 bytes of the Ping answered
///     0x14 Health         UTF-8 text of the problem; empty clears it
///     0x15 Restarting     reconnect-in ms (u32 BE) ‖ try-for ms (u32 BE)
///
/// Packets and boxes are `ByteBuffer` slices of the received bytes: decoding
/// copies no payload.
public enum Frame: Sendable, Equatable {
    case serverKey(NodeKey)
    case clientInfo(SealedClientInfo)
    case serverInfo(SealedServerInfo)
    case sendPacket(destination: NodeKey, packet: ByteBuffer)
    case recvPacket(source: NodeKey, packet: ByteBuffer)
    case keepAlive
    case notePreferred(Bool)
    case peerGone(NodeKey, reason: PeerGoneReason)
    case peerPresent(PeerPresent)
    case forwardPacket(source: NodeKey, destination: NodeKey, packet: ByteBuffer)
    case watchConns
    case closePeer(NodeKey)
    case ping(PingData)
    case pong(PingData)
    case health(String)
    case restarting(reconnectInMilliseconds: UInt32, tryForMilliseconds: UInt32)
    /// A type this implementation does not know; its payload was skipped.
    case unknown(type: UInt8, length: Int)
}

/// The ClientInfo frame's payload before the box is opened.
public struct SealedClientInfo: Sendable, Equatable {
    public var clientKey: NodeKey
    public var nonce: Nonce24
    public var box: ByteBuffer
    public init(clientKey: NodeKey, nonce: Nonce24, box: ByteBuffer) {
        self.clientKey = clientKey
        self.nonce = nonce
        self.box = box
    }
}

/// The ServerInfo frame's payload before the box is opened.
public struct SealedServerInfo: Sendable, Equatable {
    public var nonce: Nonce24
    public var box: ByteBuffer
    public init(nonce: Nonce24, box: ByteBuffer) {
        self.nonce = nonce
        self.box = box
    }
}

/// The eight opaque bytes of Ping and Pong.
public struct PingData: Hashable, Sendable {
    public var value: UInt64
    public init(_ value: UInt64) { self.value = value }
}

/// Where a peer connected from, as PeerPresent carries it: a 16-byte IPv6
/// address (IPv4 as `::ffff:a.b.c.d`) and a port.
public struct PeerEndpoint: Hashable, Sendable {
    public var address: Bytes16
    public var port: UInt16
    public init(address: Bytes16, port: UInt16) {
        self.address = address
        self.port = port
    }

    /// An IPv4 address as its IPv4-mapped IPv6 form.
    public init(ipv4 a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8, port: UInt16) {
        address = try! Bytes16([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d])
        self.port = port
    }
}

/// A peer connected to a mesh neighbour (or to this server, for watchers).
public struct PeerPresent: Hashable, Sendable {
    public var key: NodeKey
    public var endpoint: PeerEndpoint?
    /// Empty when an old server sent no flags byte.
    public var flags: PeerPresentFlags
    public init(key: NodeKey, endpoint: PeerEndpoint? = nil, flags: PeerPresentFlags = []) {
        self.key = key
        self.endpoint = endpoint
        self.flags = flags
    }
}

extension Frame {
    public var type: UInt8 {
        switch self {
        case .serverKey: FrameType.serverKey.rawValue
        case .clientInfo: FrameType.clientInfo.rawValue
        case .serverInfo: FrameType.serverInfo.rawValue
        case .sendPacket: FrameType.sendPacket.rawValue
        case .recvPacket: FrameType.recvPacket.rawValue
        case .keepAlive: FrameType.keepAlive.rawValue
        case .notePreferred: FrameType.notePreferred.rawValue
        case .peerGone: FrameType.peerGone.rawValue
        case .peerPresent: FrameType.peerPresent.rawValue
        case .forwardPacket: FrameType.forwardPacket.rawValue
        case .watchConns: FrameType.watchConns.rawValue
        case .closePeer: FrameType.closePeer.rawValue
        case .ping: FrameType.ping.rawValue
        case .pong: FrameType.pong.rawValue
        case .health: FrameType.health.rawValue
        case .restarting: FrameType.restarting.rawValue
        case .unknown(let type, _): type
        }
    }
}

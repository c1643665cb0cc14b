import CryptoPrimitives
import NIOCore

extension Frame {
    /// The payload length this frame encodes to (without the 5-byte header).
    public var payloadLength: Int {
        switch self {
        case .serverKey: DERPWire.magic.count + DERPWire.keyLength
        case .clientInfo(let info): DERPWire.keyLength + DERPWire.nonceLength + info.box.readableBytes
        case .serverInfo(let info): DERPWire.nonceLength + info.box.readableBytes
        case .sendPacket(_, let packet), .recvPacket(_, let packet): DERPWire.keyLength + packet.readableBytes
        case .keepAlive, .watchConns: 0
        case .notePreferred: 1
        case .peerGone: DERPWire.keyLength + 1
        case .peerPresent(let present): DERPWire.keyLength + (present.endpoint == nil ? 0 : 19)
        case .forwardPacket(_, _, let packet): 2 * DERPWire.keyLength + packet.readableBytes
        case .closePeer: DERPWire.keyLength
        case .ping, .pong: DERPWire.pingDataLength
        case .health(let text): text.utf8.count
        case .restarting: 8
        case .unknown(_, let length): length
        }
    }

    /// Appends header ‖ payload. An `.unknown` frame encodes as that many zero
    /// bytes (only tests send those).
    public func encode(into out: inout ByteBuffer) {
        out.writeInteger(type)
        out.writeInteger(UInt32(truncatingIfNeeded: payloadLength))
        switch self {
        case .serverKey(let key):
            out.writeBytes(DERPWire.magic)
            out.writeRawBytes(key)
        case .clientInfo(let info):
            out.writeRawBytes(info.clientKey)
            out.writeRawBytes(info.nonce)
            out.writeImmutableBuffer(info.box)
        case .serverInfo(let info):
            out.writeRawBytes(info.nonce)
            out.writeImmutableBuffer(info.box)
        case .sendPacket(let key, let packet), .recvPacket(let key, let packet):
            out.writeRawBytes(key)
            out.writeImmutableBuffer(packet)
        case .keepAlive, .watchConns:
            break
        case .notePreferred(let preferred):
            out.writeInteger(UInt8(preferred ? 1 : 0))
        case .peerGone(let key, let reason):
            out.writeRawBytes(key)
            out.writeInteger(reason.rawValue)
        case .peerPresent(let present):
            out.writeRawBytes(present.key)
            if let endpoint = present.endpoint {
                out.writeRawBytes(endpoint.address)
                out.writeInteger(endpoint.port)
                out.writeInteger(present.flags.rawValue)
            }
        case .forwardPacket(let source, let destination, let packet):
            out.writeRawBytes(source)
            out.writeRawBytes(destination)
            out.writeImmutableBuffer(packet)
        case .closePeer(let key):
            out.writeRawBytes(key)
        case .ping(let data), .pong(let data):
            out.writeInteger(data.value)
        case .health(let text):
            out.writeString(text)
        case .restarting(let reconnectIn, let tryFor):
            out.writeInteger(reconnectIn)
            out.writeInteger(tryFor)
        case .unknown(_, let length):
            out.writeRepeatingByte(0, count: length)
        }
    }

    /// The frame as a new buffer.
    public func encoded(allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var out = allocator.buffer(capacity: DERPWire.frameHeaderLength + payloadLength)
        encode(into: &out)
        return out
    }

    /// Hot path of the relay: appends a RecvPacket frame from raw parts
    /// without building a `Frame`.
    @inlinable
    public static func writeRecvPacket(source: NodeKey, packet: ByteBuffer, into out: inout ByteBuffer) {
        out.writeInteger(FrameType.recvPacket.rawValue)
        out.writeInteger(UInt32(DERPWire.keyLength + packet.readableBytes))
        source.withUnsafeBytes { _ = out.writeBytes($0) }
        out.writeImmutableBuffer(packet)
    }

    /// Hot path of the client: appends a SendPacket frame.
    @inlinable
    public static func writeSendPacket(destination: NodeKey, packet: some RawBytes, into out: inout ByteBuffer) {
        let count = packet.withUnsafeBytes { $0.count }
        out.writeInteger(FrameType.sendPacket.rawValue)
        out.writeInteger(UInt32(DERPWire.keyLength + count))
        destination.withUnsafeBytes { _ = out.writeBytes($0) }
        packet.withUnsafeBytes { _ = out.writeBytes($0) }
    }
}

/// Whether a relayed packet is a disco message (`TS💬` ‖ disco key ‖ nonce
/// ‖ box), which the server queues apart from data so path discovery is
/// not starved by bulk traffic.
@inlinable
public func isDiscoPacket(_ packet: ByteBuffer) -> Bool {
    guard packet.readableBytes >= DERPWire.discoMinimumLength else { return false }
    return packet.withUnsafeReadableBytes { bytes in
        bytes[0] == 0x54 && bytes[1] == 0x53 && bytes[2] == 0xf0 && bytes[3] == 0x9f && bytes[4] == 0x92
            && bytes[5] == 0xac
    }
}

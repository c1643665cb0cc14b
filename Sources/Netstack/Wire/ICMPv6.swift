/// ICMPv6 message (RFC 4443 §2.1):
///
///      0                   1                   2                   3
///      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |     Type      |     Code      |          Checksum             |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |  Echo (128/129): Identifier   |  Sequence Number              |
///     |  Packet Too Big (2): MTU                                      |
///     |  Destination Unreachable (1): unused                          |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |  Echo data, or as much of the invoking packet as fits         |
///     +-+-+-+-+-
///
/// The checksum covers the RFC 8200 §8.1 pseudo-header and the message.
public struct ICMPv6Packet {
    enum Field {
        static let type = 0
        static let code = 1
        static let checksum = 2
        static let identifier = 4
        static let sequence = 6
        static let mtu = 4
    }
    public static let headerLength = 8

    public let bytes: UnsafeRawBufferPointer

    public init(checking bytes: UnsafeRawBufferPointer) throws(WireError) {
        guard bytes.count >= Self.headerLength else { throw .truncated }
        self.bytes = bytes
    }

    public var type: UInt8 { bytes.u8(Field.type) }
    public var code: UInt8 { bytes.u8(Field.code) }
    public var checksum: UInt16 { bytes.be16(Field.checksum) }
    public var identifier: UInt16 { bytes.be16(Field.identifier) }
    public var sequence: UInt16 { bytes.be16(Field.sequence) }
    public var mtu: UInt32 { bytes.be32(Field.mtu) }
    public var data: UnsafeRawBufferPointer { bytes.slice(Self.headerLength..<bytes.count) }

    public func isChecksumValid(source: IPv6Address, destination: IPv6Address) -> Bool {
        var sum = pseudoHeaderChecksum(
            source: .v6(source), destination: .v6(destination), protocol: .icmpv6, length: bytes.count)
        sum.add(bytes)
        return sum.verifies
    }
}

/// The ICMPv6 messages this stack understands; data stays in the view.
public enum ICMPv6Repr: Hashable, Sendable {
    case echoRequest(identifier: UInt16, sequence: UInt16, dataLength: Int)
    case echoReply(identifier: UInt16, sequence: UInt16, dataLength: Int)
    /// RFC 4443 §3.2; the data is the start of the invoking packet.
    case packetTooBig(mtu: UInt32, dataLength: Int)
    /// RFC 4443 §3.1; code 4 is "port unreachable".
    case destinationUnreachable(code: UInt8, dataLength: Int)

    enum MessageType {
        static let destinationUnreachable: UInt8 = 1
        static let packetTooBig: UInt8 = 2
        static let echoRequest: UInt8 = 128
        static let echoReply: UInt8 = 129
    }
    public enum UnreachableCode {
        public static let port: UInt8 = 4
    }

    public static func parse(
        _ packet: ICMPv6Packet, source: IPv6Address, destination: IPv6Address
    ) throws(WireError) -> ICMPv6Repr {
        guard packet.isChecksumValid(source: source, destination: destination) else { throw .badChecksum }
        let n = packet.data.count
        switch (packet.type, packet.code) {
        case (MessageType.echoRequest, 0):
            return .echoRequest(identifier: packet.identifier, sequence: packet.sequence, dataLength: n)
        case (MessageType.echoReply, 0):
            return .echoReply(identifier: packet.identifier, sequence: packet.sequence, dataLength: n)
        case (MessageType.packetTooBig, 0):
            guard n >= IPv6Packet.headerLength else { throw .truncated }
            return .packetTooBig(mtu: packet.mtu, dataLength: n)
        case (MessageType.destinationUnreachable, let code):
            guard n >= IPv6Packet.headerLength else { throw .truncated }
            return .destinationUnreachable(code: code, dataLength: n)
        default:
            throw .unsupported
        }
    }

    public var dataLength: Int {
        switch self {
        case .echoRequest(_, _, let n), .echoReply(_, _, let n), .packetTooBig(_, let n),
            .destinationUnreachable(_, let n):
            n
        }
    }

    public var bufferLength: Int { ICMPv6Packet.headerLength + dataLength }

    /// Writes header and checksum; the data must already be in `buffer[8 ..< bufferLength]`.
    public func emit(into buffer: UnsafeMutableRawBufferPointer, source: IPv6Address, destination: IPv6Address) {
        precondition(buffer.count >= bufferLength)
        typealias F = ICMPv6Packet.Field
        switch self {
        case .echoRequest(let id, let seq, _):
            buffer.setU8(F.type, MessageType.echoRequest)
            buffer.setU8(F.code, 0)
            buffer.setBE16(F.identifier, id)
            buffer.setBE16(F.sequence, seq)
        case .echoReply(let id, let seq, _):
            buffer.setU8(F.type, MessageType.echoReply)
            buffer.setU8(F.code, 0)
            buffer.setBE16(F.identifier, id)
            buffer.setBE16(F.sequence, seq)
        case .packetTooBig(let mtu, _):
            buffer.setU8(F.type, MessageType.packetTooBig)
            buffer.setU8(F.code, 0)
            buffer.setBE32(F.mtu, mtu)
        case .destinationUnreachable(let code, _):
            buffer.setU8(F.type, MessageType.destinationUnreachable)
            buffer.setU8(F.code, code)
            buffer.setBE32(4, 0)
        }
        buffer.setBE16(F.checksum, 0)
        var sum = pseudoHeaderChecksum(
            source: .v6(source), destination: .v6(destination), protocol: .icmpv6, length: bufferLength)
        sum.add(UnsafeRawBufferPointer(buffer.mutableSlice(0..<bufferLength)))
        buffer.setBE16(F.checksum, sum.value)
    }
}

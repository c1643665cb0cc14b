/// ICMPv4 message (RFC 792):
///
///      0                   1                   2                   3
///      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |     Type      |     Code      |          Checksum             |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |  Echo: Identifier             |  Echo: Sequence Number        |
///     |  Unreachable: unused          |  Next-Hop MTU (RFC 1191)      |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |  Echo data, or the invoking IP header + ≥ 8 bytes of its data |
///     +-+-+-+-+-
///
/// The checksum covers the whole message, with no pseudo-header.
public struct ICMPv4Packet {
    enum Field {
        static let type = 0
        static let code = 1
        static let checksum = 2
        static let identifier = 4
        static let sequence = 6
        static let nextHopMTU = 6
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
    public var nextHopMTU: UInt16 { bytes.be16(Field.nextHopMTU) }
    public var data: UnsafeRawBufferPointer { bytes.slice(Self.headerLength..<bytes.count) }

    public var isChecksumValid: Bool {
        var sum = InternetChecksum()
        sum.add(bytes)
        return sum.verifies
    }
}

/// The ICMPv4 messages this stack understands. The message data (echo
/// payload or invoking packet) stays in the packet view; `dataLength` says
/// how long it is.
public enum ICMPv4Repr: Hashable, Sendable {
    case echoRequest(identifier: UInt16, sequence: UInt16, dataLength: Int)
    case echoReply(identifier: UInt16, sequence: UInt16, dataLength: Int)
    /// Type 3. Code 4 is "fragmentation needed and DF set", carrying the next-hop MTU (RFC 1191 §4).
    case destinationUnreachable(code: UInt8, nextHopMTU: UInt16, dataLength: Int)

    enum MessageType {
        static let echoReply: UInt8 = 0
        static let destinationUnreachable: UInt8 = 3
        static let echoRequest: UInt8 = 8
    }
    public enum UnreachableCode {
        public static let port: UInt8 = 3
        public static let fragmentationNeeded: UInt8 = 4
    }

    public static func parse(_ packet: ICMPv4Packet) throws(WireError) -> ICMPv4Repr {
        guard packet.isChecksumValid else { throw .badChecksum }
        let n = packet.data.count
        switch (packet.type, packet.code) {
        case (MessageType.echoRequest, 0):
            return .echoRequest(identifier: packet.identifier, sequence: packet.sequence, dataLength: n)
        case (MessageType.echoReply, 0):
            return .echoReply(identifier: packet.identifier, sequence: packet.sequence, dataLength: n)
        case (MessageType.destinationUnreachable, let code):
            // The invoking IPv4 header must be there to be useful (RFC 1122 §3.2.2).
            guard n >= IPv4Packet.minimumHeaderLength else { throw .truncated }
            return .destinationUnreachable(code: code, nextHopMTU: packet.nextHopMTU, dataLength: n)
        default:
            throw .unsupported
        }
    }

    public var dataLength: Int {
        switch self {
        case .echoRequest(_, _, let n), .echoReply(_, _, let n), .destinationUnreachable(_, _, let n): n
        }
    }

    public var bufferLength: Int { ICMPv4Packet.headerLength + dataLength }

    /// Writes the header and checksum. The data must already be in
    /// `buffer[8 ..< bufferLength]`.
    public func emit(into buffer: UnsafeMutableRawBufferPointer) {
        precondition(buffer.count >= bufferLength)
        typealias F = ICMPv4Packet.Field
        switch self {
        case .echoRequest(let id, let seq, _), .echoReply(let id, let seq, _):
            if case .echoRequest = self {
                buffer.setU8(F.type, MessageType.echoRequest)
            } else {
                buffer.setU8(F.type, MessageType.echoReply)
            }
            buffer.setU8(F.code, 0)
            buffer.setBE16(F.identifier, id)
            buffer.setBE16(F.sequence, seq)
        case .destinationUnreachable(let code, let mtu, _):
            buffer.setU8(F.type, MessageType.destinationUnreachable)
            buffer.setU8(F.code, code)
            buffer.setBE16(4, 0)
            buffer.setBE16(F.nextHopMTU, mtu)
        }
        buffer.setBE16(F.checksum, 0)
        var sum = InternetChecksum()
        sum.add(UnsafeRawBufferPointer(buffer.mutableSlice(0..<bufferLength)))
        buffer.setBE16(F.checksum, sum.value)
    }
}

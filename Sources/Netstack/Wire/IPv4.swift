/// IPv4 header (RFC 791 §3.1):
///
///      0                   1                   2                   3
///      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |Version|  IHL  |    DSCP/ECN   |          Total Length         |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |         Identification        |Flags|      Fragment Offset    |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |  Time to Live |    Protocol   |         Header Checksum       |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |                       Source Address                          |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |                    Destination Address                        |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |                    Options (IHL > 5)      |    Padding        |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///
/// A checked view: `init(checking:)` guarantees the header and the Total
/// Length fit in the buffer, so every accessor below is in bounds.
public struct IPv4Packet {
    enum Field {
        static let versionIHL = 0
        static let dscpECN = 1
        static let totalLength = 2
        static let identification = 4
        static let flagsFragment = 6
        static let ttl = 8
        static let proto = 9
        static let checksum = 10
        static let source = 12
        static let destination = 16
    }
    public static let minimumHeaderLength = 20

    public let bytes: UnsafeRawBufferPointer

    public init(checking bytes: UnsafeRawBufferPointer) throws(WireError) {
        guard bytes.count >= Self.minimumHeaderLength else { throw .truncated }
        let vihl = bytes.u8(Field.versionIHL)
        guard vihl >> 4 == 4 else { throw .malformed }
        let ihl = Int(vihl & 0x0F) * 4
        guard ihl >= Self.minimumHeaderLength else { throw .malformed }
        let total = Int(bytes.be16(Field.totalLength))
        guard total >= ihl else { throw .malformed }
        guard total <= bytes.count, ihl <= bytes.count else { throw .truncated }
        self.bytes = bytes
    }

    public var headerLength: Int { Int(bytes.u8(Field.versionIHL) & 0x0F) * 4 }
    public var totalLength: Int { Int(bytes.be16(Field.totalLength)) }
    public var identification: UInt16 { bytes.be16(Field.identification) }
    public var dontFragment: Bool { bytes.be16(Field.flagsFragment) & 0x4000 != 0 }
    public var moreFragments: Bool { bytes.be16(Field.flagsFragment) & 0x2000 != 0 }
    public var fragmentOffset: Int { Int(bytes.be16(Field.flagsFragment) & 0x1FFF) * 8 }
    public var ttl: UInt8 { bytes.u8(Field.ttl) }
    public var protocolNumber: IPProtocol { IPProtocol(rawValue: bytes.u8(Field.proto)) }
    public var checksum: UInt16 { bytes.be16(Field.checksum) }
    public var source: IPv4Address { IPv4Address(value: bytes.be32(Field.source)) }
    public var destination: IPv4Address { IPv4Address(value: bytes.be32(Field.destination)) }
    public var header: UnsafeRawBufferPointer { bytes.slice(0..<headerLength) }
    /// The bytes after the header up to Total Length (trailing link padding excluded).
    public var payload: UnsafeRawBufferPointer { bytes.slice(headerLength..<totalLength) }

    public var isChecksumValid: Bool {
        var sum = InternetChecksum()
        sum.add(header)
        return sum.verifies
    }
}

/// A valid, unfragmented IPv4 header. Options are accepted and ignored on
/// parse and never emitted.
public struct IPv4Repr: Hashable, Sendable {
    public static let headerLength = 20
    public static let defaultTTL: UInt8 = 64

    public var source: IPv4Address
    public var destination: IPv4Address
    public var protocolNumber: IPProtocol
    public var payloadLength: Int
    public var ttl: UInt8
    public var identification: UInt16

    public init(
        source: IPv4Address, destination: IPv4Address, protocolNumber: IPProtocol, payloadLength: Int,
        ttl: UInt8 = IPv4Repr.defaultTTL, identification: UInt16 = 0
    ) {
        self.source = source
        self.destination = destination
        self.protocolNumber = protocolNumber
        self.payloadLength = payloadLength
        self.ttl = ttl
        self.identification = identification
    }

    /// Fragments are `.unsupported`: tunnel peers clamp MSS and set DF, and
    /// reassembly is an attack surface this stack does not need.
    public static func parse(_ packet: IPv4Packet) throws(WireError) -> IPv4Repr {
        guard packet.isChecksumValid else { throw .badChecksum }
        guard !packet.moreFragments, packet.fragmentOffset == 0 else { throw .unsupported }
        return IPv4Repr(
            source: packet.source, destination: packet.destination, protocolNumber: packet.protocolNumber,
            payloadLength: packet.totalLength - packet.headerLength, ttl: packet.ttl,
            identification: packet.identification)
    }

    public var bufferLength: Int { Self.headerLength + payloadLength }

    /// Writes the 20-byte header (DF set, checksum filled) at the start of `buffer`.
    public func emit(into buffer: UnsafeMutableRawBufferPointer) {
        precondition(buffer.count >= Self.headerLength && payloadLength + Self.headerLength <= 0xFFFF)
        typealias F = IPv4Packet.Field
        buffer.setU8(F.versionIHL, 0x45)
        buffer.setU8(F.dscpECN, 0)
        buffer.setBE16(F.totalLength, UInt16(bufferLength))
        buffer.setBE16(F.identification, identification)
        buffer.setBE16(F.flagsFragment, 0x4000)
        buffer.setU8(F.ttl, ttl)
        buffer.setU8(F.proto, protocolNumber.rawValue)
        buffer.setBE16(F.checksum, 0)
        buffer.setBE32(F.source, source.value)
        buffer.setBE32(F.destination, destination.value)
        var sum = InternetChecksum()
        sum.add(UnsafeRawBufferPointer(buffer.mutableSlice(0..<Self.headerLength)))
        buffer.setBE16(F.checksum, sum.value)
    }
}

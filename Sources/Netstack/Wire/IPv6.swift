/// IPv6 header (RFC 8200 §3):
///
///      0                   1                   2                   3
///      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |Version| Traffic Class |           Flow Label                  |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |         Payload Length        |  Next Header  |   Hop Limit   |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |                     Source Address (128 bits)                 |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |                  Destination Address (128 bits)               |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///
/// Extension headers (RFC 8200 §4) sit between this header and the upper
/// layer. Hop-by-Hop, Routing and Destination Options are skipped using their
/// length byte (`(Hdr Ext Len + 1) * 8`), Authentication Header by
/// `(Payload Len + 2) * 4` (RFC 4302); Fragment and ESP are `.unsupported`.
public struct IPv6Packet {
    enum Field {
        static let versionClassFlow = 0
        static let payloadLength = 4
        static let nextHeader = 6
        static let hopLimit = 7
        static let source = 8
        static let destination = 24
    }
    public static let headerLength = 40
    /// Bounds the extension-header walk so a hostile chain costs little.
    static let maximumExtensionHeaders = 8

    public let bytes: UnsafeRawBufferPointer
    /// The protocol after all skipped extension headers, and where its bytes start.
    public let upperLayerProtocol: IPProtocol
    public let upperLayerOffset: Int

    public init(checking bytes: UnsafeRawBufferPointer) throws(WireError) {
        guard bytes.count >= Self.headerLength else { throw .truncated }
        guard bytes.u8(Field.versionClassFlow) >> 4 == 6 else { throw .malformed }
        let end = Self.headerLength + Int(bytes.be16(Field.payloadLength))
        guard end <= bytes.count else { throw .truncated }
        var next = IPProtocol(rawValue: bytes.u8(Field.nextHeader))
        var offset = Self.headerLength
        var walked = 0
        while true {
            let length: Int
            switch next {
            case .hopByHop, .ipv6Routing, .ipv6DestinationOptions:
                guard offset + 2 <= end else { throw .truncated }
                length = (Int(bytes.u8(offset + 1)) + 1) * 8
            case .authenticationHeader:
                guard offset + 2 <= end else { throw .truncated }
                length = (Int(bytes.u8(offset + 1)) + 2) * 4
            case .ipv6Fragment, .esp:
                throw .unsupported
            default:
                length = -1
            }
            if length < 0 { break }
            walked += 1
            guard walked <= Self.maximumExtensionHeaders else { throw .unsupported }
            guard offset + length <= end else { throw .truncated }
            next = IPProtocol(rawValue: bytes.u8(offset))
            offset += length
        }
        self.bytes = bytes
        self.upperLayerProtocol = next
        self.upperLayerOffset = offset
    }

    public var trafficClass: UInt8 { UInt8(truncatingIfNeeded: bytes.be32(Field.versionClassFlow) >> 20) }
    public var flowLabel: UInt32 { bytes.be32(Field.versionClassFlow) & 0xFFFFF }
    public var payloadLength: Int { Int(bytes.be16(Field.payloadLength)) }
    public var nextHeader: IPProtocol { IPProtocol(rawValue: bytes.u8(Field.nextHeader)) }
    public var hopLimit: UInt8 { bytes.u8(Field.hopLimit) }
    public var source: IPv6Address { IPv6Address(high: bytes.be64(Field.source), low: bytes.be64(Field.source + 8)) }
    public var destination: IPv6Address {
        IPv6Address(high: bytes.be64(Field.destination), low: bytes.be64(Field.destination + 8))
    }
    /// The upper-layer bytes (after extension headers, without link padding).
    public var upperLayerPayload: UnsafeRawBufferPointer {
        bytes.slice(upperLayerOffset..<(Self.headerLength + payloadLength))
    }
}

/// A valid IPv6 header as this stack sees it: extension headers skipped,
/// `nextHeader` and `payloadLength` describe the upper layer. Emitted without
/// extension headers.
public struct IPv6Repr: Hashable, Sendable {
    public static let headerLength = 40
    public static let defaultHopLimit: UInt8 = 64

    public var source: IPv6Address
    public var destination: IPv6Address
    public var nextHeader: IPProtocol
    public var payloadLength: Int
    public var hopLimit: UInt8

    public init(
        source: IPv6Address, destination: IPv6Address, nextHeader: IPProtocol, payloadLength: Int,
        hopLimit: UInt8 = IPv6Repr.defaultHopLimit
    ) {
        self.source = source
        self.destination = destination
        self.nextHeader = nextHeader
        self.payloadLength = payloadLength
        self.hopLimit = hopLimit
    }

    public static func parse(_ packet: IPv6Packet) throws(WireError) -> IPv6Repr {
        IPv6Repr(
            source: packet.source, destination: packet.destination, nextHeader: packet.upperLayerProtocol,
            payloadLength: packet.upperLayerPayload.count, hopLimit: packet.hopLimit)
    }

    public var bufferLength: Int { Self.headerLength + payloadLength }

    public func emit(into buffer: UnsafeMutableRawBufferPointer) {
        precondition(buffer.count >= Self.headerLength && payloadLength <= 0xFFFF)
        typealias F = IPv6Packet.Field
        buffer.setBE32(F.versionClassFlow, 6 << 28)
        buffer.setBE16(F.payloadLength, UInt16(payloadLength))
        buffer.setU8(F.nextHeader, nextHeader.rawValue)
        buffer.setU8(F.hopLimit, hopLimit)
        buffer.setBE64(F.source, source.high)
        buffer.setBE64(F.source + 8, source.low)
        buffer.setBE64(F.destination, destination.high)
        buffer.setBE64(F.destination + 8, destination.low)
    }
}

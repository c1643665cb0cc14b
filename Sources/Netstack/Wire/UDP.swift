/// UDP header (RFC 768):
///
///      0      7 8     15 16    23 24    31
///     +--------+--------+--------+--------+
///     |     Source      |   Destination   |
///     |      Port       |      Port       |
///     +--------+--------+--------+--------+
///     |     Length      |    Checksum     |
///     +--------+--------+--------+--------+
///     |          data octets ...
///
/// The checksum covers a pseudo-header. Zero means "none" over IPv4 and is
/// invalid over IPv6 (RFC 8200 §8.1); a computed zero is sent as 0xFFFF.
public struct UDPDatagram {
    enum Field {
        static let sourcePort = 0
        static let destinationPort = 2
        static let length = 4
        static let checksum = 6
    }
    public static let headerLength = 8

    public let bytes: UnsafeRawBufferPointer

    public init(checking bytes: UnsafeRawBufferPointer) throws(WireError) {
        guard bytes.count >= Self.headerLength else { throw .truncated }
        let length = Int(bytes.be16(Field.length))
        guard length >= Self.headerLength else { throw .malformed }
        guard length <= bytes.count else { throw .truncated }
        self.bytes = bytes
    }

    public var sourcePort: UInt16 { bytes.be16(Field.sourcePort) }
    public var destinationPort: UInt16 { bytes.be16(Field.destinationPort) }
    public var length: Int { Int(bytes.be16(Field.length)) }
    public var checksum: UInt16 { bytes.be16(Field.checksum) }
    public var payload: UnsafeRawBufferPointer { bytes.slice(Self.headerLength..<length) }

    public func isChecksumValid(source: IPAddress, destination: IPAddress) -> Bool {
        if checksum == 0 { return !source.isIPv6 }
        var sum = pseudoHeaderChecksum(source: source, destination: destination, protocol: .udp, length: length)
        sum.add(bytes.slice(0..<length))
        return sum.verifies
    }
}

public struct UDPRepr: Hashable, Sendable {
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    public var payloadLength: Int

    public init(sourcePort: UInt16, destinationPort: UInt16, payloadLength: Int) {
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.payloadLength = payloadLength
    }

    public static func parse(
        _ datagram: UDPDatagram, source: IPAddress, destination: IPAddress
    ) throws(WireError) -> UDPRepr {
        guard datagram.destinationPort != 0 else { throw .malformed }
        guard datagram.isChecksumValid(source: source, destination: destination) else { throw .badChecksum }
        return UDPRepr(
            sourcePort: datagram.sourcePort, destinationPort: datagram.destinationPort,
            payloadLength: datagram.length - UDPDatagram.headerLength)
    }

    public var bufferLength: Int { UDPDatagram.headerLength + payloadLength }

    /// Writes header and checksum; the payload must already be in `buffer[8 ..< bufferLength]`.
    public func emit(into buffer: UnsafeMutableRawBufferPointer, source: IPAddress, destination: IPAddress) {
        precondition(buffer.count >= bufferLength && bufferLength <= 0xFFFF)
        typealias F = UDPDatagram.Field
        buffer.setBE16(F.sourcePort, sourcePort)
        buffer.setBE16(F.destinationPort, destinationPort)
        buffer.setBE16(F.length, UInt16(bufferLength))
        buffer.setBE16(F.checksum, 0)
        var sum = pseudoHeaderChecksum(source: source, destination: destination, protocol: .udp, length: bufferLength)
        sum.add(UnsafeRawBufferPointer(buffer.mutableSlice(0..<bufferLength)))
        let value = sum.value
        buffer.setBE16(F.checksum, value == 0 ? 0xFFFF : value)
    }
}

/// TCP header (RFC 9293 §3.1):
///
///      0                   1                   2                   3
///      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |          Source Port          |       Destination Port        |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |                        Sequence Number                        |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |                    Acknowledgment Number                      |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |  Data |       |C|E|U|A|P|R|S|F|                               |
///     | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
///     |       |       |R|E|G|K|H|T|N|N|                               |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |           Checksum            |         Urgent Pointer        |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |                     Options (Data Offset > 5)                 |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |                             data                              |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///
/// Options are TLVs (`kind`, `length` including both bytes, value) except
/// End of Option List (0) and No-Operation (1), which are one byte; see
/// `TCPOptions.swift`.
public struct TCPSegment {
    enum Field {
        static let sourcePort = 0
        static let destinationPort = 2
        static let sequence = 4
        static let acknowledgment = 8
        static let dataOffset = 12
        static let flags = 13
        static let window = 14
        static let checksum = 16
        static let urgent = 18
    }
    public static let minimumHeaderLength = 20
    public static let maximumHeaderLength = 60

    public let bytes: UnsafeRawBufferPointer

    public init(checking bytes: UnsafeRawBufferPointer) throws(WireError) {
        guard bytes.count >= Self.minimumHeaderLength else { throw .truncated }
        let offset = Int(bytes.u8(Field.dataOffset) >> 4) * 4
        guard offset >= Self.minimumHeaderLength else { throw .malformed }
        guard offset <= bytes.count else { throw .truncated }
        self.bytes = bytes
    }

    public var sourcePort: UInt16 { bytes.be16(Field.sourcePort) }
    public var destinationPort: UInt16 { bytes.be16(Field.destinationPort) }
    public var sequenceNumber: SeqNumber { SeqNumber(bytes.be32(Field.sequence)) }
    public var acknowledgmentNumber: SeqNumber { SeqNumber(bytes.be32(Field.acknowledgment)) }
    public var headerLength: Int { Int(bytes.u8(Field.dataOffset) >> 4) * 4 }
    public var flags: TCPFlags { TCPFlags(rawValue: bytes.u8(Field.flags)) }
    public var windowLength: UInt16 { bytes.be16(Field.window) }
    public var checksum: UInt16 { bytes.be16(Field.checksum) }
    public var urgentPointer: UInt16 { bytes.be16(Field.urgent) }
    public var options: UnsafeRawBufferPointer { bytes.slice(Self.minimumHeaderLength..<headerLength) }
    public var payload: UnsafeRawBufferPointer { bytes.slice(headerLength..<bytes.count) }

    public func isChecksumValid(source: IPAddress, destination: IPAddress) -> Bool {
        var sum = pseudoHeaderChecksum(source: source, destination: destination, protocol: .tcp, length: bytes.count)
        sum.add(bytes)
        return sum.verifies
    }
}

public struct TCPFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let fin = TCPFlags(rawValue: 0x01)
    public static let syn = TCPFlags(rawValue: 0x02)
    public static let rst = TCPFlags(rawValue: 0x04)
    public static let psh = TCPFlags(rawValue: 0x08)
    public static let ack = TCPFlags(rawValue: 0x10)
    public static let urg = TCPFlags(rawValue: 0x20)
    public static let ece = TCPFlags(rawValue: 0x40)
    public static let cwr = TCPFlags(rawValue: 0x80)
}

/// The one control flag a valid segment may carry besides ACK and PSH.
/// SYN+FIN, SYN+RST and the like are rejected at parse time.
public enum TCPControl: Hashable, Sendable {
    case none
    case syn
    case fin
    case rst

    /// Sequence space the control flag occupies (SYN and FIN count one each).
    public var sequenceLength: Int {
        switch self {
        case .syn, .fin: 1
        case .none, .rst: 0
        }
    }
}

/// A valid TCP segment header with its options decoded.
public struct TCPRepr: Hashable, Sendable {
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    public var control: TCPControl
    public var push: Bool
    public var sequenceNumber: SeqNumber
    /// Present exactly when the ACK flag is set.
    public var acknowledgmentNumber: SeqNumber?
    /// The raw 16-bit field; scaling is the connection's business (RFC 7323 §2.3).
    public var windowLength: UInt16
    public var options: TCPOptions
    public var payloadLength: Int

    public init(
        sourcePort: UInt16, destinationPort: UInt16, control: TCPControl = .none, push: Bool = false,
        sequenceNumber: SeqNumber, acknowledgmentNumber: SeqNumber?, windowLength: UInt16,
        options: TCPOptions = TCPOptions(), payloadLength: Int = 0
    ) {
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.control = control
        self.push = push
        self.sequenceNumber = sequenceNumber
        self.acknowledgmentNumber = acknowledgmentNumber
        self.windowLength = windowLength
        self.options = options
        self.payloadLength = payloadLength
    }

    /// `checksumVerified`: the link vouches for the checksum (a TUN device
    /// handing over a segment of the local kernel's TCP whose checksum was
    /// never computed: virtio-net `NEEDS_CSUM` with segmentation offload).
    public static func parse(
        _ segment: TCPSegment, source: IPAddress, destination: IPAddress, checksumVerified: Bool = false
    ) throws(WireError) -> TCPRepr {
        guard segment.sourcePort != 0, segment.destinationPort != 0 else { throw .malformed }
        guard checksumVerified || segment.isChecksumValid(source: source, destination: destination) else {
            throw .badChecksum
        }
        let flags = segment.flags
        let control: TCPControl
        switch (flags.contains(.syn), flags.contains(.fin), flags.contains(.rst)) {
        case (false, false, false): control = .none
        case (true, false, false): control = .syn
        case (false, true, false): control = .fin
        case (false, false, true): control = .rst
        default: throw .malformed
        }
        let options = try TCPOptions.parse(segment.options)
        return TCPRepr(
            sourcePort: segment.sourcePort, destinationPort: segment.destinationPort, control: control,
            push: flags.contains(.psh), sequenceNumber: segment.sequenceNumber,
            acknowledgmentNumber: flags.contains(.ack) ? segment.acknowledgmentNumber : nil,
            windowLength: segment.windowLength, options: options, payloadLength: segment.payload.count)
    }

    /// Sequence space used: payload plus SYN/FIN.
    public var segmentLength: Int { payloadLength + control.sequenceLength }

    public var headerLength: Int { TCPSegment.minimumHeaderLength + options.encodedLength }

    public var bufferLength: Int { headerLength + payloadLength }

    public var flags: TCPFlags {
        var f: TCPFlags = []
        switch control {
        case .syn: f.insert(.syn)
        case .fin: f.insert(.fin)
        case .rst: f.insert(.rst)
        case .none: break
        }
        if push { f.insert(.psh) }
        if acknowledgmentNumber != nil { f.insert(.ack) }
        return f
    }

    /// Writes header, options and checksum. The payload must already be in
    /// `buffer[headerLength ..< bufferLength]`.
    ///
    /// With `partialChecksum` the checksum field holds only the folded,
    /// uncomplemented pseudo-header sum (Linux's `CHECKSUM_PARTIAL`): a link
    /// with checksum offload sums the segment itself (virtio-net
    /// `NEEDS_CSUM`, csum_start = the TCP header, csum_offset = 16), so the
    /// payload is not read here at all.
    public func emit(
        into buffer: UnsafeMutableRawBufferPointer, source: IPAddress, destination: IPAddress,
        partialChecksum: Bool = false
    ) {
        let headerLength = headerLength
        precondition(buffer.count >= headerLength + payloadLength)
        typealias F = TCPSegment.Field
        buffer.setBE16(F.sourcePort, sourcePort)
        buffer.setBE16(F.destinationPort, destinationPort)
        buffer.setBE32(F.sequence, sequenceNumber.rawValue)
        buffer.setBE32(F.acknowledgment, acknowledgmentNumber?.rawValue ?? 0)
        buffer.setU8(F.dataOffset, UInt8(headerLength / 4) << 4)
        buffer.setU8(F.flags, flags.rawValue)
        buffer.setBE16(F.window, windowLength)
        buffer.setBE16(F.checksum, 0)
        buffer.setBE16(F.urgent, 0)
        options.emit(into: buffer.mutableSlice(TCPSegment.minimumHeaderLength..<headerLength))
        let total = headerLength + payloadLength
        var sum = pseudoHeaderChecksum(source: source, destination: destination, protocol: .tcp, length: total)
        if partialChecksum {
            buffer.setBE16(F.checksum, sum.folded)
            return
        }
        sum.add(UnsafeRawBufferPointer(buffer.mutableSlice(0..<total)))
        buffer.setBE16(F.checksum, sum.value)
    }
}

/// Either IP header, for code that does not care which version it holds.
public enum IPRepr: Hashable, Sendable {
    case v4(IPv4Repr)
    case v6(IPv6Repr)

    /// A header for `source` → `destination`; nil when the families differ.
    public init?(source: IPAddress, destination: IPAddress, protocolNumber: IPProtocol, payloadLength: Int) {
        switch (source, destination) {
        case (.v4(let s), .v4(let d)):
            self = .v4(
                IPv4Repr(source: s, destination: d, protocolNumber: protocolNumber, payloadLength: payloadLength))
        case (.v6(let s), .v6(let d)):
            self = .v6(IPv6Repr(source: s, destination: d, nextHeader: protocolNumber, payloadLength: payloadLength))
        default:
            return nil
        }
    }

    /// Parses an IPv4 or IPv6 packet by its version nibble; returns the header
    /// and the upper-layer bytes.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(WireError) -> (IPRepr, UnsafeRawBufferPointer) {
        guard bytes.count >= 1 else { throw .truncated }
        switch bytes.u8(0) >> 4 {
        case 4:
            let p = try IPv4Packet(checking: bytes)
            return (.v4(try IPv4Repr.parse(p)), p.payload)
        case 6:
            let p = try IPv6Packet(checking: bytes)
            return (.v6(try IPv6Repr.parse(p)), p.upperLayerPayload)
        default:
            throw .malformed
        }
    }

    public var source: IPAddress {
        switch self {
        case .v4(let r): .v4(r.source)
        case .v6(let r): .v6(r.source)
        }
    }

    public var destination: IPAddress {
        switch self {
        case .v4(let r): .v4(r.destination)
        case .v6(let r): .v6(r.destination)
        }
    }

    public var protocolNumber: IPProtocol {
        switch self {
        case .v4(let r): r.protocolNumber
        case .v6(let r): r.nextHeader
        }
    }

    public var payloadLength: Int {
        get {
            switch self {
            case .v4(let r): r.payloadLength
            case .v6(let r): r.payloadLength
            }
        }
        set {
            switch self {
            case .v4(var r):
                r.payloadLength = newValue
                self = .v4(r)
            case .v6(var r):
                r.payloadLength = newValue
                self = .v6(r)
            }
        }
    }

    public var headerLength: Int {
        switch self {
        case .v4: IPv4Repr.headerLength
        case .v6: IPv6Repr.headerLength
        }
    }

    public var bufferLength: Int { headerLength + payloadLength }

    public func emit(into buffer: UnsafeMutableRawBufferPointer) {
        switch self {
        case .v4(let r): r.emit(into: buffer)
        case .v6(let r): r.emit(into: buffer)
        }
    }
}

/// The few fields of the tunnelled IP packet the core needs (RFC 791 §3.1,
/// RFC 8200 §3): version, the length the header claims (decrypted packets
/// are trimmed to it, dropping WireGuard's padding), and the addresses used
/// for cryptokey routing.
///
///     IPv4: byte 0 high nibble 4; total length at 2..<4; src 12..<16; dst 16..<20
///     IPv6: byte 0 high nibble 6; payload length at 4..<6 (+40); src 8..<24; dst 24..<40
enum InnerPacket {
    static let ipv4HeaderSize = 20
    static let ipv6HeaderSize = 40

    private static func be16(_ p: UnsafeRawBufferPointer, _ offset: Int) -> Int {
        Int(p[offset]) << 8 | Int(p[offset + 1])
    }

    /// The length the IP header claims, if the packet holds a plausible
    /// header and at least that many bytes.
    static func claimedLength(_ p: UnsafeRawBufferPointer) -> Int? {
        guard let first = p.first else { return nil }
        switch first >> 4 {
        case 4:
            guard p.count >= ipv4HeaderSize else { return nil }
            let total = be16(p, 2)
            guard total >= ipv4HeaderSize, total <= p.count else { return nil }
            return total
        case 6:
            guard p.count >= ipv6HeaderSize else { return nil }
            let total = be16(p, 4) + ipv6HeaderSize
            guard total <= p.count else { return nil }
            return total
        default:
            return nil
        }
    }

    static func source(_ p: UnsafeRawBufferPointer) -> IPAddress? {
        guard let first = p.first else { return nil }
        switch first >> 4 {
        case 4 where p.count >= ipv4HeaderSize: return IPAddress(bytes: p[12..<16])
        case 6 where p.count >= ipv6HeaderSize: return IPAddress(bytes: p[8..<24])
        default: return nil
        }
    }

    static func destination(_ p: UnsafeRawBufferPointer) -> IPAddress? {
        guard let first = p.first else { return nil }
        switch first >> 4 {
        case 4 where p.count >= ipv4HeaderSize: return IPAddress(bytes: p[16..<20])
        case 6 where p.count >= ipv6HeaderSize: return IPAddress(bytes: p[24..<40])
        default: return nil
        }
    }
}

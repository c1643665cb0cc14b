import WireGuardCore

/// The 16-byte address form disco and STUN put on the wire: IPv6 as is,
/// IPv4 as an IPv4-mapped IPv6 address (RFC 4291 §2.5.5.2), which is
/// unmapped on receipt as Tailscale does.
extension Endpoint {
    /// Builds an endpoint from 16 address bytes, unmapping ::ffff:a.b.c.d.
    /// Callers pass exactly 16 bytes.
    init(mapped16 bytes: [UInt8], port: UInt16) {
        precondition(bytes.count == 16, "mapped16 needs 16 bytes")
        var high: UInt64 = 0
        var low: UInt64 = 0
        for i in 0..<8 { high = high << 8 | UInt64(bytes[i]) }
        for i in 8..<16 { low = low << 8 | UInt64(bytes[i]) }
        if high == 0 && low >> 32 == 0xffff {
            self.init(address: .v4(UInt32(truncatingIfNeeded: low)), port: port)
        } else {
            self.init(address: .v6(UInt128(high) << 64 | UInt128(low)), port: port)
        }
    }

    /// The address as 16 bytes, IPv4 mapped.
    var mapped16: [UInt8] {
        address.isIPv4 ? [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff] + address.bytes : address.bytes
    }
}

import WireGuardCore

/// The 16-byte address form disco and STUN put on the wire: IPv6 as is,
/// IPv4 as an IPv4-mapped IPv6 address (RFC 4291 §2.5.5.2), which disco
/// unmaps on receipt as Tailscale does.
extension Endpoint {
    /// Builds an endpoint from 16 address bytes, unmapping ::ffff:a.b.c.d.
    init(mapped16 bytes: some Collection<UInt8>, port: UInt16) {
        let array = Array(bytes)
        let isMapped = array.count == 16 && array[0..<10].allSatisfy { $0 == 0 } && array[10] == 0xff && array[11] == 0xff
        let address = isMapped ? IPAddress(bytes: array[12..<16])! : (IPAddress(bytes: array) ?? IPAddress(bytes: [0, 0, 0, 0])!)
        self.init(address: address, port: port)
    }

    /// The address as 16 bytes, IPv4 mapped.
    var mapped16: [UInt8] {
        address.isIPv4 ? [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff] + address.bytes : address.bytes
    }
}

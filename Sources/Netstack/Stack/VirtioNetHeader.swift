/// The header in front of every packet on a TUN device opened with
/// `IFF_VNET_HDR`: `struct virtio_net_hdr` of the virtio specification
/// (v1.2 §5.1.6, "Device Operation"), 10 bytes, little-endian on the
/// little-endian machines we run on:
///
///     flags u8 | gso_type u8 | hdr_len le16 | gso_size le16 | csum_start le16 | csum_offset le16
///
/// `NEEDS_CSUM` says the transport checksum is partial: its field holds the
/// pseudo-header sum, and the rest is to be summed from `csum_start`.
/// `gso_type` TCPv4/TCPv6 says the packet is a TCP super-packet to be cut
/// into `gso_size`-byte segments. Pure: it reads and writes bytes only.
package struct VirtioNetHeader: Equatable {
    package static let size = 10
    package static let needsChecksum: UInt8 = 1
    package static let gsoNone: UInt8 = 0
    package static let gsoTCPv4: UInt8 = 1
    package static let gsoTCPv6: UInt8 = 4
    package static let gsoECN: UInt8 = 0x80
    /// The TCP checksum's offset in the TCP header (RFC 9293 §3.1).
    package static let tcpChecksumOffset = 16

    package var flags: UInt8 = 0
    package var gsoType: UInt8 = gsoNone
    package var headerLength = 0
    package var gsoSize = 0
    package var checksumStart = 0
    package var checksumOffset = 0

    package init(
        flags: UInt8 = 0, gsoType: UInt8 = gsoNone, headerLength: Int = 0, gsoSize: Int = 0, checksumStart: Int = 0,
        checksumOffset: Int = 0
    ) {
        self.flags = flags
        self.gsoType = gsoType
        self.headerLength = headerLength
        self.gsoSize = gsoSize
        self.checksumStart = checksumStart
        self.checksumOffset = checksumOffset
    }

    /// Reads a header; `bytes` must hold at least `size` bytes.
    package init(_ bytes: UnsafeRawBufferPointer) {
        func le16(_ i: Int) -> Int { Int(bytes[i]) | Int(bytes[i + 1]) << 8 }
        flags = bytes[0]
        gsoType = bytes[1]
        headerLength = le16(2)
        gsoSize = le16(4)
        checksumStart = le16(6)
        checksumOffset = le16(8)
    }

    package func write(into bytes: UnsafeMutableRawBufferPointer) {
        func le16(_ i: Int, _ v: Int) {
            bytes[i] = UInt8(truncatingIfNeeded: v)
            bytes[i + 1] = UInt8(truncatingIfNeeded: v >> 8)
        }
        bytes[0] = flags
        bytes[1] = gsoType
        le16(2, headerLength)
        le16(4, gsoSize)
        le16(6, checksumStart)
        le16(8, checksumOffset)
    }

    /// Where the headers of a TCP packet with a plain IP header (no IPv6
    /// extension headers) end: what segmentation copies into every segment
    /// and where a partial checksum starts.
    package struct TCPLayout: Equatable {
        package let isIPv4: Bool
        package let ipHeaderLength: Int
        /// IP and TCP headers together.
        package let headersLength: Int
    }

    /// The layout of a TCP packet, or nil for anything else (another
    /// protocol, extension headers, lengths that do not fit the bytes).
    package static func tcpLayout(_ packet: UnsafeRawBufferPointer) -> TCPLayout? {
        guard let first = packet.first else { return nil }
        let ipLength: Int
        switch first >> 4 {
        case 4:
            ipLength = Int(first & 0x0F) * 4
            guard ipLength >= 20, packet.count >= ipLength + 20, packet[9] == 6 else { return nil }
        case 6:
            ipLength = 40
            guard packet.count >= 60, packet[6] == 6 else { return nil }
        default:
            return nil
        }
        let tcpLength = Int(packet[ipLength + 12] >> 4) * 4
        guard tcpLength >= 20, packet.count >= ipLength + tcpLength else { return nil }
        return TCPLayout(isIPv4: first >> 4 == 4, ipHeaderLength: ipLength, headersLength: ipLength + tcpLength)
    }

    /// The header for an IP packet our stack sends on a link that
    /// `offloadsTCP`: a TCP packet carries a partial checksum (`NEEDS_CSUM`
    /// from its TCP header) and, when larger than `mtu`, is cut into
    /// segments that fill the MTU; anything else goes as it is.
    package init(forOutgoing packet: UnsafeRawBufferPointer, mtu: Int) {
        self.init()
        guard let layout = Self.tcpLayout(packet) else { return }
        flags = Self.needsChecksum
        checksumStart = layout.ipHeaderLength
        checksumOffset = Self.tcpChecksumOffset
        if packet.count > mtu {
            gsoType = layout.isIPv4 ? Self.gsoTCPv4 : Self.gsoTCPv6
            headerLength = layout.headersLength
            gsoSize = mtu - layout.headersLength
        }
    }

    /// Makes a packet the kernel sent ready for our stack, in place.
    /// Returns whether its TCP checksum is to be taken as verified (a
    /// segmentation super-packet of the local kernel's TCP, whose checksum
    /// was never computed), false when the stack is to check it as usual,
    /// nil when the packet is to be dropped (a malformed header, or an
    /// offload we did not offer). A partial checksum on a packet that is not
    /// a super-packet is completed here, so the stack checks it.
    package func prepareIncoming(_ packet: UnsafeMutableRawBufferPointer) -> Bool? {
        switch gsoType & ~Self.gsoECN {
        case Self.gsoNone:
            if flags & Self.needsChecksum != 0 {
                guard Self.completeChecksum(packet, start: checksumStart, offset: checksumOffset) else { return nil }
            }
            return false
        case Self.gsoTCPv4, Self.gsoTCPv6:
            return Self.tcpLayout(UnsafeRawBufferPointer(packet)) == nil ? nil : true
        default:
            return nil
        }
    }

    /// Completes a `CHECKSUM_PARTIAL` packet (RFC 1071): the field at
    /// `start + offset` holds the pseudo-header sum; the sum from `start` to
    /// the end, complemented, replaces it. False when the field is not
    /// inside the packet.
    @discardableResult
    package static func completeChecksum(_ packet: UnsafeMutableRawBufferPointer, start: Int, offset: Int) -> Bool {
        let field = start + offset
        guard start >= 0, offset >= 0, start < packet.count, field + 2 <= packet.count else { return false }
        var sum = InternetChecksum()
        sum.add(UnsafeRawBufferPointer(rebasing: packet[start...]))
        let value = sum.value
        packet[field] = UInt8(value >> 8)
        packet[field + 1] = UInt8(value & 0xFF)
        return true
    }
}

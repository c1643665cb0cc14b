import Netstack

/// Splitting the TCP "super-packets" a TUN device with segmentation offload
/// hands us (virtio_net_hdr, as in the virtio spec §5.1.6 and Linux
/// include/uapi/linux/virtio_net.h) into MTU-sized TCP segments, and
/// completing checksums the kernel left partial. Pure byte work over
/// caller buffers; no allocation.
///
///     virtio_net_hdr (10 bytes, little-endian):
///     +-------+----------+---------+----------+------------+-------------+
///     | flags | gso_type | hdr_len | gso_size | csum_start | csum_offset |
///     |  u8   |   u8     |  u16    |   u16    |    u16     |    u16      |
///     +-------+----------+---------+----------+------------+-------------+
package enum TCPSegmentation {
    // The header and the TCP layout are Netstack's `VirtioNetHeader`.

    /// One's-complement sum of `bytes` as big-endian 16-bit words (RFC 1071),
    /// not yet folded or complemented.
    package static func sum(_ bytes: UnsafeRawBufferPointer, initial: UInt64 = 0) -> UInt64 {
        var acc = initial
        var i = 0
        let n = bytes.count
        while i + 4 <= n {
            acc &+= UInt64(UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: i, as: UInt32.self)))
            i += 4
        }
        if i + 2 <= n {
            acc &+= UInt64(bytes[i]) << 8 | UInt64(bytes[i + 1])
            i += 2
        }
        if i < n { acc &+= UInt64(bytes[i]) << 8 }
        return acc
    }

    package static func fold(_ sum: UInt64) -> UInt16 {
        var s = sum
        while s > 0xffff { s = (s & 0xffff) + (s >> 16) }
        return UInt16(s)
    }

    /// Number of segments `packet` splits into at `gsoSize` bytes of payload.
    package static func segmentCount(_ packetLength: Int, _ layout: VirtioNetHeader.TCPLayout, gsoSize: Int) -> Int {
        let payload = packetLength - layout.headersLength
        return payload <= 0 ? 1 : (payload + gsoSize - 1) / gsoSize
    }

    /// Writes segment `index` of `packet` to `out`; returns its length.
    /// Headers are copied and fixed up (lengths, IPv4 id and checksum, TCP
    /// sequence number, flags, full TCP checksum).
    package static func writeSegment(
        _ packet: UnsafeRawBufferPointer, _ layout: VirtioNetHeader.TCPLayout, gsoSize: Int, index: Int, count: Int,
        into out: UnsafeMutableRawBufferPointer
    ) -> Int {
        let h = layout.headersLength
        let payloadStart = h + index * gsoSize
        let payloadLength = min(gsoSize, packet.count - payloadStart)
        let length = h + max(0, payloadLength)
        guard length <= out.count else { return 0 }
        out.baseAddress!.copyMemory(from: packet.baseAddress!, byteCount: h)
        if payloadLength > 0 {
            (out.baseAddress! + h).copyMemory(from: packet.baseAddress! + payloadStart, byteCount: payloadLength)
        }
        let ip = layout.ipHeaderLength
        func put16(_ offset: Int, _ v: UInt16) {
            out[offset] = UInt8(v >> 8)
            out[offset + 1] = UInt8(v & 0xff)
        }
        func get16(_ offset: Int) -> UInt16 { UInt16(out[offset]) << 8 | UInt16(out[offset + 1]) }
        if layout.isIPv4 {
            put16(2, UInt16(length))
            put16(4, get16(4) &+ UInt16(truncatingIfNeeded: index))
            put16(10, 0)
            put16(10, ~fold(sum(UnsafeRawBufferPointer(rebasing: out[0..<ip]))))
        } else {
            put16(4, UInt16(length - 40))
        }
        // TCP: sequence, flags, checksum.
        let seq = UInt32(out[ip + 4]) << 24 | UInt32(out[ip + 5]) << 16 | UInt32(out[ip + 6]) << 8 | UInt32(out[ip + 7])
        let newSeq = seq &+ UInt32(truncatingIfNeeded: index * gsoSize)
        out[ip + 4] = UInt8(newSeq >> 24)
        out[ip + 5] = UInt8((newSeq >> 16) & 0xff)
        out[ip + 6] = UInt8((newSeq >> 8) & 0xff)
        out[ip + 7] = UInt8(newSeq & 0xff)
        if index != count - 1 { out[ip + 13] &= ~(0x01 | 0x08) }  // FIN, PSH only on the last
        if index != 0 { out[ip + 13] &= ~0x80 }  // CWR only on the first
        put16(ip + 16, 0)
        let tcpLength = length - ip
        var pseudo: UInt64
        if layout.isIPv4 {
            pseudo = sum(UnsafeRawBufferPointer(rebasing: out[12..<20]))
        } else {
            pseudo = sum(UnsafeRawBufferPointer(rebasing: out[8..<40]))
        }
        pseudo &+= 6 &+ UInt64(tcpLength)
        let checksum = ~fold(sum(UnsafeRawBufferPointer(rebasing: out[ip..<length]), initial: pseudo))
        put16(ip + 16, checksum)
        return length
    }
}

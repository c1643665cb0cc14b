import Netstack
#if canImport(Glibc)
    import Glibc
#endif

/// The receive-side counterpart of `TCPSegmentation`: consecutive TCP
/// segments of one flow, as they come out of decryption, are joined into
/// one super-packet and written to a TUN device with offload under a
/// virtio_net_hdr asking for segmentation (GSO), so the kernel takes dozens
/// of segments in one write and runs its TCP receive once for them (what
/// Linux's own GRO does for a NIC, net/ipv4/tcp_offload.c). Pure byte work
/// over caller buffers; no allocation.
///
/// Segments join only when the kernel would have merged them too: same
/// addresses, ports, IP fields, ACK number, window and TCP options; only
/// ACK (and PSH on the last) set; each one starts where the previous
/// ended; all the size of the first except a shorter last one.
///
///     super-packet written to TUN:
///     +-----------------+-----------+------------+-------------------------+
///     | virtio_net_hdr  | IP header | TCP header | payload 1 ‖ 2 ‖ … ‖ n   |
///     | NEEDS_CSUM, GSO |  lengths  | seq of 1,  | (each gso_size, the     |
///     | gso_size = |p1| |  fixed up | PSH of n,  |  last may be shorter)   |
///     |                 |           | pseudo sum |                         |
///     +-----------------+-----------+------------+-------------------------+
package enum TCPCoalescing {
    static let flagFIN: UInt8 = 0x01
    static let flagSYN: UInt8 = 0x02
    static let flagRST: UInt8 = 0x04
    static let flagPSH: UInt8 = 0x08
    static let flagACK: UInt8 = 0x10
    /// Segments per super-packet, and its size bound (IPv4 total length).
    package static let maxSegments = 64
    package static let maxLength = 65_535

    /// Where the parts of one TCP segment are.
    package struct Segment {
        let isIPv4: Bool
        let ipHeaderLength: Int
        let headersLength: Int
        let sequence: UInt32
        let flags: UInt8
        var payloadLength: Int
    }

    /// The segment layout if `p` is a TCP segment that may be coalesced:
    /// IPv4 without options or fragmentation, or IPv6 with TCP as the next
    /// header; a non-empty payload; only ACK and PSH set.
    package static func segment(_ p: UnsafeRawBufferPointer) -> Segment? {
        guard let first = p.first else { return nil }
        let ip: Int
        let isIPv4: Bool
        switch first >> 4 {
        case 4:
            guard first == 0x45, p.count >= 40, p[9] == 6, Int(p[2]) << 8 | Int(p[3]) == p.count,
                p[6] & 0x3f == 0, p[7] == 0
            else { return nil }
            ip = 20
            isIPv4 = true
        case 6:
            guard p.count >= 60, p[6] == 6, Int(p[4]) << 8 | Int(p[5]) + 40 == p.count else { return nil }
            ip = 40
            isIPv4 = false
        default:
            return nil
        }
        let tcp = Int(p[ip + 12] >> 4) * 4
        let flags = p[ip + 13]
        guard tcp >= 20, p.count > ip + tcp, flags & ~flagPSH == flagACK else { return nil }
        let sequence = UInt32(p[ip + 4]) << 24 | UInt32(p[ip + 5]) << 16 | UInt32(p[ip + 6]) << 8 | UInt32(p[ip + 7])
        return Segment(
            isIPv4: isIPv4, ipHeaderLength: ip, headersLength: ip + tcp, sequence: sequence, flags: flags,
            payloadLength: p.count - ip - tcp)
    }

    /// Whether `q` (layout `b`) carries on the flow of `p` (layout `a`):
    /// every header byte equal except lengths, checksums, IPv4 id,
    /// sequence number and the PSH flag.
    static func sameFlow(_ p: UnsafeRawBufferPointer, _ a: Segment, _ q: UnsafeRawBufferPointer, _ b: Segment) -> Bool {
        guard a.isIPv4 == b.isIPv4, a.headersLength == b.headersLength else { return false }
        func equal(_ range: Range<Int>) -> Bool {
            memcmp(p.baseAddress! + range.lowerBound, q.baseAddress! + range.lowerBound, range.count) == 0
        }
        let ip = a.ipHeaderLength
        if a.isIPv4 {
            // TOS; flags; TTL and protocol; addresses.
            guard p[1] == q[1], p[6] == q[6], equal(8..<10), equal(12..<20) else { return false }
        } else {
            // Version, class, flow label; next header, hop limit; addresses.
            guard equal(0..<4), equal(6..<40) else { return false }
        }
        // Ports; ACK number; data offset; window; options.
        return equal(ip..<(ip + 4)) && equal((ip + 8)..<(ip + 13)) && equal((ip + 14)..<(ip + 16))
            && equal((ip + 20)..<a.headersLength)
    }

    /// What to write for a run of packets.
    package enum Output {
        /// Packet `index` unchanged (no virtio offload).
        case single(index: Int)
        /// A super-packet made of `count` packets, at `bytes` (virtio header
        /// included, ready to write).
        case coalesced(bytes: UnsafeRawBufferPointer, count: Int)
    }

    /// Walks `count` packets in order and hands each run to `emit`: single
    /// packets as they are, runs of one flow joined in `scratch` (which must
    /// hold `virtioHeaderSize + maxLength` bytes).
    package static func coalesce(
        count: Int, packet: (Int) -> UnsafeRawBufferPointer, scratch: UnsafeMutableRawBufferPointer,
        emit: (Output) -> Void
    ) {
        var i = 0
        while i < count {
            let p = packet(i)
            guard var head = segment(p) else {
                emit(.single(index: i))
                i += 1
                continue
            }
            let size = head.payloadLength
            var expected = head.sequence &+ UInt32(truncatingIfNeeded: size)
            var total = p.count
            var last = head
            var j = i + 1
            while j < count, j - i < maxSegments, last.flags & flagPSH == 0, last.payloadLength == size {
                let q = packet(j)
                guard let s = segment(q), s.sequence == expected, s.payloadLength <= size,
                    total + s.payloadLength <= maxLength, sameFlow(p, head, q, s)
                else { break }
                if j == i + 1 {
                    // The run is real: start the super-packet with the first.
                    (scratch.baseAddress! + VirtioNetHeader.size).copyMemory(
                        from: p.baseAddress!, byteCount: p.count)
                }
                (scratch.baseAddress! + VirtioNetHeader.size + total).copyMemory(
                    from: q.baseAddress! + s.headersLength, byteCount: s.payloadLength)
                total += s.payloadLength
                expected = expected &+ UInt32(truncatingIfNeeded: s.payloadLength)
                last = s
                j += 1
            }
            if j == i + 1 {
                emit(.single(index: i))
            } else {
                head.payloadLength = total - head.headersLength
                finish(scratch, head, total: total, segmentSize: size, push: last.flags & flagPSH != 0)
                emit(
                    .coalesced(
                        bytes: UnsafeRawBufferPointer(
                            rebasing: scratch[0..<(VirtioNetHeader.size + total)]), count: j - i))
            }
            i = j
        }
    }

    /// Fixes the joined headers (lengths, IPv4 checksum, PSH, the TCP
    /// checksum field holding the pseudo-header sum as CHECKSUM_PARTIAL
    /// wants) and writes the virtio header in front.
    static func finish(
        _ scratch: UnsafeMutableRawBufferPointer, _ s: Segment, total: Int, segmentSize: Int, push: Bool
    ) {
        let h = VirtioNetHeader.size
        let out = UnsafeMutableRawBufferPointer(rebasing: scratch[h..<(h + total)])
        func put16(_ buffer: UnsafeMutableRawBufferPointer, _ offset: Int, _ v: UInt16) {
            buffer[offset] = UInt8(v >> 8)
            buffer[offset + 1] = UInt8(v & 0xff)
        }
        let ip = s.ipHeaderLength
        let tcpLength = total - ip
        var pseudo: UInt64
        if s.isIPv4 {
            put16(out, 2, UInt16(total))
            put16(out, 10, 0)
            put16(out, 10, ~TCPSegmentation.fold(TCPSegmentation.sum(UnsafeRawBufferPointer(rebasing: out[0..<ip]))))
            pseudo = TCPSegmentation.sum(UnsafeRawBufferPointer(rebasing: out[12..<20]))
        } else {
            put16(out, 4, UInt16(total - 40))
            pseudo = TCPSegmentation.sum(UnsafeRawBufferPointer(rebasing: out[8..<40]))
        }
        if push { out[ip + 13] |= flagPSH }
        pseudo &+= 6 &+ UInt64(tcpLength)
        put16(out, ip + 16, TCPSegmentation.fold(pseudo))
        // virtio_net_hdr, little-endian (see TCPSegmentation).
        let header = UnsafeMutableRawBufferPointer(rebasing: scratch[0..<h])
        func putLE16(_ offset: Int, _ v: Int) {
            header[offset] = UInt8(v & 0xff)
            header[offset + 1] = UInt8((v >> 8) & 0xff)
        }
        header[0] = VirtioNetHeader.needsChecksum
        header[1] = s.isIPv4 ? VirtioNetHeader.gsoTCPv4 : VirtioNetHeader.gsoTCPv6
        putLE16(2, s.headersLength)
        putLE16(4, segmentSize)
        putLE16(6, ip)
        putLE16(8, 16)
    }
}

import Netstack
import Mesh
import Testing

/// Splitting offloaded TCP super-packets: every segment must be a valid
/// TCP/IP packet (lengths, IPv4 header checksum, TCP checksum over the
/// pseudo-header) carrying the right slice of the stream.
@Suite struct TCPSegmentationTests {
    private func superPacket(ipv6: Bool, payload: Int, flags: UInt8) -> [UInt8] {
        var p: [UInt8]
        if ipv6 {
            p = [0x60, 0, 0, 0, 0, 0, 6, 64] + [0xfd] + [UInt8](repeating: 0, count: 14) + [1]
            p += [0xfd] + [UInt8](repeating: 0, count: 14) + [2]
        } else {
            p = [0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]
        }
        // TCP: ports 1000 → 2000, seq 0xfffffff0 (wraps), ack 1, data offset 5.
        p += [0x03, 0xe8, 0x07, 0xd0, 0xff, 0xff, 0xff, 0xf0, 0, 0, 0, 1, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]
        p += (0..<payload).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        return p
    }

    private func verifyChecksums(_ s: [UInt8], ipv6: Bool) -> Bool {
        s.withUnsafeBytes { b in
            let ip = ipv6 ? 40 : 20
            if !ipv6, TCPSegmentation.fold(TCPSegmentation.sum(UnsafeRawBufferPointer(rebasing: b[0..<20]))) != 0xffff {
                return false
            }
            var pseudo = TCPSegmentation.sum(UnsafeRawBufferPointer(rebasing: ipv6 ? b[8..<40] : b[12..<20]))
            pseudo &+= 6 &+ UInt64(s.count - ip)
            return TCPSegmentation.fold(
                TCPSegmentation.sum(UnsafeRawBufferPointer(rebasing: b[ip...]), initial: pseudo))
                == 0xffff
        }
    }

    @Test(arguments: [false, true])
    func segmentsAreValidAndCoverTheStream(ipv6: Bool) {
        let gso = 1380
        let payload = 10_000
        let packet = superPacket(ipv6: ipv6, payload: payload, flags: 0x18 | 0x01 | 0x80)  // PSH ACK FIN CWR
        let layout = packet.withUnsafeBytes { VirtioNetHeader.tcpLayout($0) }!
        let count = TCPSegmentation.segmentCount(packet.count, layout, gsoSize: gso)
        #expect(count == 8)
        var stream: [UInt8] = []
        var out = [UInt8](repeating: 0, count: 2000)
        for i in 0..<count {
            let n = packet.withUnsafeBytes { p in
                out.withUnsafeMutableBytes {
                    TCPSegmentation.writeSegment(p, layout, gsoSize: gso, index: i, count: count, into: $0)
                }
            }
            let segment = Array(out[0..<n])
            #expect(verifyChecksums(segment, ipv6: ipv6), "segment \(i)")
            let ip = ipv6 ? 40 : 20
            let seq = segment[(ip + 4)..<(ip + 8)].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            #expect(seq == 0xffff_fff0 &+ UInt32(i * gso))
            let flags = segment[ip + 13]
            #expect((flags & 0x01 != 0) == (i == count - 1), "FIN only on the last")
            #expect((flags & 0x08 != 0) == (i == count - 1), "PSH only on the last")
            #expect((flags & 0x80 != 0) == (i == 0), "CWR only on the first")
            if ipv6 {
                #expect(Int(segment[4]) << 8 | Int(segment[5]) == n - 40)
            } else {
                #expect(Int(segment[2]) << 8 | Int(segment[3]) == n)
                #expect(Int(segment[4]) << 8 | Int(segment[5]) == 0x1234 + i)
            }
            stream += segment[(ip + 20)...]
        }
        #expect(stream == Array(packet[(ipv6 ? 60 : 40)...]))
    }

    @Test func partialChecksumCompletion() {
        // A UDP-like buffer whose checksum field holds a pseudo-header sum.
        var packet: [UInt8] = [0, 0, 0x12, 0x34, 0xab, 0xcd, 0x01, 0x02, 0x03]
        packet.withUnsafeMutableBytes { VirtioNetHeader.completeChecksum($0, start: 0, offset: 2) }
        // Valid when the packet plus the pseudo-header sum (0x1234) folds to 0xffff.
        let total = packet.withUnsafeBytes { TCPSegmentation.fold(TCPSegmentation.sum($0, initial: 0x1234)) }
        #expect(total == 0xffff)
    }
}

import Netstack
import Mesh
import Testing

/// Joining decrypted TCP segments for a TUN device with offload. The check
/// is a round trip: segments made by `TCPSegmentation` (as the peer's
/// kernel would have sent them), joined by `TCPCoalescing`, then split
/// again as the kernel does with the virtio header we wrote, must give the
/// same packets byte for byte; and runs must break wherever Linux's GRO
/// would not merge.
@Suite struct TCPCoalescingTests {
    static let gso = 1380

    /// `count` MTU segments of one flow (IPv4 or IPv6), PSH on the last.
    private func segments(ipv6: Bool, count: Int, lastPayload: Int = gso, port: UInt8 = 0xd0) -> [[UInt8]] {
        var p: [UInt8]
        if ipv6 {
            p = [0x60, 0, 0, 0, 0, 0, 6, 64] + [0xfd] + [UInt8](repeating: 0, count: 14) + [1]
            p += [0xfd] + [UInt8](repeating: 0, count: 14) + [2]
        } else {
            p = [0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]
        }
        // TCP with a timestamp option (12 bytes: NOP NOP TS), as Linux sends.
        p += [0x03, 0xe8, 0x07, port, 0xff, 0xff, 0xff, 0x00, 0, 0, 0, 1, 0x80, 0x18, 0x01, 0xf5, 0, 0, 0, 0]
        p += [1, 1, 8, 10, 0, 0, 0, 5, 0, 0, 0, 9]
        p += (0..<((count - 1) * Self.gso + lastPayload)).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let layout = p.withUnsafeBytes { VirtioNetHeader.tcpLayout($0) }!
        var out = [UInt8](repeating: 0, count: 2000)
        return (0..<count).map { i in
            let n = p.withUnsafeBytes { src in
                out.withUnsafeMutableBytes {
                    TCPSegmentation.writeSegment(src, layout, gsoSize: Self.gso, index: i, count: count, into: $0)
                }
            }
            return Array(out[0..<n])
        }
    }

    private enum Written: Equatable {
        case single(Int)
        case joined(packets: [[UInt8]], count: Int)
    }

    /// Runs the coalescer and splits every super-packet back with the
    /// kernel's rules (virtio header: gso_size, hdr_len, csum_start/offset).
    private func coalesce(_ packets: [[UInt8]]) -> [Written] {
        var written: [Written] = []
        let scratch = UnsafeMutableRawBufferPointer.allocate(
            byteCount: VirtioNetHeader.size + TCPCoalescing.maxLength, alignment: 16)
        defer { scratch.deallocate() }
        let pointers = packets.map { p in
            let b = UnsafeMutableRawBufferPointer.allocate(byteCount: p.count, alignment: 16)
            b.copyBytes(from: p)
            return UnsafeRawBufferPointer(b)
        }
        defer { pointers.forEach { $0.deallocate() } }
        TCPCoalescing.coalesce(count: packets.count, packet: { pointers[$0] }, scratch: scratch) { output in
            switch output {
            case .single(let i): written.append(.single(i))
            case .coalesced(let bytes, let count):
                let header = VirtioNetHeader(UnsafeRawBufferPointer(rebasing: bytes[0..<10]))
                #expect(header.flags == VirtioNetHeader.needsChecksum)
                let packet = UnsafeRawBufferPointer(rebasing: bytes[10...])
                // The checksum field must hold the pseudo-header sum: completing
                // it over the whole super-packet must verify.
                let ip = header.checksumStart
                #expect(header.checksumOffset == 16)
                var pseudo = TCPSegmentation.sum(
                    UnsafeRawBufferPointer(rebasing: packet[(ip == 20 ? 12 : 8)..<(ip == 20 ? 20 : 40)]))
                pseudo &+= 6 &+ UInt64(packet.count - ip)
                var copy = Array(packet)
                copy.withUnsafeMutableBytes { VirtioNetHeader.completeChecksum($0, start: ip, offset: 16) }
                let complete = copy.withUnsafeBytes {
                    TCPSegmentation.fold(
                        TCPSegmentation.sum(UnsafeRawBufferPointer(rebasing: $0[ip...]), initial: pseudo))
                }
                #expect(complete == 0xffff)
                let layout = VirtioNetHeader.tcpLayout(packet)!
                let n = TCPSegmentation.segmentCount(packet.count, layout, gsoSize: header.gsoSize)
                var out = [UInt8](repeating: 0, count: 2000)
                let split = (0..<n).map { i in
                    let length = out.withUnsafeMutableBytes {
                        TCPSegmentation.writeSegment(
                            packet, layout, gsoSize: header.gsoSize, index: i, count: n, into: $0)
                    }
                    return Array(out[0..<length])
                }
                written.append(.joined(packets: split, count: count))
            }
        }
        return written
    }

    @Test(arguments: [false, true])
    func roundTripIsExact(ipv6: Bool) {
        let input = segments(ipv6: ipv6, count: 10, lastPayload: 500)
        #expect(coalesce(input) == [.joined(packets: input, count: 10)])
    }

    @Test func runsBreakWhereGROWould() {
        let flow = segments(ipv6: false, count: 4)
        let other = segments(ipv6: false, count: 2, port: 0xd1)
        var gap = segments(ipv6: false, count: 3)
        gap.remove(at: 1)  // a lost segment: sequence numbers jump
        var syn = flow[0]
        syn[20 + 13] = 0x12  // SYN ACK never joins
        let udp: [UInt8] =
            [0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2] + [UInt8](repeating: 0, count: 8)
        let written = coalesce([syn] + flow[0..<2] + other + [udp] + flow[2...] + gap)
        #expect(
            written == [
                .single(0),
                .joined(packets: Array(flow[0..<2]), count: 2),  // PSH clear: flow[1] is not the last
                .joined(packets: other, count: 2),
                .single(5),
                .joined(packets: Array(flow[2...]), count: 2),
                .single(8), .single(9),
            ])
    }
}

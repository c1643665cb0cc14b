import Netstack
import Testing

/// What the kernel does with a packet written to a TUN device with a
/// virtio-net header: a TCP super-packet is cut into `gso_size` segments
/// (sequence numbers advanced, FIN and PSH only on the last, IPv4 ids
/// incremented, lengths fixed) and every partial checksum is completed.
/// The test double for `TUNLink`'s far end; the namespace tests use the
/// real kernel.
enum KernelSegmentation {
    static func segments(_ packet: [UInt8], mtu: Int) -> [[UInt8]] {
        let header = packet.withUnsafeBytes { VirtioNetHeader(forOutgoing: $0, mtu: mtu) }
        guard header.flags & VirtioNetHeader.needsChecksum != 0 else { return [packet] }
        guard header.gsoType != VirtioNetHeader.gsoNone else { return [completed(packet, header)] }
        let headers = header.headerLength
        let payload = packet.count - headers
        var out: [[UInt8]] = []
        var offset = 0
        var index = 0
        while offset < payload {
            let n = min(header.gsoSize, payload - offset)
            var s = Array(packet[0..<headers]) + packet[(headers + offset)..<(headers + offset + n)]
            let ip = header.checksumStart
            let isIPv6 = header.gsoType == VirtioNetHeader.gsoTCPv6
            if isIPv6 {
                put16(&s, 4, s.count - 40)
            } else {
                put16(&s, 2, s.count)
                put16(&s, 4, (get16(s, 4) + index) & 0xFFFF)
                put16(&s, 10, 0)
                var sum = InternetChecksum()
                s.withUnsafeBytes { sum.add(UnsafeRawBufferPointer(rebasing: $0[0..<ip])) }
                put16(&s, 10, Int(sum.value))
            }
            let sequence = (UInt32(get16(s, ip + 4)) << 16 | UInt32(get16(s, ip + 6))) &+ UInt32(offset)
            put16(&s, ip + 4, Int(sequence >> 16))
            put16(&s, ip + 6, Int(sequence & 0xFFFF))
            if offset + n < payload { s[ip + 13] &= ~(0x01 | 0x08) }  // FIN, PSH only on the last
            // The pseudo-header sum for this segment's length, then the whole sum.
            let tcpLength = s.count - ip
            var pseudo = InternetChecksum()
            s.withUnsafeBytes { b in
                pseudo.add(UnsafeRawBufferPointer(rebasing: isIPv6 ? b[8..<40] : b[12..<20]))
            }
            pseudo.add(UInt32(tcpLength))
            pseudo.add(UInt16(6))
            put16(&s, ip + 16, Int(pseudo.folded))
            out.append(completed(s, header))
            offset += n
            index += 1
        }
        return out
    }

    static func completed(_ packet: [UInt8], _ header: VirtioNetHeader) -> [UInt8] {
        var p = packet
        var plain = header
        plain.gsoType = VirtioNetHeader.gsoNone
        _ = p.withUnsafeMutableBytes { plain.prepareIncoming($0) }
        return p
    }

    static func get16(_ b: [UInt8], _ i: Int) -> Int { Int(b[i]) << 8 | Int(b[i + 1]) }
    static func put16(_ b: inout [UInt8], _ i: Int, _ v: Int) {
        b[i] = UInt8(truncatingIfNeeded: v >> 8)
        b[i + 1] = UInt8(truncatingIfNeeded: v)
    }
}

@Suite struct OffloadTests {
    @Test func virtioNetHeaderRoundTrips() {
        let h = VirtioNetHeader(
            flags: 1, gsoType: VirtioNetHeader.gsoTCPv6, headerLength: 72, gsoSize: 1428, checksumStart: 40,
            checksumOffset: 16)
        var bytes = [UInt8](repeating: 0, count: VirtioNetHeader.size)
        bytes.withUnsafeMutableBytes { h.write(into: $0) }
        #expect(bytes == [1, 4, 72, 0, 0x94, 0x05, 40, 0, 16, 0])
        #expect(bytes.withUnsafeBytes { VirtioNetHeader($0) } == h)
    }

    /// A TCP packet emitted with a partial checksum and completed as the
    /// kernel completes it equals the same packet emitted with a full one.
    @Test(arguments: [false, true]) func partialChecksumCompletesToTheFullOne(v6: Bool) {
        let source = v6 ? LinkSimulator.addressA6 : LinkSimulator.addressA4
        let destination = v6 ? LinkSimulator.addressB6 : LinkSimulator.addressB4
        let repr = TCPRepr(
            sourcePort: 40000, destinationPort: 22, control: .none, push: true, sequenceNumber: SeqNumber(123_456),
            acknowledgmentNumber: SeqNumber(99), windowLength: 512, options: TCPOptions(), payloadLength: 1001)
        func packet(partial: Bool) -> [UInt8] {
            var ip = IPRepr(source: source, destination: destination, protocolNumber: .tcp, payloadLength: 0)!
            ip.payloadLength = repr.bufferLength
            var bytes = [UInt8](repeating: 0, count: ip.bufferLength)
            bytes.withUnsafeMutableBytes { b in
                for i in (ip.headerLength + repr.headerLength)..<b.count { b[i] = UInt8(truncatingIfNeeded: i * 7) }
                repr.emit(
                    into: UnsafeMutableRawBufferPointer(rebasing: b[ip.headerLength...]), source: source,
                    destination: destination, partialChecksum: partial)
                ip.emit(into: b)
            }
            return bytes
        }
        let full = packet(partial: false)
        let partial = packet(partial: true)
        #expect(partial != full)
        let header = partial.withUnsafeBytes { VirtioNetHeader(forOutgoing: $0, mtu: 1500) }
        #expect(header.flags == VirtioNetHeader.needsChecksum && header.gsoType == VirtioNetHeader.gsoNone)
        #expect(header.checksumStart == (v6 ? 40 : 20) && header.checksumOffset == 16)
        #expect(KernelSegmentation.completed(partial, header) == full)
    }

    @Test func outgoingHeaderLeavesOtherProtocolsAlone() {
        var udp = [UInt8](repeating: 0, count: 2000)
        udp[0] = 0x45
        udp[9] = 17
        #expect(udp.withUnsafeBytes { VirtioNetHeader(forOutgoing: $0, mtu: 1500) } == VirtioNetHeader())
    }

    /// No byte sequence traps the header reader or the incoming fix-up; bad
    /// headers drop the packet (nil).
    @Test func incomingNeverTrapsOnArbitraryBytes() {
        var rng = SplitMix(seed: 77)
        var dropped = 0
        for _ in 0..<20_000 {
            let headerBytes = (0..<VirtioNetHeader.size).map { _ in UInt8.random(in: 0...255, using: &rng) }
            var packet = (0..<Int.random(in: 0..<200, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if Bool.random(using: &rng), !packet.isEmpty { packet[0] = Bool.random(using: &rng) ? 0x45 : 0x60 }
            var header = headerBytes.withUnsafeBytes { VirtioNetHeader($0) }
            if Bool.random(using: &rng) { header.gsoType = [0, 1, 4, 0x81][Int.random(in: 0..<4, using: &rng)] }
            if Bool.random(using: &rng) { header.checksumStart = Int.random(in: 0..<220, using: &rng) }
            if Bool.random(using: &rng) { header.checksumOffset = Int.random(in: 0..<40, using: &rng) }
            if packet.withUnsafeMutableBytes({ header.prepareIncoming($0) }) == nil { dropped += 1 }
            _ = packet.withUnsafeBytes { VirtioNetHeader(forOutgoing: $0, mtu: 1500) }
        }
        #expect(dropped > 0)
    }

    /// A's link offloads TCP: A sends super-packets, which the simulated
    /// kernel cuts and checksums; B, a plain stack, must see a byte-exact
    /// stream both ways, also with loss (retransmissions are super-packets
    /// too) and over IPv6.
    @Test(arguments: [(0.0, false), (0.0, true), (0.02, false)])
    func superPacketsThroughASegmentingLink(loss: Double, v6: Bool) throws {
        var sim = LinkSimulator(impairments: .init(loss: loss, delay: .milliseconds(2)), seed: 11)
        sim.a.offloadsTCP = true
        try bulkBothWays(&sim, bytes: 8 << 20, v6: v6)
        #expect(sim.superPacketsFromA > 0)
        #expect(sim.b.counters.badChecksum == 0 && sim.b.counters.malformed == 0)
    }
}

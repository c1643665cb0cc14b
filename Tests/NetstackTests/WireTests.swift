import Netstack
import Testing

/// Builds IP + transport packets with the wire layer's own emitters.
enum Build {
    static func tcp(_ ip: IPRepr, _ tcp: TCPRepr, payload: [UInt8] = []) -> [UInt8] {
        var tcp = tcp
        tcp.payloadLength = payload.count
        var ip = ip
        ip.payloadLength = tcp.bufferLength
        var packet = [UInt8](repeating: 0, count: ip.bufferLength)
        packet.withUnsafeMutableBytes { buf in
            let t = UnsafeMutableRawBufferPointer(rebasing: buf[ip.headerLength...])
            for (i, b) in payload.enumerated() { t[tcp.headerLength + i] = b }
            tcp.emit(into: t, source: ip.source, destination: ip.destination)
            ip.emit(into: buf)
        }
        return packet
    }

    static func udp(_ ip: IPRepr, _ udp: UDPRepr, payload: [UInt8]) -> [UInt8] {
        var udp = udp
        udp.payloadLength = payload.count
        var ip = ip
        ip.payloadLength = udp.bufferLength
        var packet = [UInt8](repeating: 0, count: ip.bufferLength)
        packet.withUnsafeMutableBytes { buf in
            let t = UnsafeMutableRawBufferPointer(rebasing: buf[ip.headerLength...])
            for (i, b) in payload.enumerated() { t[8 + i] = b }
            udp.emit(into: t, source: ip.source, destination: ip.destination)
            ip.emit(into: buf)
        }
        return packet
    }
}

let v4a = IPAddress("10.0.0.1")!
let v4b = IPAddress("10.0.0.2")!
let v6a = IPAddress("fd7a:115c:a1e0::1")!
let v6b = IPAddress("fd7a:115c:a1e0::2")!

@Suite struct WireTests {
    @Test func checksumRFC1071Example() {
        // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
        let bytes: [UInt8] = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]
        var sum = InternetChecksum()
        bytes.withUnsafeBytes { sum.add($0) }
        #expect(sum.folded == 0xddf2)
        #expect(sum.value == 0x220d)
    }

    @Test func checksumMatchesNaiveSumForAllLengths() {
        var rng = SplitMix(seed: 7)
        for n in 0..<200 {
            let bytes = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            var naive: UInt32 = 0
            var i = 0
            while i < n {
                naive += UInt32(bytes[i]) << 8 | (i + 1 < n ? UInt32(bytes[i + 1]) : 0)
                i += 2
            }
            while naive > 0xFFFF { naive = (naive & 0xFFFF) + (naive >> 16) }
            var sum = InternetChecksum()
            bytes.withUnsafeBytes { sum.add($0) }
            #expect(
                sum.folded == UInt16(naive) || (naive == 0 && sum.folded == 0xFFFF)
                    || (naive == 0xFFFF && sum.folded == 0))
        }
    }

    @Test func incrementalChecksumUpdate() {
        var header: [UInt8] = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00,
            0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ]
        var sum = InternetChecksum()
        header.withUnsafeBytes { sum.add($0) }
        let old = sum.value
        #expect(old == 0xb861)  // the well-known example header
        header[8] = 0x3f  // TTL 64 → 63
        var fresh = InternetChecksum()
        header.withUnsafeBytes { fresh.add($0) }
        #expect(InternetChecksum.update(checksum: old, old: 0x4011, new: 0x3f11) == fresh.value)
    }

    @Test func addressesParseAndPrint() {
        #expect(IPv4Address("192.168.0.1")?.description == "192.168.0.1")
        #expect(IPv4Address("256.0.0.1") == nil)
        #expect(IPv4Address("1.2.3") == nil)
        #expect(IPv6Address("fd7a:115c:a1e0::1")?.description == "fd7a:115c:a1e0::1")
        #expect(IPv6Address("::1") == IPv6Address(high: 0, low: 1))
        #expect(IPAddress("nonsense") == nil)
    }

    @Test func ipv4RoundTrip() throws {
        let repr = IPv4Repr(
            source: IPv4Address(10, 0, 0, 1), destination: IPv4Address(10, 0, 0, 2), protocolNumber: .udp,
            payloadLength: 4, ttl: 17, identification: 0x1234)
        var bytes = [UInt8](repeating: 0xAA, count: repr.bufferLength)
        bytes.withUnsafeMutableBytes { repr.emit(into: $0) }
        try bytes.withUnsafeBytes { buf in
            let p = try IPv4Packet(checking: buf)
            #expect(p.isChecksumValid)
            #expect(p.dontFragment)
            #expect(try IPv4Repr.parse(p) == repr)
            #expect(p.payload.count == 4)
        }
        bytes[12] ^= 1
        _ = bytes.withUnsafeBytes { buf in
            #expect(throws: WireError.badChecksum) { try IPv4Repr.parse(try IPv4Packet(checking: buf)) }
        }
    }

    @Test func ipv4FragmentsAreUnsupported() throws {
        let repr = IPv4Repr(
            source: IPv4Address(10, 0, 0, 1), destination: IPv4Address(10, 0, 0, 2), protocolNumber: .udp,
            payloadLength: 0)
        var bytes = [UInt8](repeating: 0, count: 20)
        bytes.withUnsafeMutableBytes { repr.emit(into: $0) }
        bytes[6] = 0x20  // MF
        bytes[10] = 0
        bytes[11] = 0
        var sum = InternetChecksum()
        bytes.withUnsafeBytes { sum.add($0) }
        bytes[10] = UInt8(sum.value >> 8)
        bytes[11] = UInt8(sum.value & 0xFF)
        _ = bytes.withUnsafeBytes { buf in
            #expect(throws: WireError.unsupported) { try IPv4Repr.parse(try IPv4Packet(checking: buf)) }
        }
    }

    @Test func ipv6SkipsExtensionHeaders() throws {
        // IPv6 header + Hop-by-Hop (8 bytes) + Destination Options (16 bytes) + UDP.
        let ipRepr = IPRepr(source: v6a, destination: v6b, protocolNumber: .udp, payloadLength: 0)!
        let plain = Build.udp(ipRepr, UDPRepr(sourcePort: 5, destinationPort: 6, payloadLength: 0), payload: [1, 2, 3])
        var withExt = Array(plain[0..<40])
        withExt[6] = IPProtocol.hopByHop.rawValue
        withExt += [IPProtocol.ipv6DestinationOptions.rawValue, 0, 1, 4, 0, 0, 0, 0]
        withExt += [IPProtocol.udp.rawValue, 1, 1, 12] + [UInt8](repeating: 0, count: 12)
        withExt += plain[40...]
        let payloadLength = withExt.count - 40
        withExt[4] = UInt8(payloadLength >> 8)
        withExt[5] = UInt8(payloadLength & 0xFF)
        try withExt.withUnsafeBytes { buf in
            let (ip, payload) = try IPRepr.parse(buf)
            #expect(ip.protocolNumber == .udp)
            #expect(ip.payloadLength == 11)
            let d = try UDPDatagram(checking: payload)
            let udp = try UDPRepr.parse(d, source: ip.source, destination: ip.destination)
            #expect(udp.destinationPort == 6)
            #expect(Array(d.payload) == [1, 2, 3])
        }
        // A fragment header is refused.
        var frag = withExt
        frag[6] = IPProtocol.ipv6Fragment.rawValue
        _ = frag.withUnsafeBytes { buf in
            #expect(throws: WireError.unsupported) { try IPRepr.parse(buf) }
        }
    }

    @Test func udpRoundTripBothFamilies() throws {
        for (s, d) in [(v4a, v4b), (v6a, v6b)] {
            let ip = IPRepr(source: s, destination: d, protocolNumber: .udp, payloadLength: 0)!
            let packet = Build.udp(
                ip, UDPRepr(sourcePort: 53, destinationPort: 5353, payloadLength: 0), payload: [9, 8, 7])
            try packet.withUnsafeBytes { buf in
                let (ipr, payload) = try IPRepr.parse(buf)
                let udp = try UDPRepr.parse(
                    try UDPDatagram(checking: payload), source: ipr.source, destination: ipr.destination)
                #expect(udp == UDPRepr(sourcePort: 53, destinationPort: 5353, payloadLength: 3))
            }
        }
    }

    @Test func tcpRoundTripWithAllOptions() throws {
        var opts = TCPOptions(
            maximumSegmentSize: 1220, windowScale: 7, sackPermitted: true,
            timestamp: TCPTimestamp(value: 0xDEAD_BEEF, echoReply: 42))
        let syn = TCPRepr(
            sourcePort: 40000, destinationPort: 22, control: .syn, sequenceNumber: SeqNumber(0xFFFF_FFF0),
            acknowledgmentNumber: nil, windowLength: 65535, options: opts)
        #expect(syn.headerLength == 40)
        opts = TCPOptions(
            sackBlocks: SACKBlocks([
                SACKBlock(left: SeqNumber(100), right: SeqNumber(200)),
                SACKBlock(left: SeqNumber(300), right: SeqNumber(400)),
                SACKBlock(left: SeqNumber(500), right: SeqNumber(600)),
                SACKBlock(left: SeqNumber(700), right: SeqNumber(800)),
            ]), timestamp: TCPTimestamp(value: 1, echoReply: 2))
        let data = TCPRepr(
            sourcePort: 22, destinationPort: 40000, push: true, sequenceNumber: SeqNumber(7),
            acknowledgmentNumber: SeqNumber(9), windowLength: 100, options: opts)
        for (s, d) in [(v4a, v4b), (v6a, v6b)] {
            for repr in [syn, data] {
                let ip = IPRepr(source: s, destination: d, protocolNumber: .tcp, payloadLength: 0)!
                let packet = Build.tcp(ip, repr, payload: Array("hello".utf8))
                try packet.withUnsafeBytes { buf in
                    let (ipr, payload) = try IPRepr.parse(buf)
                    let seg = try TCPSegment(checking: payload)
                    let parsed = try TCPRepr.parse(seg, source: ipr.source, destination: ipr.destination)
                    var expected = repr
                    expected.payloadLength = 5
                    if repr.options.sackBlocks.count == 4 {
                        // With timestamps only three blocks fit in 40 bytes (RFC 2018 §3).
                        expected.options.sackBlocks = SACKBlocks(repr.options.sackBlocks.prefix(3))
                    }
                    #expect(parsed == expected)
                    #expect(Array(seg.payload) == Array("hello".utf8))
                }
            }
        }
    }

    @Test func tcpRejectsBadFlagsAndOptions() throws {
        let ip = IPRepr(source: v4a, destination: v4b, protocolNumber: .tcp, payloadLength: 0)!
        let base = TCPRepr(
            sourcePort: 1, destinationPort: 2, control: .syn, sequenceNumber: SeqNumber(1),
            acknowledgmentNumber: nil, windowLength: 1, options: TCPOptions(maximumSegmentSize: 1000))
        var packet = Build.tcp(ip, base)
        func reparse(_ p: [UInt8]) throws {
            var p = p
            // fix the TCP checksum so only the intended defect remains
            p[36] = 0
            p[37] = 0
            var sum = InternetChecksum()
            sum.add(v4a.v4Value)
            sum.add(v4b.v4Value)
            sum.add(UInt32(p.count - 20))
            sum.add(UInt16(6))
            p[20...].withUnsafeBytes { sum.add($0) }
            p[36] = UInt8(sum.value >> 8)
            p[37] = UInt8(sum.value & 0xFF)
            try p.withUnsafeBytes { buf in
                let (ipr, payload) = try IPRepr.parse(buf)
                _ = try TCPRepr.parse(
                    try TCPSegment(checking: payload), source: ipr.source, destination: ipr.destination)
            }
        }
        try reparse(packet)
        packet[33] = 0x03  // SYN+FIN
        #expect(throws: WireError.malformed) { try reparse(packet) }
        packet[33] = 0x02
        packet[41] = 9  // MSS option with length 9 runs past the header
        #expect(throws: WireError.malformed) { try reparse(packet) }
        packet[41] = 3  // MSS with wrong length
        #expect(throws: WireError.malformed) { try reparse(packet) }
    }

    @Test func icmpEchoRoundTrip() throws {
        let echo = ICMPv4Repr.echoRequest(identifier: 7, sequence: 9, dataLength: 4)
        var bytes = [UInt8](repeating: 0, count: echo.bufferLength)
        bytes[8...] = [1, 2, 3, 4]
        bytes.withUnsafeMutableBytes { echo.emit(into: $0) }
        let parsedEcho = try bytes.withUnsafeBytes { buf in try ICMPv4Repr.parse(try ICMPv4Packet(checking: buf)) }
        #expect(parsedEcho == echo)
        let a = IPv6Address("fd00::1")!
        let b = IPv6Address("fd00::2")!
        for repr in [
            ICMPv6Repr.echoReply(identifier: 1, sequence: 2, dataLength: 40),
            ICMPv6Repr.packetTooBig(mtu: 1280, dataLength: 40),
        ] {
            var bytes = [UInt8](repeating: 0x60, count: repr.bufferLength)
            bytes.withUnsafeMutableBytes { repr.emit(into: $0, source: a, destination: b) }
            let parsed = try bytes.withUnsafeBytes { buf in
                try ICMPv6Repr.parse(try ICMPv6Packet(checking: buf), source: a, destination: b)
            }
            #expect(parsed == repr)
            _ = bytes.withUnsafeBytes { buf in
                #expect(throws: WireError.badChecksum) {
                    try ICMPv6Repr.parse(
                        try ICMPv6Packet(checking: buf), source: a, destination: IPv6Address("fd00::3")!)
                }
            }
        }
    }

    /// No byte sequence may trap: random buffers of every small length, and
    /// valid packets with random bytes flipped, truncated or extended.
    @Test func parsersNeverTrap() {
        var rng = SplitMix(seed: 0xC0FFEE)
        var seeds: [[UInt8]] = []
        for (s, d) in [(v4a, v4b), (v6a, v6b)] {
            let ip = IPRepr(source: s, destination: d, protocolNumber: .tcp, payloadLength: 0)!
            seeds.append(
                Build.tcp(
                    ip,
                    TCPRepr(
                        sourcePort: 1, destinationPort: 2, control: .syn, sequenceNumber: SeqNumber(1),
                        acknowledgmentNumber: SeqNumber(5), windowLength: 1,
                        options: TCPOptions(
                            maximumSegmentSize: 1, windowScale: 3, sackPermitted: true,
                            sackBlocks: SACKBlocks([SACKBlock(left: SeqNumber(1), right: SeqNumber(2))]),
                            timestamp: TCPTimestamp(value: 1, echoReply: 1))), payload: [1, 2, 3]))
            let uip = IPRepr(source: s, destination: d, protocolNumber: .udp, payloadLength: 0)!
            seeds.append(Build.udp(uip, UDPRepr(sourcePort: 1, destinationPort: 2, payloadLength: 0), payload: [4, 5]))
        }
        var parsed = 0
        for iteration in 0..<100_000 {
            var bytes: [UInt8]
            if iteration % 2 == 0 {
                let n = Int.random(in: 0...120, using: &rng)
                bytes = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
                if n > 0 { bytes[0] = iteration % 4 == 0 ? 0x45 : 0x60 }
            } else {
                bytes = seeds[iteration % seeds.count]
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    let i = Int.random(in: 0..<bytes.count, using: &rng)
                    bytes[i] = UInt8.random(in: 0...255, using: &rng)
                }
                if Bool.random(using: &rng) { bytes.removeLast(Int.random(in: 0..<bytes.count, using: &rng)) }
            }
            if PacketDissector.dissect(bytes) { parsed += 1 }
        }
        #expect(parsed > 0)
    }
}

/// Runs every parser the stack has over one packet; true if all layers parsed.
enum PacketDissector {
    static func dissect(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { buf in
            // Parse and also touch every accessor of every view.
            _ = try? TCPOptions.parse(buf)
            if let s = try? TCPSegment(checking: buf) { touch(s) }
            guard let (ip, payload) = try? IPRepr.parse(buf) else { return false }
            switch ip.protocolNumber {
            case .tcp:
                guard let s = try? TCPSegment(checking: payload) else { return false }
                touch(s)
                return (try? TCPRepr.parse(s, source: ip.source, destination: ip.destination)) != nil
            case .udp:
                guard let d = try? UDPDatagram(checking: payload) else { return false }
                _ = (d.sourcePort, d.payload.count)
                return (try? UDPRepr.parse(d, source: ip.source, destination: ip.destination)) != nil
            case .icmp:
                guard let p = try? ICMPv4Packet(checking: payload) else { return false }
                return (try? ICMPv4Repr.parse(p)) != nil
            case .icmpv6:
                guard let p = try? ICMPv6Packet(checking: payload), case .v6(let s) = ip.source,
                    case .v6(let d) = ip.destination
                else { return false }
                return (try? ICMPv6Repr.parse(p, source: s, destination: d)) != nil
            default:
                return false
            }
        }
    }

    static func touch(_ s: TCPSegment) {
        _ = (s.sourcePort, s.destinationPort, s.sequenceNumber, s.acknowledgmentNumber, s.flags, s.windowLength)
        _ = (s.options.count, s.payload.count, s.urgentPointer, s.checksum)
    }
}

/// A small deterministic generator so every test run sees the same bytes.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension IPAddress {
    var v4Value: UInt32 {
        if case .v4(let a) = self { return a.value }
        return 0
    }
}

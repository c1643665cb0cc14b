import Netstack
import Testing

/// Two `NetStack`s joined by `MemoryLink`s, on the real clock.
func makeStackPair(forwarderB: NetStack.Forwarder? = nil) -> (NetStack, NetStack, [MemoryLink]) {
    let linkA = MemoryLink(mtu: 1500)
    let linkB = MemoryLink(mtu: 1500)
    let a = NetStack(.init(addresses: [LinkSimulator.addressA4, LinkSimulator.addressA6]), link: linkA)
    let b = NetStack(
        .init(addresses: [LinkSimulator.addressB4, LinkSimulator.addressB6]), link: linkB, forwarder: forwarderB)
    linkA.deliver(to: b)
    linkB.deliver(to: a)
    return (a, b, [linkA, linkB])
}

@Suite struct NetStackAsyncTests {
    /// With nothing scheduled the timer task parks instead of waking every
    /// 5 ms (an idle agent costs no CPU); the first timer unparks it, and
    /// once the last connection is gone it parks again. With only a far
    /// deadline (TIME_WAIT) it sleeps until then.
    @Test func idleStackTimerSleeps() async throws {
        let (a, b, links) = makeStackPair()
        defer {
            a.stop()
            b.stop()
            _ = links
        }
        let listener = try b.listen(port: 9)
        try await Task.sleep(for: .milliseconds(300))
        #expect(a.timerPasses <= 2 && b.timerPasses <= 2, "idle passes: \(a.timerPasses), \(b.timerPasses)")

        let c = try await a.dial(SocketAddress(LinkSimulator.addressB4, 9))
        let s = try await listener.accept()
        try await c.write(Array(repeating: 7, count: 100_000))
        var got = 0
        while got < 100_000 { got += try await s.read().count }
        #expect(got == 100_000)
        c.abort()
        s.abort()
        // The connections are gone (RST, no TIME_WAIT): both park again.
        try await Task.sleep(for: .milliseconds(100))
        let (pa, pb) = (a.timerPasses, b.timerPasses)
        try await Task.sleep(for: .milliseconds(300))
        #expect(a.timerPasses - pa <= 2 && b.timerPasses - pb <= 2, "passes after close: \(a.timerPasses - pa), \(b.timerPasses - pb)")

        // A graceful close leaves one end in TIME_WAIT for a minute: one
        // far deadline, which the timer sleeps until instead of ticking.
        let c2 = try await a.dial(SocketAddress(LinkSimulator.addressB4, 9))
        let s2 = try await listener.accept()
        try await c2.write([1, 2, 3])
        _ = try await s2.read()
        c2.shutdownWrite()
        _ = try await s2.read()  // the end of c2's stream
        s2.shutdownWrite()
        _ = try await c2.read()
        c2.close()
        s2.close()
        try await Task.sleep(for: .milliseconds(300))
        let (qa, qb) = (a.timerPasses, b.timerPasses)
        try await Task.sleep(for: .milliseconds(300))
        #expect(a.timerPasses - qa <= 3 && b.timerPasses - qb <= 3, "passes in TIME_WAIT: \(a.timerPasses - qa), \(b.timerPasses - qb)")
    }

    @Test func echoServerBothFamilies() async throws {
        let (a, b, links) = makeStackPair()
        defer {
            a.stop()
            b.stop()
            _ = links
        }
        let listener = try b.listen(port: 7)
        let server = Task {
            for _ in 0..<2 {
                let s = try await listener.accept()
                while true {
                    let d = try await s.read()
                    if d.isEmpty { break }
                    try await s.write(d)
                }
                s.close()
            }
        }
        for addr in [LinkSimulator.addressB4, LinkSimulator.addressB6] {
            let c = try await a.dial(SocketAddress(addr, 7), noDelay: true)
            var sent: [UInt8] = []
            var got: [UInt8] = []
            for i in 0..<50 {
                let msg = Array("line \(i) over \(addr)\n".utf8)
                sent += msg
                try await c.write(msg)
            }
            let big = (0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
            sent += big
            async let writes: Void = {
                try await c.write(big); c.shutdownWrite()
            }()
            while true {
                let d = try await c.read()
                if d.isEmpty { break }
                got += d
            }
            try await writes
            #expect(got == sent)
            c.close()
        }
        try await server.value
    }

    @Test func dialErrorsAreClear() async throws {
        let (a, b, links) = makeStackPair()
        defer {
            a.stop()
            b.stop()
            _ = links
        }
        await #expect(throws: NetstackError(.connectionRefused)) {
            _ = try await a.dial(SocketAddress(LinkSimulator.addressB4, 9))
        }
        // No local IPv4 address on a stack that only has IPv6: unreachable at once.
        let v6only = NetStack(.init(addresses: [LinkSimulator.addressA6]), link: MemoryLink())
        defer { v6only.stop() }
        await #expect(throws: NetstackError(.unreachable)) {
            _ = try await v6only.dial(SocketAddress(LinkSimulator.addressB4, 9))
        }
        #expect(throws: NetstackError(.addressInUse)) {
            let l = try b.listen(port: 80)
            defer { l.close() }
            _ = try b.listen(port: 80)
        }
    }

    @Test func resetReachesTheReader() async throws {
        let (a, b, links) = makeStackPair()
        defer {
            a.stop()
            b.stop()
            _ = links
        }
        let listener = try b.listen(port: 8)
        let c = try await a.dial(SocketAddress(LinkSimulator.addressB4, 8))
        let s = try await listener.accept()
        s.abort()
        await #expect(throws: NetstackError(.connectionReset)) {
            _ = try await c.read()
        }
    }

    @Test func udpEchoAndForwarder() async throws {
        let forwardedTCP = Locked<[UInt16]>([])
        let forwardedUDP = Locked<[UDPMessage]>([])
        let (a, b, links) = makeStackPair(
            forwarderB: NetStack.Forwarder(
                tcp: { stream in
                    forwardedTCP.withLock { $0.append(stream.localAddress.port) }
                    Task {
                        try await stream.write(Array("forwarded".utf8))
                        stream.close()
                    }
                },
                udp: { m in forwardedUDP.withLock { $0.append(m) } }))
        defer {
            a.stop()
            b.stop()
            _ = links
        }
        let server = try b.bindUDP(port: 53)
        let client = try a.bindUDP(port: 5353)
        try client.send(Array("query".utf8), to: SocketAddress(LinkSimulator.addressB6, 53))
        let q = try await server.receive()
        #expect(q.payload == Array("query".utf8))
        try server.send(Array("answer".utf8), to: q.source)
        let r = try await client.receive()
        #expect(r.payload == Array("answer".utf8))
        #expect(r.source == SocketAddress(LinkSimulator.addressB6, 53))

        // Unlistened TCP and UDP ports go to the forwarder.
        let c = try await a.dial(SocketAddress(LinkSimulator.addressB4, 3000))
        var got: [UInt8] = []
        while true {
            let d = try await c.read()
            if d.isEmpty { break }
            got += d
        }
        #expect(got == Array("forwarded".utf8))
        #expect(forwardedTCP.withLock { $0 } == [3000])
        try client.send([1, 2, 3], to: SocketAddress(LinkSimulator.addressB4, 4000))
        for _ in 0..<100 where forwardedUDP.withLock({ $0.isEmpty }) { try await Task.sleep(for: .milliseconds(10)) }
        let m = try #require(forwardedUDP.withLock { $0.first })
        #expect(m.destination == SocketAddress(LinkSimulator.addressB4, 4000))
        #expect(m.payload == [1, 2, 3])
    }
}

@Suite struct ICMPAndUDPCoreTests {
    @Test func echoRequestsAreAnsweredBothFamilies() throws {
        var sim = LinkSimulator()
        // IPv4
        let echo4 = ICMPv4Repr.echoRequest(identifier: 0x1234, sequence: 1, dataLength: 4)
        var icmp = [UInt8](repeating: 0, count: echo4.bufferLength)
        icmp[8...] = [9, 8, 7, 6]
        icmp.withUnsafeMutableBytes { echo4.emit(into: $0) }
        var ip = IPRepr(
            source: LinkSimulator.addressB4, destination: LinkSimulator.addressA4, protocolNumber: .icmp,
            payloadLength: icmp.count)!
        var packet = [UInt8](repeating: 0, count: ip.bufferLength)
        packet.withUnsafeMutableBytes { buf in
            ip.emit(into: buf)
            for (i, b) in icmp.enumerated() { buf[ip.headerLength + i] = b }
        }
        packet.withUnsafeBytes { sim.a.input($0, now: sim.now) }
        let reply = try #require(sim.a.outbound.last)
        try reply.withUnsafeBytes { buf in
            let (rip, payload) = try IPRepr.parse(buf)
            #expect(rip.destination == LinkSimulator.addressB4)
            let r = try ICMPv4Repr.parse(try ICMPv4Packet(checking: payload))
            #expect(r == .echoReply(identifier: 0x1234, sequence: 1, dataLength: 4))
            #expect(Array(try ICMPv4Packet(checking: payload).data) == [9, 8, 7, 6])
        }
        // IPv6
        guard case .v6(let s6) = LinkSimulator.addressB6, case .v6(let d6) = LinkSimulator.addressA6 else { return }
        let echo6 = ICMPv6Repr.echoRequest(identifier: 7, sequence: 2, dataLength: 0)
        icmp = [UInt8](repeating: 0, count: echo6.bufferLength)
        icmp.withUnsafeMutableBytes { echo6.emit(into: $0, source: s6, destination: d6) }
        ip = IPRepr(
            source: LinkSimulator.addressB6, destination: LinkSimulator.addressA6, protocolNumber: .icmpv6,
            payloadLength: icmp.count)!
        packet = [UInt8](repeating: 0, count: ip.bufferLength)
        packet.withUnsafeMutableBytes { buf in
            ip.emit(into: buf)
            for (i, b) in icmp.enumerated() { buf[ip.headerLength + i] = b }
        }
        packet.withUnsafeBytes { sim.a.input($0, now: sim.now) }
        let reply6 = try #require(sim.a.outbound.last)
        try reply6.withUnsafeBytes { buf in
            let (_, payload) = try IPRepr.parse(buf)
            let r = try ICMPv6Repr.parse(try ICMPv6Packet(checking: payload), source: d6, destination: s6)
            #expect(r == .echoReply(identifier: 7, sequence: 2, dataLength: 0))
        }
    }

    @Test func unboundUDPPortGetsPortUnreachable() throws {
        var sim = LinkSimulator()
        try sim.a.sendUDP(fromPort: 1000, to: SocketAddress(LinkSimulator.addressB4, 2000), payload: [1])
        sim.step()
        sim.step()
        #expect(sim.b.counters.packetsOut == 1)
        let before = sim.a.counters.packetsIn
        sim.advance(.milliseconds(10))
        #expect(sim.a.counters.packetsIn == before + 1)
        #expect(sim.a.counters.malformed == 0 && sim.a.counters.badChecksum == 0)
    }

    @Test func packetTooBigLowersTheMSS() throws {
        var sim = LinkSimulator()
        let (client, _) = try connectPair(&sim)
        let c = sim.a.connection(client)!
        // A "fragmentation needed" quoting one of A's segments, with next-hop MTU 1000.
        var quoted = [UInt8](repeating: 0, count: 28)
        let qip = IPv4Repr(
            source: IPv4Address("10.0.0.1")!, destination: IPv4Address("10.0.0.2")!, protocolNumber: .tcp,
            payloadLength: 8)
        quoted.withUnsafeMutableBytes { qip.emit(into: $0) }
        quoted[20] = UInt8(c.local.port >> 8)
        quoted[21] = UInt8(c.local.port & 0xFF)
        quoted[22] = UInt8(c.remote.port >> 8)
        quoted[23] = UInt8(c.remote.port & 0xFF)
        let err = ICMPv4Repr.destinationUnreachable(code: 4, nextHopMTU: 1000, dataLength: quoted.count)
        var icmp = [UInt8](repeating: 0, count: err.bufferLength)
        icmp[8...] = quoted[...]
        icmp.withUnsafeMutableBytes { err.emit(into: $0) }
        let ip = IPRepr(
            source: LinkSimulator.addressB4, destination: LinkSimulator.addressA4, protocolNumber: .icmp,
            payloadLength: icmp.count)!
        var packet = [UInt8](repeating: 0, count: ip.bufferLength)
        packet.withUnsafeMutableBytes { buf in
            ip.emit(into: buf)
            for (i, b) in icmp.enumerated() { buf[ip.headerLength + i] = b }
        }
        packet.withUnsafeBytes { sim.a.input($0, now: sim.now) }
        // Every data packet A sends now fits in 1000 bytes.
        _ = [UInt8](repeating: 1, count: 20_000).withUnsafeBytes { sim.a.write(client, $0, now: sim.now) }
        #expect(!sim.a.outbound.isEmpty)
        #expect(sim.a.outbound.allSatisfy { $0.count <= 1000 })
    }
}

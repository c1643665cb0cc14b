import Netstack
import Testing

/// Builds a segment from B to A on `connection` (as A sees it) and feeds it to A.
func inject(
    _ sim: inout LinkSimulator, intoA: Bool = true, on c: TCPConnection, control: TCPControl,
    seq: SeqNumber, ack: SeqNumber? = nil, payload: [UInt8] = []
) {
    let ip = IPRepr(
        source: c.remote.address, destination: c.local.address, protocolNumber: .tcp, payloadLength: 0)!
    let repr = TCPRepr(
        sourcePort: c.remote.port, destinationPort: c.local.port, control: control, sequenceNumber: seq,
        acknowledgmentNumber: ack, windowLength: 1000)
    let packet = Build.tcp(ip, repr, payload: payload)
    packet.withUnsafeBytes { buf in
        if intoA { sim.a.input(buf, now: sim.now) } else { sim.b.input(buf, now: sim.now) }
    }
}

@Suite struct TCPScenarioTests {
    @Test func simultaneousOpen() throws {
        var sim = LinkSimulator()
        let a = try sim.a.connect(to: SocketAddress(LinkSimulator.addressB4, 6000), from: 5000, now: sim.now)
        let b = try sim.b.connect(to: SocketAddress(LinkSimulator.addressA4, 5000), from: 6000, now: sim.now)
        let ok = sim.run(for: .seconds(10)) { s in
            s.a.connection(a)?.isEstablished == true && s.b.connection(b)?.isEstablished == true
        }
        #expect(ok)
        // And data flows both ways afterwards.
        var ea = BulkEndpoint(tag: 1, peerTag: 2, total: 100_000)
        var eb = BulkEndpoint(tag: 2, peerTag: 1, total: 100_000)
        let done = sim.run(for: .seconds(30)) { s in
            ea.pump(&s.a, a, now: s.now)
            eb.pump(&s.b, b, now: s.now)
            return ea.sawEnd && eb.sawEnd
        }
        #expect(done && ea.mismatches == 0 && eb.mismatches == 0)
    }

    @Test func simultaneousClose() throws {
        var sim = LinkSimulator(impairments: .init(delay: .milliseconds(20)))
        let (client, server) = try connectPair(&sim)
        sim.a.shutdownWrite(client, now: sim.now)
        sim.b.shutdownWrite(server, now: sim.now)
        var sawClosing = false
        let ok = sim.run(for: .seconds(5)) { s in
            if s.a.connection(client)?.state == .closing || s.b.connection(server)?.state == .closing {
                sawClosing = true
            }
            return s.a.connection(client)?.state == .timeWait && s.b.connection(server)?.state == .timeWait
        }
        #expect(ok && sawClosing)
        #expect(sim.a.connection(client)?.isReadAtEnd == true)
        sim.a.close(client, now: sim.now)
        sim.b.close(server, now: sim.now)
        sim.advance(.seconds(61))
        #expect(sim.a.connectionCount == 0 && sim.b.connectionCount == 0)
    }

    @Test func halfCloseKeepsTheOtherDirectionOpen() throws {
        var sim = LinkSimulator()
        let (client, server) = try connectPair(&sim)
        sim.a.shutdownWrite(client, now: sim.now)
        sim.advance(.milliseconds(100))
        #expect(sim.b.connection(server)?.isReadAtEnd == true)
        #expect(sim.b.connection(server)?.state == .closeWait)
        var eb = BulkEndpoint(tag: 2, peerTag: 1, total: 500_000)
        var ea = BulkEndpoint(tag: 1, peerTag: 2, total: 0)
        ea.shutDown = true
        let ok = sim.run(for: .seconds(10)) { s in
            eb.pump(&s.b, server, now: s.now)
            ea.pump(&s.a, client, now: s.now)
            return ea.received == 500_000 && ea.sawEnd
        }
        #expect(ok && ea.mismatches == 0)
    }

    @Test func resetExactlyAtRcvNxtResets() throws {
        var sim = LinkSimulator()
        let (client, _) = try connectPair(&sim)
        let c = sim.a.connection(client)!
        inject(&sim, on: c, control: .rst, seq: c.receiveNext)
        #expect(sim.a.connection(client)?.state == .closed)
        #expect(sim.a.connection(client)?.error == .connectionReset)
    }

    /// RFC 5961 §3.2: an in-window RST that is not exactly RCV.NXT earns a
    /// challenge ACK and leaves the connection alone; the peer's honest
    /// answer to that ACK is what a real reset would look like.
    @Test func resetInWindowGetsChallengeAck() throws {
        var sim = LinkSimulator()
        let (client, _) = try connectPair(&sim)
        let c = sim.a.connection(client)!
        let before = sim.a.outbound.count
        inject(&sim, on: c, control: .rst, seq: c.receiveNext + 1000)
        #expect(sim.a.connection(client)?.state == .established)
        #expect(sim.a.connection(client)?.stats.challengeAcks == 1)
        #expect(sim.a.outbound.count == before + 1)
    }

    @Test func resetOutOfWindowIsIgnored() throws {
        var sim = LinkSimulator()
        let (client, _) = try connectPair(&sim)
        let c = sim.a.connection(client)!
        let before = sim.a.outbound.count
        inject(&sim, on: c, control: .rst, seq: c.receiveNext + 100_000_000)
        inject(&sim, on: c, control: .rst, seq: c.receiveNext - 10)
        #expect(sim.a.connection(client)?.state == .established)
        #expect(sim.a.connection(client)?.stats.challengeAcks == 0)
        #expect(sim.a.outbound.count == before)
    }

    @Test func synInEstablishedGetsChallengeAckAndRateLimit() throws {
        var sim = LinkSimulator()
        let (client, _) = try connectPair(&sim)
        let c = sim.a.connection(client)!
        for i in 0..<50 { inject(&sim, on: c, control: .syn, seq: c.receiveNext + i) }
        let conn = sim.a.connection(client)!
        #expect(conn.state == .established)
        #expect(conn.stats.challengeAcks == 10)  // RFC 5961 §7 rate limit
    }

    @Test func dataWithAckBeyondSndNxtIsChallenged() throws {
        var sim = LinkSimulator()
        let (client, _) = try connectPair(&sim)
        let c = sim.a.connection(client)!
        inject(&sim, on: c, control: .none, seq: c.receiveNext, ack: c.sendNext + 5000, payload: [1, 2, 3])
        let conn = sim.a.connection(client)!
        #expect(conn.readableBytes == 0)  // RFC 5961 §5.2: dropped
        #expect(conn.stats.challengeAcks == 1)
    }

    @Test func connectionRefused() throws {
        var sim = LinkSimulator()
        let id = try sim.a.connect(to: SocketAddress(LinkSimulator.addressB4, 81), now: sim.now)
        let ok = sim.run(for: .seconds(5)) { s in s.a.connection(id)?.isClosed == true }
        #expect(ok)
        #expect(sim.a.connection(id)?.error == .connectionRefused)
    }

    @Test func synTimesOutIntoABlackHole() throws {
        var sim = LinkSimulator()
        sim.blackholeAtoB = true
        let id = try sim.a.connect(to: SocketAddress(LinkSimulator.addressB4, 80), now: sim.now)
        let start = sim.now
        let ok = sim.run(for: .seconds(300)) { s in s.a.connection(id)?.isClosed == true }
        #expect(ok)
        #expect(sim.a.connection(id)?.error == .timedOut)
        // 1 + 2 + 4 + … + 64 s of backoff (RFC 6298 §5.5).
        #expect(sim.now - start >= .seconds(120))
    }

    @Test func dataRetransmissionsGiveUp() throws {
        var sim = LinkSimulator()
        let (client, _) = try connectPair(&sim)
        sim.blackholeAtoB = true
        _ = [UInt8](repeating: 7, count: 1000).withUnsafeBytes { sim.a.write(client, $0, now: sim.now) }
        let ok = sim.run(for: .seconds(3600)) { s in s.a.connection(client)?.isClosed == true }
        #expect(ok)
        #expect(sim.a.connection(client)?.error == .timedOut)
    }

    @Test func keepaliveDetectsDeadPeer() throws {
        var o = TCPConnection.Options()
        o.keepalive = true
        o.keepaliveIdle = .seconds(10)
        o.keepaliveInterval = .seconds(2)
        o.keepaliveProbes = 3
        var sim = LinkSimulator(optionsA: o)
        let (client, _) = try connectPair(&sim)
        // Probes are answered while the peer lives.
        sim.advance(.seconds(60))
        #expect(sim.a.connection(client)?.state == .established)
        sim.blackholeBtoA = true
        let ok = sim.run(for: .seconds(60)) { s in s.a.connection(client)?.isClosed == true }
        #expect(ok)
        #expect(sim.a.connection(client)?.error == .timedOut)
    }

    /// The receiver stops reading for a minute of fake time; the sender
    /// probes the zero window and resumes when the window reopens.
    @Test(arguments: [0.0, 0.02])
    func zeroWindowHeldForAMinute(loss: Double) throws {
        var sim = LinkSimulator(impairments: .init(loss: loss, delay: .milliseconds(5)), seed: 3)
        let (client, server) = try connectPair(&sim)
        let total = 2 << 20
        var ea = BulkEndpoint(tag: 1, peerTag: 2, total: total)
        // Only A pumps: B's application does not read.
        sim.advance(.seconds(1))
        _ = sim.run(for: .seconds(60)) { s in
            ea.pump(&s.a, client, now: s.now)
            return false
        }
        let receiver = sim.b.connection(server)!
        let sender = sim.a.connection(client)!
        // Full, up to the window-scale granularity (RFC 7323 §2.3).
        #expect(receiver.readableBytes > receiver.receiveBufferLimit - 512)
        #expect(sender.isEstablished && !sender.isClosed)
        #expect(sender.unacknowledgedBytes > 0)
        #expect(sender.stats.zeroWindowProbes > 0)
        #expect(sender.stats.zeroWindowProbes < 40)  // backed off, not hammering
        var eb = BulkEndpoint(tag: 2, peerTag: 1, total: 0)
        eb.shutDown = true
        let ok = sim.run(for: .seconds(120)) { s in
            ea.pump(&s.a, client, now: s.now)
            eb.pump(&s.b, server, now: s.now)
            return eb.received == total && eb.sawEnd
        }
        #expect(ok, "received \(eb.received) of \(total)")
        #expect(eb.mismatches == 0)
    }

    /// RFC 1337: TIME_WAIT ignores RST; RFC 6191: a new SYN with a higher
    /// sequence number reopens the same four-tuple.
    @Test func timeWaitIgnoresResetAndIsReusedBySYN() throws {
        var sim = LinkSimulator()
        try sim.b.listen(port: 80)
        let first = try sim.a.connect(to: SocketAddress(LinkSimulator.addressB4, 80), from: 40000, now: sim.now)
        var server: StackCore.ConnectionID?
        _ = sim.run(for: .seconds(5)) { s in
            if server == nil { server = s.b.accept(port: 80) }
            return server != nil && s.a.connection(first)?.isEstablished == true
        }
        let srv = try #require(server)
        // The server closes first and so holds TIME_WAIT.
        sim.b.close(srv, now: sim.now)
        _ = sim.run(for: .seconds(5)) { s in s.a.connection(first)?.isReadAtEnd == true }
        sim.a.close(first, now: sim.now)
        let tw = sim.run(for: .seconds(5)) { s in s.b.connection(srv)?.state == .timeWait && s.a.connectionCount == 0 }
        #expect(tw)
        let c = sim.b.connection(srv)!
        inject(&sim, intoA: false, on: c, control: .rst, seq: c.receiveNext)
        #expect(sim.b.connection(srv)?.state == .timeWait)

        sim.advance(.seconds(2))
        let second = try sim.a.connect(to: SocketAddress(LinkSimulator.addressB4, 80), from: 40000, now: sim.now)
        var server2: StackCore.ConnectionID?
        let start = sim.now
        let ok = sim.run(for: .seconds(5)) { s in
            if server2 == nil { server2 = s.b.accept(port: 80) }
            return server2 != nil && s.a.connection(second)?.isEstablished == true
        }
        #expect(ok)
        #expect(sim.now - start < .milliseconds(100))  // reused at once, no SYN retransmission
        #expect(sim.b.connection(srv) == nil)
    }

    @Test func tenThousandConnections() throws {
        var sim = LinkSimulator(impairments: .init(delay: .milliseconds(1)))
        try sim.b.listen(port: 80, backlog: 20_000)
        let n = 10_000
        var clients: [StackCore.ConnectionID] = []
        for _ in 0..<n {
            clients.append(try sim.a.connect(to: SocketAddress(LinkSimulator.addressB4, 80), now: sim.now))
        }
        var servers: [StackCore.ConnectionID] = []
        let accepted = sim.run(for: .seconds(30)) { s in
            while let id = s.b.accept(port: 80) { servers.append(id) }
            return servers.count == n
        }
        #expect(accepted)
        #expect(sim.a.connectionCount == n && sim.b.connectionCount == n)
        // Each client sends a request, each server echoes it and closes.
        var buffer = [UInt8](repeating: 0, count: 64)
        for (i, id) in clients.enumerated() {
            let msg = Array("request \(i)".utf8)
            _ = msg.withUnsafeBytes { sim.a.write(id, $0, now: sim.now) }
        }
        var echoed = Set<StackCore.ConnectionID>()
        var answered = 0
        let ok = sim.run(for: .seconds(60)) { s in
            for id in servers where !echoed.contains(id) {
                let n = buffer.withUnsafeMutableBytes { s.b.read(id, into: $0, now: s.now) }
                if n > 0 {
                    _ = buffer.withUnsafeBytes {
                        s.b.write(id, UnsafeRawBufferPointer(rebasing: $0[0..<n]), now: s.now)
                    }
                    s.b.close(id, now: s.now)
                    echoed.insert(id)
                }
            }
            for id in clients {
                guard let c = s.a.connection(id), c.isReadAtEnd || c.readableBytes > 0 else { continue }
                if c.isReadAtEnd && c.readableBytes == 0 { continue }
                let n = buffer.withUnsafeMutableBytes { s.a.read(id, into: $0, now: s.now) }
                if n > 0 { answered += 1 }
            }
            return answered == n
        }
        #expect(ok, "answered \(answered) of \(n)")
        for id in clients { sim.a.close(id, now: sim.now) }
        sim.advance(.seconds(70))
        #expect(sim.a.connectionCount == 0 && sim.b.connectionCount == 0)
    }

    @Test func forwarderReceivesUnlistenedConnections() throws {
        var sim = LinkSimulator()
        sim.b.forwardUnlistened = true
        let id = try sim.a.connect(to: SocketAddress(LinkSimulator.addressB6, 12345), now: sim.now)
        var forwarded: StackCore.ConnectionID?
        let ok = sim.run(for: .seconds(5)) { s in
            if forwarded == nil { forwarded = s.b.acceptForwarded() }
            return forwarded != nil && s.a.connection(id)?.isEstablished == true
        }
        #expect(ok)
        #expect(sim.b.connection(forwarded!)?.local.port == 12345)
    }
}

import CryptoPrimitives
import Testing
import WireGuardCore

/// Two interfaces in memory under a fake clock: handshake, data, key
/// confirmation, roaming and the checks on received data.
@Suite struct SessionTests {
    static let initiation: UInt8 = 1
    static let response: UInt8 = 2
    static let cookie: UInt8 = 3
    static let transport: UInt8 = 4

    @Test(arguments: [false, true])
    func handshakeThenDataBothWays(withPSK: Bool) {
        var pair = Pair(psk: withPSK ? SecureRandom.bytes32() : nil)
        #expect(pair.sendFromA([1, 2, 3]) == .queued(peer: pair.peerOfA))
        pair.deliver()
        #expect(pair.deliveredToB == [TestPackets.ipv4(from: "10.0.0.1", to: "10.0.0.2", payload: [1, 2, 3])])
        guard case .send = pair.sendFromB([4, 5]) else {
            Issue.record("B cannot send after confirmation")
            return
        }
        pair.deliver()
        #expect(pair.deliveredToA == [TestPackets.ipv4(from: "10.0.0.2", to: "10.0.0.1", payload: [4, 5])])
        #expect(pair.count(fromA: true, type: Self.initiation) == 1)
        #expect(pair.count(fromA: false, type: Self.response) == 1)
        #expect(pair.a.drops.total == 0 && pair.b.drops.total == 0)
        #expect(pair.a.statistics(of: pair.peerOfA)!.lastHandshakeUnixNanoseconds != nil)
    }

    /// Bytes are counted once per datagram whichever path sealed it: staged
    /// before the handshake, sealed by `encapsulate`, or a keepalive; and the
    /// receiver counts the same bytes.
    @Test func statisticsCountEveryDatagramOnce() {
        var pair = Pair()
        pair.sendFromA([1])  // staged until the handshake completes
        pair.deliver()
        for size in [0, 1, 15, 100, 1379] {
            pair.sendFromA([UInt8](repeating: 1, count: size))
            pair.sendFromB([UInt8](repeating: 2, count: size))
        }
        pair.deliver()
        pair.advance(by: .seconds(11))  // passive keepalives
        pair.deliver()
        let sentByA = pair.log.filter { $0.fromA }.reduce(0) { $0 + UInt64($1.size) }
        let sentByB = pair.log.filter { !$0.fromA }.reduce(0) { $0 + UInt64($1.size) }
        let a = pair.a.statistics(of: pair.peerOfA)!
        let b = pair.b.statistics(of: pair.peerOfB)!
        #expect(sentByA > 0 && sentByB > 0)
        #expect(a.sentBytes == sentByA)
        #expect(b.sentBytes == sentByB)
        #expect(b.receivedBytes == sentByA)
        #expect(a.receivedBytes == sentByB)
    }

    @Test func ipv6InsideTheTunnel() {
        var pair = Pair()
        pair.sendFromA()
        pair.deliver()
        let packet = TestPackets.ipv6(from: "fd00::2", to: "fd00::1", payload: Array(0..<100))
        _ = Pair.encapsulate(&pair.b, packet, now: pair.now, fromA: false, into: &pair.inFlight)
        pair.deliver()
        #expect(pair.deliveredToA.last == packet)
    }

    @Test func mismatchedPresharedKeysFail() {
        var pair = Pair(psk: SecureRandom.bytes32())
        pair.b.setPresharedKey(pair.peerOfB, SecureRandom.bytes32())
        pair.sendFromA()
        pair.deliver()
        #expect(pair.deliveredToB.isEmpty)
        #expect(pair.a.drops[.handshakeFailed] == 1)
    }

    /// §5.4.6: padded to 16, the length restored from the IP header.
    @Test func paddingToSixteenAndTrimming() {
        var pair = Pair()
        pair.sendFromA()
        pair.deliver()
        for size in [0, 1, 15, 16, 17, 100, 1379] {
            let result = pair.sendFromA([UInt8](repeating: 7, count: size))
            guard case .send(_, _, let range) = result else {
                Issue.record("not sent")
                continue
            }
            let inner = 20 + size
            #expect(range.count == 16 + ((inner + 15) & ~15) + 16, "inner \(inner)")
            pair.deliver()
            #expect(pair.deliveredToB.last?.count == inner)
        }
    }

    /// Key confirmation (§5.4.7 end, §6.1): the responder sends nothing on
    /// a new keypair until the initiator's first packet arrives on it.
    @Test func responderWaitsForKeyConfirmation() {
        var pair = Pair()
        pair.sendFromA([9])
        // Initiation reaches B; B's response is lost.
        pair.deliver(maxRounds: 1)
        #expect(pair.inFlight.map { $0.1.bytes.first } == [Self.response])
        pair.inFlight.removeAll()
        // B has a keypair but may not use it yet: its packet waits.
        #expect(pair.sendFromB([1]) == .queued(peer: pair.peerOfB))
        #expect(pair.inFlight.allSatisfy { $0.1.bytes.first != Self.transport })
        // A retransmits after REKEY_TIMEOUT (+jitter); this time all arrives.
        pair.advance(by: .seconds(6))
        #expect(pair.deliveredToB.count == 1)
        #expect(pair.deliveredToA == [TestPackets.ipv4(from: "10.0.0.2", to: "10.0.0.1", payload: [1])])
        // B's packet left only after A's first transport message reached B.
        let firstFromA = pair.log.firstIndex { $0.fromA && $0.type == Self.transport }!
        let firstFromB = pair.log.firstIndex { !$0.fromA && $0.type == Self.transport }!
        #expect(firstFromA < firstFromB)
    }

    /// Roaming (§2.1): the endpoint follows the last authenticated packet;
    /// junk and cookie replies from elsewhere do not move it.
    @Test func roamingFollowsAuthenticatedPackets() {
        var pair = Pair()
        pair.sendFromA()
        pair.deliver()
        #expect(pair.a.endpoint(of: pair.peerOfA) == pair.endpointB)
        let moved = Endpoint("198.51.100.7:40000")!
        pair.endpointB = moved
        pair.sendFromB()
        pair.deliver()
        #expect(pair.a.endpoint(of: pair.peerOfA) == moved)
        // Unauthenticated bytes from a third address change nothing.
        var junk = [UInt8](repeating: 0, count: 64)
        junk[0] = 4
        _ = junk.withUnsafeMutableBytes {
            pair.a.decapsulate($0, datagram: 0..<64, source: Endpoint("203.0.113.9:1")!, now: pair.now)
        }
        var fakeCookie = CookieReply(
            receiverIndex: 0, nonce: SecureRandom.bytes(24), encryptedCookie: SecureRandom.bytes(32)
        ).bytes
        _ = fakeCookie.withUnsafeMutableBytes {
            pair.a.decapsulate($0, datagram: 0..<64, source: Endpoint("203.0.113.9:2")!, now: pair.now)
        }
        #expect(pair.a.endpoint(of: pair.peerOfA) == moved)
        // And A's replies go to the new address.
        guard case .send(_, let endpoint, _) = pair.sendFromA() else {
            Issue.record("A cannot send")
            return
        }
        #expect(endpoint == moved)
    }

    @Test func replayedTransportIsDropped() {
        var pair = Pair()
        pair.sendFromA()
        pair.deliver()
        pair.sendFromA([42])
        let captured = pair.inFlight.last!.1.bytes
        pair.deliver()
        var again = captured
        let result = again.withUnsafeMutableBytes {
            pair.b.decapsulate($0, datagram: 0..<$0.count, source: pair.endpointA, now: pair.now)
        }
        #expect(result == .dropped(.replay))
        #expect(pair.b.drops[.replay] == 1)
    }

    @Test func sourceOutsideAllowedIPsIsDropped() {
        var pair = Pair()
        pair.sendFromA()
        pair.deliver()
        let spoofed = TestPackets.ipv4(from: "10.0.0.99", to: "10.0.0.1", payload: [1])
        // B routes 10.0.0.1 to A, but A does not allow 10.0.0.99 from B.
        _ = Pair.encapsulate(&pair.b, spoofed, now: pair.now, fromA: false, into: &pair.inFlight)
        pair.deliver()
        #expect(pair.deliveredToA.isEmpty)
        #expect(pair.a.drops[.disallowedSource] == 1)
    }

    @Test func noRouteIsCounted() {
        var pair = Pair()
        let packet = TestPackets.ipv4(from: "10.0.0.1", to: "172.16.0.1", payload: [])
        let result = Pair.encapsulate(&pair.a, packet, now: pair.now, fromA: true, into: &pair.inFlight)
        #expect(result == .dropped(.noRoute))
        #expect(pair.a.drops[.noRoute] == 1)
    }

    /// §5.1: a replayed initiation, or one too soon after the last, is refused.
    @Test func initiationReplayAndFlood() throws {
        var pair = Pair()
        pair.sendFromA()
        pair.collect()
        let initiation = pair.inFlight.first { $0.1.bytes.first == Self.initiation }!.1.bytes
        pair.deliver()
        var replay = initiation
        let r1 = replay.withUnsafeMutableBytes {
            pair.b.decapsulate($0, datagram: 0..<148, source: pair.endpointA, now: pair.now + .seconds(1))
        }
        #expect(r1 == .dropped(.replayedTimestamp))

        // A second instance with A's key and a later clock: newer timestamp,
        // but within 20 ms of the last accepted initiation.
        let twin = try pairTwin(of: pair, clockAhead: .seconds(2))
        var twinInterface = twin
        _ = Pair.encapsulate(
            &twinInterface, TestPackets.ipv4(from: "10.0.0.1", to: "10.0.0.2", payload: []), now: pair.now,
            fromA: true, into: &pair.inFlight)
        var fresh = pair.inFlight.removeLast().1.bytes
        let r2 = fresh.withUnsafeMutableBytes {
            pair.b.decapsulate($0, datagram: 0..<148, source: pair.endpointA, now: pair.now + .milliseconds(10))
        }
        #expect(r2 == .dropped(.initiationFlood))
        let r3 = fresh.withUnsafeMutableBytes {
            pair.b.decapsulate($0, datagram: 0..<148, source: pair.endpointA, now: pair.now + .milliseconds(30))
        }
        #expect(r3 == .consumed)
    }

    /// Our side restarts with the same key (a new Interface, later wall
    /// clock) and the peer accepts its new handshake.
    @Test func restartWithSameKeyRehandshakes() throws {
        var pair = Pair()
        pair.sendFromA([1])
        pair.deliver()
        pair.now += .seconds(30)
        pair.a = try pairTwin(of: pair, clockAhead: .seconds(30))
        pair.sendFromA([2])
        pair.deliver()
        #expect(pair.deliveredToB.count == 2)
        pair.sendFromB([3])
        pair.deliver()
        #expect(pair.deliveredToA.count == 1)
    }

    /// A fresh Interface holding A's private key (a restart).
    private func pairTwin(of pair: Pair, clockAhead: Duration) throws -> Interface {
        let key = pair.a.duplicatePrivateKey()
        var twin = Interface(privateKey: key, wallClockOffset: pair.a.wallClockOffset + clockAhead.nanoseconds)
        let peer = try twin.addPeer(publicKey: pair.b.publicKey)
        twin.setEndpoint(peer, pair.endpointB)
        twin.addAllowedIP(peer, IPPrefix("10.0.0.2/32")!)
        return twin
    }
}

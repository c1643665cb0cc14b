import CryptoPrimitives
import Testing
import WireGuardCore

/// The timer table of §6 against a fake clock.
@Suite struct TimerTests {
    static let initiation: UInt8 = 1
    static let transport: UInt8 = 4

    /// §6.5: data received and nothing to send back → a keepalive after
    /// KEEPALIVE_TIMEOUT, exactly once.
    @Test func keepaliveAfterTenSeconds() {
        var pair = Pair()
        pair.sendFromA()
        pair.deliver()
        // The first data already armed B's timer: let that keepalive go.
        pair.advance(by: .seconds(30))
        let sentAt = pair.now
        pair.sendFromA([5])
        pair.deliver()
        pair.advance(by: .milliseconds(9_999))
        #expect(pair.count(fromA: false, type: Self.transport, after: sentAt) == 0)
        pair.advance(by: .milliseconds(1))
        let keepalives = pair.log.filter { !$0.fromA && $0.type == Self.transport && $0.time >= sentAt }
        #expect(keepalives.count == 1)
        #expect(keepalives.first?.size == 32, "an empty transport message")
        #expect(keepalives.first?.time == sentAt + .seconds(10))
        pair.advance(by: .seconds(60))
        #expect(pair.count(fromA: false, type: Self.transport, after: sentAt) == 1)
    }

    /// §6.2: the initiator rekeys when it sends on a keypair 120 s old, and
    /// data keeps flowing on the new keypair.
    @Test func rekeyAfterOneHundredTwentySeconds() {
        var pair = Pair()
        pair.sendFromA()
        pair.deliver()
        let birth = pair.now
        var rekeyedAt: Instant?
        for step in 1...30 {
            pair.advance(to: birth + .seconds(5 * step))
            let before = pair.count(fromA: true, type: Self.initiation)
            pair.sendFromA([UInt8(step)])
            pair.sendFromB([UInt8(step)])
            pair.deliver()
            if rekeyedAt == nil, pair.count(fromA: true, type: Self.initiation) > before { rekeyedAt = pair.now }
        }
        #expect(rekeyedAt == birth + .seconds(120))
        #expect(pair.count(fromA: true, type: Self.initiation) == 2, "one initial handshake, one rekey")
        #expect(pair.count(fromA: false, type: Self.initiation) == 0, "the responder never rekeys on age")
        #expect(pair.deliveredToB.count == 31 && pair.deliveredToA.count == 30)
        #expect(pair.a.drops.total == 0 && pair.b.drops.total == 0)
    }

    /// §6.1: after REJECT_AFTER_TIME a keypair neither sends nor receives.
    @Test func refusedAfterOneHundredEightySeconds() {
        var pair = Pair()
        pair.sendFromA()
        pair.deliver()
        let birth = pair.now
        // Nothing more arrives anywhere: the link goes down both ways.
        pair.advance(to: birth + .seconds(179), dropFromA: true, dropFromB: true)
        let result = pair.sendFromA([1])
        guard case .send = result else {
            Issue.record("at 179 s the keypair still sends, got \(result)")
            return
        }
        let late = pair.inFlight.last { $0.1.bytes.first == Self.transport }!.1.bytes
        pair.inFlight.removeAll()
        pair.now = birth + .seconds(180)
        var copy = late
        let r = copy.withUnsafeMutableBytes {
            pair.b.decapsulate($0, datagram: 0..<$0.count, source: pair.endpointA, now: pair.now)
        }
        #expect(r == .dropped(.expiredKeypair))
        #expect(pair.sendFromA([2]) == .queued(peer: pair.peerOfA))
    }

    /// §6.4: retransmission every REKEY_TIMEOUT plus up to 333 ms of
    /// jitter, giving up after REKEY_ATTEMPT_TIME (the kernel's count:
    /// MAX_TIMER_HANDSHAKES retries after the first, then one more expiry).
    @Test func retransmitWithJitterThenGiveUp() {
        var pair = Pair()
        pair.sendFromA()
        pair.advance(to: .zero + .seconds(300), dropFromA: true)
        let times = pair.times(fromA: true, type: Self.initiation)
        #expect(times.count == Protocol.maxTimerHandshakes + 2)
        let gaps = zip(times.dropFirst(), times).map { $0 - $1 }
        #expect(gaps.allSatisfy { $0 >= .seconds(5) && $0 < .milliseconds(5_334) })
        #expect(Set(gaps).count > 1, "jittered, not lock-step")
        #expect(times.last! < .zero + .seconds(110))
        #expect(times.last! >= .zero + Protocol.rekeyAttemptTime)
        // The waiting packet was dropped; a new packet starts afresh.
        #expect(pair.a.drops[.stagedQueueFull] == 1)
        pair.sendFromA()
        pair.deliver()
        #expect(pair.deliveredToB.count == 1)
    }

    /// §6.5 persistent keepalive: an idle peer sends one every interval.
    @Test func persistentKeepalive() {
        var pair = Pair()
        pair.sendFromA()
        pair.deliver()
        pair.advance(by: .seconds(30))  // B's keepalive for the first data goes by
        let start = pair.now
        pair.a.setPersistentKeepalive(pair.peerOfA, seconds: 25, now: pair.now)
        pair.advance(by: .seconds(76))  // (a rekey at 120 s of age would add one more)
        let keepalives = pair.log.filter { $0.fromA && $0.type == Self.transport && $0.time >= start }
        // One when turned on, then at 25, 50, 75.
        #expect(keepalives.map { $0.time - start } == [.zero, .seconds(25), .seconds(50), .seconds(75)])
    }

    /// Data sent with no reply for KEEPALIVE + REKEY_TIMEOUT → new handshake.
    @Test func newHandshakeWhenRepliesStop() {
        var pair = Pair()
        pair.sendFromA()
        pair.deliver()
        pair.advance(by: .seconds(30))  // B's keepalive answers the first data
        let t = pair.now
        pair.sendFromA()
        pair.advance(by: .seconds(16), dropFromB: true)
        let initiations = pair.times(fromA: true, type: Self.initiation).filter { $0 > t }
        #expect(initiations.count == 1)
        #expect(initiations.first.map { $0 - t >= .seconds(15) && $0 - t < .milliseconds(15_334) } == true)
    }

    /// Keys are erased 3 × REJECT_AFTER_TIME after the last handshake.
    @Test func keyMaterialZeroedAfterFiveHundredFortySeconds() {
        var pair = Pair()
        pair.sendFromA()
        pair.deliver()
        let start = pair.now
        pair.advance(to: start + .seconds(539), dropFromA: true, dropFromB: true)
        #expect(pair.a.hasSession(pair.peerOfA))
        pair.advance(to: start + .seconds(541), dropFromA: true, dropFromB: true)
        #expect(!pair.a.hasSession(pair.peerOfA))
    }
}

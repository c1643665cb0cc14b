import CryptoPrimitives
import Testing
import WireGuardCore

/// Hostile input (DESIGN.md: "no trap on any byte sequence"): random and
/// mutated datagrams into `decapsulate`, random packets into `encapsulate`.
/// A trap would end the test process; the counters must account for every
/// datagram that was not delivered.
@Suite struct FuzzTests {
    /// A small deterministic generator so a failure can be replayed.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9e37_79b9_7f4a_7c15
            var z = state
            z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
            z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
            return z ^ (z >> 31)
        }
    }

    /// Valid datagrams of every type from a live pair, to mutate.
    private func seeds() -> (Pair, [[UInt8]]) {
        var pair = Pair()
        pair.b.reportHandshakeBacklog(Implementation.maxQueuedIncomingHandshakes, now: pair.now)
        pair.sendFromA([1, 2, 3])
        pair.deliver()  // cookie reply, then the retransmission completes it
        pair.b.reportHandshakeBacklog(Implementation.maxQueuedIncomingHandshakes, now: pair.now + .seconds(5))
        pair.advance(by: .seconds(6))
        pair.sendFromA(Array(repeating: 9, count: 200))
        pair.sendFromB(Array(repeating: 8, count: 33))
        pair.collect()
        let seeds = pair.inFlight.map(\.1.bytes)
        // Types present: initiation (1), response (2), cookie (3), transport (4).
        return (pair, seeds)
    }

    @Test func randomAndMutatedDatagramsNeverTrap() {
        var rng = SplitMix(state: 0x5eed_1234)
        var (pair, seedPackets) = seeds()
        // Also keep copies of the handshake messages that went over the link.
        var recorder = Pair()
        recorder.sendFromA([7])
        recorder.collect()
        seedPackets += recorder.inFlight.map(\.1.bytes)
        recorder.b.reportHandshakeBacklog(Implementation.maxQueuedIncomingHandshakes, now: .zero)
        recorder.deliver(maxRounds: 1)
        seedPackets += recorder.inFlight.map(\.1.bytes)
        #expect(Set(seedPackets.compactMap(\.first)) == [1, 3, 4])

        var buffer = [UInt8](repeating: 0, count: 2048)
        let iterations = 300_000
        var delivered = 0
        let before = pair.a.drops.total + pair.b.drops.total
        for i in 0..<iterations {
            let datagram: [UInt8]
            switch i % 4 {
            case 0:
                // Pure noise of any length up to 300.
                let n = Int.random(in: 0...300, using: &rng)
                datagram = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            case 1:
                // Noise with a valid type word and an exact size.
                let type = UInt8.random(in: 1...4, using: &rng)
                let n = [0, 148, 92, 64, Int.random(in: 32...200, using: &rng)][Int(type)]
                var d = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
                d[0] = type
                d[1] = 0
                d[2] = 0
                d[3] = 0
                datagram = d
            default:
                // A real datagram with a few bytes flipped, truncated or extended.
                var d = seedPackets[Int.random(in: 0..<seedPackets.count, using: &rng)]
                switch Int.random(in: 0..<4, using: &rng) {
                case 0:
                    for _ in 0..<Int.random(in: 1...4, using: &rng) {
                        d[Int.random(in: 0..<d.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
                    }
                case 1: d.removeLast(Int.random(in: 1...min(d.count, 40), using: &rng))
                case 2:
                    d += (0..<Int.random(in: 1...40, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                default:
                    // Only the counter changes: authenticates nowhere.
                    if d[0] == 4 { d[8] ^= 1 } else { d[d.count - 1] ^= 0x80 }
                }
                datagram = d
            }
            buffer.replaceSubrange(0..<datagram.count, with: datagram)
            let toA = i & 1 == 0
            let range = 0..<datagram.count
            let result = buffer.withUnsafeMutableBytes { raw in
                toA
                    ? pair.a.decapsulate(raw, datagram: range, source: pair.endpointB, now: pair.now)
                    : pair.b.decapsulate(raw, datagram: range, source: pair.endpointA, now: pair.now)
            }
            if case .tunnel(_, let packet) = result {
                delivered += 1
                #expect(packet.lowerBound >= 16 && packet.upperBound <= datagram.count)
            }
            _ = pair.a.takeOutgoing()
            _ = pair.b.takeOutgoing()
        }
        let dropped = pair.a.drops.total + pair.b.drops.total - before
        #expect(delivered == 0, "no mutated or random datagram decrypted")
        // Every datagram is dropped and counted, except the few that were
        // valid handshake messages consumed again (none: replays) — so
        // nearly all were counted.
        #expect(dropped >= UInt64(iterations) - 10)
        // The session survived the storm.
        pair.sendFromA([0x42])
        pair.deliver()
        #expect(pair.deliveredToB.last == TestPackets.ipv4(from: "10.0.0.1", to: "10.0.0.2", payload: [0x42]))
    }

    /// Random bytes as outgoing "IP packets" never trap either.
    @Test func randomOutgoingPacketsNeverTrap() {
        var rng = SplitMix(state: 99)
        var pair = Pair()
        pair.sendFromA()
        pair.deliver()
        var buffer = [UInt8](repeating: 0, count: 2048)
        for _ in 0..<50_000 {
            let n = Int.random(in: 0...1500, using: &rng)
            for j in 0..<n { buffer[16 + j] = UInt8.random(in: 0...255, using: &rng) }
            if n > 0, Bool.random(using: &rng) { buffer[16] = 0x45 }
            let head = Int.random(in: 0...20, using: &rng)
            let tail = Int.random(in: 0...40, using: &rng)
            let slice = max(0, 16 - head)..<min(buffer.count, 16 + n + tail)
            _ = buffer.withUnsafeMutableBytes { raw in
                pair.a.encapsulate(
                    UnsafeMutableRawBufferPointer(rebasing: raw[slice]),
                    packet: (16 - slice.lowerBound)..<(16 - slice.lowerBound + n),
                    now: pair.now)
            }
            _ = pair.a.takeOutgoing()
        }
    }
}

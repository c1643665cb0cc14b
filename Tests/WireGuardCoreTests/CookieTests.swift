import CryptoPrimitives
import Testing
import WireGuardCore

/// Under load (§5.3): mac2, cookie replies and the per-source rate.
@Suite struct CookieTests {
    @Test func underLoadCookieExchange() {
        var pair = Pair()
        pair.b.reportHandshakeBacklog(Implementation.maxQueuedIncomingHandshakes, now: pair.now)
        #expect(pair.b.isUnderLoad(now: pair.now))
        pair.sendFromA([1])
        pair.deliver()
        // First initiation had no mac2: B answered with a cookie only.
        #expect(pair.b.drops[.cookieReplySent] == 1)
        #expect(pair.count(fromA: false, type: 3) == 1)
        #expect(pair.deliveredToB.isEmpty)
        #expect(pair.a.drops.total == 0, "A accepted the cookie")
        // Still under load at the retransmission, which now carries mac2.
        pair.b.reportHandshakeBacklog(Implementation.maxQueuedIncomingHandshakes, now: pair.now + .seconds(5))
        pair.advance(by: .seconds(6))
        #expect(pair.deliveredToB.count == 1)
        #expect(pair.b.drops[.cookieReplySent] == 1)
        // Sticky for one second, then not under load.
        #expect(!pair.b.isUnderLoad(now: pair.now + .seconds(2)))
    }

    /// A cookie reply answering nothing we sent, or forged, is refused.
    @Test func unsolicitedCookieReplyIsRefused() {
        var pair = Pair()
        pair.sendFromA()
        pair.deliver()
        var forged = CookieReply(
            receiverIndex: 1, nonce: SecureRandom.bytes(24), encryptedCookie: SecureRandom.bytes(32)
        ).bytes
        let r = forged.withUnsafeMutableBytes {
            pair.a.decapsulate($0, datagram: 0..<64, source: pair.endpointB, now: pair.now)
        }
        #expect(r == .dropped(.invalidCookieReply))
    }

    /// Under load, one source with valid mac1 *and* mac2 is held to the
    /// per-source rate; an established session keeps carrying data.
    @Test func floodFromOneSourceIsRateLimitedAndDataFlows() throws {
        var pair = Pair()
        pair.sendFromA()
        pair.deliver()
        // An attacker who knows B's public key floods initiations from one
        // address: with a cookie (it can receive there) and without.
        let attackerKey = X25519.PrivateKey()
        var attacker = Interface(privateKey: attackerKey, wallClockOffset: 0)
        let victim = try attacker.addPeer(publicKey: pair.b.publicKey)
        let attackerSource = Endpoint("203.0.113.66:4444")!
        attacker.setEndpoint(victim, pair.endpointB)
        attacker.addAllowedIP(victim, IPPrefix("0.0.0.0/0")!)
        var consumed = 0
        let base = pair.now
        for i in 0..<400 {
            let t = base + .milliseconds(i)  // 1000 initiations per second
            pair.b.reportHandshakeBacklog(Implementation.maxQueuedIncomingHandshakes, now: t)
            _ = Pair.encapsulate(
                &attacker, TestPackets.ipv4(from: "10.9.9.9", to: "10.0.0.2", payload: []), now: t + .seconds(10 * i),
                fromA: true, into: &pair.inFlight)
            for (_, d) in pair.inFlight {
                var bytes = d.bytes
                let r = bytes.withUnsafeMutableBytes {
                    pair.b.decapsulate($0, datagram: 0..<$0.count, source: attackerSource, now: t)
                }
                if r == .consumed { consumed += 1 }
                for reply in pair.b.takeOutgoing() where reply.bytes.first == 3 {
                    var cookie = reply.bytes
                    _ = cookie.withUnsafeMutableBytes {
                        attacker.decapsulate($0, datagram: 0..<64, source: pair.endpointB, now: t + .seconds(10 * i))
                    }
                }
            }
            pair.inFlight.removeAll()
            _ = attacker.takeOutgoing()
            // Meanwhile the real peer's data keeps arriving.
            if i % 50 == 0 {
                pair.now = t
                pair.sendFromA([UInt8(i % 256)])
                pair.deliver()
            }
        }
        // The attacker is not a configured peer, so nothing it sends is
        // consumed; what matters is that most of its messages were stopped
        // before any Diffie-Hellman work by the cookie and the rate limit.
        #expect(consumed == 0)
        #expect(pair.b.drops[.cookieReplySent] >= 1)
        #expect(pair.b.drops[.rateLimited] > 300)
        #expect(pair.b.drops[.unknownPeer] <= 5 + 8 + 1, "burst plus 20/s over 0.4 s")
        #expect(pair.deliveredToB.count == 1 + 8)
    }
}

import CryptoPrimitives
import Mesh
import Testing

/// disco payloads byte for byte as tailscale's disco.go lays them out, the
/// sealed framing, and hostile input.
@Suite struct DiscoMessageTests {
    static let txid = Disco.TxID(Array(1...12))!

    @Test func pingBytes() throws {
        let nodeKey = try X25519.PublicKey([UInt8](repeating: 0xAB, count: 32))
        let withKey = Disco.encode(.ping(Disco.Ping(txID: Self.txid, nodeKey: nodeKey)))
        #expect(withKey == [0x01, 0x00] + Array(1...12) + [UInt8](repeating: 0xAB, count: 32))
        let old = Disco.encode(.ping(Disco.Ping(txID: Self.txid, nodeKey: nil)))
        #expect(old == [0x01, 0x00] + Array(1...12))
        #expect(try Disco.parse(withKey) == .ping(Disco.Ping(txID: Self.txid, nodeKey: nodeKey)))
        #expect(try Disco.parse(old) == .ping(Disco.Ping(txID: Self.txid, nodeKey: nil)))
        let padded = Disco.encode(.ping(Disco.Ping(txID: Self.txid, nodeKey: nodeKey, padding: 100)))
        #expect(padded.count == 2 + 12 + 32 + 100)
        #expect(try Disco.parse(padded) == .ping(Disco.Ping(txID: Self.txid, nodeKey: nodeKey, padding: 100)))
    }

    @Test func pongBytesIPv4AndIPv6() throws {
        let v4 = Disco.encode(.pong(Disco.Pong(txID: Self.txid, source: Endpoint("192.0.2.7:41641")!)))
        #expect(
            v4 == [0x02, 0x00] + Array(1...12) + [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 7] + [
                0xa2, 0xa9,
            ])  // 41641
        let v6Source = Endpoint("[2001:db8::5]:443")!
        let v6 = Disco.encode(.pong(Disco.Pong(txID: Self.txid, source: v6Source)))
        #expect(v6.count == 2 + 12 + 18)
        #expect(Array(v6[14..<16]) == [0x20, 0x01] && Array(v6[30..<32]) == [0x01, 0xbb])
        #expect(try Disco.parse(v6) == .pong(Disco.Pong(txID: Self.txid, source: v6Source)))
        #expect(throws: Disco.ParseError.short) { try Disco.parse(Array(v6.dropLast())) }
    }

    @Test func callMeMaybeBytes() throws {
        let endpoints = [Endpoint("10.0.0.1:1")!, Endpoint("[fd00::1]:65535")!]
        let bytes = Disco.encode(.callMeMaybe(Disco.CallMeMaybe(endpoints: endpoints)))
        #expect(bytes.count == 2 + 36)
        #expect(Array(bytes[0..<2]) == [0x03, 0x00])
        #expect(try Disco.parse(bytes) == .callMeMaybe(Disco.CallMeMaybe(endpoints: endpoints)))
        // A ragged list reads as empty, as Tailscale reads it.
        #expect(try Disco.parse(bytes + [1]) == .callMeMaybe(Disco.CallMeMaybe(endpoints: [])))
    }

    @Test func unknownAndShort() {
        #expect(throws: Disco.ParseError.unknownType(0x09)) { try Disco.parse([0x09, 0x00, 1, 2, 3]) }
        #expect(throws: Disco.ParseError.short) { try Disco.parse([0x01]) }
        #expect(throws: Disco.ParseError.short) { try Disco.parse([0x01, 0x00] + Array(1...11)) }
    }

    @Test func sealedDatagramRoundTrip() throws {
        let alice = X25519.PrivateKey()
        let bob = X25519.PrivateKey()
        let aliceToBob = try NaClBox.SharedKey(privateKey: alice, peer: bob.publicKey)
        let bobFromAlice = try NaClBox.SharedKey(privateKey: bob, peer: alice.publicKey)
        let message = Disco.Message.pong(Disco.Pong(txID: .random(), source: Endpoint("198.51.100.9:3478")!))
        let datagram = Disco.seal(message, sender: alice.publicKey, key: aliceToBob)

        #expect(Array(datagram[0..<6]) == Array("TS💬".utf8))
        #expect(datagram.count == Disco.headerLength + 16 + 32)
        #expect(datagram.withUnsafeBytes { Disco.looksLikeDisco($0) })
        #expect(datagram.withUnsafeBytes { Disco.senderKey($0) } == alice.publicKey)
        #expect(!datagram.withUnsafeBytes { STUN.looksLikeSTUN($0) })
        #expect(try datagram.withUnsafeBytes { try Disco.open($0, key: bobFromAlice) } == message)

        // Another node's key, or any altered byte after the header, fails.
        let eve = try NaClBox.SharedKey(privateKey: X25519.PrivateKey(), peer: alice.publicKey)
        #expect(throws: Disco.ParseError.cannotOpen) { try datagram.withUnsafeBytes { try Disco.open($0, key: eve) } }
        for index in [Disco.headerLength - 1, Disco.headerLength, datagram.count - 1] {
            var bad = datagram
            bad[index] ^= 1
            #expect(throws: Disco.ParseError.cannotOpen) {
                try bad.withUnsafeBytes { try Disco.open($0, key: bobFromAlice) }
            }
        }
    }

    @Test func hostileDatagramsNeverTrap() throws {
        var rng = SystemRandomNumberGenerator()
        let key = try NaClBox.SharedKey(privateKey: X25519.PrivateKey(), peer: X25519.PrivateKey().publicKey)
        for _ in 0..<50_000 {
            var bytes = (0..<Int.random(in: 0...140, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if Bool.random(using: &rng), bytes.count >= 6 { bytes.replaceSubrange(0..<6, with: Disco.magic) }
            _ = bytes.withUnsafeBytes { Disco.senderKey($0) }
            #expect(throws: Disco.ParseError.self) { try bytes.withUnsafeBytes { try Disco.open($0, key: key) } }
            _ = try? Disco.parse(bytes)
        }
    }
}

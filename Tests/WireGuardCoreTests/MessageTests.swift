import CryptoPrimitives
import Testing
import WireGuardCore

@Suite struct MessageTests {
    @Test func sizesAreExact() {
        #expect(HandshakeInitiation.size == 148)
        #expect(HandshakeResponse.size == 92)
        #expect(CookieReply.size == 64)
        #expect(TransportHeader.size == 16)
        for (type, size) in [(1, 148), (2, 92), (3, 64)] {
            for n in [size - 1, size, size + 1] {
                var bytes = [UInt8](repeating: 0, count: n)
                bytes[0] = UInt8(type)
                let kind = bytes.withUnsafeBytes { MessageType.classify($0) }
                #expect((kind != nil) == (n == size), "type \(type) with \(n) bytes")
            }
        }
        for n in [0, 4, 31, 32, 1500] {
            var bytes = [UInt8](repeating: 0, count: n)
            if n > 0 { bytes[0] = 4 }
            let kind = bytes.withUnsafeBytes { MessageType.classify($0) }
            #expect((kind == .transportData) == (n >= 32), "transport with \(n) bytes")
        }
    }

    @Test func reservedBytesMustBeZero() {
        var bytes = [UInt8](repeating: 0, count: 148)
        bytes[0] = 1
        bytes[2] = 1
        #expect(bytes.withUnsafeBytes { MessageType.classify($0) } == nil)
    }

    @Test func roundTrips() {
        let i = HandshakeInitiation(
            senderIndex: 0x0102_0304, ephemeral: SecureRandom.bytes32(), encryptedStatic: SecureRandom.bytes(48),
            encryptedTimestamp: SecureRandom.bytes(28), mac1: try! Bytes16(SecureRandom.bytes(16)),
            mac2: try! Bytes16(SecureRandom.bytes(16)))
        let ib = i.bytes
        #expect(ib.count == 148 && Array(ib[0..<8]) == [1, 0, 0, 0, 4, 3, 2, 1])
        #expect(ib.withUnsafeBytes { HandshakeInitiation($0) } == i)
        let r = HandshakeResponse(
            senderIndex: 7, receiverIndex: 9, ephemeral: SecureRandom.bytes32(),
            encryptedNothing: try! Bytes16(SecureRandom.bytes(16)))
        #expect(r.bytes.count == 92)
        #expect(r.bytes.withUnsafeBytes { HandshakeResponse($0) } == r)
        let c = CookieReply(receiverIndex: 5, nonce: SecureRandom.bytes(24), encryptedCookie: SecureRandom.bytes(32))
        #expect(c.bytes.count == 64)
        #expect(c.bytes.withUnsafeBytes { CookieReply($0) } == c)
        var t = [UInt8](repeating: 0, count: 32)
        t.withUnsafeMutableBytes {
            TransportHeader(receiverIndex: 0xdead_beef, counter: 0x0102_0304_0506_0708).write(to: $0, at: 0)
        }
        #expect(Array(t[0..<16]) == [4, 0, 0, 0, 0xef, 0xbe, 0xad, 0xde, 8, 7, 6, 5, 4, 3, 2, 1])
        let h = t.withUnsafeBytes { TransportHeader($0) }
        #expect(h == TransportHeader(receiverIndex: 0xdead_beef, counter: 0x0102_0304_0506_0708))
    }

    @Test func tai64nOrderAndEncoding() {
        let a = TAI64N(unixNanoseconds: 1_700_000_000_123_456_789)
        #expect(a.seconds == 0x4000_0000_0000_000a + 1_700_000_000)
        #expect(a.nanoseconds & 0xff_ffff == 0, "whitened to 2^24 ns")
        #expect(TAI64N(bytes: a.bytes) == a)
        let b = TAI64N(unixNanoseconds: 1_700_000_001_000_000_000)
        #expect(a < b)
        #expect(a.bytes.lexicographicallyPrecedes(b.bytes))
    }
}

import CryptoPrimitives
import Testing

/// `DigestHMAC` must agree with the EVP_MAC-based `BLAKE2s.hmac` and
/// `WireGuardKDF` on every input shape a handshake (or anything) uses.
@Suite struct DigestHMACTests {
    @Test func agreesWithEVPMAC() {
        for keyLength in [0, 1, 16, 32, 63, 64, 65, 100] {
            for dataLength in [0, 1, 32, 33, 64, 65, 200] {
                let key = SecureRandom.bytes(keyLength)
                let data = SecureRandom.bytes(dataLength)
                #expect(
                    DigestHMAC.hmac(key: key, data) == BLAKE2s.hmac(key: key, data),
                    "key \(keyLength) data \(dataLength)")
                let split = dataLength / 2
                #expect(
                    DigestHMAC.hmac(key: key, Array(data[..<split]), Array(data[split...]))
                        == BLAKE2s.hmac(key: key, data))
            }
        }
    }

    @Test func kdfAgreesWithWireGuardKDF() {
        for length in [0, 32, 48] {
            let key = SecureRandom.bytes32()
            let input = SecureRandom.bytes(length)
            #expect(DigestHMAC.kdf1(key: key, input: input) == WireGuardKDF.kdf1(key: key, input: input))
            #expect(DigestHMAC.kdf2(key: key, input: input) == WireGuardKDF.kdf2(key: key, input: input))
            #expect(DigestHMAC.kdf3(key: key, input: input) == WireGuardKDF.kdf3(key: key, input: input))
        }
    }
}

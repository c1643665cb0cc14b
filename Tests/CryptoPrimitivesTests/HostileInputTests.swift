import CryptoPrimitives
import Testing

/// Random and mutated inputs to every `open` must throw, never trap, and
/// never report success (a forgery would need 2^-106 luck).
@Suite struct HostileInputTests {
    @Test func randomCiphertextsNeverOpen() throws {
        var rng = SystemRandomNumberGenerator()
        let key = SecureRandom.bytes32()
        let x25519 = X25519.PrivateKey()
        let boxKey = try NaClBox.SharedKey(privateKey: x25519, peer: X25519.PrivateKey().publicKey)
        for round in 0..<20_000 {
            let length = Int.random(in: 0...96, using: &rng)
            let garbage = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            #expect(throws: CryptoError.self) {
                try ChaCha20Poly1305.open(key: key, nonce: Nonce12(counter: UInt64(round)), ciphertext: garbage)
            }
            #expect(throws: CryptoError.self) {
                try XChaCha20Poly1305.open(key: key, nonce: Nonce24.random(), ciphertext: garbage)
            }
            #expect(throws: CryptoError.self) { try NaClBox.open(key: boxKey, nonce: Nonce24.random(), box: garbage) }
        }
    }

    @Test func wrongLengthsAreErrors() {
        for length in [0, 1, 11, 13, 23, 25, 31, 33, 64] {
            let bytes = [UInt8](repeating: 7, count: length)
            if length != 12 { #expect(throws: CryptoError.self) { try Nonce12(bytes) } }
            if length != 24 { #expect(throws: CryptoError.self) { try Nonce24(bytes) } }
            if length != 32 { #expect(throws: CryptoError.self) { try Bytes32(bytes) } }
            if length != 16 { #expect(throws: CryptoError.self) { try Bytes16(bytes) } }
        }
        for text in ["", "zz", "0", String(repeating: "0", count: 63), String(repeating: "g", count: 64)] {
            #expect(throws: CryptoError.self) { try Bytes32(hex: text) }
        }
    }
}

import CryptoPrimitives
import Testing

/// RFC 7748 §5.2 and §6.1.
@Suite struct X25519Tests {
    func scalarMult(_ scalar: [UInt8], _ u: [UInt8]) throws -> Bytes32 {
        let key = try X25519.PrivateKey(scalar)
        return try key.sharedSecret(with: X25519.PublicKey(u))
    }

    @Test func rfc7748Section52Vectors() throws {
        #expect(
            try scalarMult(
                hex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4"),
                hex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")
            ).hex
                == "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552")
        #expect(
            try scalarMult(
                hex("4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d"),
                hex("e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493")
            ).hex
                == "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957")
    }

    /// §5.2's iterated test: k = X25519(k, u), u = old k, starting from 9.
    @Test func rfc7748Section52Iterated() throws {
        var k = hex("0900000000000000000000000000000000000000000000000000000000000000")
        var u = k
        for i in 1...1000 {
            let r = try scalarMult(k, u)
            u = k
            k = r.bytes
            if i == 1 { #expect(Hex.encode(k) == "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079") }
        }
        #expect(Hex.encode(k) == "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51")
    }

    @Test func rfc7748Section61DiffieHellman() throws {
        let alice = try X25519.PrivateKey(hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"))
        let bob = try X25519.PrivateKey(hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"))
        #expect(alice.publicKey.raw.hex == "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
        #expect(bob.publicKey.raw.hex == "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
        let shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
        #expect(try alice.sharedSecret(with: bob.publicKey).hex == shared)
        #expect(try bob.sharedSecret(with: alice.publicKey).hex == shared)
    }

    /// A low-order point gives an all-zero secret, which must be rejected
    /// (RFC 7748 §6.1; WireGuard whitepaper §5.4 relies on it).
    @Test func lowOrderPointsRejected() throws {
        let key = X25519.PrivateKey()
        let lowOrder = [
            "0000000000000000000000000000000000000000000000000000000000000000",  // u = 0
            "0100000000000000000000000000000000000000000000000000000000000000",  // u = 1
            "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",  // order 8
        ]
        for point in lowOrder {
            do {
                _ = try key.sharedSecret(with: X25519.PublicKey(hex(point)))
                Issue.record("low-order point \(point) accepted")
            } catch let error as CryptoError {
                #expect(error.kind == .weakPublicKey)
            }
            #expect(throws: CryptoError.self) {
                try NaClBox.SharedKey(privateKey: key, peer: X25519.PublicKey(hex(point)))
            }
        }
    }

    @Test func generatedKeysAgreeAndAreClamped() throws {
        let a = X25519.PrivateKey()
        let b = X25519.PrivateKey()
        #expect(try a.sharedSecret(with: b.publicKey) == b.sharedSecret(with: a.publicKey))
        let raw = a.withUnsafeSecretBytes { Array($0) }
        #expect(raw[0] & 7 == 0)
        #expect(raw[31] & 0x80 == 0 && raw[31] & 0x40 != 0)
        let copy = a.duplicate()
        #expect(copy.publicKey == a.publicKey)
    }

    @Test func base64RoundTripAndErrors() throws {
        let key = X25519.PrivateKey()
        let restored = try X25519.PrivateKey(base64: key.base64)
        #expect(restored.publicKey == key.publicKey)
        #expect(key.base64.count == 44)
        for bad in ["", "abc", String(repeating: "A", count: 42) + "==", "!!!!" + String(repeating: "A", count: 40)] {
            #expect(throws: CryptoError.self) { try X25519.PrivateKey(base64: bad) }
        }
        #expect(throws: CryptoError.self) { try X25519.PrivateKey([UInt8](repeating: 1, count: 31)) }
        #expect(throws: CryptoError.self) { try X25519.PublicKey([UInt8](repeating: 1, count: 33)) }
    }
}

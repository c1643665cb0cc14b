import CryptoPrimitives
import Testing

/// NaCl crypto_box known answer: the test of NaCl's `tests/box.c` (as kept in
/// libsodium's test/default/box.c and box.exp), whose keys are RFC 7748's.
@Suite struct NaClBoxTests {
    static let aliceSecret = hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    static let bobPublic = hex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
    static let bobSecret = hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
    static let nonce = hex("69696ee955b62b73cd62bda875fc73d68219e0036b7a0b37")
    static let message = hex(
        "be075fc53c81f2d5cf141316ebeb0c7b5228c52a4c62cbd44b66849b64244ffce5ecbaaf33bd751a1ac728d45e6c61296cdc3c01233561f41db66cce314adb310e3be8250c46f06dceea3a7fa1348057e2f6556ad6b1318a024a838f21af1fde048977eb48f59ffd4924ca1c60902e52f0a089bc76897040e082f937763848645e0705"
    )
    /// tag ‖ ciphertext, the layout of Go's box.Seal.
    static let sealed = hex(
        "f3ffc7703f9400e52a7dfb4b3d3305d98e993b9f48681273c29650ba32fc76ce48332ea7164d96a4476fb8c531a1186ac0dfc17c98dce87b4da7f011ec48c97271d2c20f9b928fe2270d6fb863d51738b48eeee314a7cc8ab932164548e526ae90224368517acfeabd6bb3732bc0e9da99832b61ca01b6de56244a9e88d5f9b37973f622a43d14a6599b1f654cb45a74e355a5"
    )

    @Test func knownAnswerSeal() throws {
        let alice = try X25519.PrivateKey(Self.aliceSecret)
        let key = try NaClBox.SharedKey(privateKey: alice, peer: X25519.PublicKey(Self.bobPublic))
        let box = NaClBox.seal(key: key, nonce: try Nonce24(Self.nonce), message: Self.message)
        #expect(box == Self.sealed)
    }

    @Test func knownAnswerOpenFromTheOtherSide() throws {
        let bob = try X25519.PrivateKey(Self.bobSecret)
        let alicePublic = try X25519.PrivateKey(Self.aliceSecret).publicKey
        let key = try NaClBox.SharedKey(privateKey: bob, peer: alicePublic)
        #expect(try NaClBox.open(key: key, nonce: Nonce24(Self.nonce), box: Self.sealed) == Self.message)
    }

    @Test func tamperingThrows() throws {
        let bob = try X25519.PrivateKey(Self.bobSecret)
        let alicePublic = try X25519.PrivateKey(Self.aliceSecret).publicKey
        let key = try NaClBox.SharedKey(privateKey: bob, peer: alicePublic)
        let nonce = try Nonce24(Self.nonce)
        for index in [0, 15, 16, Self.sealed.count - 1] {
            var bad = Self.sealed
            bad[index] ^= 1
            #expect(throws: CryptoError.self) { try NaClBox.open(key: key, nonce: nonce, box: bad) }
        }
        for length in [0, 1, 15, 16, 100] {
            #expect(throws: CryptoError.self) {
                try NaClBox.open(key: key, nonce: nonce, box: Array(Self.sealed[0..<length]))
            }
        }
        #expect(throws: CryptoError.self) { try NaClBox.open(key: key, nonce: Nonce24.random(), box: Self.sealed) }
        let stranger = try NaClBox.SharedKey(privateKey: X25519.PrivateKey(), peer: alicePublic)
        #expect(throws: CryptoError.self) { try NaClBox.open(key: stranger, nonce: nonce, box: Self.sealed) }
    }

    @Test func emptyMessageRoundTrip() throws {
        let a = X25519.PrivateKey()
        let b = X25519.PrivateKey()
        let ab = try NaClBox.SharedKey(privateKey: a, peer: b.publicKey)
        let ba = try NaClBox.SharedKey(privateKey: b, peer: a.publicKey)
        let nonce = Nonce24.random()
        let box = NaClBox.seal(key: ab, nonce: nonce, message: [UInt8]())
        #expect(box.count == 16)
        #expect(try NaClBox.open(key: ba, nonce: nonce, box: box) == [])
    }
}

import CryptoPrimitives
import Testing

/// RFC 8439 §2.8.2 and Appendix A.5; draft-irtf-cfrg-xchacha-03 §A.3.1.
@Suite struct AEADTests {
    static let sunscreen = Array(
        "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it."
            .utf8)

    @Test func rfc8439Section282Seal() throws {
        let key = hex32("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
        let nonce = try Nonce12(hex("070000004041424344454647"))
        let aad = hex("50515253c0c1c2c3c4c5c6c7")
        let sealed = ChaCha20Poly1305.seal(key: key, nonce: nonce, plaintext: Self.sunscreen, additionalData: aad)
        #expect(
            Hex.encode(sealed)
                == "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b"
                + "1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
                + "3ff4def08e4b7a9de576d26586cec64b6116" + "1ae10b594f09e26a7e902ecbd0600691")
        let opened = try ChaCha20Poly1305.open(key: key, nonce: nonce, ciphertext: sealed, additionalData: aad)
        #expect(opened == Self.sunscreen)
    }

    @Test func rfc8439AppendixA5Open() throws {
        let key = hex32("1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0")
        let nonce = try Nonce12(hex("000000000102030405060708"))
        let aad = hex("f33388860000000000004e91")
        let sealed = hex(
            "64a0861575861af460f062c79be643bd5e805cfd345cf389f108670ac76c8cb24c6cfc18755d43eea09ee94e382d26b0"
                + "bdb7b73c321b0100d4f03b7f355894cf332f830e710b97ce98c8a84abd0b948114ad176e008d33bd60f982b1ff37c855"
                + "9797a06ef4f0ef61c186324e2b3506383606907b6a7c02b0f9f6157b53c867e4b9166c767b804d46a59b5216cde7a4e9"
                + "9040c5a40433225ee282a1b0a06c523eaf4534d7f83fa1155b0047718cbc546a0d072b04b3564eea1b422273f548271a"
                + "0bb2316053fa76991955ebd63159434ecebb4e466dae5a1073a6727627097a1049e617d91d361094fa68f0ff77987130"
                + "305beaba2eda04df997b714d6c6f2c29a6ad5cb4022b02709b" + "eead9d67890cbb22392336fea1851f38")
        let plaintext = try ChaCha20Poly1305.open(key: key, nonce: nonce, ciphertext: sealed, additionalData: aad)
        let text = String(decoding: plaintext, as: UTF8.self)
        #expect(text.hasPrefix("Internet-Drafts are draft documents valid for a maximum of six months"))
        #expect(text.hasSuffix("as /\u{201C}work in progress./\u{201D}"))
    }

    @Test func xchacha20Poly1305DraftA31() throws {
        let key = hex32("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
        let nonce = try Nonce24(hex("404142434445464748494a4b4c4d4e4f5051525354555657"))
        let aad = hex("50515253c0c1c2c3c4c5c6c7")
        let sealed = XChaCha20Poly1305.seal(key: key, nonce: nonce, plaintext: Self.sunscreen, additionalData: aad)
        #expect(
            Hex.encode(sealed)
                == "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f4eda7e39"
                + "ae64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9"
                + "21f9664c97637da9768812f615c68b13b52e" + "c0875924c1c7987947deafd8780acf49")
        #expect(
            try XChaCha20Poly1305.open(key: key, nonce: nonce, ciphertext: sealed, additionalData: aad)
                == Self.sunscreen)
    }

    /// Every way a sealed message can be wrong must throw, never trap, and
    /// leave no plaintext behind.
    @Test func tamperingThrows() throws {
        let key = SecureRandom.bytes32()
        let nonce = Nonce12(counter: 7)
        let aad = hex("0102")
        let sealed = ChaCha20Poly1305.seal(key: key, nonce: nonce, plaintext: Self.sunscreen, additionalData: aad)

        func expectAuthFailure(_ body: () throws -> [UInt8]) {
            #expect(throws: CryptoError.self) { _ = try body() }
            do { _ = try body() } catch let error as CryptoError {
                #expect(error.kind == .authenticationFailure || error.kind == .invalidLength)
            } catch { Issue.record("unexpected error \(error)") }
        }
        var otherKey = key
        otherKey.withUnsafeMutableBytes { $0[0] ^= 1 }
        expectAuthFailure {
            try ChaCha20Poly1305.open(key: otherKey, nonce: nonce, ciphertext: sealed, additionalData: aad)
        }
        expectAuthFailure {
            try ChaCha20Poly1305.open(key: key, nonce: Nonce12(counter: 8), ciphertext: sealed, additionalData: aad)
        }
        expectAuthFailure {
            try ChaCha20Poly1305.open(key: key, nonce: nonce, ciphertext: sealed, additionalData: [UInt8]())
        }
        for index in [0, sealed.count / 2, sealed.count - 1] {
            var bad = sealed
            bad[index] ^= 0x80
            expectAuthFailure {
                try ChaCha20Poly1305.open(key: key, nonce: nonce, ciphertext: bad, additionalData: aad)
            }
        }
        for length in [0, 1, 15, 16, sealed.count - 1] {
            expectAuthFailure {
                try ChaCha20Poly1305.open(
                    key: key, nonce: nonce, ciphertext: Array(sealed[0..<length]), additionalData: aad)
            }
        }
        // Too-short buffers for seal are an error, not a trap.
        var small = [UInt8](repeating: 0, count: 10)
        #expect(throws: CryptoError.self) {
            try small.withUnsafeMutableBytes {
                try ChaCha20Poly1305.seal(key: key, nonce: nonce, buffer: $0, plaintextCount: 10)
            }
        }

        let xnonce = Nonce24.random()
        let xsealed = XChaCha20Poly1305.seal(key: key, nonce: xnonce, plaintext: Self.sunscreen)
        var xbad = xsealed
        xbad[xbad.count - 1] ^= 1
        expectAuthFailure { try XChaCha20Poly1305.open(key: key, nonce: xnonce, ciphertext: xbad) }
        expectAuthFailure { try XChaCha20Poly1305.open(key: key, nonce: Nonce24.random(), ciphertext: xsealed) }
        expectAuthFailure { try XChaCha20Poly1305.open(key: key, nonce: xnonce, ciphertext: Array(xsealed[0..<5])) }
    }

    /// The in-place path seals and opens inside a larger caller buffer with
    /// header room, as the WireGuard data path uses it.
    @Test func inPlaceWithHeadroom() throws {
        let key = SecureRandom.bytes32()
        var packet = [UInt8](repeating: 0xAA, count: 16 + 1420 + 16)
        let payload = SecureRandom.bytes(1420)
        packet.replaceSubrange(16..<(16 + 1420), with: payload)
        try packet.withUnsafeMutableBytes { whole in
            let body = UnsafeMutableRawBufferPointer(rebasing: whole[16...])
            let sealed = try ChaCha20Poly1305.seal(
                key: key, nonce: Nonce12(counter: 1), buffer: body, plaintextCount: 1420)
            #expect(sealed == 1436)
            let opened = try ChaCha20Poly1305.open(key: key, nonce: Nonce12(counter: 1), buffer: body)
            #expect(opened == 1420)
        }
        #expect(Array(packet[16..<(16 + 1420)]) == payload)
        #expect(packet[0..<16].allSatisfy { $0 == 0xAA })
    }

    /// The WireGuard nonce is 32 zero bits then the little-endian counter.
    @Test func wireGuardNonceLayout() {
        let nonce = Nonce12(counter: 0x0102_0304_0506_0708)
        #expect(nonce.withUnsafeBytes { Array($0) } == [0, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1])
    }
}

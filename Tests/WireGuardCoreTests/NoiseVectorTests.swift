import CryptoPrimitives
import Testing
import WireGuardCore

private func hex(_ s: String) -> [UInt8] { Hex.decode(s)! }

@Suite struct NoiseVectorTests {
    /// The published IKpsk2 vector, byte for byte: both handshake messages,
    /// the handshake hash, and the transport messages under the split keys.
    @Test func cacophonyIKpsk2ReproducedByteForByte() throws {
        let v = CacophonyIKpsk2.self
        let initiatorStatic = try X25519.PrivateKey(hex(v.initStatic))
        let initiatorEphemeral = try X25519.PrivateKey(hex(v.initEphemeral))
        let responderStatic = try X25519.PrivateKey(hex(v.respStatic))
        let responderEphemeral = try X25519.PrivateKey(hex(v.respEphemeral))
        let psk = try Bytes32(hex(v.psk))
        let rs = responderStatic.publicKey
        #expect(rs.raw.hex == "31e0303fd6418d2f8c0e78b91f22e8caed0fbe48656dcf4767e4834f701b8f62")

        let initial = SymmetricState(protocolName: Protocol.construction, prologue: hex(v.prologue))
        let ss = try initiatorStatic.sharedSecret(with: rs)

        // Message 1: -> e, es, s, ss
        var initiator = NoiseIKpsk2.initialState(initial, responderStatic: rs)
        let m1 = try NoiseIKpsk2.writeMessage1(
            state: &initiator, ephemeral: initiatorEphemeral, responderStatic: rs,
            initiatorStatic: initiatorStatic.publicKey, staticStatic: ss, payload: hex(v.messages[0].0))
        let wire1 = m1.ephemeral.raw.bytes + m1.encryptedStatic + m1.encryptedPayload
        #expect(Hex.encode(wire1) == v.messages[0].1)

        var responder = NoiseIKpsk2.initialState(initial, responderStatic: rs)
        let received = NoiseIKpsk2.Message1(
            ephemeral: try X25519.PublicKey(Array(wire1[0..<32])), encryptedStatic: Array(wire1[32..<80]),
            encryptedPayload: Array(wire1[80...]))
        let initiatorKey = initiatorStatic.publicKey
        let read = try NoiseIKpsk2.readMessage1(state: &responder, responderStatic: responderStatic, message: received)
        {
            $0 == initiatorKey ? ss : nil
        }
        #expect(read.initiatorStatic == initiatorKey)
        #expect(read.payload == hex(v.messages[0].0))

        // Message 2: <- e, ee, se, psk
        let m2 = try NoiseIKpsk2.writeMessage2(
            state: &responder, ephemeral: responderEphemeral, initiatorEphemeral: received.ephemeral,
            initiatorStatic: read.initiatorStatic, presharedKey: psk, payload: hex(v.messages[1].0))
        let wire2 = m2.ephemeral.raw.bytes + m2.encryptedPayload
        #expect(Hex.encode(wire2) == v.messages[1].1)
        let payload2 = try NoiseIKpsk2.readMessage2(
            state: &initiator, ephemeral: initiatorEphemeral, initiatorStatic: initiatorStatic,
            responderEphemeral: try X25519.PublicKey(Array(wire2[0..<32])), presharedKey: psk,
            encryptedPayload: Array(wire2[32...]))
        #expect(payload2 == hex(v.messages[1].0))
        #expect(initiator.hash.hex == v.handshakeHash)
        #expect(responder.hash.hex == v.handshakeHash)

        // Transport: the nonce is the message count per direction, AD empty,
        // exactly as WireGuard's transport messages.
        let (i2r, r2i) = initiator.split()
        #expect(responder.split() == (i2r, r2i))
        var counters: [UInt64] = [0, 0]
        for (n, message) in v.messages.dropFirst(2).enumerated() {
            let direction = n % 2
            let key = direction == 0 ? i2r : r2i
            let sealed = ChaCha20Poly1305.seal(
                key: key, nonce: Nonce12(counter: counters[direction]), plaintext: hex(message.0))
            #expect(Hex.encode(sealed) == message.1, "transport message \(n + 2)")
            counters[direction] += 1
        }
    }

    /// WireGuard is this Noise protocol with its identifier as prologue:
    /// the precomputed Cᵢ and Hᵢ equal HASH(construction) and
    /// HASH(Cᵢ ‖ identifier) (values also in the whitepaper's reference code).
    @Test func wireGuardInitialState() {
        let s = SymmetricState.wireGuard
        #expect(s.chainingKey.hex == "60e26daef327efc02ec335e2a025d2d016eb4206f87277f52d38d1988b78cd36")
        #expect(s.hash.hex == "2211b361081ac566691243db458ad5322d9c6c662293e8b70ee19c65ba079ef3")
        let generic = SymmetricState(protocolName: Protocol.construction, prologue: Protocol.identifier)
        #expect(generic.chainingKey == s.chainingKey && generic.hash == s.hash)
    }

    /// An initiation made by an Interface is a Noise message 1 with prologue
    /// = WireGuard's identifier and payload = a TAI64N timestamp: the generic
    /// reader opens it and finds our static key and the time.
    @Test func interfaceInitiationIsNoiseMessage1WithWireGuardPrologue() throws {
        let a = X25519.PrivateKey()
        let aPublic = a.publicKey
        let b = X25519.PrivateKey()
        let bPublic = b.publicKey
        let bCopy = b.duplicate()
        var ia = Interface(privateKey: a, wallClockOffset: 1_700_000_000_000_000_000)
        let peer = try ia.addPeer(publicKey: bPublic)
        ia.setEndpoint(peer, Endpoint("127.0.0.1:1")!)
        ia.addAllowedIP(peer, IPPrefix("10.0.0.2/32")!)
        var buffer = [UInt8](repeating: 0, count: 128)
        let packet = TestPackets.ipv4(from: "10.0.0.1", to: "10.0.0.2", payload: [1, 2, 3])
        buffer.replaceSubrange(16..<(16 + packet.count), with: packet)
        let result = buffer.withUnsafeMutableBytes { ia.encapsulate($0, packet: 16..<(16 + packet.count), now: .zero) }
        #expect(result == .queued(peer: peer))
        let out = ia.takeOutgoing()
        #expect(out.count == 1 && out[0].bytes.count == 148)
        let message = out[0].bytes.withUnsafeBytes { HandshakeInitiation($0) }!

        var state = NoiseIKpsk2.initialState(
            SymmetricState(protocolName: Protocol.construction, prologue: Protocol.identifier), responderStatic: bPublic
        )
        let ss = try bCopy.sharedSecret(with: aPublic)
        let read = try NoiseIKpsk2.readMessage1(
            state: &state, responderStatic: bCopy,
            message: .init(
                ephemeral: X25519.PublicKey(message.ephemeral), encryptedStatic: message.encryptedStatic,
                encryptedPayload: message.encryptedTimestamp)
        ) { $0 == aPublic ? ss : nil }
        #expect(read.initiatorStatic == aPublic)
        let stamp = TAI64N(bytes: read.payload)!
        #expect(stamp.seconds == 0x4000_0000_0000_000a + 1_700_000_000)
    }
}

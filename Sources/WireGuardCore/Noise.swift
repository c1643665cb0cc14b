import CryptoPrimitives

// Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s (Noise spec rev. 34 §5, §7.5, §9;
// WireGuard whitepaper §5.4): the two handshake messages, parameterised by
// prologue and payload so the same code runs WireGuard (prologue = the
// identifier, payload = TAI64N and ε) and the published test vectors.
//
//     IKpsk2:
//       <- s
//       ...
//       -> e, es, s, ss          (payload encrypted under the ss key)
//       <- e, ee, se, psk        (payload encrypted under the psk key)
//
// In psk modes the `e` token also mixes the ephemeral into the chaining key
// (Noise §9.2). Every cipher key is used for exactly one encryption, so the
// handshake nonce is always zero, as in WireGuard.

/// Why a handshake message was refused.
package enum NoiseError: Error, Equatable {
    /// An AEAD tag did not verify: wrong keys, or a forged/corrupted message.
    case decryptionFailed
    /// A Diffie-Hellman result was all zeros (a low-order public key).
    case weakPublicKey
    /// The initiator's static key is not one of our peers.
    case unknownPeer
}

/// Noise's SymmetricState (§5.2): chaining key `ck` and transcript hash `h`.
package struct SymmetricState: Sendable {
    package var chainingKey: Bytes32
    package var hash: Bytes32

    /// InitializeSymmetric(protocolName) then MixHash(prologue).
    package init(protocolName: [UInt8], prologue: [UInt8]) {
        if protocolName.count <= 32 {
            hash = try! Bytes32(protocolName + [UInt8](repeating: 0, count: 32 - protocolName.count))
        } else {
            hash = BLAKE2s.hash(protocolName)
        }
        chainingKey = hash
        mixHash(prologue)
    }

    /// WireGuard's Cᵢ and Hᵢ before any key is mixed in (§5.4.2): the same
    /// for every handshake, so computed once.
    package static let wireGuard = SymmetricState(protocolName: Protocol.construction, prologue: Protocol.identifier)

    package mutating func mixHash(_ data: some RawBytes) {
        hash = BLAKE2s.hash(hash, data)
    }

    /// MixKey: (ck, k) = KDF2(ck, input); returns k.
    package mutating func mixKey(_ input: some RawBytes) -> Bytes32 {
        let (ck, k) = WireGuardKDF.kdf2(key: chainingKey, input: input)
        chainingKey = ck
        return k
    }

    /// MixKeyAndHash (Noise §5.2, the psk token): (ck, t, k) = KDF3(ck, psk);
    /// MixHash(t); returns k.
    package mutating func mixKeyAndHash(_ input: some RawBytes) -> Bytes32 {
        let (ck, t, k) = WireGuardKDF.kdf3(key: chainingKey, input: input)
        chainingKey = ck
        mixHash(t)
        return k
    }

    /// EncryptAndHash with nonce 0 and the transcript hash as AD.
    package mutating func encryptAndHash(key: Bytes32, _ plaintext: [UInt8]) -> [UInt8] {
        let ciphertext = ChaCha20Poly1305.seal(
            key: key, nonce: Nonce12(counter: 0), plaintext: plaintext, additionalData: hash)
        mixHash(ciphertext)
        return ciphertext
    }

    package mutating func decryptAndHash(key: Bytes32, _ ciphertext: [UInt8]) throws(NoiseError) -> [UInt8] {
        guard
            let plaintext = try? ChaCha20Poly1305.open(
                key: key, nonce: Nonce12(counter: 0), ciphertext: ciphertext, additionalData: hash)
        else { throw .decryptionFailed }
        mixHash(ciphertext)
        return plaintext
    }

    /// Split (§5.2): the two transport keys, initiator→responder first.
    package func split() -> (initiatorToResponder: Bytes32, responderToInitiator: Bytes32) {
        let (a, b) = WireGuardKDF.kdf2(key: chainingKey, input: [UInt8]())
        return (a, b)
    }
}

/// DH that refuses the all-zero result (§5.4.1 and RFC 7748 §6.1).
@inline(__always)
package func dh(_ key: borrowing X25519.PrivateKey, _ peer: X25519.PublicKey) throws(NoiseError) -> Bytes32 {
    guard let shared = try? key.sharedSecret(with: peer) else { throw .weakPublicKey }
    return shared
}

/// The two IKpsk2 messages as pure functions of keys and payloads.
package enum NoiseIKpsk2 {
    /// The state an initiator starts from: `initial` with the responder's
    /// static key mixed in (the `<- s` pre-message).
    package static func initialState(_ initial: SymmetricState, responderStatic: X25519.PublicKey) -> SymmetricState {
        var state = initial
        state.mixHash(responderStatic)
        return state
    }

    package struct Message1: Sendable {
        package var ephemeral: X25519.PublicKey
        package var encryptedStatic: [UInt8]
        package var encryptedPayload: [UInt8]

        package init(ephemeral: X25519.PublicKey, encryptedStatic: [UInt8], encryptedPayload: [UInt8]) {
            self.ephemeral = ephemeral
            self.encryptedStatic = encryptedStatic
            self.encryptedPayload = encryptedPayload
        }
    }

    /// -> e, es, s, ss, payload. `staticStatic` is DH(s_i, S_r), precomputed
    /// per peer. `ephemeralPublic`, when the caller already has it, saves
    /// recomputing it (a base-point multiplication).
    package static func writeMessage1(
        state: inout SymmetricState, ephemeral: borrowing X25519.PrivateKey,
        ephemeralPublic: X25519.PublicKey? = nil, responderStatic: X25519.PublicKey,
        initiatorStatic: X25519.PublicKey, staticStatic: Bytes32, payload: [UInt8]
    ) throws(NoiseError) -> Message1 {
        let e = ephemeralPublic ?? ephemeral.publicKey
        state.mixHash(e)
        _ = state.mixKey(e)
        let esKey = state.mixKey(try dh(ephemeral, responderStatic))
        let encryptedStatic = state.encryptAndHash(key: esKey, initiatorStatic.raw.bytes)
        guard !staticStatic.isZero else { throw .weakPublicKey }
        let ssKey = state.mixKey(staticStatic)
        let encryptedPayload = state.encryptAndHash(key: ssKey, payload)
        return Message1(ephemeral: e, encryptedStatic: encryptedStatic, encryptedPayload: encryptedPayload)
    }

    /// Reads message 1 as the responder. `staticStatic` maps the decrypted
    /// initiator key to DH(s_r, S_i) (precomputed) or nil if it is not a peer.
    package static func readMessage1(
        state: inout SymmetricState, responderStatic: borrowing X25519.PrivateKey, message: Message1,
        staticStatic: (X25519.PublicKey) -> Bytes32?
    ) throws(NoiseError) -> (initiatorStatic: X25519.PublicKey, payload: [UInt8]) {
        let e = message.ephemeral
        state.mixHash(e)
        _ = state.mixKey(e)
        let esKey = state.mixKey(try dh(responderStatic, e))
        let staticBytes = try state.decryptAndHash(key: esKey, message.encryptedStatic)
        guard let initiatorStatic = try? X25519.PublicKey(staticBytes) else { throw .decryptionFailed }
        guard let ss = staticStatic(initiatorStatic) else { throw .unknownPeer }
        guard !ss.isZero else { throw .weakPublicKey }
        let ssKey = state.mixKey(ss)
        let payload = try state.decryptAndHash(key: ssKey, message.encryptedPayload)
        return (initiatorStatic, payload)
    }

    /// <- e, ee, se, psk, payload.
    package static func writeMessage2(
        state: inout SymmetricState, ephemeral: borrowing X25519.PrivateKey,
        ephemeralPublic: X25519.PublicKey? = nil, initiatorEphemeral: X25519.PublicKey,
        initiatorStatic: X25519.PublicKey, presharedKey: Bytes32, payload: [UInt8]
    ) throws(NoiseError) -> (ephemeral: X25519.PublicKey, encryptedPayload: [UInt8]) {
        let e = ephemeralPublic ?? ephemeral.publicKey
        state.mixHash(e)
        _ = state.mixKey(e)
        _ = state.mixKey(try dh(ephemeral, initiatorEphemeral))
        _ = state.mixKey(try dh(ephemeral, initiatorStatic))
        let key = state.mixKeyAndHash(presharedKey)
        return (e, state.encryptAndHash(key: key, payload))
    }

    /// Reads message 2 as the initiator.
    package static func readMessage2(
        state: inout SymmetricState, ephemeral: borrowing X25519.PrivateKey,
        initiatorStatic: borrowing X25519.PrivateKey, responderEphemeral: X25519.PublicKey,
        presharedKey: Bytes32, encryptedPayload: [UInt8]
    ) throws(NoiseError) -> [UInt8] {
        let e = responderEphemeral
        state.mixHash(e)
        _ = state.mixKey(e)
        _ = state.mixKey(try dh(ephemeral, e))
        _ = state.mixKey(try dh(initiatorStatic, e))
        let key = state.mixKeyAndHash(presharedKey)
        return try state.decryptAndHash(key: key, encryptedPayload)
    }
}

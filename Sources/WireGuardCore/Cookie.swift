import CryptoPrimitives

// mac1, mac2 and cookies (whitepaper §5.3, §5.4.4, §5.4.7).
//
// Every handshake message ends with mac1 = MAC(HASH("mac1----" ‖ Spub_m),
// msg[..<mac1]), keyed by the *receiver's* public key, so a receiver can
// drop junk with one keyed hash before doing any Diffie-Hellman. Under load
// a receiver also wants mac2 = MAC(cookie, msg[..<mac2]), where the cookie
// is MAC(secret, source IP ‖ port) and proves the sender can receive at
// its address. A message without a valid mac2 then gets a cookie reply,
// whose XChaCha20-Poly1305 encryption is keyed by HASH("cookie--" ‖ Spub_m)
// and bound (as AD) to the mac1 of the message it answers.
//
//     initiator                                   responder (under load)
//     initiation (mac2 = 0)           ------->
//                                     <-------    cookie reply (cookie for src)
//     initiation (mac2 = MAC(cookie)) ------->    accepted, rate-limited per src

/// The receiving side: checks macs and makes cookie replies. One per
/// interface, keyed by our own public key.
package struct CookieChecker: Sendable {
    let mac1Key: Bytes32
    let cookieKey: Bytes32
    private var secret: Bytes32
    private var secretBirth: Instant?

    package init(localPublicKey: X25519.PublicKey) {
        mac1Key = BLAKE2s.hash(Protocol.labelMAC1, localPublicKey)
        cookieKey = BLAKE2s.hash(Protocol.labelCookie, localPublicKey)
        secret = .zero
        secretBirth = nil
    }

    /// Whether the message's mac1 is right. `message` is the whole
    /// handshake message; `macs` its MAC offsets.
    func validMAC1(_ message: UnsafeRawBufferPointer, _ macs: MACOffsets) -> Bool {
        let expected = BLAKE2s.mac16(key: mac1Key, UnsafeRawBufferPointer(rebasing: message[0..<macs.mac1]))
        return constantTimeEquals(expected, UnsafeRawBufferPointer(rebasing: message[macs.mac1..<macs.mac2]))
    }

    /// The cookie for `source`, rotating the secret every two minutes.
    mutating func cookie(for source: Endpoint, now: Instant) -> Bytes16 {
        if secretBirth == nil || now - secretBirth! >= Protocol.cookieRefreshTime {
            secret = SecureRandom.bytes32()
            secretBirth = now
        }
        return BLAKE2s.mac16(key: secret, source.cookieBytes)
    }

    mutating func validMAC2(_ message: UnsafeRawBufferPointer, _ macs: MACOffsets, source: Endpoint, now: Instant)
        -> Bool
    {
        let cookie = cookie(for: source, now: now)
        let expected = BLAKE2s.mac16(key: cookie, UnsafeRawBufferPointer(rebasing: message[0..<macs.mac2]))
        return constantTimeEquals(expected, UnsafeRawBufferPointer(rebasing: message[macs.mac2..<(macs.mac2 + 16)]))
    }

    /// The cookie reply to a message from `source` whose sender index is
    /// `senderIndex`.
    mutating func makeReply(
        to message: UnsafeRawBufferPointer, _ macs: MACOffsets, senderIndex: UInt32, source: Endpoint, now: Instant
    ) -> CookieReply {
        let cookie = cookie(for: source, now: now)
        let nonce = Nonce24.random()
        let mac1 = UnsafeRawBufferPointer(rebasing: message[macs.mac1..<macs.mac2])
        let sealed = XChaCha20Poly1305.seal(key: cookieKey, nonce: nonce, plaintext: cookie, additionalData: mac1)
        return CookieReply(
            receiverIndex: senderIndex, nonce: nonce.withUnsafeBytes { Array($0) }, encryptedCookie: sealed)
    }
}

/// The sending side, one per peer: writes mac1/mac2 into our handshake
/// messages and takes in the peer's cookie replies.
package struct CookieGenerator: Sendable {
    let mac1Key: Bytes32
    let cookieKey: Bytes32
    /// The mac1 of the last handshake message we sent, while a cookie reply
    /// to it may still come (a reply is only accepted for it, once).
    private var lastMAC1: Bytes16?
    private var cookie: Bytes16?
    private var cookieBirth: Instant = .zero

    package init(peerPublicKey: X25519.PublicKey) {
        mac1Key = BLAKE2s.hash(Protocol.labelMAC1, peerPublicKey)
        cookieKey = BLAKE2s.hash(Protocol.labelCookie, peerPublicKey)
    }

    /// Fills in mac1 and, with a fresh cookie, mac2 of `message`.
    mutating func stamp(_ message: inout [UInt8], _ macs: MACOffsets, now: Instant) {
        let mac1 = message.withUnsafeBytes {
            BLAKE2s.mac16(key: mac1Key, UnsafeRawBufferPointer(rebasing: $0[0..<macs.mac1]))
        }
        message.replaceSubrange(macs.mac1..<macs.mac2, with: mac1.bytes)
        lastMAC1 = mac1
        var mac2 = Bytes16.zero
        if let cookie, now - cookieBirth < Protocol.cookieRefreshTime - Implementation.cookieSecretLatency {
            mac2 = message.withUnsafeBytes {
                BLAKE2s.mac16(key: cookie, UnsafeRawBufferPointer(rebasing: $0[0..<macs.mac2]))
            }
        }
        message.replaceSubrange(macs.mac2..<(macs.mac2 + 16), with: mac2.bytes)
    }

    /// Decrypts and stores the cookie of a reply; false if there is no
    /// message it can answer or it does not authenticate.
    mutating func consume(_ reply: CookieReply, now: Instant) -> Bool {
        guard let mac1 = lastMAC1, let nonce = try? Nonce24(reply.nonce),
            let plain = try? XChaCha20Poly1305.open(
                key: cookieKey, nonce: nonce, ciphertext: reply.encryptedCookie, additionalData: mac1),
            let value = try? Bytes16(plain)
        else { return false }
        cookie = value
        cookieBirth = now
        lastMAC1 = nil
        return true
    }

    package var hasCookie: Bool { cookie != nil }
}

import CryptoPrimitives

// The handshake paths (whitepaper §5.4.2–§5.4.7, §6): sending initiations,
// answering them, finishing with a response, and taking cookie replies.
//
//     initiator                               responder
//     initiation  ---------------------------> consume: find peer by static,
//                                               check TAI64N and flood,
//                                               derive keypair (→ next)
//     consume: derive keypair (→ current) <--- response
//     first data / keepalive ----------------> confirms next → current

extension Interface {
    /// Starts a handshake with `id` now (subject to the REKEY_TIMEOUT rate),
    /// e.g. when coordination says the peer is ready. The initiation comes
    /// out of `takeOutgoing()`.
    public mutating func initiateHandshake(_ id: PeerID, now: Instant) {
        sendHandshakeInitiation(id, isRetry: false, now: now)
    }

    /// Sends an initiation unless one went out less than REKEY_TIMEOUT ago.
    /// `isRetry` keeps the attempt count (retransmission); anything else
    /// starts counting afresh.
    mutating func sendHandshakeInitiation(_ id: PeerID, isRetry: Bool, now: Instant) {
        guard peers[id] != nil else { return }
        if !isRetry { peers[id]!.timers.handshakeAttempts = 0 }
        if let last = peers[id]!.lastSentHandshake, now < last + Protocol.rekeyTimeout { return }
        guard let endpoint = peers[id]!.endpoint else { return }
        peers[id]!.lastSentHandshake = now

        let peer = peers[id]!
        let ephemeral = SecretKeyBox.generate()
        var state = peer.initiatorStart
        guard
            let m1 = try? NoiseIKpsk2.writeMessage1(
                state: &state, ephemeral: ephemeral.key, ephemeralPublic: ephemeral.publicKey,
                responderStatic: peer.publicKey,
                initiatorStatic: identity.publicKey, staticStatic: peer.staticStatic,
                payload: timestamp(now: now).bytes)
        else { return }  // a weak peer key: nothing can ever be sent to it

        if let old = peer.pending, indices[old.localIndex] == .handshake(id) { indices[old.localIndex] = nil }
        let localIndex = allocateIndex(.handshake(id))
        var message = HandshakeInitiation(
            senderIndex: localIndex, ephemeral: m1.ephemeral.raw, encryptedStatic: m1.encryptedStatic,
            encryptedTimestamp: m1.encryptedPayload
        ).bytes
        peers[id]!.cookies.stamp(&message, HandshakeInitiation.macs, now: now)
        peers[id]!.pending = PendingInitiation(localIndex: localIndex, ephemeral: ephemeral, state: state)

        peers[id]!.timers.anyAuthenticatedPacketTraversal(now: now)
        peers[id]!.timers.anyAuthenticatedPacketSent()
        peers[id]!.timers.handshakeInitiated(now: now, jitter: Interface.jitter())
        send(id, endpoint, message)
    }

    mutating func send(_ id: PeerID, _ endpoint: Endpoint, _ bytes: [UInt8]) {
        peers[id]?.statistics.sentBytes &+= UInt64(bytes.count)
        outbox.append(OutgoingDatagram(peer: id, endpoint: endpoint, bytes: bytes))
    }

    /// mac1 always, then under load mac2 and the per-source rate. Returns a
    /// drop reason, or nil to go on to the expensive part.
    private mutating func checkMACs(
        _ datagram: UnsafeRawBufferPointer, _ macs: MACOffsets, senderIndex: UInt32, source: Endpoint, now: Instant
    ) -> DropReason? {
        guard cookieChecker.validMAC1(datagram, macs) else { return drop(.invalidMAC1) }
        guard isUnderLoad(now: now) else { return nil }
        guard cookieChecker.validMAC2(datagram, macs, source: source, now: now) else {
            let reply = cookieChecker.makeReply(
                to: datagram, macs, senderIndex: senderIndex, source: source, now: now)
            outbox.append(OutgoingDatagram(peer: nil, endpoint: source, bytes: reply.bytes))
            return drop(.cookieReplySent)
        }
        guard rateLimiter.allow(source.address, now: now) else { return drop(.rateLimited) }
        return nil
    }

    /// An initiation arrived (already classified as one, so 148 bytes).
    mutating func consumeInitiation(_ datagram: UnsafeRawBufferPointer, source: Endpoint, now: Instant)
        -> DecapsulationResult
    {
        guard let message = HandshakeInitiation(datagram) else { return .dropped(drop(.malformed)) }
        if let reason = checkMACs(
            datagram, HandshakeInitiation.macs, senderIndex: message.senderIndex, source: source, now: now)
        {
            return .dropped(reason)
        }
        var state = NoiseIKpsk2.initialState(.wireGuard, responderStatic: identity.publicKey)
        let m1 = NoiseIKpsk2.Message1(
            ephemeral: X25519.PublicKey(message.ephemeral), encryptedStatic: message.encryptedStatic,
            encryptedPayload: message.encryptedTimestamp)
        let read: (initiatorStatic: X25519.PublicKey, payload: [UInt8])
        do {
            read = try NoiseIKpsk2.readMessage1(state: &state, responderStatic: identity.key, message: m1) { key in
                self.peerByKey[key].flatMap { self.peers[$0]?.staticStatic }
            }
        } catch {
            return .dropped(drop(error == .unknownPeer ? .unknownPeer : .handshakeFailed))
        }
        guard let id = peerByKey[read.initiatorStatic], let stamp = TAI64N(bytes: read.payload) else {
            return .dropped(drop(.handshakeFailed))
        }
        // §5.1: replay protection by timestamp, and no more than one
        // initiation per peer per 20 ms whatever the timestamps say.
        guard stamp > peers[id]!.latestTimestamp else { return .dropped(drop(.replayedTimestamp)) }
        if let last = peers[id]!.lastInitiationConsumed, now < last + Implementation.minimumInitiationInterval {
            return .dropped(drop(.initiationFlood))
        }
        peers[id]!.latestTimestamp = stamp
        peers[id]!.lastInitiationConsumed = now
        peers[id]!.statistics.receivedBytes &+= UInt64(datagram.count)

        // Roaming (§2.1): the endpoint follows authenticated packets.
        peers[id]!.endpoint = source
        peers[id]!.timers.anyAuthenticatedPacketReceived()
        peers[id]!.timers.anyAuthenticatedPacketTraversal(now: now)

        // Answer at once: message 2, and the session as responder.
        let ephemeral = SecretKeyBox.generate()
        guard
            let m2 = try? NoiseIKpsk2.writeMessage2(
                state: &state, ephemeral: ephemeral.key, ephemeralPublic: ephemeral.publicKey,
                initiatorEphemeral: m1.ephemeral,
                initiatorStatic: read.initiatorStatic, presharedKey: peers[id]!.presharedKey, payload: [])
        else { return .dropped(drop(.handshakeFailed)) }
        // A simultaneous initiation of ours is abandoned, as in the kernel:
        // one handshake state per peer.
        if let old = peers[id]!.pending, indices[old.localIndex] == .handshake(id) { indices[old.localIndex] = nil }
        peers[id]!.pending = nil
        let localIndex = allocateIndex(.keypair(id))
        var response = HandshakeResponse(
            senderIndex: localIndex, receiverIndex: message.senderIndex, ephemeral: m2.ephemeral.raw,
            encryptedNothing: try! Bytes16(m2.encryptedPayload)
        ).bytes
        peers[id]!.cookies.stamp(&response, HandshakeResponse.macs, now: now)
        let keys = state.split()
        beginSession(
            id,
            Keypair(
                localIndex: localIndex, remoteIndex: message.senderIndex, sendingKey: keys.responderToInitiator,
                receivingKey: keys.initiatorToResponder, birth: now, isInitiator: false),
            now: now)
        peers[id]!.lastSentHandshake = now
        peers[id]!.timers.anyAuthenticatedPacketTraversal(now: now)
        peers[id]!.timers.anyAuthenticatedPacketSent()
        send(id, source, response)
        return .consumed
    }

    /// A response arrived (92 bytes).
    mutating func consumeResponse(_ datagram: UnsafeRawBufferPointer, source: Endpoint, now: Instant)
        -> DecapsulationResult
    {
        guard let message = HandshakeResponse(datagram) else { return .dropped(drop(.malformed)) }
        if let reason = checkMACs(
            datagram, HandshakeResponse.macs, senderIndex: message.senderIndex, source: source, now: now)
        {
            return .dropped(reason)
        }
        guard case .handshake(let id) = indices[message.receiverIndex], let pending = peers[id]?.pending,
            pending.localIndex == message.receiverIndex
        else { return .dropped(drop(.unexpectedResponse)) }
        var state = pending.state
        do {
            _ = try NoiseIKpsk2.readMessage2(
                state: &state, ephemeral: pending.ephemeral.key, initiatorStatic: identity.key,
                responderEphemeral: X25519.PublicKey(message.ephemeral), presharedKey: peers[id]!.presharedKey,
                encryptedPayload: message.encryptedNothing.bytes)
        } catch {
            return .dropped(drop(.handshakeFailed))
        }
        peers[id]!.pending = nil
        indices[pending.localIndex] = .keypair(id)
        peers[id]!.statistics.receivedBytes &+= UInt64(datagram.count)
        peers[id]!.endpoint = source
        peers[id]!.timers.anyAuthenticatedPacketReceived()
        peers[id]!.timers.anyAuthenticatedPacketTraversal(now: now)
        let keys = state.split()
        beginSession(
            id,
            Keypair(
                localIndex: pending.localIndex, remoteIndex: message.senderIndex,
                sendingKey: keys.initiatorToResponder, receivingKey: keys.responderToInitiator, birth: now,
                isInitiator: true),
            now: now)
        peers[id]!.timers.handshakeComplete()
        // The responder waits for our first packet before it may send:
        // send what waited, or a keepalive.
        sendKeepalive(id, now: now)
        return .consumed
    }

    /// A cookie reply arrived (64 bytes). It never moves the endpoint: it is
    /// not authenticated by a session key.
    mutating func consumeCookieReply(_ datagram: UnsafeRawBufferPointer, now: Instant) -> DecapsulationResult {
        guard let reply = CookieReply(datagram) else { return .dropped(drop(.malformed)) }
        guard let id = indices[reply.receiverIndex]?.peer, peers[id] != nil,
            peers[id]!.cookies.consume(reply, now: now)
        else { return .dropped(drop(.invalidCookieReply)) }
        return .consumed
    }

    /// Installs a new keypair and records the handshake time.
    mutating func beginSession(_ id: PeerID, _ keypair: Keypair, now: Instant) {
        for index in peers[id]!.keypairs.install(keypair) where indices[index] == .keypair(id) {
            indices[index] = nil
        }
        indices[keypair.localIndex] = .keypair(id)
        peers[id]!.statistics.lastHandshakeUnixNanoseconds = wallClockOffset &+ now.nanoseconds
        peers[id]!.timers.sessionDerived(now: now)
    }
}

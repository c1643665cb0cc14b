import CryptoPrimitives

// The data paths (whitepaper §5.4.6). Each is split in three so a device
// can spread the AEAD work over cores while the state stays in one place:
//
//     prepare  (needs the Interface: route, pick keypair, take a counter)
//     seal/open (pure: a job and a buffer; run anywhere, in parallel)
//     finish   (needs the Interface, in arrival order: replay window,
//               key confirmation, roaming, timers, AllowedIPs)
//
// `encapsulate` and `decapsulate` do all three in one call.

/// Everything needed to encrypt one packet, detached from the Interface.
public struct SealJob: Sendable {
    public let peer: PeerID
    public let endpoint: Endpoint
    let key: Bytes32
    let receiverIndex: UInt32
    let counter: UInt64
    let mtu: Int

    /// Pads the packet at `packet` to a multiple of 16 (bounded by the
    /// MTU), encrypts it in place and writes the header in the 16 bytes
    /// before it. Needs 16 bytes of headroom and 31 of tailroom; returns the
    /// datagram's range, or nil if the buffer is too small.
    public func seal(_ buffer: UnsafeMutableRawBufferPointer, packet: Range<Int>) -> Range<Int>? {
        let length = packet.count
        let padding = Self.padding(packetCount: length, mtu: mtu)
        let start = packet.lowerBound - TransportHeader.size
        let end = packet.upperBound + padding + ChaChaPolyTag.size
        guard start >= 0, end <= buffer.count else { return nil }
        if padding > 0 {
            (buffer.baseAddress! + packet.upperBound).initializeMemory(as: UInt8.self, repeating: 0, count: padding)
        }
        let body = UnsafeMutableRawBufferPointer(rebasing: buffer[packet.lowerBound..<end])
        guard
            (try? ChaCha20Poly1305.seal(
                key: key, nonce: Nonce12(counter: counter), buffer: body, plaintextCount: length + padding)) != nil
        else { return nil }
        TransportHeader(receiverIndex: receiverIndex, counter: counter).write(to: buffer, at: start)
        return start..<end
    }

    /// Zero bytes appended so the plaintext is a multiple of 16, never past
    /// the MTU (§5.4.6: "padded to a multiple of 16 bytes").
    static func padding(packetCount: Int, mtu: Int) -> Int {
        var lastUnit = packetCount
        if lastUnit > mtu, mtu > 0 { lastUnit %= mtu }
        let padded = mtu > 0 ? min(mtu, (lastUnit + 15) & ~15) : (lastUnit + 15) & ~15
        return max(0, padded - lastUnit)
    }

    /// The size of the transport datagram `seal` makes from `packetCount` bytes.
    static func datagramSize(packetCount: Int, mtu: Int) -> Int {
        TransportHeader.size + packetCount + padding(packetCount: packetCount, mtu: mtu) + ChaChaPolyTag.size
    }
}

/// Everything needed to decrypt one transport datagram.
public struct OpenJob: Sendable {
    public let peer: PeerID
    let localIndex: UInt32
    let key: Bytes32
    let counter: UInt64

    /// Decrypts the datagram at `datagram` in place; returns the range of
    /// the (still padded) plaintext, or nil if the tag does not verify.
    public func open(_ buffer: UnsafeMutableRawBufferPointer, datagram: Range<Int>) -> Range<Int>? {
        let body = datagram.lowerBound + TransportHeader.size
        guard datagram.count >= TransportHeader.minimumMessageSize, datagram.upperBound <= buffer.count,
            let count = try? ChaCha20Poly1305.open(
                key: key, nonce: Nonce12(counter: counter),
                buffer: UnsafeMutableRawBufferPointer(rebasing: buffer[body..<datagram.upperBound]))
        else { return nil }
        return body..<(body + count)
    }
}

extension Interface {
    public enum SealPreparation: Sendable {
        case seal(SealJob)
        case queued(peer: PeerID)
        case dropped(DropReason)
    }

    public enum OpenPreparation: Sendable {
        case open(OpenJob)
        /// A handshake or cookie message, handled completely.
        case done(DecapsulationResult)
    }

    // MARK: send

    /// Routes an IP packet from the tunnel and reserves a counter for it.
    public mutating func prepareEncapsulation(_ packet: UnsafeRawBufferPointer, now: Instant) -> SealPreparation {
        guard let destination = InnerPacket.destination(packet) else { return .dropped(drop(.invalidInnerPacket)) }
        guard let id = routes.lookup(destination) else { return .dropped(drop(.noRoute)) }
        if let job = reserveSend(id, packetCount: packet.count, now: now) { return .seal(job) }
        stage(id, Array(packet))
        sendStaged(id, now: now)
        return .queued(peer: id)
    }

    /// Encrypts the IP packet at `packet` in place (16 bytes of headroom and
    /// 31 of tailroom needed).
    public mutating func encapsulate(_ buffer: UnsafeMutableRawBufferPointer, packet: Range<Int>, now: Instant)
        -> EncapsulationResult
    {
        guard packet.lowerBound >= TransportHeader.size,
            packet.upperBound + Implementation.transportTailroom <= buffer.count
        else { return .dropped(drop(.bufferTooSmall)) }
        switch prepareEncapsulation(UnsafeRawBufferPointer(rebasing: buffer[packet]), now: now) {
        case .dropped(let reason): return .dropped(reason)
        case .queued(let id): return .queued(peer: id)
        case .seal(let job):
            guard let datagram = job.seal(buffer, packet: packet) else { return .dropped(drop(.bufferTooSmall)) }
            return .send(peer: job.peer, endpoint: job.endpoint, datagram: datagram)
        }
    }

    /// Takes the next counter of the current keypair if it may still send,
    /// running the send-side timer hooks and rekey check. The datagram is
    /// counted in the peer's statistics here, since a device may seal the
    /// job anywhere and send it without telling the core again.
    mutating func reserveSend(_ id: PeerID, packetCount: Int, now: Instant) -> SealJob? {
        guard let endpoint = peers[id]?.endpoint, let keypair = peers[id]!.keypairs.current,
            keypair.canSend(now: now)
        else { return nil }
        let isKeepalive = packetCount == 0
        let counter = keypair.sendingCounter
        peers[id]!.keypairs.current!.sendingCounter += 1
        peers[id]!.statistics.sentBytes &+= UInt64(SealJob.datagramSize(packetCount: packetCount, mtu: mtu))
        peers[id]!.timers.anyAuthenticatedPacketTraversal(now: now)
        peers[id]!.timers.anyAuthenticatedPacketSent()
        if !isKeepalive { peers[id]!.timers.dataSent(now: now, jitter: Interface.jitter) }
        // §6.2: the sender of a keypair that is old or heavily used starts a
        // new handshake (only the initiator rekeys on age).
        if counter + 1 >= Protocol.rekeyAfterMessages
            || (keypair.isInitiator && now.isAtLeast(Nanoseconds.rekeyAfterTime, after: keypair.birth))
        {
            sendHandshakeInitiation(id, isRetry: false, now: now)
        }
        return SealJob(
            peer: id, endpoint: endpoint, key: keypair.sendingKey, receiverIndex: keypair.remoteIndex,
            counter: counter, mtu: mtu)
    }

    /// Queues a packet until a session exists, dropping the oldest when full.
    mutating func stage(_ id: PeerID, _ packet: [UInt8]) {
        if peers[id]!.staged.count >= Implementation.maxStagedPackets {
            peers[id]!.staged.removeFirst()
            drops.count(.stagedQueueFull)
        }
        peers[id]!.staged.append(packet)
    }

    /// Sends what is staged if the session allows, else asks for a handshake.
    mutating func sendStaged(_ id: PeerID, now: Instant) {
        guard peers[id] != nil else { return }
        guard peers[id]!.endpoint != nil, let current = peers[id]!.keypairs.current, current.canSend(now: now) else {
            sendHandshakeInitiation(id, isRetry: false, now: now)
            return
        }
        let packets = peers[id]!.staged
        peers[id]!.staged.removeAll()
        for packet in packets {
            guard let job = reserveSend(id, packetCount: packet.count, now: now) else {
                stage(id, packet)
                continue
            }
            var buffer = [UInt8](
                repeating: 0, count: TransportHeader.size + packet.count + Implementation.transportTailroom)
            buffer.replaceSubrange(TransportHeader.size..<(TransportHeader.size + packet.count), with: packet)
            let range = buffer.withUnsafeMutableBytes {
                job.seal($0, packet: TransportHeader.size..<(TransportHeader.size + packet.count))
            }
            guard let range else { continue }
            // Already counted by reserveSend.
            outbox.append(OutgoingDatagram(peer: id, endpoint: job.endpoint, bytes: Array(buffer[range])))
        }
    }

    /// An empty transport message: proof of life, and key confirmation for
    /// a responder (§6.5).
    mutating func sendKeepalive(_ id: PeerID, now: Instant) {
        guard peers[id] != nil else { return }
        if peers[id]!.staged.isEmpty { peers[id]!.staged.append([]) }
        sendStaged(id, now: now)
    }

    // MARK: receive

    /// Classifies a datagram; handles handshake and cookie messages fully,
    /// and for transport data finds the keypair and returns the job to open.
    public mutating func prepareDecapsulation(_ datagram: UnsafeRawBufferPointer, source: Endpoint, now: Instant)
        -> OpenPreparation
    {
        switch MessageType.classify(datagram) {
        case nil: return .done(.dropped(drop(.malformed)))
        case .handshakeInitiation: return .done(consumeInitiation(datagram, source: source, now: now))
        case .handshakeResponse: return .done(consumeResponse(datagram, source: source, now: now))
        case .cookieReply: return .done(consumeCookieReply(datagram, now: now))
        case .transportData: break
        }
        let receiver = datagram.le32(at: 4)
        let counter = datagram.le64(at: 8)
        guard case .keypair(let id) = indices[receiver], let keypair = peers[id]?.keypairs.keypair(localIndex: receiver)
        else { return .done(.dropped(drop(.noSession))) }
        guard keypair.canReceive(now: now) else { return .done(.dropped(drop(.expiredKeypair))) }
        guard keypair.replay.wouldAccept(counter) else { return .done(.dropped(drop(.replay))) }
        return .open(OpenJob(peer: id, localIndex: receiver, key: keypair.receivingKey, counter: counter))
    }

    /// Completes a transport datagram after `OpenJob.open`: `plaintext` is
    /// its result (nil if the tag failed). Must be called in arrival order
    /// per peer.
    public mutating func finishDecapsulation(
        _ job: OpenJob, buffer: UnsafeRawBufferPointer, plaintext: Range<Int>?, datagramSize: Int,
        source: Endpoint, now: Instant
    ) -> DecapsulationResult {
        guard let plaintext else { return .dropped(drop(.decryptionFailed)) }
        let id = job.peer
        guard peers[id] != nil,
            let fresh = peers[id]!.keypairs.withKeypair(localIndex: job.localIndex, { $0.replay.validate(job.counter) })
        else { return .dropped(drop(.noSession)) }
        guard fresh else { return .dropped(drop(.replay)) }

        peers[id]!.statistics.receivedBytes &+= UInt64(datagramSize)
        // Roaming (§2.1): the endpoint follows the last authenticated packet.
        peers[id]!.endpoint = source
        let confirmation = peers[id]!.keypairs.confirmNext(localIndex: job.localIndex)
        if confirmation.rotated {
            if let dropped = confirmation.dropped, indices[dropped] == .keypair(id) { indices[dropped] = nil }
            peers[id]!.timers.handshakeComplete()
            sendStaged(id, now: now)
        }
        keepKeyFreshOnReceive(id, now: now)
        peers[id]!.timers.anyAuthenticatedPacketReceived()
        peers[id]!.timers.anyAuthenticatedPacketTraversal(now: now)

        if plaintext.isEmpty { return .consumed }  // a keepalive
        peers[id]!.timers.dataReceived(now: now)

        let packet = UnsafeRawBufferPointer(rebasing: buffer[plaintext])
        guard let length = InnerPacket.claimedLength(packet), let sourceAddress = InnerPacket.source(packet) else {
            return .dropped(drop(.invalidInnerPacket))
        }
        guard routes.lookup(sourceAddress) == id else { return .dropped(drop(.disallowedSource)) }
        return .tunnel(peer: id, packet: plaintext.lowerBound..<(plaintext.lowerBound + length))
    }

    /// Decrypts the datagram at `datagram` in place. On `.tunnel` the IP
    /// packet is at the returned range of `buffer`.
    public mutating func decapsulate(
        _ buffer: UnsafeMutableRawBufferPointer, datagram: Range<Int>, source: Endpoint, now: Instant
    ) -> DecapsulationResult {
        guard datagram.lowerBound >= 0, datagram.upperBound <= buffer.count else {
            return .dropped(drop(.bufferTooSmall))
        }
        switch prepareDecapsulation(UnsafeRawBufferPointer(rebasing: buffer[datagram]), source: source, now: now) {
        case .done(let result): return result
        case .open(let job):
            let plaintext = job.open(buffer, datagram: datagram)
            return finishDecapsulation(
                job, buffer: UnsafeRawBufferPointer(buffer), plaintext: plaintext, datagramSize: datagram.count,
                source: source, now: now)
        }
    }

    /// §6.2: an initiator whose session is close to REJECT_AFTER_TIME and
    /// still receiving starts one last handshake, so the session does not
    /// lapse when only the responder is sending.
    mutating func keepKeyFreshOnReceive(_ id: PeerID, now: Instant) {
        guard let current = peers[id]?.keypairs.current, current.isInitiator,
            !peers[id]!.timers.sentLastMinuteHandshake,
            now.isAtLeast(Nanoseconds.lastMinuteRekey, after: current.birth)
        else { return }
        peers[id]!.timers.sentLastMinuteHandshake = true
        sendHandshakeInitiation(id, isRetry: false, now: now)
    }
}

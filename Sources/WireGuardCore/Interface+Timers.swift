// What each timer of `PeerTimers` does when it expires (kernel timers.c).

extension Interface {
    /// The earliest moment `updateTimers` has something to do.
    public var nextTimerDeadline: Instant? {
        peers.values.compactMap { $0.timers.nextDeadline }.min()
    }

    /// Fires every timer due at `now`; datagrams come out of `takeOutgoing()`.
    public mutating func updateTimers(now: Instant) {
        for id in peers.keys {
            for kind in PeerTimers.Kind.allCases {
                guard let deadline = peers[id]?.timers.deadline(kind), deadline <= now else { continue }
                peers[id]!.timers.disarm(kind)
                expired(kind, id, now: now)
            }
        }
    }

    private mutating func expired(_ kind: PeerTimers.Kind, _ id: PeerID, now: Instant) {
        switch kind {
        case .retransmitHandshake:
            if peers[id]!.timers.handshakeAttempts > Protocol.maxTimerHandshakes {
                // §6.4: give up after REKEY_ATTEMPT_TIME; drop what waited
                // and erase keys later if nothing else happens.
                peers[id]!.timers.sendKeepalive = nil
                drops[.stagedQueueFull] &+= UInt64(peers[id]!.staged.count)
                peers[id]!.staged.removeAll()
                if peers[id]!.timers.zeroKeyMaterial == nil {
                    peers[id]!.timers.zeroKeyMaterial = now + Protocol.zeroKeyMaterialAfter
                }
            } else {
                peers[id]!.timers.handshakeAttempts += 1
                sendHandshakeInitiation(id, isRetry: true, now: now)
            }
        case .sendKeepalive:
            sendKeepalive(id, now: now)
            if peers[id]!.timers.needAnotherKeepalive {
                peers[id]!.timers.needAnotherKeepalive = false
                peers[id]!.timers.sendKeepalive = now + Protocol.keepaliveTimeout
            }
        case .newHandshake:
            sendHandshakeInitiation(id, isRetry: false, now: now)
        case .zeroKeyMaterial:
            clearSessions(id)
        case .persistentKeepalive:
            if peers[id]!.timers.persistentKeepaliveInterval != nil { sendKeepalive(id, now: now) }
        }
    }
}

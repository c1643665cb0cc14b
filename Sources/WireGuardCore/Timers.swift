/// The per-peer timers of whitepaper §6 in one table, after the kernel's
/// `timers.c` and wireguard-go's `timers.go`. Packet paths call the event
/// hooks below, named for what just happened; what each timer then does on
/// expiry lives in `Interface+Timers.swift`.
///
/// | timer               | armed when                                   | on expiry                                   |
/// |---------------------|----------------------------------------------|---------------------------------------------|
/// | retransmitHandshake | an initiation is sent: REKEY_TIMEOUT+jitter  | resend, or give up after MAX_TIMER_HANDSHAKES |
/// | sendKeepalive       | data received, nothing sent back: KEEPALIVE  | send an empty packet                        |
/// | newHandshake        | data sent, nothing received: KEEPALIVE+REKEY_TIMEOUT+jitter | start a handshake          |
/// | zeroKeyMaterial     | a session is derived: 3×REJECT_AFTER_TIME    | erase all keys and handshake state          |
/// | persistentKeepalive | any authenticated packet in or out: interval | send an empty packet                        |
package struct PeerTimers: Sendable {
    package var retransmitHandshake: Instant?
    package var sendKeepalive: Instant?
    package var newHandshake: Instant?
    package var zeroKeyMaterial: Instant?
    package var persistentKeepalive: Instant?

    package var handshakeAttempts = 0
    package var needAnotherKeepalive = false
    package var sentLastMinuteHandshake = false
    package var persistentKeepaliveInterval: Duration?

    package enum Kind: CaseIterable, Sendable {
        case retransmitHandshake, sendKeepalive, newHandshake, zeroKeyMaterial, persistentKeepalive
    }

    // MARK: event hooks

    /// A data packet (not a keepalive) was sent: if nothing comes back in
    /// time, the session may be dead, so plan a new handshake.
    mutating func dataSent(now: Instant, jitter: () -> Duration) {
        if newHandshake == nil {
            newHandshake = Instant(nanoseconds: now.nanoseconds &+ Nanoseconds.newHandshakeAfter) + jitter()
        }
    }

    /// A data packet was received: we owe the peer a packet within
    /// KEEPALIVE_TIMEOUT so it knows the session works.
    mutating func dataReceived(now: Instant) {
        if sendKeepalive == nil {
            sendKeepalive = Instant(nanoseconds: now.nanoseconds &+ Nanoseconds.keepaliveTimeout)
        } else {
            needAnotherKeepalive = true
        }
    }

    /// Anything authenticated went out: it serves as the keepalive.
    mutating func anyAuthenticatedPacketSent() { sendKeepalive = nil }

    /// Anything authenticated came in: the session is alive.
    mutating func anyAuthenticatedPacketReceived() { newHandshake = nil }

    mutating func handshakeInitiated(now: Instant, jitter: Duration) {
        retransmitHandshake = now + Protocol.rekeyTimeout + jitter
    }

    mutating func handshakeComplete() {
        retransmitHandshake = nil
        handshakeAttempts = 0
        sentLastMinuteHandshake = false
    }

    mutating func sessionDerived(now: Instant) {
        zeroKeyMaterial = now + Protocol.zeroKeyMaterialAfter
    }

    mutating func anyAuthenticatedPacketTraversal(now: Instant) {
        if let interval = persistentKeepaliveInterval {
            persistentKeepalive = now + interval
        }
    }

    // MARK: expiry

    package func deadline(_ kind: Kind) -> Instant? {
        switch kind {
        case .retransmitHandshake: retransmitHandshake
        case .sendKeepalive: sendKeepalive
        case .newHandshake: newHandshake
        case .zeroKeyMaterial: zeroKeyMaterial
        case .persistentKeepalive: persistentKeepalive
        }
    }

    mutating func disarm(_ kind: Kind) {
        switch kind {
        case .retransmitHandshake: retransmitHandshake = nil
        case .sendKeepalive: sendKeepalive = nil
        case .newHandshake: newHandshake = nil
        case .zeroKeyMaterial: zeroKeyMaterial = nil
        case .persistentKeepalive: persistentKeepalive = nil
        }
    }

    /// The earliest armed deadline.
    package var nextDeadline: Instant? {
        Kind.allCases.compactMap { deadline($0) }.min()
    }
}

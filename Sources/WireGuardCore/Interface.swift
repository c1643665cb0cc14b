import CryptoPrimitives

/// A datagram the core wants sent. Handshake messages, cookie replies,
/// keepalives and packets that waited for a handshake come out this way;
/// the caller drains them with `takeOutgoing()` after each call.
public struct OutgoingDatagram: Sendable, Equatable {
    public let peer: PeerID?
    public let endpoint: Endpoint
    public let bytes: [UInt8]

    public init(peer: PeerID?, endpoint: Endpoint, bytes: [UInt8]) {
        self.peer = peer
        self.endpoint = endpoint
        self.bytes = bytes
    }
}

/// What a datagram from the network turned into.
public enum DecapsulationResult: Sendable, Equatable {
    /// A decrypted IP packet for the tunnel, at `packet` in the caller's buffer.
    case tunnel(peer: PeerID, packet: Range<Int>)
    /// Handled inside the protocol (handshake, cookie, keepalive); check
    /// `takeOutgoing()` for anything to send.
    case consumed
    case dropped(DropReason)
}

/// What an IP packet from the tunnel turned into.
public enum EncapsulationResult: Sendable, Equatable {
    /// Send `datagram` (a range of the caller's buffer) to `endpoint`.
    case send(peer: PeerID, endpoint: Endpoint, datagram: Range<Int>)
    /// Kept until a handshake completes; it will come out of `takeOutgoing()`.
    case queued(peer: PeerID)
    case dropped(DropReason)
}

/// A WireGuard interface as a pure state machine: one static identity, its
/// peers, their sessions and timers. Bytes and `now` go in; results and
/// datagrams to send come out. It owns no socket, thread or clock, so the
/// same code runs under the device's event loop and under a test's fake
/// clock. (Structure after boringtun's `noise` module and the kernel's
/// `noise.c`/`timers.c`/`send.c`/`receive.c`.)
///
/// Index table: every handshake and keypair we hold is named by a random
/// 32-bit local index; the peer writes it as "receiver" in what it sends
/// us, which is how a datagram finds its session without trying keys.
public struct Interface: Sendable {
    package enum IndexEntry: Sendable, Equatable {
        case handshake(PeerID)
        case keypair(PeerID)
        var peer: PeerID {
            switch self {
            case .handshake(let p), .keypair(let p): p
            }
        }
    }

    package private(set) var identity: SecretKeyBox
    package var cookieChecker: CookieChecker
    package var peers = PeerTable()
    package var peerByKey: [X25519.PublicKey: PeerID] = [:]
    package var indices: [UInt32: IndexEntry] = [:]
    package var routes = AllowedIPs<PeerID>()
    package var rateLimiter = RateLimiter()
    package var outbox: [OutgoingDatagram] = []
    private var nextPeerID: UInt32 = 1
    package var underLoadUntil: Instant?

    /// Unix time in nanoseconds at `Instant.zero`: TAI64N timestamps are
    /// `wallClockOffset + now`, so the core needs no wall clock of its own.
    public var wallClockOffset: Int64
    /// The tunnel MTU, used to bound padding (§5.4.6: pad to 16 but never
    /// past the MTU).
    public var mtu: Int = 1420
    public internal(set) var drops = DropCounters()

    public init(privateKey: consuming X25519.PrivateKey, wallClockOffset: Int64 = 0) {
        let box = SecretKeyBox(privateKey)
        identity = box
        cookieChecker = CookieChecker(localPublicKey: box.publicKey)
        self.wallClockOffset = wallClockOffset
    }

    public var publicKey: X25519.PublicKey { identity.publicKey }

    /// Lends the private key (for the UAPI `get`).
    public func withPrivateKey<R>(_ body: (borrowing X25519.PrivateKey) throws -> R) rethrows -> R {
        try body(identity.key)
    }

    /// An independent copy of our private key (for a restart with the same key).
    public func duplicatePrivateKey() -> X25519.PrivateKey { identity.key.duplicate() }

    /// Replaces our static key. Every session and handshake ends, and the
    /// precomputed per-peer values are redone; a peer whose key is now ours
    /// is removed (the kernel does the same).
    public mutating func setPrivateKey(_ key: consuming X25519.PrivateKey) {
        identity = SecretKeyBox(key)
        cookieChecker = CookieChecker(localPublicKey: identity.publicKey)
        for id in peers.keys {
            let pub = peers[id]!.publicKey
            if pub == identity.publicKey {
                removePeer(id)
                continue
            }
            clearSessions(id)
            peers[id]!.staticStatic = (try? identity.key.sharedSecret(with: pub)) ?? .zero
        }
    }

    // MARK: peers

    public enum ConfigurationError: Error, Equatable {
        case peerIsSelf
        case tooManyPeers
    }

    /// Adds a peer, or returns the existing one with this key.
    @discardableResult
    public mutating func addPeer(publicKey: X25519.PublicKey) throws(ConfigurationError) -> PeerID {
        if let id = peerByKey[publicKey] { return id }
        guard publicKey != identity.publicKey else { throw .peerIsSelf }
        guard peers.count < Implementation.maxPeers else { throw .tooManyPeers }
        let id = PeerID(rawValue: nextPeerID)
        nextPeerID &+= 1
        let ss = (try? identity.key.sharedSecret(with: publicKey)) ?? .zero
        peers.insert(
            Peer(
                id: id, publicKey: publicKey, presharedKey: .zero, staticStatic: ss,
                initiatorStart: NoiseIKpsk2.initialState(.wireGuard, responderStatic: publicKey),
                cookies: CookieGenerator(peerPublicKey: publicKey)),
            as: id)
        peerByKey[publicKey] = id
        return id
    }

    public mutating func removePeer(_ id: PeerID) {
        guard let peer = peers[id] else { return }
        clearSessions(id)
        routes.removeAll(for: id)
        peerByKey[peer.publicKey] = nil
        peers[id] = nil
    }

    public func peer(forKey key: X25519.PublicKey) -> PeerID? { peerByKey[key] }
    public var peerIDs: [PeerID] { peers.keys }
    public func publicKey(of id: PeerID) -> X25519.PublicKey? { peers[id]?.publicKey }

    public mutating func setPresharedKey(_ id: PeerID, _ key: Bytes32?) {
        guard peers[id] != nil else { return }
        peers[id]!.presharedKey = key ?? .zero
    }
    public func presharedKey(of id: PeerID) -> Bytes32? {
        guard let k = peers[id]?.presharedKey, !k.isZero else { return nil }
        return k
    }

    public mutating func setEndpoint(_ id: PeerID, _ endpoint: Endpoint?) {
        guard peers[id] != nil else { return }
        peers[id]!.endpoint = endpoint
    }
    public func endpoint(of id: PeerID) -> Endpoint? { peers[id]?.endpoint }

    /// Sets the persistent keepalive interval (nil or zero turns it off);
    /// turning it on sends a keepalive at once, as `wg set` does.
    public mutating func setPersistentKeepalive(_ id: PeerID, seconds: UInt16?, now: Instant) {
        guard peers[id] != nil else { return }
        let interval: Duration? = (seconds ?? 0) == 0 ? nil : .seconds(Int(seconds!))
        let wasOff = peers[id]!.timers.persistentKeepaliveInterval == nil
        peers[id]!.timers.persistentKeepaliveInterval = interval
        if interval == nil {
            peers[id]!.timers.persistentKeepalive = nil
        } else if wasOff, peers[id]!.endpoint != nil {
            sendKeepalive(id, now: now)
        }
    }
    public func persistentKeepalive(of id: PeerID) -> UInt16? {
        guard let d = peers[id]?.timers.persistentKeepaliveInterval else { return nil }
        return UInt16(d.components.seconds)
    }

    public mutating func addAllowedIP(_ id: PeerID, _ prefix: IPPrefix) {
        guard peers[id] != nil else { return }
        routes.insert(prefix, id)
    }
    public mutating func removeAllowedIP(_ id: PeerID, _ prefix: IPPrefix) {
        if routes.lookupExact(prefix) == id { routes.remove(prefix) }
    }
    public mutating func clearAllowedIPs(_ id: PeerID) { routes.removeAll(for: id) }
    public func allowedIPs(of id: PeerID) -> [IPPrefix] { routes.prefixes(for: id) }
    /// The peer whose AllowedIPs hold `address` most specifically.
    public func route(to address: IPAddress) -> PeerID? { routes.lookup(address) }

    /// Whether the peer has any keypair (for tests and `wg show`).
    public func hasSession(_ id: PeerID) -> Bool { !(peers[id]?.keypairs.allIndices.isEmpty ?? true) }

    public func statistics(of id: PeerID) -> PeerStatistics? { peers[id]?.statistics }

    // MARK: output

    /// Datagrams produced since the last call, in the order to send them.
    public mutating func takeOutgoing() -> [OutgoingDatagram] {
        defer { outbox.removeAll(keepingCapacity: true) }
        return outbox
    }

    public var hasOutgoing: Bool { !outbox.isEmpty }

    // MARK: load

    /// The device reports how many handshake messages wait in its queue.
    /// At an eighth of the bound or more we are "under load" (§5.3) for at
    /// least a second: handshakes then need mac2 and are rate-limited.
    public mutating func reportHandshakeBacklog(_ count: Int, now: Instant) {
        if count >= Implementation.maxQueuedIncomingHandshakes / 8 {
            underLoadUntil = now + Implementation.underLoadAfterTime
        }
    }

    public func isUnderLoad(now: Instant) -> Bool {
        guard let until = underLoadUntil else { return false }
        return now < until
    }

    // MARK: helpers shared by the packet paths

    /// Counts drops the shell makes before the core sees a datagram.
    public mutating func countDrops(_ reason: DropReason, _ count: Int = 1) {
        drops[reason] &+= UInt64(count)
    }

    mutating func drop(_ reason: DropReason) -> DropReason {
        drops.count(reason)
        return reason
    }

    /// A fresh random local index not in use.
    mutating func allocateIndex(_ entry: IndexEntry) -> UInt32 {
        while true {
            let candidate = UInt32(truncatingIfNeeded: SecureRandom.uint64())
            if indices[candidate] == nil {
                indices[candidate] = entry
                return candidate
            }
        }
    }

    /// Random delay added to retransmissions (kernel: up to HZ/3). Static,
    /// so passing it as a closure captures nothing (a closure over `self`
    /// would copy the whole interface and defeat in-place updates).
    static func jitter() -> Duration {
        .milliseconds(Int(SecureRandom.uniform(Implementation.rekeyTimeoutJitterMaxMilliseconds)))
    }

    func timestamp(now: Instant) -> TAI64N {
        TAI64N(unixNanoseconds: wallClockOffset &+ now.nanoseconds)
    }

    /// Erases every keypair and the pending handshake of a peer.
    mutating func clearSessions(_ id: PeerID) {
        guard peers[id] != nil else { return }
        for index in peers[id]!.keypairs.clear() { indices[index] = nil }
        if let pending = peers[id]!.pending {
            if indices[pending.localIndex] == .handshake(id) { indices[pending.localIndex] = nil }
            peers[id]!.pending = nil
        }
    }
}

extension AllowedIPs {
    func lookupExact(_ prefix: IPPrefix) -> Value? {
        guard let v = lookup(prefix.address) else { return nil }
        return prefixes(for: v).contains(prefix) ? v : nil
    }
}

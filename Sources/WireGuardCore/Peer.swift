import CryptoPrimitives

/// A peer's handle inside one `Interface`.
public struct PeerID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public static func < (a: PeerID, b: PeerID) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "peer#\(rawValue)" }
}

/// An X25519 private key with one owner, kept by reference so it can sit in
/// copyable state (the key itself is zeroed when the box goes away).
package final class SecretKeyBox: Sendable {
    package let key: X25519.PrivateKey
    package let publicKey: X25519.PublicKey

    package init(_ key: consuming X25519.PrivateKey) {
        publicKey = key.publicKey
        self.key = key
    }

    package static func generate() -> SecretKeyBox { SecretKeyBox(X25519.PrivateKey()) }
}

/// An initiation of ours waiting for its response.
package struct PendingInitiation: Sendable {
    package let localIndex: UInt32
    package let ephemeral: SecretKeyBox
    package let state: SymmetricState
}

/// What `wg show` reports for a peer.
public struct PeerStatistics: Sendable, Equatable {
    public var receivedBytes: UInt64 = 0
    public var sentBytes: UInt64 = 0
    /// Unix time (nanoseconds) of the last completed handshake.
    public var lastHandshakeUnixNanoseconds: Int64?
}

/// Everything the core keeps about one peer.
package struct Peer: Sendable {
    package let id: PeerID
    package let publicKey: X25519.PublicKey
    package var presharedKey: Bytes32
    /// DH(our static, their static), computed once per configuration (§5.4.2
    /// allows it, and it saves a quarter of a handshake's DH work).
    package var staticStatic: Bytes32
    /// Cᵢ, Hᵢ with their static key mixed in: the first step of every
    /// initiation we send them, also precomputed.
    package var initiatorStart: SymmetricState
    package var cookies: CookieGenerator
    package var endpoint: Endpoint?

    package var pending: PendingInitiation?
    package var latestTimestamp: TAI64N = .zero
    package var lastInitiationConsumed: Instant?
    package var lastSentHandshake: Instant?

    package var keypairs = Keypairs()
    package var timers = PeerTimers()
    /// Plaintext packets waiting for a usable keypair, oldest first.
    package var staged: [[UInt8]] = []
    package var statistics = PeerStatistics()
}

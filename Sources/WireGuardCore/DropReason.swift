/// Why a datagram or packet was not delivered. Every drop is counted by
/// reason (`Interface.drops`), so an operator can tell an attack, a
/// misconfiguration and a lossy path apart.
public enum DropReason: Int, CaseIterable, Sendable, CustomStringConvertible {
    /// Wrong size for its type, unknown type word, or nonzero reserved bytes.
    case malformed
    /// A handshake message whose mac1 is not for our public key.
    case invalidMAC1
    /// Under load and without a valid mac2: answered with a cookie reply.
    case cookieReplySent
    /// Under load and over the per-source handshake rate.
    case rateLimited
    /// A handshake message that failed to decrypt or used a weak key.
    case handshakeFailed
    /// An initiation from a static key that is not one of our peers.
    case unknownPeer
    /// An initiation whose timestamp is not newer than the last accepted.
    case replayedTimestamp
    /// An initiation arriving too soon after the previous one.
    case initiationFlood
    /// A response for which no initiation of ours is waiting.
    case unexpectedResponse
    /// A cookie reply that did not authenticate or answers nothing we sent.
    case invalidCookieReply
    /// Transport data for a receiver index we do not have: no session.
    case noSession
    /// Transport data on a keypair past REJECT_AFTER_TIME.
    case expiredKeypair
    /// Transport data whose tag did not verify.
    case decryptionFailed
    /// Transport data with a counter already seen or behind the window.
    case replay
    /// Decrypted packet whose source is not in the sending peer's AllowedIPs.
    case disallowedSource
    /// Decrypted (or outgoing) packet that is not a well-formed IP packet.
    case invalidInnerPacket
    /// Outgoing packet whose destination is in no peer's AllowedIPs.
    case noRoute
    /// Outgoing packet pushed out of a full queue while waiting for a handshake.
    case stagedQueueFull
    /// The caller's buffer had too little head- or tailroom.
    case bufferTooSmall
    /// A handshake message found the device's handshake queue full.
    case handshakeQueueFull

    public var description: String {
        switch self {
        case .malformed: "malformed"
        case .invalidMAC1: "invalid mac1"
        case .cookieReplySent: "under load, cookie reply sent"
        case .rateLimited: "rate limited"
        case .handshakeFailed: "handshake failed"
        case .unknownPeer: "unknown peer"
        case .replayedTimestamp: "replayed timestamp"
        case .initiationFlood: "initiation flood"
        case .unexpectedResponse: "unexpected response"
        case .invalidCookieReply: "invalid cookie reply"
        case .noSession: "no session"
        case .expiredKeypair: "expired keypair"
        case .decryptionFailed: "decryption failed"
        case .replay: "replay"
        case .disallowedSource: "source not in allowed IPs"
        case .invalidInnerPacket: "invalid inner packet"
        case .noRoute: "no route"
        case .stagedQueueFull: "staged queue full"
        case .bufferTooSmall: "buffer too small"
        case .handshakeQueueFull: "handshake queue full"
        }
    }
}

/// A counter per `DropReason`.
public struct DropCounters: Sendable, Equatable {
    private var counts = [UInt64](repeating: 0, count: DropReason.allCases.count)

    public init() {}

    public subscript(reason: DropReason) -> UInt64 {
        get { counts[reason.rawValue] }
        set { counts[reason.rawValue] = newValue }
    }

    mutating func count(_ reason: DropReason) { counts[reason.rawValue] &+= 1 }

    public var total: UInt64 { counts.reduce(0, &+) }

    /// Nonzero counters, for logs and `wg`-style dumps.
    public var nonzero: [(DropReason, UInt64)] {
        DropReason.allCases.compactMap { counts[$0.rawValue] == 0 ? nil : ($0, counts[$0.rawValue]) }
    }

    /// Merges counters kept elsewhere (for a device that counts per thread).
    public mutating func add(_ other: DropCounters) {
        for i in counts.indices { counts[i] &+= other.counts[i] }
    }
}

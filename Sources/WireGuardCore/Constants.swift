/// Every number WireGuard's behaviour depends on, in one place.
///
/// `Protocol` holds the values the whitepaper fixes (§6.1, "Timers and
/// Counters"; §5.4 for sizes and labels): changing one breaks interop or
/// security. `Implementation` holds this implementation's own choices, made
/// to match the Linux kernel (`messages.h`, `ratelimiter.c`, `cookie.h`) and
/// wireguard-go (`device/constants.go`).
public enum Protocol {
    // MARK: §6.1 timers and counters

    /// After this many messages on a keypair the sender starts a new handshake.
    public static let rekeyAfterMessages: UInt64 = 1 << 60
    /// No message is sent or accepted with a counter at or past this. The
    /// kernel's value (2^64 − COUNTER_WINDOW_SIZE − 2): the replay window's
    /// 1-based counter must never wrap.
    public static let rejectAfterMessages: UInt64 = UInt64.max - UInt64(ReplayWindow.windowSize) - 1
    /// The initiator of a keypair starts a new handshake when sending on it
    /// once it is this old.
    public static let rekeyAfterTime: Duration = .seconds(120)
    /// A keypair this old is never used to send or receive.
    public static let rejectAfterTime: Duration = .seconds(180)
    /// Handshake retransmission gives up after this long.
    public static let rekeyAttemptTime: Duration = .seconds(90)
    /// Interval between handshake retransmissions (plus jitter).
    public static let rekeyTimeout: Duration = .seconds(5)
    /// Receiving data and sending nothing back for this long triggers a keepalive.
    public static let keepaliveTimeout: Duration = .seconds(10)
    /// A cookie is valid for this long after the responder made it; the
    /// responder rotates its cookie secret on the same period.
    public static let cookieRefreshTime: Duration = .seconds(120)

    /// Keys and handshake state are zeroed after this long without a new handshake.
    public static var zeroKeyMaterialAfter: Duration { rejectAfterTime * 3 }
    /// How many times an initiation is retransmitted before giving up.
    public static var maxTimerHandshakes: Int { Int(rekeyAttemptTime / rekeyTimeout) }

    // MARK: §5.4 constructions

    /// The Noise protocol name hashed into the initial chaining key.
    public static let construction = Array("Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s".utf8)
    /// The prologue WireGuard mixes in after the construction.
    public static let identifier = Array("WireGuard v1 zx2c4 Jason@zx2c4.com".utf8)
    public static let labelMAC1 = Array("mac1----".utf8)
    public static let labelCookie = Array("cookie--".utf8)
}

/// Choices of this implementation that peers cannot observe except as
/// limits. Values follow the Linux kernel unless a comment says otherwise.
public enum Implementation {
    /// Upper bound of the random delay added to each handshake
    /// retransmission so that peers do not fall into lock-step (kernel: HZ/3).
    public static let rekeyTimeoutJitterMaxMilliseconds: UInt32 = 334
    /// Packets kept per peer while waiting for a handshake to finish.
    public static let maxStagedPackets = 128
    /// An initiation from a peer arriving less than this after the last one
    /// we accepted from it is dropped (INITIATIONS_PER_SECOND = 50).
    public static let minimumInitiationInterval: Duration = .milliseconds(20)
    /// The bound of the device's queue of handshake messages; the device is
    /// "under load" while that queue holds at least an eighth of this.
    public static let maxQueuedIncomingHandshakes = 4096
    /// Once under load, stay under load this long (sticky).
    public static let underLoadAfterTime: Duration = .seconds(1)
    /// A cookie older than `cookieRefreshTime - cookieSecretLatency` is not
    /// used for mac2: the responder may already have rotated its secret.
    public static let cookieSecretLatency: Duration = .seconds(5)
    /// Handshake messages per second allowed from one source address (IPv4
    /// /32, IPv6 /64) while under load, and the burst allowed above it.
    public static let handshakesPerSecondPerSource: Int64 = 20
    public static let handshakeBurstPerSource: Int64 = 5
    /// Rate-limiter entries kept at most; new sources beyond it are refused.
    public static let maxRateLimiterEntries = 16384
    /// Peers per interface (the kernel's MAX_PEERS_PER_DEVICE is 2^20).
    public static let maxPeers = 1 << 20
    /// Bytes the device must leave in front of a packet so the transport
    /// header can be written in place, and behind it for padding and the tag.
    public static let transportHeadroom = TransportHeader.size
    public static let transportTailroom = 15 + ChaChaPolyTag.size
}

/// Size of a Poly1305 tag.
public enum ChaChaPolyTag {
    public static let size = 16
}

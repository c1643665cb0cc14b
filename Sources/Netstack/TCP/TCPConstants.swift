/// Numbers that shape TCP, split into what the RFCs fix and what this
/// implementation chose.
package enum TCPConstants {
    // MARK: Specification

    /// RFC 6298 §2.1: RTO before any RTT sample.
    static let initialRTO: Duration = .seconds(1)
    /// RFC 6298 §2.5 allows an upper bound of at least 60 s.
    static let maximumRTO: Duration = .seconds(60)
    /// RFC 9293 §3.7.1: the MSS assumed when the option is absent.
    static let defaultMSSv4 = 536
    static let defaultMSSv6 = 1220
    /// RFC 6928: initial window of 10 segments.
    static let initialWindowSegments = 10
    /// RFC 5681 §3.2 / RFC 6675: duplicate ACKs (or SACKed segments) that signal loss.
    static let duplicateThreshold = 3
    /// RFC 7323 §2.3: largest window scale shift.
    static let maximumWindowShift: UInt8 = 14
    /// RFC 7323 §5.5: a TS.Recent idle this long is no longer valid for PAWS.
    static let pawsIdleLimit: Duration = .seconds(24 * 24 * 3600)
    /// RFC 9293 §3.10.7.4: delayed ACKs must come within 500 ms; we use Linux's 40 ms.
    static let delayedAckTimeout: Duration = .milliseconds(40)

    // MARK: Implementation choices

    /// The 200 ms floor (Linux's TCP_RTO_MIN) instead of RFC 6298's 1 s.
    static let minimumRTO: Duration = .milliseconds(200)
    /// Maximum segment lifetime; TIME_WAIT lasts 2 MSL.
    static let maximumSegmentLifetime: Duration = .seconds(30)
    /// How long an orphaned connection (closed by the app) waits in FIN_WAIT_2.
    static let finWait2Timeout: Duration = .seconds(60)
    /// SYN and SYN-ACK retransmissions before giving up (Linux: 6, ~127 s).
    static let maximumSynRetransmits = 6
    /// Data retransmissions before the connection is declared dead.
    static let maximumDataRetransmits = 12
    /// Zero-window probes never come further apart than this.
    static let maximumPersistInterval: Duration = .seconds(60)
    /// RFC 5961 §7: challenge ACKs allowed per connection per second.
    static let challengeAcksPerSecond = 10
    /// Keepalive defaults (RFC 1122 §4.2.3.6 says idle ≥ 2 h when enabled).
    static let keepaliveIdle: Duration = .seconds(7200)
    static let keepaliveInterval: Duration = .seconds(75)
    static let keepaliveProbes = 9
    /// Receive buffer: initial size, auto-tuned up to the maximum.
    static let initialReceiveBuffer = 128 * 1024
    static let maximumReceiveBuffer = 8 * 1024 * 1024
    /// Send buffer the application may fill before `write` waits.
    static let sendBuffer = 4 * 1024 * 1024
    /// Largest segment handed to the link layer, which splits it to the MSS.
    static let maximumSegmentBytes = 64 * 1024
}

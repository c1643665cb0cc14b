/// The connection's timers in one table (the style of WireGuard's timers.c).
/// Each is a deadline or nil; the shell wakes the connection at the earliest.
///
/// - retransmit: RTO per RFC 6298 §5 — runs while data (or SYN/FIN) is
///   unacknowledged; expiry retransmits and backs off.
/// - persist: RFC 9293 §3.8.6.1 — runs while data waits and nothing is in
///   flight (zero or tiny window); expiry sends a window probe.
/// - delayedAck: RFC 9293 §3.8.6.3 / RFC 1122 §4.2.3.2 — runs while an ACK
///   is owed but held back; expiry sends it.
/// - keepalive: RFC 1122 §4.2.3.6 — runs while idle with keepalive on.
/// - linger: TIME_WAIT's 2·MSL, or FIN_WAIT_2's limit for an orphaned
///   connection; expiry closes.
package struct TCPTimers {
    package var retransmit: NetInstant?
    package var persist: NetInstant?
    package var delayedAck: NetInstant?
    package var keepalive: NetInstant?
    package var linger: NetInstant?

    package var earliest: NetInstant? {
        var e: NetInstant? = retransmit
        e = .earliest(e, persist)
        e = .earliest(e, delayedAck)
        e = .earliest(e, keepalive)
        e = .earliest(e, linger)
        return e
    }

    package mutating func cancelAll() { self = TCPTimers() }
}

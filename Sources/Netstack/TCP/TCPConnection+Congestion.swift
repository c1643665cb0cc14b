/// Congestion control and loss recovery: RFC 5681 slow start and congestion
/// avoidance, RFC 3042 limited transmit, RFC 6675 SACK-based recovery, and
/// RFC 6582 NewReno when the peer does not do SACK.
extension TCPConnection {
    /// Payload bytes per wire segment once the timestamp option is paid for.
    var effectiveMSS: Int { sndMSS - (timestampsEnabled ? 12 : 0) }

    /// Upper bound on `cwnd`, so an application-limited flow cannot inflate it forever.
    static let maximumCongestionWindow = 64 * 1024 * 1024

    /// A cumulative ACK for `acked` new bytes.
    mutating func onNewAck(acked: Int, now: NetInstant) {
        duplicateAcks = 0
        if inRecovery {
            if sndUna >= recoveryPoint {
                // Full acknowledgment: recovery is over (RFC 6675 §5 / RFC 6582 §3.2 step 3).
                inRecovery = false
                if sackEnabled {
                    cwnd = ssthresh
                } else {
                    cwnd = Swift.min(ssthresh, Swift.max(sndMax - sndUna, effectiveMSS) + effectiveMSS)
                }
                congestionAvoidanceCredit = 0
            } else {
                // Partial acknowledgment (RFC 6582 §3.2 step 5).
                if !sackEnabled {
                    newRenoRetransmit = true
                    cwnd = Swift.max(cwnd - acked + effectiveMSS, effectiveMSS)
                }
                if highRetransmitted < sndUna { highRetransmitted = sndUna }
            }
            return
        }
        if cwnd < ssthresh {
            // Slow start, counting bytes (RFC 3465 with no per-ACK limit, as Linux).
            cwnd = Swift.min(cwnd + acked, Swift.max(ssthresh, cwnd))
        } else {
            congestionAvoidanceCredit += acked
            while congestionAvoidanceCredit >= cwnd {
                congestionAvoidanceCredit -= cwnd
                cwnd += effectiveMSS
            }
        }
        cwnd = Swift.min(cwnd, Self.maximumCongestionWindow)
        if sackEnabled && !scoreboard.isEmpty && scoreboard.lossBoundary(mss: effectiveMSS) != nil {
            enterRecovery()
        }
    }

    mutating func onDuplicateAck(now: NetInstant) {
        duplicateAcks += 1
        if inRecovery {
            if !sackEnabled { cwnd += effectiveMSS }  // window inflation (RFC 6582 §3.2 step 4)
            return
        }
        if duplicateAcks >= TCPConstants.duplicateThreshold
            || (sackEnabled && scoreboard.lossBoundary(mss: effectiveMSS) != nil)
        {
            enterRecovery()
        }
    }

    /// RFC 6675 §5 steps 4.1–4.4 / RFC 6582 §3.2 step 2.
    mutating func enterRecovery() {
        // RFC 6582 §3.2 step 2: losses from before the last reduction do not reduce again.
        guard sndUna >= recoveryPoint || recoveryPoint == iss, sndMax > sndUna else { return }
        let flight = sndMax - sndUna
        ssthresh = Swift.max(flight / 2, 2 * effectiveMSS)
        inRecovery = true
        recoveryPoint = sndMax
        highRetransmitted = sndUna
        stats.fastRecoveries += 1
        timedSegment = nil
        if sackEnabled {
            cwnd = ssthresh
        } else {
            cwnd = ssthresh + TCPConstants.duplicateThreshold * effectiveMSS
            newRenoRetransmit = true
        }
    }

    /// The window that gates sending, with RFC 3042 limited transmit on the
    /// first two duplicate ACKs.
    var effectiveCongestionWindow: Int {
        if !inRecovery && duplicateAcks > 0 && duplicateAcks < TCPConstants.duplicateThreshold {
            return cwnd + duplicateAcks * effectiveMSS
        }
        return cwnd
    }

    /// Everything below this is presumed lost (RFC 6675 IsLost); in recovery
    /// the first segment after SND.UNA always is (§5 step 4.3).
    var lossEnd: SeqNumber {
        var l = scoreboard.lossBoundary(mss: effectiveMSS) ?? sndUna
        if inRecovery {
            let firstSacked = scoreboard.ranges.first?.start ?? sndMax
            l = SeqNumber.max(l, SeqNumber.min(sndUna + effectiveMSS, firstSacked))
        }
        return SeqNumber.min(l, sndMax)
    }

    /// RFC 6675 §4 SetPipe: bytes presumed in the network.
    var pipe: Int {
        if sackEnabled && sndNxt == sndMax && (inRecovery || !scoreboard.isEmpty) {
            let lost = SeqNumber.max(lossEnd, sndUna)
            var p = scoreboard.unsackedBytes(from: lost, to: sndMax)
            if highRetransmitted > sndUna {
                p += scoreboard.unsackedBytes(from: sndUna, to: SeqNumber.min(highRetransmitted, sndMax))
            }
            return p
        }
        return sndNxt - sndUna
    }
}

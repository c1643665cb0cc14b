/// Timer expiries; the table of timers is in `TCPTimers.swift`.
extension TCPConnection {
    /// Runs every timer whose deadline has passed.
    package mutating func handleTimers(now: NetInstant) {
        if let t = timers.linger, t <= now {
            timers.linger = nil
            if state == .timeWait || state == .finWait2 {
                enterClosed(nil)
                return
            }
        }
        if let t = timers.delayedAck, t <= now {
            timers.delayedAck = nil
            ackNow = true
        }
        if let t = timers.retransmit, t <= now {
            timers.retransmit = nil
            retransmitTimeout(now: now)
            if state == .closed { return }
        }
        if let t = timers.persist, t <= now {
            timers.persist = nil
            persistBackoff += 1
            if sndWnd == 0 {
                probeNeeded = true
                stats.zeroWindowProbes += 1
            } else {
                forceSend = true
            }
        }
        if let t = timers.keepalive, t <= now {
            keepaliveExpired(now: now)
        }
    }

    /// RFC 6298 §5.4–5.6 and RFC 5681 §3.1 (eq. 4): back off, collapse the
    /// window to one segment, resend from SND.UNA.
    private mutating func retransmitTimeout(now: NetInstant) {
        stats.timeouts += 1
        retransmitCount += 1
        switch state {
        case .synSent, .synReceived:
            if retransmitCount > TCPConstants.maximumSynRetransmits {
                enterClosed(.timedOut)
                return
            }
            synNeedsSend = true
            sndNxt = iss
            timedSegment = nil
        default:
            guard sndMax > sndUna else { return }
            if retransmitCount > TCPConstants.maximumDataRetransmits {
                enterClosed(.timedOut)
                return
            }
            if retransmitCount == 1 {
                ssthresh = Swift.max((sndMax - sndUna) / 2, 2 * effectiveMSS)
            }
            cwnd = effectiveMSS
            congestionAvoidanceCredit = 0
            inRecovery = false
            recoveryPoint = sndMax
            duplicateAcks = 0
            newRenoRetransmit = false
            scoreboard.removeAll()
            highRetransmitted = sndUna
            sndNxt = sndUna
            timedSegment = nil
        }
        rtt.backOff()
        timers.retransmit = now + rtt.timeout
    }

    private mutating func keepaliveExpired(now: NetInstant) {
        guard options.keepalive, state.isSynchronized, state != .timeWait else {
            timers.keepalive = nil
            return
        }
        if keepaliveProbesSent >= options.keepaliveProbes {
            enterClosed(.timedOut)
            return
        }
        keepaliveProbesSent += 1
        probeNeeded = true
        timers.keepalive = now + options.keepaliveInterval
    }

    mutating func armKeepalive(now: NetInstant) {
        timers.keepalive = options.keepalive && state.isSynchronized ? now + options.keepaliveIdle : nil
    }
}

/// Segment arrival, following RFC 9293 §3.10.7 step by step, with the
/// RFC 5961 defences (challenge ACKs), PAWS (RFC 7323 §5) and SACK (RFC 2018).
extension TCPConnection {
    package mutating func receive(_ seg: TCPRepr, payload: UnsafeRawBufferPointer, now: NetInstant) {
        switch state {
        case .closed:
            return
        case .synSent:
            receiveInSynSent(seg, now: now)
        default:
            receiveSynchronized(seg, payload: payload, now: now)
        }
    }

    // MARK: SYN-SENT (§3.10.7.3)

    private mutating func receiveInSynSent(_ seg: TCPRepr, now: NetInstant) {
        var ackAcceptable = false
        if let ack = seg.acknowledgmentNumber {
            if ack <= iss || ack > sndMax {
                if seg.control != .rst { sendReset(for: seg) }
                return
            }
            ackAcceptable = sndUna <= ack && ack <= sndMax
        }
        if seg.control == .rst {
            if ackAcceptable { enterClosed(.connectionRefused) }
            return
        }
        guard seg.control == .syn else { return }
        acceptPeerSYN(seg, now: now)
        if ackAcceptable, let ack = seg.acknowledgmentNumber {
            sndUna = ack
            sndWl2 = ack
            if timestampsEnabled, let ts = seg.options.timestamp, ts.echoReply != 0 {
                rtt.sample(Int64(Int32(bitPattern: timestampClock(now) &- ts.echoReply)) * 1_000_000)
            } else if let t = timedSegment {
                rtt.sample((now - t.sentAt).nanoseconds)
            }
            timedSegment = nil
            establish(now: now)
            ackNow = true
        } else {
            // Simultaneous open (§3.10.7.3, fourth): answer with SYN-ACK from ISS.
            state = .synReceived
            sndNxt = iss
            synNeedsSend = true
        }
    }

    mutating func establish(now: NetInstant) {
        state = finQueued ? .finWait1 : .established
        cwnd = TCPConstants.initialWindowSegments * sndMSS
        timers.retransmit = nil
        retransmitCount = 0
        tuneStart = now
        tuneSeq = rcvNxt
        armKeepalive(now: now)
    }

    // MARK: Synchronized states and SYN-RECEIVED (§3.10.7.4)

    private mutating func receiveSynchronized(
        _ segIn: TCPRepr, payload payloadIn: UnsafeRawBufferPointer, now: NetInstant
    ) {
        var seg = segIn
        var payload = payloadIn

        // A retransmitted SYN of the peer's (or its SYN-ACK in a simultaneous open).
        if seg.control == .syn && seg.sequenceNumber == irs {
            if seg.acknowledgmentNumber == nil {
                if state == .synReceived {
                    sndNxt = iss
                    synNeedsSend = true
                } else {
                    ackNow = true
                }
                return
            }
            seg.control = .none
            seg.sequenceNumber = seg.sequenceNumber + 1
            payload = UnsafeRawBufferPointer(start: nil, count: 0)
            seg.payloadLength = 0
        }

        armKeepalive(now: now)
        keepaliveProbesSent = 0

        // RFC 7323 §5.3 PAWS: drop a segment whose timestamp went backwards.
        if timestampsEnabled, let ts = seg.options.timestamp, seg.control != .rst {
            if Int32(bitPattern: ts.value &- tsRecent) < 0 && now - tsRecentAge < TCPConstants.pawsIdleLimit {
                ackNow = true
                return
            }
        }

        // Step 1: sequence number acceptability.
        let segLen = seg.segmentLength
        let window = Swift.max(rcvAdvertised - rcvNxt, receiveWindowCandidate)
        let seq = seg.sequenceNumber
        var acceptable: Bool
        if segLen == 0 {
            acceptable = window == 0 ? seq == rcvNxt : (rcvNxt <= seq && seq < rcvNxt + window)
        } else if window == 0 {
            acceptable = false
        } else {
            acceptable =
                (rcvNxt <= seq && seq < rcvNxt + window)
                || (rcvNxt <= seq + (segLen - 1) && seq + (segLen - 1) < rcvNxt + window)
        }
        // With a zero window, still take the ACK of an in-sequence segment (§3.10.7.4, "special allowance").
        var ackOnly = false
        if !acceptable && window == 0 && seq == rcvNxt && seg.control != .rst {
            acceptable = true
            ackOnly = true
        }
        if !acceptable {
            if seg.control != .rst {
                ackNow = true  // includes old duplicates and our zero-window probes' peers
            }
            return
        }

        // Step 2: RST (RFC 5961 §3.2).
        if seg.control == .rst {
            if state == .timeWait { return }  // RFC 1337: TIME_WAIT is not cut short
            if seq == rcvNxt {
                switch state {
                case .synReceived: enterClosed(.connectionRefused)
                case .closing, .lastAck: enterClosed(nil)
                default: enterClosed(.connectionReset)
                }
            } else {
                challengeAck(now: now)
            }
            return
        }

        // Step 4: a SYN in a synchronized state (RFC 5961 §4.2).
        if seg.control == .syn {
            challengeAck(now: now)
            return
        }

        // Step 5: ACK.
        guard let ack = seg.acknowledgmentNumber else { return }
        if state == .synReceived {
            guard sndUna < ack && ack <= sndMax else {
                sendReset(for: seg)
                return
            }
            sndUna = iss + 1
            sndWnd = Int(seg.windowLength) << Int(sndShift)
            maxSndWnd = Swift.max(maxSndWnd, sndWnd)
            sndWl1 = seq
            sndWl2 = ack
            if timestampsEnabled, let ts = seg.options.timestamp, ts.echoReply != 0 {
                rtt.sample(Int64(Int32(bitPattern: timestampClock(now) &- ts.echoReply)) * 1_000_000)
            }
            establish(now: now)
        }
        // RFC 5961 §5.2: an ACK outside [SND.UNA − MAX.SND.WND, SND.NXT] earns a challenge ACK.
        if ack > sndMax || ack < sndUna - Swift.max(maxSndWnd, 1) {
            challengeAck(now: now)
            return
        }

        // RFC 7323 §4.3: remember the timestamp to echo.
        if timestampsEnabled, let ts = seg.options.timestamp, seq <= lastAckSent {
            tsRecent = ts.value
            tsRecentAge = now
        }
        if timestampsEnabled, let ts = seg.options.timestamp, ts.echoReply != 0 {
            let sample = Int64(Int32(bitPattern: timestampClock(now) &- ts.echoReply)) * 1_000_000
            if sample >= 0 { receiverRTT = receiverRTT.map { ($0 * 7 + sample) / 8 } ?? sample }
        }

        processAck(seg, ack: ack, now: now)
        if state == .closed || state == .timeWait && seg.control != .fin { return }

        // Steps 7–8: data and FIN.
        if ackOnly {
            ackNow = true
            return
        }
        processData(seg, payload: payload, now: now)
    }

    // MARK: Step 5, ACK processing

    private mutating func processAck(_ seg: TCPRepr, ack: SeqNumber, now: NetInstant) {
        let oldWindow = sndWnd
        // Window update (§3.10.7.4, fifth check): only from newer segments.
        let scaledWindow = Int(seg.windowLength) << Int(sndShift)
        if sndWl1 < seg.sequenceNumber || (sndWl1 == seg.sequenceNumber && sndWl2 <= ack) {
            sndWnd = scaledWindow
            sndWl1 = seg.sequenceNumber
            sndWl2 = ack
            maxSndWnd = Swift.max(maxSndWnd, sndWnd)
        }

        var sackAdded = false
        if sackEnabled {
            for block in seg.options.sackBlocks {
                if scoreboard.add(block, sndUna: SeqNumber.max(ack, sndUna), sndMax: sndMax) { sackAdded = true }
            }
        }

        if ack > sndUna {
            let acked = ack - sndUna
            // RTT: timestamps echo the segment acknowledged (RFC 7323 §4); else one timed segment (Karn).
            if timestampsEnabled, let ts = seg.options.timestamp, ts.echoReply != 0 {
                rtt.sample(Int64(Int32(bitPattern: timestampClock(now) &- ts.echoReply)) * 1_000_000)
            } else if let t = timedSegment, ack >= t.seq {
                rtt.sample((now - t.sentAt).nanoseconds)
            }
            if let t = timedSegment, ack >= t.seq { timedSegment = nil }
            retransmitCount = 0
            // Drop acknowledged data (the FIN, if acknowledged, is not in the queue).
            let dataAcked = SeqNumber.min(ack, dataEnd) - sendStart
            if dataAcked > 0 {
                sendQueue.removeFirst(dataAcked)
                sendStart = sendStart + dataAcked
            }
            sndUna = ack
            if sndNxt < sndUna { sndNxt = sndUna }
            scoreboard.acknowledge(upTo: sndUna)
            onNewAck(acked: acked, now: now)
            // RFC 6298 §5.2–5.3: stop the timer when all is acknowledged, else restart it.
            timers.retransmit = sndMax > sndUna ? now + rtt.timeout : nil
            persistBackoff = 0

            let finAcked = finSent && sndUna == sndMax
            if finAcked {
                switch state {
                case .finWait1:
                    state = .finWait2
                    if orphaned { timers.linger = now + TCPConstants.finWait2Timeout }
                case .closing:
                    enterTimeWait(now: now)
                case .lastAck:
                    enterClosed(nil)
                default:
                    break
                }
            }
        } else if ack == sndUna && sndMax > sndUna
            && (sackAdded || (seg.payloadLength == 0 && seg.control == .none && sndWnd == oldWindow))
        {
            // A duplicate ACK: RFC 5681 §2's definition, or RFC 6675 §2's — any ACK
            // carrying new SACK information, even on a data segment of a two-way flow.
            onDuplicateAck(now: now)
        }
    }

    // MARK: Steps 7–8, data and FIN

    private mutating func processData(_ seg: TCPRepr, payload: UnsafeRawBufferPointer, now: NetInstant) {
        var seq = seg.sequenceNumber
        var data = payload
        var fin = seg.control == .fin
        guard data.count > 0 || fin else { return }
        largestSegmentReceived = Swift.max(largestSegmentReceived, data.count)

        switch state {
        case .established, .finWait1, .finWait2, .synReceived:
            break
        default:
            // Our receive side is finished; a retransmitted FIN is re-ACKed (and restarts TIME_WAIT, §3.10.7.4).
            if fin && state == .timeWait { timers.linger = now + TCPConstants.maximumSegmentLifetime * 2 }
            ackNow = true
            return
        }
        if orphaned && data.count > 0 {
            // Data for an application that has gone: tell the peer (RFC 9293 §3.10.4, Linux does the same).
            abort()
            return
        }

        // Trim what we already have.
        if seq < rcvNxt {
            let skip = rcvNxt - seq
            if skip >= data.count {
                data = UnsafeRawBufferPointer(start: nil, count: 0)
                if fin && seq + payload.count < rcvNxt { fin = false }
            } else {
                data = UnsafeRawBufferPointer(rebasing: data[skip...])
            }
            seq = rcvNxt
            ackNow = true  // duplicate data: the ACK may have been lost
        }
        // Trim what does not fit (the FIN goes with it).
        let room = Swift.max(rcvAdvertised - seq, receiveWindowCandidate - (seq - rcvNxt))
        if data.count > room {
            data = UnsafeRawBufferPointer(rebasing: data[0..<Swift.max(room, 0)])
            fin = false
            ackNow = true
        }

        if seq == rcvNxt {
            if data.count > 0 {
                receiveQueue.append(data)
                rcvNxt = rcvNxt + data.count
                bytesSinceAck += data.count
            }
            if !reassembly.isEmpty {
                // Filling a hole: ACK at once so the sender leaves recovery quickly (RFC 5681 §4.2).
                var held = reassembly
                reassembly = ReassemblyQueue()
                var queue = receiveQueue
                receiveQueue = ByteQueue()
                rcvNxt = held.drain(rcvNxt: rcvNxt) { queue.append($0) }
                receiveQueue = queue
                reassembly = held
                ackNow = true
            }
            if fin {
                reassembly.finSequence = seq + data.count
            }
            if let f = reassembly.finSequence, f == rcvNxt {
                receiveFIN(now: now)
            } else if bytesSinceAck >= 2 * Swift.min(largestSegmentReceived, localMSS) {
                ackNow = true  // at least every second full-sized segment (RFC 5681 §4.2)
            } else if !ackNow && timers.delayedAck == nil {
                timers.delayedAck = now + TCPConstants.delayedAckTimeout
            }
            tuneReceiveBuffer(now: now)
        } else {
            // Out of order: keep it, and send a duplicate ACK with SACK at once (RFC 5681 §4.2).
            stats.outOfOrderSegments += 1
            if data.count > 0 { reassembly.insert(seq, data) }
            if fin { reassembly.finSequence = seq + data.count }
            ackNow = true
        }
    }

    private mutating func receiveFIN(now: NetInstant) {
        reassembly.finSequence = nil
        finReceived = true
        rcvNxt = rcvNxt + 1
        ackNow = true
        switch state {
        case .synReceived, .established:
            state = .closeWait
        case .finWait1:
            if finSent && sndUna == sndMax {
                enterTimeWait(now: now)
            } else {
                state = .closing
            }
        case .finWait2:
            enterTimeWait(now: now)
        default:
            break
        }
    }

    /// Dynamic right-sizing of the receive buffer, in the manner of Linux's
    /// tcp_rcv_space_adjust: once per RTT, allow twice what arrived in it, doubled
    /// again for slow start, up to the maximum.
    private mutating func tuneReceiveBuffer(now: NetInstant) {
        let rttNanos = receiverRTT ?? rtt.smoothed ?? 100_000_000
        guard (now - tuneStart).nanoseconds >= Swift.max(rttNanos, 1_000_000) else { return }
        let arrived = rcvNxt - tuneSeq
        let wanted = Swift.min(4 * arrived, options.maximumReceiveBuffer)
        if wanted > receiveBufferSize { receiveBufferSize = wanted }
        tuneStart = now
        tuneSeq = rcvNxt
    }

    // MARK: Replies that are not the connection's own flow

    /// RFC 5961 §3.2 / §4.2 / §5.2: answer with an ACK, rate-limited per connection (§7).
    mutating func challengeAck(now: NetInstant) {
        if now - challengeAckWindowStart >= .seconds(1) {
            challengeAckWindowStart = now
            challengeAcksInWindow = 0
        }
        guard challengeAcksInWindow < TCPConstants.challengeAcksPerSecond else { return }
        challengeAcksInWindow += 1
        stats.challengeAcks += 1
        ackNow = true
    }

    /// RFC 9293 §3.10.7.3/4: a reset for an unacceptable ACK in SYN-SENT or SYN-RECEIVED.
    private mutating func sendReset(for seg: TCPRepr) {
        pendingReset = TCPConnection.reset(for: seg, payloadLength: seg.payloadLength)
    }

    /// The reset answering a segment that has no connection (RFC 9293 §3.10.7.1).
    package static func reset(for seg: TCPRepr, payloadLength: Int) -> TCPRepr {
        if let ack = seg.acknowledgmentNumber {
            return TCPRepr(
                sourcePort: seg.destinationPort, destinationPort: seg.sourcePort, control: .rst,
                sequenceNumber: ack, acknowledgmentNumber: nil, windowLength: 0)
        }
        return TCPRepr(
            sourcePort: seg.destinationPort, destinationPort: seg.sourcePort, control: .rst,
            sequenceNumber: SeqNumber(0),
            acknowledgmentNumber: seg.sequenceNumber + (payloadLength + seg.control.sequenceLength),
            windowLength: 0)
    }
}

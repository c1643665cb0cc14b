/// One segment the connection wants sent. Its payload is
/// `payloadLength` bytes of the send queue from `payloadOffset`
/// (`copyPayload`); the link layer splits it into `segmentSize` pieces.
package struct TCPOutput {
    package var repr: TCPRepr
    package var payloadOffset: Int
    package var segmentSize: Int
}

/// What to send, and when: handshake, data under the windows (flow,
/// congestion, SWS and Nagle), retransmissions, FIN, ACKs and probes.
extension TCPConnection {
    /// The next segment to send now, or nil; call until nil after every input.
    package mutating func nextSegment(now: NetInstant) -> TCPOutput? {
        if let r = pendingReset {
            pendingReset = nil
            return TCPOutput(repr: r, payloadOffset: 0, segmentSize: 0)
        }
        switch state {
        case .closed:
            return nil
        case .synSent, .synReceived:
            if synNeedsSend { return makeSYN(now: now) }
            return ackNow && state == .synReceived ? makeAck(now: now) : nil
        case .timeWait:
            return ackNow ? makeAck(now: now) : nil
        default:
            break
        }
        if let out = nextDataSegment(now: now) { return out }
        if probeNeeded {
            probeNeeded = false
            // A probe is an old ACK: sequence SND.UNA − 1 forces the peer to answer with its window.
            var repr = makeHeader(seq: sndUna - 1, now: now)
            repr.payloadLength = 0
            return TCPOutput(repr: repr, payloadOffset: 0, segmentSize: 0)
        }
        if ackNow { return makeAck(now: now) }
        armPersistIfStalled(now: now)
        return nil
    }

    /// Copies a segment's payload out of the send queue.
    package func copyPayload(_ out: TCPOutput, offset: Int = 0, count: Int, into buffer: UnsafeMutableRawBufferPointer)
    {
        sendQueue.copyOut(offset: out.payloadOffset + offset, count: count, into: buffer)
    }

    private mutating func makeSYN(now: NetInstant) -> TCPOutput {
        synNeedsSend = false
        let synAck = state == .synReceived
        var o = TCPOptions(maximumSegmentSize: UInt16(Swift.min(localMSS, 65535)))
        if synAck {
            if windowScaleAgreed { o.windowScale = rcvShift }
            o.sackPermitted = sackEnabled
            if timestampsEnabled { o.timestamp = TCPTimestamp(value: timestampClock(now), echoReply: tsRecent) }
        } else {
            if options.windowScaling { o.windowScale = localWindowShift }
            o.sackPermitted = options.selectiveAcknowledgments
            if options.timestamps { o.timestamp = TCPTimestamp(value: timestampClock(now), echoReply: 0) }
        }
        let window = UInt16(Swift.min(receiveBufferSize, 65535))
        if synAck {
            rcvAdvertised = SeqNumber.max(rcvAdvertised, rcvNxt + Int(window))
            lastAckSent = rcvNxt
            ackNow = false
        }
        sndNxt = iss + 1
        if sndMax < sndNxt { sndMax = sndNxt }
        if timers.retransmit == nil { timers.retransmit = now + rtt.timeout }
        if retransmitCount == 0 { timedSegment = (iss + 1, now) } else { timedSegment = nil }
        let repr = TCPRepr(
            sourcePort: local.port, destinationPort: remote.port, control: .syn, sequenceNumber: iss,
            acknowledgmentNumber: synAck ? rcvNxt : nil, windowLength: window, options: o)
        return TCPOutput(repr: repr, payloadOffset: 0, segmentSize: 0)
    }

    /// A pure ACK carries SND.MAX — RFC 9293's SND.NXT, which never moves
    /// back. Our SND.NXT rewinds after a timeout; an ACK numbered from there
    /// could fall below the peer's RCV.NXT and be dropped unprocessed.
    private mutating func makeAck(now: NetInstant) -> TCPOutput {
        let repr = makeHeader(seq: sndMax, now: now)
        return TCPOutput(repr: repr, payloadOffset: 0, segmentSize: 0)
    }

    /// A header for a non-SYN segment: ACK, window, timestamp and SACK
    /// blocks. Sending it settles any ACK we owed.
    mutating func makeHeader(seq: SeqNumber, now: NetInstant) -> TCPRepr {
        var o = TCPOptions()
        if timestampsEnabled { o.timestamp = TCPTimestamp(value: timestampClock(now), echoReply: tsRecent) }
        if sackEnabled && !reassembly.isEmpty { o.sackBlocks = reassembly.sackBlocks() }
        let window = advertiseWindow()
        ackNow = false
        bytesSinceAck = 0
        timers.delayedAck = nil
        lastAckSent = rcvNxt
        return TCPRepr(
            sourcePort: local.port, destinationPort: remote.port, sequenceNumber: seq, acknowledgmentNumber: rcvNxt,
            windowLength: window, options: o)
    }

    /// The window field to send. The right edge moves only in steps of at
    /// least min(buffer/2, MSS) (receiver SWS avoidance, RFC 9293 §3.8.6.2.2)
    /// and never moves left.
    private mutating func advertiseWindow() -> UInt16 {
        let candidate = rcvNxt + receiveWindowCandidate
        if candidate - rcvAdvertised >= Swift.min(receiveBufferSize / 2, localMSS) {
            rcvAdvertised = candidate
        }
        if rcvAdvertised < rcvNxt { rcvAdvertised = rcvNxt }
        let window = rcvAdvertised - rcvNxt
        let scaled = Swift.min(window >> Int(rcvShift), 65535)
        return UInt16(scaled)
    }

    // MARK: Data

    private mutating func nextDataSegment(now: NetInstant) -> TCPOutput? {
        switch state {
        case .established, .closeWait, .finWait1, .closing, .lastAck: break
        default: return nil
        }
        let mss = Swift.max(effectiveMSS, 1)

        // NewReno: retransmit the first unacknowledged segment (RFC 6582 §3.2 steps 2 and 5).
        if newRenoRetransmit {
            newRenoRetransmit = false
            let len = Swift.min(mss, Swift.max(dataEnd - sndUna, 0))
            let fin = finSent && sndUna + len == dataEnd
            if len > 0 || fin {
                return emitData(from: sndUna, length: len, fin: fin, retransmission: true, now: now)
            }
        }

        // SACK recovery, NextSeg() rule 1: the first lost hole not yet retransmitted (RFC 6675 §4).
        if inRecovery && sackEnabled {
            let room = cwnd - pipe
            guard room >= mss else { return nil }
            let from = SeqNumber.max(highRetransmitted, sndUna)
            if let (start, end) = scoreboard.nextHole(from: from, limit: lossEnd) {
                let dataLimit = SeqNumber.min(end, dataEnd)
                var len = Swift.min(dataLimit - start, room, TCPConstants.maximumSegmentBytes)
                len = Swift.max(len, 0)
                let fin = finSent && start + len == dataEnd && end > dataEnd
                if len > 0 || fin {
                    highRetransmitted = start + len + (fin ? 1 : 0)
                    return emitData(from: start, length: len, fin: fin, retransmission: true, now: now)
                }
            }
        }

        // From SND.NXT: new data, or go-back-N after a timeout.
        let available = Swift.max(dataEnd - sndNxt, 0)
        let finPending = finQueued && sndNxt <= dataEnd
        let usable = sndUna + sndWnd - sndNxt
        let flight = pipe
        let congestionRoom = effectiveCongestionWindow - flight
        var len = Swift.max(Swift.min(available, usable, congestionRoom, TCPConstants.maximumSegmentBytes), 0)
        let retransmission = sndNxt < sndMax
        if forceSend {
            // Persist expiry with a small window: send what fits (RFC 9293 §3.8.6.2.1 override).
            forceSend = false
            if len == 0 && available > 0 && usable > 0 { len = Swift.min(available, usable) }
        } else if len > 0 && len < available {
            if len >= mss {
                len -= len % mss  // whole segments only while more data waits
            } else if retransmission {
                // resend at whatever size the windows allow
            } else if !(len >= maxSndWnd / 2 && maxSndWnd > 0 && (options.noDelay || sndMax == sndUna)) {
                return nil  // sender SWS avoidance (RFC 9293 §3.8.6.2.1)
            }
        } else if len > 0 && len < mss && !retransmission && !options.noDelay && sndMax != sndUna && !finPending {
            return nil  // Nagle: one small segment in flight at a time (RFC 9293 §3.7.4)
        }
        let fin = finPending && sndNxt + len == dataEnd
        guard len > 0 || fin else { return nil }
        return emitData(from: sndNxt, length: len, fin: fin, retransmission: retransmission, now: now)
    }

    private mutating func emitData(
        from seq: SeqNumber, length len: Int, fin: Bool, retransmission: Bool, now: NetInstant
    ) -> TCPOutput {
        let end = seq + len + (fin ? 1 : 0)
        if retransmission {
            stats.retransmittedSegments += 1
            if let t = timedSegment, t.seq > seq { timedSegment = nil }  // Karn's algorithm
        } else if timedSegment == nil && !timestampsEnabled && len > 0 {
            timedSegment = (end, now)
        }
        if seq == sndNxt { sndNxt = end }
        if sndMax < end { sndMax = end }
        if timers.retransmit == nil { timers.retransmit = now + rtt.timeout }
        timers.persist = nil
        var repr = makeHeader(seq: seq, now: now)
        repr.control = fin ? .fin : .none
        repr.push = len > 0 && seq + len == dataEnd
        repr.payloadLength = len
        let segmentSize = Swift.max(sndMSS - repr.options.encodedLength, 1)
        return TCPOutput(repr: repr, payloadOffset: seq - sendStart, segmentSize: segmentSize)
    }

    /// Arms the persist timer when data waits but nothing is in flight to
    /// bring an ACK back (RFC 9293 §3.8.6.1).
    private mutating func armPersistIfStalled(now: NetInstant) {
        let waiting = dataEnd - sndNxt > 0 || (finQueued && sndNxt <= dataEnd)
        guard waiting && sndMax == sndUna && isEstablished else {
            timers.persist = nil
            return
        }
        if timers.persist == nil {
            let base = rtt.timeout.nanoseconds
            let interval = Swift.min(
                base << Swift.min(persistBackoff, 20), TCPConstants.maximumPersistInterval.nanoseconds)
            timers.persist = now + .nanoseconds(interval)
        }
    }
}

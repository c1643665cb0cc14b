/// One TCP connection as a pure state machine (RFC 9293): segments and `now`
/// in, segments out, no I/O, no clock, no threads. The stack shell feeds it
/// parsed segments (`receive`), wakes it at `nextDeadline` (`handleTimers`)
/// and drains `nextSegment` after each call.
///
/// The code is split by concern: this file holds the state and the
/// application calls; `+Input` processes arriving segments (§3.10.7),
/// `+Output` decides what to send, `+Congestion` holds RFC 5681/6582/6675,
/// `+Timers` the timer expiries.
package struct TCPConnection {
    package enum State: Hashable, Sendable {
        case synSent, synReceived, established, finWait1, finWait2, closeWait, closing, lastAck, timeWait, closed

        /// RFC 9293 §3.3.2: states after the handshake completed.
        var isSynchronized: Bool {
            switch self {
            case .synSent, .synReceived, .closed: false
            default: true
            }
        }
    }

    package struct Options: Sendable {
        /// Nagle's algorithm (RFC 9293 §3.7.4) is on unless this is set (SSH sets it).
        package var noDelay = false
        package var keepalive = false
        package var keepaliveIdle = TCPConstants.keepaliveIdle
        package var keepaliveInterval = TCPConstants.keepaliveInterval
        package var keepaliveProbes = TCPConstants.keepaliveProbes
        package var sendBufferSize = TCPConstants.sendBuffer
        package var initialReceiveBuffer = TCPConstants.initialReceiveBuffer
        package var maximumReceiveBuffer = TCPConstants.maximumReceiveBuffer
        /// The link MTU; our MSS is derived from it (RFC 9293 §3.7.1).
        package var mtu = 1280
        package var windowScaling = true
        package var selectiveAcknowledgments = true
        package var timestamps = true

        package init() {}
    }

    package let local: SocketAddress
    package let remote: SocketAddress
    package internal(set) var state: State
    package var options: Options
    /// Why the connection ended, if it ended abnormally.
    package internal(set) var error: NetstackError.Kind?

    // MARK: Send sequence space (RFC 9293 §3.3.1)
    var iss: SeqNumber
    var sndUna: SeqNumber
    var sndNxt: SeqNumber
    /// Highest sequence number sent plus one; SND.NXT falls back below it after an RTO.
    var sndMax: SeqNumber
    var sndWnd = 0
    var sndWl1 = SeqNumber(0)
    var sndWl2 = SeqNumber(0)
    var maxSndWnd = 0
    /// Application data from `sendStart` on: unacknowledged, then unsent.
    var sendQueue = ByteQueue()
    var sendStart: SeqNumber
    /// The application shut down its write side: a FIN follows the data.
    var finQueued = false
    var synNeedsSend = true

    // MARK: Receive sequence space
    var irs = SeqNumber(0)
    var rcvNxt = SeqNumber(0)
    /// Right edge of the window last advertised; never moved left (RFC 9293 §3.8.6.2.2).
    var rcvAdvertised = SeqNumber(0)
    var lastAckSent = SeqNumber(0)
    var receiveQueue = ByteQueue()
    var receiveBufferSize: Int
    var reassembly = ReassemblyQueue()
    var finReceived = false
    /// The application closed without shutting down only writing; data arriving now is an error (RFC 9293 §3.10.4).
    var orphaned = false

    // MARK: Negotiated options
    var sndMSS: Int
    var windowScaleAgreed = false
    var sndShift: UInt8 = 0
    var rcvShift: UInt8 = 0
    var timestampsEnabled = false
    var tsRecent: UInt32 = 0
    var tsRecentAge = NetInstant.zero
    let timestampOffset: UInt32
    var sackEnabled = false

    // MARK: Loss recovery and congestion control
    var rtt: RTTEstimator
    var timedSegment: (seq: SeqNumber, sentAt: NetInstant)?
    var cwnd = 0
    var ssthresh = Int.max / 4
    var congestionAvoidanceCredit = 0
    var duplicateAcks = 0
    var inRecovery = false
    var recoveryPoint: SeqNumber
    var highRetransmitted: SeqNumber
    var newRenoRetransmit = false
    var scoreboard = SACKScoreboard()
    var retransmitCount = 0

    // MARK: ACK generation and probes
    var ackNow = false
    var bytesSinceAck = 0
    /// Largest payload seen from the peer: "a full-sized segment" for the ACK-every-second rule.
    var largestSegmentReceived = 0
    var pendingReset: TCPRepr?
    var probeNeeded = false
    var forceSend = false
    var persistBackoff = 0
    var keepaliveProbesSent = 0
    var challengeAckWindowStart = NetInstant.zero
    var challengeAcksInWindow = 0

    // MARK: Receive-window auto-tuning
    var tuneStart = NetInstant.zero
    var tuneSeq = SeqNumber(0)
    var receiverRTT: Int64?

    package var timers = TCPTimers()

    /// Counters for tests and diagnostics.
    package var stats = Stats()
    package struct Stats: Sendable {
        package var retransmittedSegments = 0
        package var timeouts = 0
        package var fastRecoveries = 0
        package var challengeAcks = 0
        package var zeroWindowProbes = 0
        package var outOfOrderSegments = 0
    }

    /// Active open (RFC 9293 §3.10.1): SYN_SENT, with the SYN to be sent by `nextSegment`.
    package init(
        local: SocketAddress, remote: SocketAddress, isn: SeqNumber, timestampOffset: UInt32, options: Options,
        now: NetInstant
    ) {
        self.local = local
        self.remote = remote
        self.options = options
        state = .synSent
        iss = isn
        sndUna = isn
        sndNxt = isn
        sndMax = isn
        sendStart = isn + 1
        recoveryPoint = isn
        highRetransmitted = isn
        self.timestampOffset = timestampOffset
        receiveBufferSize = options.initialReceiveBuffer
        sndMSS = TCPConnection.defaultPeerMSS(remote)
        rtt = RTTEstimator(minimum: TCPConstants.minimumRTO, maximum: TCPConstants.maximumRTO)
        tuneStart = now
    }

    /// Passive open: a SYN arrived for a listener (RFC 9293 §3.10.7.2); the
    /// connection is in SYN_RECEIVED and will answer with SYN-ACK.
    package init(
        local: SocketAddress, remote: SocketAddress, syn: TCPRepr, isn: SeqNumber, timestampOffset: UInt32,
        options: Options, now: NetInstant
    ) {
        self.init(
            local: local, remote: remote, isn: isn, timestampOffset: timestampOffset, options: options, now: now)
        state = .synReceived
        acceptPeerSYN(syn, now: now)
    }

    static func defaultPeerMSS(_ remote: SocketAddress) -> Int {
        remote.address.isIPv6 ? TCPConstants.defaultMSSv6 : TCPConstants.defaultMSSv4
    }

    /// The MSS we announce: the link MTU less fixed IP and TCP headers (RFC 9293 §3.7.1).
    var localMSS: Int {
        let ipHeader = remote.address.isIPv6 ? IPv6Repr.headerLength : IPv4Repr.headerLength
        return Swift.max(options.mtu - ipHeader - TCPSegment.minimumHeaderLength, 64)
    }

    /// Our window scale shift: the smallest that lets the largest receive buffer be advertised.
    var localWindowShift: UInt8 {
        var shift: UInt8 = 0
        while (65535 << Int(shift)) < options.maximumReceiveBuffer && shift < TCPConstants.maximumWindowShift {
            shift += 1
        }
        return shift
    }

    /// Adopts the peer's SYN: IRS and the options it offered (RFC 7323 §2.2, §3.2; RFC 2018 §2).
    mutating func acceptPeerSYN(_ syn: TCPRepr, now: NetInstant) {
        irs = syn.sequenceNumber
        rcvNxt = irs + 1
        rcvAdvertised = rcvNxt
        lastAckSent = rcvNxt
        tuneSeq = rcvNxt
        let o = syn.options
        sndMSS = Swift.min(Int(o.maximumSegmentSize ?? UInt16(TCPConnection.defaultPeerMSS(remote))), localMSS)
        sndMSS = Swift.max(sndMSS, 64)
        windowScaleAgreed = options.windowScaling && o.windowScale != nil
        if options.windowScaling, let ws = o.windowScale {
            sndShift = ws
            rcvShift = localWindowShift
        } else {
            sndShift = 0
            rcvShift = 0
        }
        sackEnabled = options.selectiveAcknowledgments && o.sackPermitted
        if options.timestamps, let ts = o.timestamp {
            timestampsEnabled = true
            tsRecent = ts.value
            tsRecentAge = now
        } else {
            timestampsEnabled = false
        }
        // The window in a SYN is never scaled (RFC 7323 §2.2).
        sndWnd = Int(syn.windowLength)
        maxSndWnd = sndWnd
        sndWl1 = syn.sequenceNumber
    }

    // MARK: Application interface

    package var isEstablished: Bool {
        switch state {
        case .established, .finWait1, .finWait2, .closeWait, .closing, .lastAck, .timeWait: true
        default: false
        }
    }

    package var isClosed: Bool { state == .closed }

    /// Bytes the application may read now.
    package var readableBytes: Int { receiveQueue.count }

    /// True when the peer sent FIN and everything before it has been read.
    package var isReadAtEnd: Bool { finReceived && receiveQueue.isEmpty }

    /// True when `write` would accept at least one byte.
    package var canWrite: Bool {
        switch state {
        case .synSent, .synReceived, .established, .closeWait: !finQueued && writableBytes > 0
        default: false
        }
    }

    /// True when writing is no longer possible at all (shut down, closed, reset).
    package var isWriteClosed: Bool {
        switch state {
        case .synSent, .synReceived, .established, .closeWait: finQueued
        default: true
        }
    }

    package var writableBytes: Int { Swift.max(options.sendBufferSize - sendQueue.count, 0) }

    /// RCV.NXT and SND.UNA/SND.NXT, read-only, for diagnostics and tests.
    package var receiveNext: SeqNumber { rcvNxt }
    package var sendUnacknowledged: SeqNumber { sndUna }
    package var sendNext: SeqNumber { sndNxt }
    package var receiveBufferLimit: Int { receiveBufferSize }
    package var congestionWindow: Int { cwnd }

    /// Heap bytes the connection's buffers hold now (send and receive rings,
    /// out-of-order data); zero when idle.
    package var bufferCapacity: Int { sendQueue.capacity + receiveQueue.capacity + reassembly.byteCount }

    /// Set when the connection left the data-transfer states or must answer
    /// at once (reset, challenge): the stack services it right away instead of
    /// at the end of an input batch.
    package var needsPromptService: Bool {
        pendingReset != nil || !isEstablished || state == .timeWait || isClosed
    }

    /// Frees send and receive storage that stayed empty since the previous
    /// call (see `ByteQueue.releaseIfIdle`). Returns whether any is still held.
    package mutating func releaseIdleBuffers() -> Bool {
        let send = sendQueue.releaseIfIdle()
        let receive = receiveQueue.releaseIfIdle()
        return send || receive
    }

    /// One line of state for diagnostics.
    package var debugSummary: String {
        "\(state) una=\(sndUna) nxt=\(sndNxt) max=\(sndMax) end=\(dataEnd) fin=\(finQueued) wnd=\(sndWnd) cwnd=\(cwnd) "
            + "ssthresh=\(ssthresh) rec=\(inRecovery) dup=\(duplicateAcks) sb=\(scoreboard.ranges.count) "
            + "rcvNxt=\(rcvNxt) adv=\(rcvAdvertised - rcvNxt) rq=\(receiveQueue.count) ooo=\(reassembly.runs.count) "
            + "finRcvd=\(finReceived) timers=rtx:\(timers.retransmit.map { "\($0)" } ?? "-") "
            + "persist:\(timers.persist.map { "\($0)" } ?? "-") dack:\(timers.delayedAck.map { "\($0)" } ?? "-") "
            + "ackNow=\(ackNow) rtxCount=\(retransmitCount)"
    }

    /// Bytes written but not yet acknowledged (for backpressure and tests).
    package var unacknowledgedBytes: Int { sendQueue.count }

    /// Queues as much of `bytes` as the send buffer holds; returns how much.
    package mutating func write(_ bytes: UnsafeRawBufferPointer) -> Int {
        guard canWrite else { return 0 }
        let n = Swift.min(bytes.count, writableBytes)
        sendQueue.append(UnsafeRawBufferPointer(rebasing: bytes[0..<n]))
        return n
    }

    /// Moves received bytes to `buffer`; may schedule a window update.
    package mutating func read(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let n = receiveQueue.read(into: buffer)
        if n > 0 && state.isSynchronized && !finReceived {
            // Announce a window that opened by enough to be worth a segment (SWS avoidance, RFC 9293 §3.8.6.2.2).
            let advertised = Swift.max(rcvAdvertised - rcvNxt, 0)
            if receiveWindowCandidate - advertised >= Swift.min(receiveBufferSize / 2, 2 * localMSS) {
                ackNow = true
            }
        }
        return n
    }

    /// Half-close: a FIN follows the queued data (RFC 9293 §3.10.4).
    package mutating func shutdownWrite() {
        guard !finQueued else { return }
        switch state {
        case .synSent:
            enterClosed(nil)
        case .synReceived, .established:
            finQueued = true
            state = .finWait1
        case .closeWait:
            finQueued = true
            state = .lastAck
        default:
            break
        }
    }

    /// Full close. Unread data makes it an abort (RST), as RFC 9293 §3.10.4
    /// and RFC 2525 §2.17 advise, so the peer learns its data was lost.
    package mutating func close(now: NetInstant) {
        if !receiveQueue.isEmpty {
            abort()
            return
        }
        orphaned = true
        shutdownWrite()
        if state == .finWait2 { timers.linger = now + TCPConstants.finWait2Timeout }
    }

    /// Sends RST (if the peer knows us) and closes at once.
    package mutating func abort() {
        if state.isSynchronized || state == .synReceived {
            pendingReset = TCPRepr(
                sourcePort: local.port, destinationPort: remote.port, control: .rst, sequenceNumber: sndMax,
                acknowledgmentNumber: rcvNxt, windowLength: 0)
        }
        enterClosed(.closed)
    }

    mutating func enterClosed(_ reason: NetstackError.Kind?) {
        if error == nil { error = reason }
        state = .closed
        timers.cancelAll()
        sendQueue = ByteQueue()
        reassembly.removeAll()
        scoreboard.removeAll()
    }

    mutating func enterTimeWait(now: NetInstant) {
        state = .timeWait
        timers.cancelAll()
        timers.linger = now + TCPConstants.maximumSegmentLifetime * 2
        sendQueue = ByteQueue()
        scoreboard.removeAll()
    }

    /// Lowers the send MSS after ICMP "packet too big" (RFC 8201 / RFC 1191).
    package mutating func pathMTUDecreased(to mtu: Int) {
        let ipHeader = remote.address.isIPv6 ? IPv6Repr.headerLength : IPv4Repr.headerLength
        let mss = mtu - ipHeader - TCPSegment.minimumHeaderLength
        guard mss >= 64, mss < sndMSS else { return }
        sndMSS = mss
        // Resend what is in flight at the new size.
        if sndMax > sndUna {
            sndNxt = sndUna
            timedSegment = nil
        }
    }

    /// An ICMP error said the peer is unreachable: fatal only during the handshake (RFC 1122 §4.2.3.9).
    package mutating func destinationUnreachable() {
        if state == .synSent { enterClosed(.unreachable) }
    }

    /// The earliest time `handleTimers` has work to do.
    package var nextDeadline: NetInstant? { timers.earliest }

    // MARK: Derived quantities

    /// Sequence number just past the last queued data byte; the FIN takes this number.
    var dataEnd: SeqNumber { sendStart + sendQueue.count }

    /// The FIN has been sent at least once.
    var finSent: Bool { finQueued && sndMax == dataEnd + 1 }

    /// The TSval clock: milliseconds, offset per connection (RFC 7323 §5.4).
    func timestampClock(_ now: NetInstant) -> UInt32 {
        UInt32(truncatingIfNeeded: now.milliseconds) &+ timestampOffset
    }

    /// Free receive-buffer space, which bounds the window we may offer.
    var receiveWindowCandidate: Int {
        Swift.max(receiveBufferSize - receiveQueue.count, 0)
    }
}

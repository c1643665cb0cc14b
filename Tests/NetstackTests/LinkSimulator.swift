import Netstack

/// Two `StackCore`s joined by a simulated link with a fake clock: packets
/// can be dropped, duplicated, delayed and reordered, all from a seeded
/// generator so every run is the same.
struct LinkSimulator {
    struct Impairments {
        var loss = 0.0
        var duplicate = 0.0
        var delay: Duration = .milliseconds(1)
        /// Extra random delay up to this much; packets overtake each other.
        var jitter: Duration = .zero
    }

    struct InFlight {
        var at: NetInstant
        var order: Int
        var toB: Bool
        var packet: [UInt8]
    }

    var now = NetInstant(nanoseconds: 1_000_000_000_000)
    var a: StackCore
    var b: StackCore
    var impairments: Impairments
    var rng: SplitMix
    private var inFlight: [InFlight] = []  // kept as a binary heap by (at, order)
    private var order = 0
    var delivered = 0
    var dropped = 0
    /// Super-packets A handed its link when A's link `offloadsTCP`: the
    /// simulator then cuts them as the kernel does (`KernelSegmentation`).
    var superPacketsFromA = 0
    /// When set, packets from one side are discarded before the link (a black hole).
    var blackholeAtoB = false
    var blackholeBtoA = false

    static let addressA4 = IPAddress("10.0.0.1")!
    static let addressB4 = IPAddress("10.0.0.2")!
    static let addressA6 = IPAddress("fd7a:115c:a1e0::a")!
    static let addressB6 = IPAddress("fd7a:115c:a1e0::b")!

    init(
        impairments: Impairments = .init(), mtu: Int = 1500, seed: UInt64 = 1,
        optionsA: TCPConnection.Options = .init(), optionsB: TCPConnection.Options = .init(),
        isnA: SeqNumber? = nil, isnB: SeqNumber? = nil
    ) {
        a = StackCore(
            addresses: [Self.addressA4, Self.addressA6], mtu: mtu, tcpOptions: optionsA,
            sequenceNumbers: isnA.map { SequenceNumberGenerator(fixedISN: $0) } ?? SequenceNumberGenerator(),
            rng: SplitMix(seed: seed &+ 100))
        b = StackCore(
            addresses: [Self.addressB4, Self.addressB6], mtu: mtu, tcpOptions: optionsB,
            sequenceNumbers: isnB.map { SequenceNumberGenerator(fixedISN: $0) } ?? SequenceNumberGenerator(),
            rng: SplitMix(seed: seed &+ 200))
        self.impairments = impairments
        rng = SplitMix(seed: seed)
    }

    private mutating func collect() {
        var fromA = a.outbound
        a.outbound.removeAll(keepingCapacity: true)
        if a.offloadsTCP {
            superPacketsFromA += fromA.count { $0.count > a.mtu }
            fromA = fromA.flatMap { KernelSegmentation.segments($0, mtu: a.mtu) }
        }
        let fromB = b.outbound
        b.outbound.removeAll(keepingCapacity: true)
        if !blackholeAtoB { for p in fromA { transmit(p, toB: true) } } else { dropped += fromA.count }
        if !blackholeBtoA { for p in fromB { transmit(p, toB: false) } } else { dropped += fromB.count }
    }

    private mutating func transmit(_ packet: [UInt8], toB: Bool) {
        if impairments.loss > 0 && Double.random(in: 0..<1, using: &rng) < impairments.loss {
            dropped += 1
            return
        }
        let copies = impairments.duplicate > 0 && Double.random(in: 0..<1, using: &rng) < impairments.duplicate ? 2 : 1
        for _ in 0..<copies {
            var d = impairments.delay
            if impairments.jitter > .zero {
                let j = Double.random(in: 0..<1, using: &rng)
                d += impairments.jitter * j
            }
            push(InFlight(at: now + d, order: order, toB: toB, packet: packet))
            order += 1
        }
    }

    /// Delivers everything due now, runs due timers, and advances the clock to
    /// the next event. Returns false when nothing at all is pending.
    @discardableResult
    mutating func step() -> Bool {
        collect()
        while let top = inFlight.first, top.at <= now {
            let p = pop()
            p.packet.withUnsafeBytes { buf in
                if p.toB { b.input(buf, now: now) } else { a.input(buf, now: now) }
            }
            delivered += 1
        }
        a.handleTimers(now: now)
        b.handleTimers(now: now)
        collect()
        var next: NetInstant? = inFlight.first?.at
        for d in [a.nextDeadline, b.nextDeadline] {
            if let d { next = next.map { Swift.min($0, d) } ?? d }
        }
        guard let n = next else { return false }
        if n > now { now = n }
        return true
    }

    /// Steps until `done` holds (checked after every step) or `limit` of fake time passes.
    mutating func run(for limit: Duration, until done: (inout LinkSimulator) -> Bool) -> Bool {
        let end = now + limit
        while now < end {
            if done(&self) { return true }
            if !step() {
                if done(&self) { return true }
                now = now + .milliseconds(10)
            }
        }
        return done(&self)
    }

    /// Advances fake time by `d`, processing everything on the way.
    mutating func advance(_ d: Duration) {
        _ = run(for: d) { _ in false }
    }

    private mutating func push(_ e: InFlight) {
        inFlight.append(e)
        var i = inFlight.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            guard less(inFlight[i], inFlight[p]) else { break }
            inFlight.swapAt(i, p)
            i = p
        }
    }

    private func less(_ x: InFlight, _ y: InFlight) -> Bool { x.at < y.at || (x.at == y.at && x.order < y.order) }

    private mutating func pop() -> InFlight {
        let top = inFlight[0]
        let last = inFlight.removeLast()
        if !inFlight.isEmpty {
            inFlight[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1
                let r = l + 1
                var m = i
                if l < inFlight.count && less(inFlight[l], inFlight[m]) { m = l }
                if r < inFlight.count && less(inFlight[r], inFlight[m]) { m = r }
                if m == i { break }
                inFlight.swapAt(i, m)
                i = m
            }
        }
        return top
    }
}

/// A deterministic byte stream: byte i of stream `tag`.
@inline(__always)
func streamByte(_ i: Int, tag: Int) -> UInt8 {
    UInt8(truncatingIfNeeded: (i &* 31) ^ (i >> 9) ^ (tag &* 101))
}

/// Pumps a byte-exact bulk transfer through one connection end: writes the
/// pattern while the send buffer has room, reads and checks what arrives.
struct BulkEndpoint {
    let tag: Int
    let peerTag: Int
    let total: Int
    var written = 0
    var received = 0
    var mismatches = 0
    var shutDown = false
    var sawEnd = false
    private var scratch = [UInt8](repeating: 0, count: 256 * 1024)

    init(tag: Int, peerTag: Int, total: Int) {
        self.tag = tag
        self.peerTag = peerTag
        self.total = total
    }

    mutating func pump(_ core: inout StackCore, _ id: StackCore.ConnectionID, now: NetInstant) {
        while written < total {
            let room = core.connection(id)?.writableBytes ?? 0
            let n = Swift.min(scratch.count, total - written, room)
            if n == 0 { break }
            for i in 0..<n { scratch[i] = streamByte(written + i, tag: tag) }
            let accepted = scratch.withUnsafeBytes {
                core.write(id, UnsafeRawBufferPointer(rebasing: $0[0..<n]), now: now)
            }
            written += accepted
            if accepted < n { break }
        }
        if written == total && !shutDown {
            core.shutdownWrite(id, now: now)
            shutDown = true
        }
        while true {
            let n = scratch.withUnsafeMutableBytes { core.read(id, into: $0, now: now) }
            if n == 0 { break }
            for i in 0..<n where scratch[i] != streamByte(received + i, tag: peerTag) { mismatches += 1 }
            received += n
        }
        if let c = core.connection(id), c.isReadAtEnd { sawEnd = true }
    }
}

import CryptoPrimitives
import WireGuardCore

/// Builders for the inner IP packets the tests tunnel.
enum TestPackets {
    /// A minimal IPv4 packet (protocol 253, "experimental"); the core only
    /// reads version, total length and addresses.
    static func ipv4(from source: String, to destination: String, payload: [UInt8]) -> [UInt8] {
        let total = 20 + payload.count
        var p: [UInt8] = [0x45, 0, UInt8(total >> 8), UInt8(total & 0xff), 0, 0, 0, 0, 64, 253, 0, 0]
        p += IPAddress(source)!.bytes
        p += IPAddress(destination)!.bytes
        return p + payload
    }

    static func ipv6(from source: String, to destination: String, payload: [UInt8]) -> [UInt8] {
        var p: [UInt8] = [0x60, 0, 0, 0, UInt8(payload.count >> 8), UInt8(payload.count & 0xff), 253, 64]
        p += IPAddress(source)!.bytes
        p += IPAddress(destination)!.bytes
        return p + payload
    }
}

/// Two interfaces joined by an in-memory link, under one fake clock: the
/// double the unit tests drive (like wireguard-go's bindtest and
/// boringtun's mock clock).
struct Pair {
    var a: Interface
    var b: Interface
    let peerOfA: PeerID  // B as seen by A
    let peerOfB: PeerID  // A as seen by B
    var endpointA = Endpoint("192.0.2.1:51820")!
    var endpointB = Endpoint("192.0.2.2:51820")!
    var now = Instant.zero
    /// Datagrams in flight, with who sent them.
    var inFlight: [(fromA: Bool, OutgoingDatagram)] = []
    /// Everything that went over the link, for assertions.
    var log: [(time: Instant, fromA: Bool, type: UInt8, size: Int)] = []
    /// IP packets delivered to each side's tunnel.
    var deliveredToA: [[UInt8]] = []
    var deliveredToB: [[UInt8]] = []
    var lastResultA: DecapsulationResult?
    var lastResultB: DecapsulationResult?

    init(psk: Bytes32? = nil, bKnowsA: Bool = true, persistentKeepalive: UInt16? = nil) {
        let ka = X25519.PrivateKey()
        let kb = X25519.PrivateKey()
        let pa = ka.publicKey
        let pb = kb.publicKey
        a = Interface(privateKey: ka, wallClockOffset: 1_700_000_000_000_000_000)
        b = Interface(privateKey: kb, wallClockOffset: 1_700_000_000_000_000_000)
        peerOfA = try! a.addPeer(publicKey: pb)
        peerOfB = try! b.addPeer(publicKey: pa)
        a.setEndpoint(peerOfA, endpointB)
        if bKnowsA { b.setEndpoint(peerOfB, endpointA) }
        a.addAllowedIP(peerOfA, IPPrefix("10.0.0.2/32")!)
        a.addAllowedIP(peerOfA, IPPrefix("fd00::2/128")!)
        b.addAllowedIP(peerOfB, IPPrefix("10.0.0.1/32")!)
        b.addAllowedIP(peerOfB, IPPrefix("fd00::1/128")!)
        a.setPresharedKey(peerOfA, psk)
        b.setPresharedKey(peerOfB, psk)
    }

    /// A sends an IP packet to B's tunnel address (through its tunnel).
    @discardableResult
    mutating func sendFromA(_ payload: [UInt8] = [0xab]) -> EncapsulationResult {
        let packet = TestPackets.ipv4(from: "10.0.0.1", to: "10.0.0.2", payload: payload)
        return Self.encapsulate(&a, packet, now: now, fromA: true, into: &inFlight)
    }

    @discardableResult
    mutating func sendFromB(_ payload: [UInt8] = [0xcd]) -> EncapsulationResult {
        let packet = TestPackets.ipv4(from: "10.0.0.2", to: "10.0.0.1", payload: payload)
        return Self.encapsulate(&b, packet, now: now, fromA: false, into: &inFlight)
    }

    static func encapsulate(
        _ side: inout Interface, _ packet: [UInt8], now: Instant, fromA: Bool,
        into inFlight: inout [(fromA: Bool, OutgoingDatagram)]
    ) -> EncapsulationResult {
        var buffer = [UInt8](repeating: 0, count: 16 + packet.count + 64)
        buffer.replaceSubrange(16..<(16 + packet.count), with: packet)
        let result = buffer.withUnsafeMutableBytes { side.encapsulate($0, packet: 16..<(16 + packet.count), now: now) }
        // Handshake messages the call produced go first, as a device would send them.
        for d in side.takeOutgoing() { inFlight.append((fromA, d)) }
        if case .send(let peer, let endpoint, let range) = result {
            inFlight.append((fromA, OutgoingDatagram(peer: peer, endpoint: endpoint, bytes: Array(buffer[range]))))
        }
        return result
    }

    /// Collects what timers and earlier calls queued.
    mutating func collect() {
        for d in a.takeOutgoing() { inFlight.append((true, d)) }
        for d in b.takeOutgoing() { inFlight.append((false, d)) }
    }

    /// Delivers everything in flight (and what that causes) until quiet.
    /// `dropFromA`/`dropFromB` simulate a link that loses one direction.
    mutating func deliver(dropFromA: Bool = false, dropFromB: Bool = false, maxRounds: Int = 20) {
        collect()
        var rounds = 0
        while !inFlight.isEmpty, rounds < maxRounds {
            rounds += 1
            let batch = inFlight
            inFlight.removeAll()
            for (fromA, d) in batch {
                log.append((now, fromA, d.bytes.first ?? 0, d.bytes.count))
                if fromA ? dropFromA : dropFromB { continue }
                var bytes = d.bytes
                let source = fromA ? endpointA : endpointB
                if fromA {
                    let r = bytes.withUnsafeMutableBytes {
                        b.decapsulate($0, datagram: 0..<$0.count, source: source, now: now)
                    }
                    lastResultB = r
                    if case .tunnel(_, let range) = r { deliveredToB.append(Array(bytes[range])) }
                } else {
                    let r = bytes.withUnsafeMutableBytes {
                        a.decapsulate($0, datagram: 0..<$0.count, source: source, now: now)
                    }
                    lastResultA = r
                    if case .tunnel(_, let range) = r { deliveredToA.append(Array(bytes[range])) }
                }
            }
            collect()
        }
    }

    /// Advances the clock to `t`, firing timers on both sides at every
    /// deadline on the way (and delivering what they send).
    mutating func advance(to t: Instant, dropFromA: Bool = false, dropFromB: Bool = false) {
        deliver(dropFromA: dropFromA, dropFromB: dropFromB)  // what is already in flight goes now
        while true {
            let next = [a.nextTimerDeadline, b.nextTimerDeadline].compactMap { $0 }.min()
            guard let next, next <= t else { break }
            now = max(now, next)
            a.updateTimers(now: now)
            b.updateTimers(now: now)
            deliver(dropFromA: dropFromA, dropFromB: dropFromB)
        }
        now = t
        a.updateTimers(now: now)
        b.updateTimers(now: now)
        deliver(dropFromA: dropFromA, dropFromB: dropFromB)
    }

    mutating func advance(by d: Duration, dropFromA: Bool = false, dropFromB: Bool = false) {
        advance(to: now + d, dropFromA: dropFromA, dropFromB: dropFromB)
    }

    func count(fromA: Bool, type: UInt8, after t: Instant = .zero) -> Int {
        log.filter { $0.fromA == fromA && $0.type == type && $0.time >= t }.count
    }

    func times(fromA: Bool, type: UInt8) -> [Instant] {
        log.filter { $0.fromA == fromA && $0.type == type }.map(\.time)
    }
}

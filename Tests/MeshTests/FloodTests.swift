import CMeshLinux
import CryptoPrimitives
import Foundation
import Mesh
import Testing
import WireGuardCore

/// Issue 3: "a flood of 100,000 initiations per second from one address does
/// not stop data flowing for an established peer". Two of our devices over
/// loopback; a third socket floods B with initiations whose mac1 is valid
/// (the attacker knows B's public key), so each would cost B a
/// Diffie-Hellman if the under-load defences (cookie replies, per-source
/// rate limit) did not stop them first.
@Suite struct FloodTests {
    @Test func initiationFloodDoesNotStopData() throws {
        let qa = PacketQueue()
        let qb = PacketQueue()
        let ka = X25519.PrivateKey()
        let kb = X25519.PrivateKey()
        let pa = ka.publicKey
        let pb = kb.publicKey
        let a = try WireGuardDevice(end: qa, privateKey: ka)
        let b = try WireGuardDevice(end: qb, privateKey: kb)
        let portB = b.listenPort
        a.withInterface { i in
            let id = try! i.addPeer(publicKey: pb)
            i.setEndpoint(id, WireGuardCore.Endpoint("127.0.0.1:\(portB)")!)
            i.addAllowedIP(id, IPPrefix("10.9.0.2/32")!)
        }
        b.withInterface { i in
            let id = try! i.addPeer(publicKey: pa)
            i.addAllowedIP(id, IPPrefix("10.9.0.1/32")!)
        }
        a.start()
        b.start()
        defer {
            a.stop()
            b.stop()
        }
        func packet(_ n: Int) -> [UInt8] {
            [0x45, 0, 0, 22, 0, 0, 0, 0, 64, 253, 0, 0, 10, 9, 0, 1, 10, 9, 0, 2, UInt8(n >> 8), UInt8(n & 0xff)]
        }
        qa.send(packet(0))
        #expect(qb.receive(timeoutMilliseconds: 5000).count == 1, "session established")

        // The attacker's initiations: real ones (valid mac1) from a key B
        // does not know, made once and replayed at 100k/s.
        var attacker = Interface(privateKey: X25519.PrivateKey())
        let victim = try attacker.addPeer(publicKey: pb)
        attacker.setEndpoint(victim, WireGuardCore.Endpoint("127.0.0.1:\(portB)")!)
        var initiations: [[UInt8]] = []
        for k in 0..<64 {
            attacker.initiateHandshake(victim, now: .zero + .seconds(6 * k))
            initiations += attacker.takeOutgoing().map(\.bytes)
        }
        let flooder = Flooder(port: portB, messages: initiations)
        let flooding = Thread { flooder.run(perSecond: 100_000, seconds: 1) }
        flooding.start()

        // Meanwhile A sends one packet per millisecond for a second.
        var received = 0
        for n in 1...1000 {
            qa.send(packet(n))
            if n % 50 == 0 { received += qb.receive(timeoutMilliseconds: 0).count }
            usleep(1000)
        }
        while !flooder.finished { usleep(10_000) }
        let deadline = Date().addingTimeInterval(3)
        while received < 1000, Date() < deadline { received += qb.receive(timeoutMilliseconds: 100).count }
        let drops = b.drops
        print(
            "flood: sent \(flooder.sent) initiations in \(flooder.elapsed) s (\(Int(flooder.rate))/s); "
                + "data delivered \(received)/1000; "
                + "B dropped \(drops.nonzero.map { "\($0.0)=\($0.1)" }.joined(separator: ", "))")
        #expect(flooder.sent == 100_000)
        // The rate is printed; the goal (100k/s) is met on an idle machine,
        // but a shared CI box can slow the sender, so the test only insists
        // that the flood was heavy enough to put B under load.
        #expect(flooder.rate >= 50_000, "the flood ran at tens of thousands per second at least")
        // Loopback UDP may lose a few data packets when the socket buffer
        // overflows under the flood; the session itself must never stall.
        #expect(received >= 850, "data kept flowing")
        #expect(drops[.cookieReplySent] + drops[.rateLimited] > 0, "under-load defences engaged")
        #expect(drops[.unknownPeer] < UInt64(flooder.sent / 10), "most initiations never reached Diffie-Hellman")
    }
}

/// Sends datagrams to 127.0.0.1:port at a fixed rate from one socket: the
/// datagrams are laid out once and sent with `sendmmsg` (the device's own
/// batch call) 64 at a time, so the rate is bounded by the kernel's UDP
/// send path, not by per-datagram overhead.
final class Flooder: @unchecked Sendable {
    let port: UInt16
    let messages: [[UInt8]]
    private(set) var sent = 0
    private(set) var elapsed = 0.0
    private(set) var finished = false
    static let batch = 64

    init(port: UInt16, messages: [[UInt8]]) {
        precondition(!messages.isEmpty)
        self.port = port
        self.messages = messages
    }

    /// Sends `perSecond × seconds` datagrams on that schedule (catching up
    /// in batches); `elapsed` says how long it really took.
    func run(perSecond: Int, seconds: Double) {
        var bound: UInt16 = 0
        let fd = tether_udp_open(0, &bound)
        guard fd >= 0 else {
            finished = true
            return
        }
        defer { close(fd) }
        // Messages in one contiguous block; a ring of (pointer, length,
        // destination) over it, long enough that any batch of 64 starting
        // at a message index is contiguous.
        let total = Int(Double(perSecond) * seconds)
        let ring = max(messages.count, Self.batch) * 2
        let storage = UnsafeMutableRawBufferPointer.allocate(
            byteCount: messages.reduce(0) { $0 + $1.count }, alignment: 16)
        defer { storage.deallocate() }
        var offsets: [Int] = []
        var offset = 0
        for m in messages {
            offsets.append(offset)
            m.withUnsafeBytes { (storage.baseAddress! + offset).copyMemory(from: $0.baseAddress!, byteCount: m.count) }
            offset += m.count
        }
        var destination = tether_endpoint()
        destination.family = 4
        destination.port = port
        withUnsafeMutableBytes(of: &destination.address) { $0.copyBytes(from: [127, 0, 0, 1] as [UInt8]) }
        let pointers: [UnsafePointer<UInt8>?] = (0..<ring).map {
            UnsafePointer((storage.baseAddress! + offsets[$0 % messages.count]).assumingMemoryBound(to: UInt8.self))
        }
        let lengths = (0..<ring).map { UInt32(messages[$0 % messages.count].count) }
        let destinations = [tether_endpoint](repeating: destination, count: ring)
        let start = Date()
        var count = 0
        pointers.withUnsafeBufferPointer { pointers in
            lengths.withUnsafeBufferPointer { lengths in
                destinations.withUnsafeBufferPointer { destinations in
                    while count < total {
                        let t = Date().timeIntervalSince(start)
                        if t > seconds * 10 { break }  // the socket keeps failing: report what went out
                        let due = min(total, Int(t * Double(perSecond)) + Self.batch)
                        while count < due {
                            let first = count % messages.count
                            let rc = tether_udp_send_batch(
                                fd, pointers.baseAddress! + first, lengths.baseAddress! + first,
                                destinations.baseAddress! + first, UInt32(min(Self.batch, due - count)))
                            if rc <= 0 { break }  // ENOBUFS and the like: again on the next tick
                            count += Int(rc)
                        }
                        if count < total { usleep(100) }
                    }
                }
            }
        }
        sent = count
        elapsed = Date().timeIntervalSince(start)
        finished = true
    }

    var rate: Double { elapsed > 0 ? Double(sent) / elapsed : 0 }
}

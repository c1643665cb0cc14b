import CryptoPrimitives
import RawSodium
import WireGuardCore

#if canImport(Glibc)
    import Glibc
#endif

// WireGuard data path and handshake (issue 3), ours beside the reference
// measured in the same run:
//
//   1. transport seal+open at 1420 B through two `Interface`s (routing,
//      counters, padding, replay window, AllowedIPs, in place) vs raw
//      libsodium making the same two AEAD calls from C (goal ≥ 0.8);
//   2. full handshakes (initiation, response, both sessions derived) vs the
//      bound implied by their X25519 work: 8 scalar multiplications per
//      handshake with the static-static DH precomputed (goal ≥ 0.8).
//
// Ours and the reference run in alternating slices (BENCH_SLICE_MS each,
// default 200; BENCH_ROUNDS rounds, default 15), and the ratio reported for
// each pair is the median of the per-round ratios: on a shared machine a
// change of load then hits both sides alike instead of whichever ran second.
// A plain executable rather than a package-benchmark target because that
// harness runs one benchmark to completion before starting the next.

let sliceNanoseconds = UInt64(environmentInt("BENCH_SLICE_MS") ?? 200) * 1_000_000
let rounds = max(1, environmentInt("BENCH_ROUNDS") ?? 15)
let packetSize = 1420

// MARK: measuring

func environmentInt(_ name: String) -> Int? {
    getenv(name).flatMap { Int(String(cString: $0)) }
}

func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

func loadAverage() -> String {
    guard let file = fopen("/proc/loadavg", "r") else { return "?" }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 128)
    guard fgets(&line, 128, file) != nil else { return "?" }
    let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return text.split(separator: " ").prefix(3).joined(separator: " ")
}

/// Runs `step` (one unit of work) in groups of 16 until a slice has passed;
/// returns units per second.
func slice(_ step: () -> Void) -> Double {
    let start = monotonicNanoseconds()
    var units = 0
    var now = start
    repeat {
        for _ in 0..<16 { step() }
        units += 16
        now = monotonicNanoseconds()
    } while now - start < sliceNanoseconds
    return Double(units) * 1e9 / Double(now - start)
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    let n = sorted.count
    return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2
}

/// Alternates ours and the reference, then prints both medians, the median
/// of the per-round ratios, its range and the load average.
func compare(_ name: String, unit: String, goal: Double, reference: String, ours: () -> Void, theirs: () -> Void) {
    _ = slice(ours)  // warm both up once
    _ = slice(theirs)
    var oursRates: [Double] = []
    var theirRates: [Double] = []
    var ratios: [Double] = []
    for _ in 0..<rounds {
        let o = slice(ours)
        let r = slice(theirs)
        oursRates.append(o)
        theirRates.append(r)
        ratios.append(o / r)
    }
    print(
        name.padded(52) + format(median(oursRates)).leftPadded(12) + format(median(theirRates)).leftPadded(12) + " "
            + unit.padded(13) + format(median(ratios), digits: 3).leftPadded(7))
    print(
        "    vs \(reference); goal ≥ \(goal); per-round ratios "
            + "\(format(ratios.min()!, digits: 3))–\(format(ratios.max()!, digits: 3)); load \(loadAverage())")
    fflush(nil)
}

func format(_ value: Double, digits: Int = 1) -> String {
    var buffer = [CChar](repeating: 0, count: 64)
    _ = withVaList([value]) { vsnprintf(&buffer, 64, "%.\(digits)f", $0) }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

extension String {
    func padded(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}

// MARK: the work

/// Two interfaces with a session, A → B routed by 10.0.0.2/32.
func establishedPair() -> (Interface, Interface, PeerID, Endpoint) {
    let ka = X25519.PrivateKey()
    let kb = X25519.PrivateKey()
    let pa = ka.publicKey
    let pb = kb.publicKey
    var a = Interface(privateKey: ka)
    var b = Interface(privateKey: kb)
    let endpointA = Endpoint("192.0.2.1:1")!
    let endpointB = Endpoint("192.0.2.2:2")!
    let peer = try! a.addPeer(publicKey: pb)
    a.setEndpoint(peer, endpointB)
    a.addAllowedIP(peer, IPPrefix("10.0.0.2/32")!)
    let back = try! b.addPeer(publicKey: pa)
    b.addAllowedIP(back, IPPrefix("10.0.0.1/32")!)
    a.initiateHandshake(peer, now: .zero)
    var initiation = a.takeOutgoing()[0].bytes
    _ = initiation.withUnsafeMutableBytes { b.decapsulate($0, datagram: 0..<148, source: endpointA, now: .zero) }
    var response = b.takeOutgoing()[0].bytes
    _ = response.withUnsafeMutableBytes { a.decapsulate($0, datagram: 0..<92, source: endpointB, now: .zero) }
    var keepalive = a.takeOutgoing()[0].bytes
    _ = keepalive.withUnsafeMutableBytes { b.decapsulate($0, datagram: 0..<$0.count, source: endpointA, now: .zero) }
    return (a, b, peer, endpointA)
}

func writeIPv4Header(_ buffer: UnsafeMutableRawBufferPointer, at offset: Int, total: Int) {
    let header: [UInt8] = [
        0x45, 0, UInt8(total >> 8), UInt8(total & 0xff), 0, 0, 0, 0, 64, 253, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ]
    for (i, byte) in header.enumerated() { buffer[offset + i] = byte }
}

guard raw_sodium_init() >= 0 else { fatalError("libsodium did not initialise") }
print("WireGuard (issue 3): medians of \(rounds) alternating \(sliceNanoseconds / 1_000_000) ms slices per side")
print(
    "benchmark".padded(52) + "ours".leftPadded(12) + "reference".leftPadded(12) + " " + "unit".padded(13)
        + "ratio".leftPadded(7))

// 1. Transport: one packet sealed by A and opened by B per unit.
do {
    var (a, b, _, endpointA) = establishedPair()
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 16 + packetSize + 64, alignment: 16)
    defer { buffer.deallocate() }
    buffer.initializeMemory(as: UInt8.self, repeating: 0x5a)
    writeIPv4Header(buffer, at: 16, total: packetSize)
    let raw = UnsafeMutablePointer<UInt8>.allocate(capacity: packetSize + 16)
    defer { raw.deallocate() }
    raw.initialize(repeating: 0x5a, count: packetSize + 16)
    let key = UnsafeMutablePointer<UInt8>.allocate(capacity: 32)
    defer { key.deallocate() }
    for (i, byte) in SecureRandom.bytes(32).enumerated() { key[i] = byte }
    var counter: UInt64 = 0
    compare(
        "transport seal+open, 1420 B", unit: "packets/s", goal: 0.8,
        reference: "raw libsodium ChaCha20-Poly1305 seal+open from C",
        ours: {
            guard case .send(_, _, let datagram) = a.encapsulate(buffer, packet: 16..<(16 + packetSize), now: .zero)
            else { fatalError("not sent") }
            guard case .tunnel = b.decapsulate(buffer, datagram: datagram, source: endpointA, now: .zero)
            else { fatalError("not received") }
        },
        theirs: {
            counter &+= 1
            raw_chacha_seal(raw, packetSize, key, counter)
            precondition(raw_chacha_open(raw, packetSize + 16, key, counter) == 0)
        })
}

// 2. Handshakes: initiation by A, response by B, A derives its session.
do {
    var (a, b, peer, endpointA) = establishedPair()
    let endpointB = a.endpoint(of: peer)!
    var now = Instant.zero
    let scalar = SecureRandom.bytes(32)
    let point = X25519.PrivateKey().publicKey.raw.bytes
    var out = [UInt8](repeating: 0, count: 32)
    compare(
        "full handshake (both sides, sessions derived)", unit: "handshakes/s", goal: 0.8,
        reference: "X25519 bound: 8 raw scalar multiplications from C",
        ours: {
            now += .seconds(6)
            a.initiateHandshake(peer, now: now)
            var initiation = a.takeOutgoing()[0].bytes
            _ = initiation.withUnsafeMutableBytes {
                b.decapsulate($0, datagram: 0..<148, source: endpointA, now: now)
            }
            var response = b.takeOutgoing()[0].bytes
            _ = response.withUnsafeMutableBytes { a.decapsulate($0, datagram: 0..<92, source: endpointB, now: now) }
            _ = a.takeOutgoing()  // the confirming keepalive
        },
        theirs: {
            for _ in 0..<8 { precondition(raw_x25519(&out, scalar, point) == 0) }
        })
}

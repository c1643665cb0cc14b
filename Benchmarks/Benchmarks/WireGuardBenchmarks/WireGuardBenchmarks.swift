import Benchmark
import CryptoPrimitives
import RawSodium
import WireGuardCore

/// WireGuard data path and handshake, ours beside the reference from the
/// same run (issue 3):
///   - transport seal+open at 1420 B through two `Interface`s (routing,
///     counters, padding, replay window, AllowedIPs, in place) vs raw
///     libsodium doing the same two AEAD calls from C (goal ≥ 0.8);
///   - full handshakes (initiation, response, both sessions derived) vs the
///     bound implied by their X25519 work: 8 scalar multiplications per
///     handshake with the static-static DH precomputed (goal ≥ 0.8).
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock, .mallocCountTotal],
        scalingFactor: .kilo,
        maxDuration: .seconds(3),
        maxIterations: 1_000_000
    )
    _ = raw_sodium_init()
    let packetSize = 1420

    Benchmark("WireGuard transport seal+open 1420 B, k packets per s · ours") { benchmark in
        var (a, b, peer, endpointA) = establishedPair()
        _ = peer
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 16 + packetSize + 64, alignment: 16)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0x5a)
        writeIPv4Header(buffer, at: 16, total: packetSize)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            guard case .send(_, _, let datagram) = a.encapsulate(buffer, packet: 16..<(16 + packetSize), now: .zero)
            else { fatalError("not sent") }
            guard case .tunnel = b.decapsulate(buffer, datagram: datagram, source: endpointA, now: .zero)
            else { fatalError("not received") }
        }
    }
    Benchmark("WireGuard transport seal+open 1420 B, k packets per s · libsodium") { benchmark in
        let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: packetSize + 16)
        defer { buffer.deallocate() }
        buffer.initialize(repeating: 0x5a, count: packetSize + 16)
        let key = SecureRandom.bytes(32)
        var counter: UInt64 = 0
        benchmark.startMeasurement()
        key.withUnsafeBufferPointer { k in
            for _ in benchmark.scaledIterations {
                counter &+= 1
                raw_chacha_seal(buffer, packetSize, k.baseAddress!, counter)
                precondition(raw_chacha_open(buffer, packetSize + 16, k.baseAddress!, counter) == 0)
            }
        }
    }

    Benchmark("WireGuard full handshake, handshakes per s · ours", configuration: .init(scalingFactor: .one)) {
        benchmark in
        var (a, b, peer, endpointA) = establishedPair()
        let endpointB = a.endpoint(of: peer)!
        var now = Instant.zero
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            now += .seconds(6)
            a.initiateHandshake(peer, now: now)
            var initiation = a.takeOutgoing()[0].bytes
            _ = initiation.withUnsafeMutableBytes { b.decapsulate($0, datagram: 0..<148, source: endpointA, now: now) }
            var response = b.takeOutgoing()[0].bytes
            _ = response.withUnsafeMutableBytes { a.decapsulate($0, datagram: 0..<92, source: endpointB, now: now) }
            _ = a.takeOutgoing()  // the confirming keepalive
        }
    }
    Benchmark("WireGuard full handshake, handshakes per s · X25519 bound", configuration: .init(scalingFactor: .one)) {
        benchmark in
        let scalar = SecureRandom.bytes(32)
        let point = X25519.PrivateKey().publicKey.raw.bytes
        var out = [UInt8](repeating: 0, count: 32)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            for _ in 0..<8 { precondition(raw_x25519(&out, scalar, point) == 0) }
        }
        blackHole(out)
    }
}

/// Two interfaces with a session, A → B routed by 10.0.0.2/32.
private func establishedPair() -> (Interface, Interface, PeerID, Endpoint) {
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

private func writeIPv4Header(_ buffer: UnsafeMutableRawBufferPointer, at offset: Int, total: Int) {
    let header: [UInt8] = [
        0x45, 0, UInt8(total >> 8), UInt8(total & 0xff), 0, 0, 0, 0, 64, 253, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ]
    for (i, byte) in header.enumerated() { buffer[offset + i] = byte }
}

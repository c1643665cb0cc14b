// Mesh node-to-node figures, each beside plain kernel TCP on the same link
// (loopback) measured in the same run: throughput direct and via DERP, cold
// start to first byte, and the time from the first packet (over DERP) to the
// direct path. A load generator like ControlPlaneBenchmarks (whole nodes,
// seconds per run), not a package-benchmark target.
import CryptoPrimitives
import DERP
import Foundation
import Mesh
import Netstack
import WireGuardCore

let transferBytes = 64 << 20
let derpTransferBytes = 16 << 20
let chunk = [UInt8](repeating: 0x5a, count: 64 << 10)

func loadavg() -> String {
    (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ")
        ?? "?"
}

func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }

// MARK: - Plain kernel TCP on loopback (the reference)

/// Connects to a fresh listener on 127.0.0.1 and moves `bytes`; returns the
/// time to the first byte at the receiver and the whole transfer's time.
func plainTCP(bytes: Int) throws -> (firstByte: Duration, total: Duration) {
    let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) } }
    listen(listener, 1)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
    }
    let clock = ContinuousClock()
    let start = clock.now
    let firstByte = LockedBox<Duration?>(nil)
    let receiver = Thread {
        let c = accept(listener, nil, nil)
        var buffer = [UInt8](repeating: 0, count: 256 << 10)
        var got = 0
        while got < bytes {
            let n = read(c, &buffer, buffer.count)
            if n <= 0 { break }
            if got == 0 { firstByte.set(clock.now - start) }
            got += n
        }
        close(c)
    }
    receiver.start()
    let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(s, $0, length) } }
    var sent = 0
    while sent < bytes {
        let n = chunk.withUnsafeBytes { write(s, $0.baseAddress, min(chunk.count, bytes - sent)) }
        if n <= 0 { break }
        sent += n
    }
    shutdown(s, Int32(SHUT_WR))
    var one: UInt8 = 0
    _ = read(s, &one, 1)  // returns when the receiver closed
    let total = clock.now - start
    close(s)
    close(listener)
    return (firstByte.get() ?? total, total)
}

final class LockedBox<T: Sendable>: @unchecked Sendable {
    private var value: T
    private let lock = NSLock()
    init(_ value: T) { self.value = value }
    func set(_ v: T) { lock.withLock { value = v } }
    func get() -> T { lock.withLock { value } }
}

// MARK: - Two mesh nodes on loopback with an in-process DERP server

struct Pair {
    let a: MeshNode
    let b: MeshNode
    let server: DERPHTTPServer
    let addressB: WireGuardCore.IPAddress
}

func makePair(directPaths: Bool) async throws -> Pair {
    var config = DERPServer.Configuration()
    config.queueDepth = 1024
    let server = try await DERPHTTPServer.bind(
        DERPServer(privateKey: X25519.PrivateKey(), configuration: config), host: "127.0.0.1", port: 0)
    let map = DERPMap(regions: [DERPMap.Region(id: 1, url: DERPURL(host: "127.0.0.1", port: server.port))])
    let ipA = WireGuardCore.IPAddress("fd7a:115c:a1e0::1")!
    let ipB = WireGuardCore.IPAddress("fd7a:115c:a1e0::2")!
    var ca = MeshNode.Configuration(addresses: [ipA], derpMap: map)
    var cb = MeshNode.Configuration(addresses: [ipB], derpMap: map)
    ca.directPaths = directPaths
    cb.directPaths = directPaths
    let a = try MeshNode(privateKey: X25519.PrivateKey(), configuration: ca)
    let b = try MeshNode(privateKey: X25519.PrivateKey(), configuration: cb)
    try a.upsertPeer(
        MeshPeer(
            nodeKey: b.publicKey, discoKey: b.discoKey, homeRegion: 1, endpoints: [Endpoint("127.0.0.1:\(b.listenPort)")!],
            addresses: [IPPrefix(address: ipB, length: 128)!]))
    try b.upsertPeer(
        MeshPeer(
            nodeKey: a.publicKey, discoKey: a.discoKey, homeRegion: 1, endpoints: [Endpoint("127.0.0.1:\(a.listenPort)")!],
            addresses: [IPPrefix(address: ipA, length: 128)!]))
    await a.start()
    await b.start()
    return Pair(a: a, b: b, server: server, addressB: ipB)
}

func stop(_ pair: Pair) async {
    await pair.a.stop()
    await pair.b.stop()
    try? await pair.server.close()
}

/// Moves `bytes` A → B through the nodes; first byte and total from `start`.
func meshTransfer(_ pair: Pair, bytes: Int, port: UInt16, since start: ContinuousClock.Instant) async throws
    -> (firstByte: Duration, total: Duration)
{
    let clock = ContinuousClock()
    let listener = try pair.b.listen(port: port)
    async let receiver: Duration = {
        let stream = try await listener.accept()
        var got = 0
        var first: Duration?
        while got < bytes {
            let data = try await stream.read()
            if data.isEmpty { break }
            if first == nil { first = clock.now - start }
            got += data.count
        }
        stream.close()
        return first ?? .zero
    }()
    let stream = try await pair.a.dial(pair.addressB, port: port)
    var sent = 0
    while sent < bytes {
        let n = min(chunk.count, bytes - sent)
        try await stream.write(n == chunk.count ? chunk : Array(chunk[0..<n]))
        sent += n
    }
    try await stream.flush()
    let first = try await receiver
    let total = clock.now - start
    stream.close()
    listener.close()
    return (first, total)
}

func report(_ name: String, ours: Double, reference: Double, unit: String, higherIsBetter: Bool) {
    let ratio = higherIsBetter ? ours / reference : reference / ours
    print(
        String(
            format: "%-34@ ours %10.2f %@   plain TCP %10.2f %@   ours/reference %.3f   (load %@)", name as NSString, ours,
            unit as NSString, reference, unit as NSString, ratio, loadavg() as NSString))
    fflush(nil)
}

let clock = ContinuousClock()
/// Which figures to measure (all without arguments): direct, derp, cold, upgrade.
let selected = Set(CommandLine.arguments.dropFirst())
func wanted(_ name: String) -> Bool { selected.isEmpty || selected.contains(name) }

// Throughput, direct.
if wanted("direct") {
    let reference = try plainTCP(bytes: transferBytes)
    let pair = try await makePair(directPaths: true)
    // Warm up: handshake and the direct path established.
    _ = try await meshTransfer(pair, bytes: 1 << 20, port: 7001, since: clock.now)
    let run = try await meshTransfer(pair, bytes: transferBytes, port: 7002, since: clock.now)
    let path = pair.a.statistics(of: pair.b.publicKey)?.path.description ?? "?"
    await stop(pair)
    report(
        "throughput direct (\(path.prefix(6)))", ours: Double(transferBytes) / seconds(run.total) / 1e6,
        reference: Double(transferBytes) / seconds(reference.total) / 1e6, unit: "MB/s", higherIsBetter: true)
}

// Throughput via DERP.
if wanted("derp") {
    let reference = try plainTCP(bytes: derpTransferBytes)
    let pair = try await makePair(directPaths: false)
    _ = try await meshTransfer(pair, bytes: 1 << 20, port: 7003, since: clock.now)
    let run = try await meshTransfer(pair, bytes: derpTransferBytes, port: 7004, since: clock.now)
    await stop(pair)
    report(
        "throughput via DERP", ours: Double(derpTransferBytes) / seconds(run.total) / 1e6,
        reference: Double(derpTransferBytes) / seconds(reference.total) / 1e6, unit: "MB/s", higherIsBetter: true)
}

// Cold start to first byte: nodes created, started, dialled, first byte in.
if wanted("cold") {
    let reference = try plainTCP(bytes: 1024)
    let start = clock.now
    let pair = try await makePair(directPaths: true)
    let run = try await meshTransfer(pair, bytes: 1024, port: 7005, since: start)
    await stop(pair)
    report(
        "cold start to first byte", ours: seconds(run.firstByte) * 1e3, reference: seconds(reference.firstByte) * 1e3,
        unit: "ms", higherIsBetter: false)
}

// DERP → direct: from the first dial until the path is direct. The
// reference is a plain TCP connect-and-first-byte on the same link (the
// cheapest possible "path ready").
if wanted("upgrade") {
    let reference = try plainTCP(bytes: 1024)
    let pair = try await makePair(directPaths: true)
    let listener = try pair.b.listen(port: 7006)
    let start = clock.now
    let stream = try await pair.a.dial(pair.addressB, port: 7006)
    var upgraded: Duration?
    while clock.now - start < .seconds(10) {
        if case .direct = pair.a.statistics(of: pair.b.publicKey)?.path {
            upgraded = clock.now - start
            break
        }
        try await Task.sleep(for: .milliseconds(1))
    }
    stream.close()
    listener.close()
    await stop(pair)
    report(
        "DERP → direct upgrade", ours: upgraded.map { seconds($0) * 1e3 } ?? .infinity,
        reference: seconds(reference.firstByte) * 1e3, unit: "ms", higherIsBetter: false)
}

import Benchmark
import CryptoPrimitives
import DERP
import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// DERP relay figures beside a plain TCP relay (`socat` between two
/// loopback connections) measured in the same run (issue 5):
///
/// - relay throughput between two clients at 1,400-byte packets (goal ≥ 0.7
///   of socat) and packets/s at 100 bytes;
/// - memory per idle client with 10,000 clients connected (goal ≤ 16 KiB).
///
/// The relay under test is the `tether derp` binary in its own process (as
/// socat is), found at `$TETHER_BIN` (scripts/bench.sh builds it). Both
/// sides use the same NIO sender and receiver in this process and move the
/// same bytes: a DERP frame per packet (5 + 32 + payload). The sender keeps
/// at most `window` packets in flight, below the server's queue depth, so
/// neither relay drops and both measure delivered packets.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput],
        scalingFactor: .kilo,
        maxDuration: .seconds(4),
        maxIterations: 30
    )
    for size in [1400, 100] {
        Benchmark("DERP relay \(size) B, k packets per s · ours") { benchmark in
            let relay = try await DERPRelay.start()
            benchmark.startMeasurement()
            try await relay.transfer(count: benchmark.scaledIterations.count, size: size)
            benchmark.stopMeasurement()
            await relay.stop()
        }
        Benchmark("DERP relay \(size) B, k packets per s · socat") { benchmark in
            let relay = try await SocatRelay.start()
            benchmark.startMeasurement()
            try await relay.transfer(count: benchmark.scaledIterations.count, size: size)
            benchmark.stopMeasurement()
            relay.stop()
        }
    }
    Benchmark(
        "DERP idle client, server KiB per client (goal 16) · ours",
        configuration: .init(metrics: [.custom("KiB per client", polarity: .prefersSmaller, useScalingFactor: false)], maxIterations: 1)
    ) { benchmark in
        let kib = try await idleClientMemory(clients: 10_000)
        print("DERP idle client memory: \(String(format: "%.2f", kib)) KiB per client (10,000 clients, server RSS)")
        benchmark.measurement(.custom("KiB per client", polarity: .prefersSmaller, useScalingFactor: false), Int(kib.rounded()))
    }
}

// MARK: - Pacing

/// Lets the sender run at most `window` packets ahead of the receiver.
final class Window: Sendable {
    let window: Int
    private let state = Mutex<(received: Int, target: Int, waiter: CheckedContinuation<Void, Never>?)>((0, 0, nil))
    init(window: Int) { self.window = window }

    func received(_ n: Int) {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            s.received += n
            guard let w = s.waiter, s.received >= s.target else { return nil }
            s.waiter = nil
            return w
        }
        waiter?.resume()
    }

    /// Waits until at least `count` packets have arrived.
    func wait(until count: Int) async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                if s.received >= count { return true }
                s.target = count
                s.waiter = c
                return false
            }
            if now { c.resume() }
        }
    }

    /// Before sending packet number `sent` (0-based).
    func admit(_ sent: Int) async {
        if sent >= window && sent % (window / 4) == 0 { await wait(until: sent - window / 2) }
    }
}

// MARK: - Ours: tether derp in its own process

func freePort() throws -> Int {
    let channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).wait()
    defer { try? channel.close().wait() }
    return channel.localAddress!.port!
}

func tetherBinary() throws -> String {
    if let path = ProcessInfo.processInfo.environment["TETHER_BIN"] { return path }
    let guess = FileManager.default.currentDirectoryPath + "/../.build/release/tether"
    guard FileManager.default.fileExists(atPath: guess) else {
        throw BenchmarkFailure("set TETHER_BIN to a release build of tether (scripts/bench.sh does)")
    }
    return guess
}

struct BenchmarkFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// Starts `tether derp` and waits until it answers.
func spawnDERP(queueDepth: Int) async throws -> (Process, Int) {
    let port = try freePort()
    let process = Process()
    process.executableURL = URL(fileURLWithPath: try tetherBinary())
    process.arguments = ["derp", "--host", "127.0.0.1", "--port", "\(port)", "--queue-depth", "\(queueDepth)"]
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    for _ in 0..<200 {
        if (try? await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: port).get().close().get()) != nil {
            return (process, port)
        }
        try await Task.sleep(for: .milliseconds(20))
    }
    process.terminate()
    throw BenchmarkFailure("tether derp did not start")
}

final class DERPRelay: Sendable {
    let process: Process
    let sender: DERPClient
    let receiver: DERPClient
    let window: Window

    private init(process: Process, sender: DERPClient, receiver: DERPClient, window: Window) {
        self.process = process
        self.sender = sender
        self.receiver = receiver
        self.window = window
    }

    static func start() async throws -> DERPRelay {
        let (process, port) = try await spawnDERP(queueDepth: 1024)
        let url = DERPURL(host: "127.0.0.1", port: port)
        let window = Window(window: 512)
        let sender = DERPClient(url: url, privateKey: X25519.PrivateKey())
        let receiver = DERPClient(url: url, privateKey: X25519.PrivateKey()) { _, _ in window.received(1) }
        try await sender.connect()
        try await receiver.connect()
        return DERPRelay(process: process, sender: sender, receiver: receiver, window: window)
    }

    func transfer(count: Int, size: Int) async throws {
        let packet = [UInt8](repeating: 0x5a, count: size)
        let destination = receiver.publicKey
        for i in 0..<count {
            await window.admit(i)
            try await sender.send(to: destination, packet: packet)
        }
        await window.wait(until: count)
    }

    func stop() async {
        await sender.close()
        await receiver.close()
        process.terminate()
        process.waitUntilExit()
    }
}

// MARK: - Reference: socat between two loopback connections

/// Counts received bytes and reports whole frames to the window.
final class ByteCounter: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let frameSize: Mutex<Int> = Mutex(1)
    let carry = Mutex(0)
    let window: Window
    init(window: Window) { self.window = window }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data).readableBytes
        let size = frameSize.withLock { $0 }
        let frames = carry.withLock { c -> Int in
            c += bytes
            let n = c / size
            c -= n * size
            return n
        }
        if frames > 0 { window.received(frames) }
    }
}

final class SocatRelay: Sendable {
    let process: Process
    let sender: any Channel
    let receiver: any Channel
    let counter: ByteCounter
    let window: Window

    private init(process: Process, sender: any Channel, receiver: any Channel, counter: ByteCounter, window: Window) {
        self.process = process
        self.sender = sender
        self.receiver = receiver
        self.counter = counter
        self.window = window
    }

    static func start() async throws -> SocatRelay {
        let inPort = try freePort()
        let outPort = try freePort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/socat")
        process.arguments = [
            "-b", "65536", "TCP-LISTEN:\(inPort),bind=127.0.0.1,reuseaddr", "TCP-LISTEN:\(outPort),bind=127.0.0.1,reuseaddr",
        ]
        process.standardError = FileHandle.nullDevice
        try process.run()
        let group = MultiThreadedEventLoopGroup.singleton
        func connect(_ port: Int, _ handler: (any ChannelHandler & Sendable)?) async throws -> any Channel {
            for _ in 0..<200 {
                if let channel = try? await ClientBootstrap(group: group)
                    .channelOption(.socketOption(.tcp_nodelay), value: 1)
                    .channelInitializer({ channel in
                        channel.eventLoop.makeCompletedFuture {
                            if let handler { try channel.pipeline.syncOperations.addHandler(handler) }
                        }
                    })
                    .connect(host: "127.0.0.1", port: port).get()
                {
                    return channel
                }
                try await Task.sleep(for: .milliseconds(10))
            }
            throw BenchmarkFailure("socat did not listen on \(port)")
        }
        let window = Window(window: 512)
        let counter = ByteCounter(window: window)
        let sender = try await connect(inPort, nil)
        let receiver = try await connect(outPort, counter)
        return SocatRelay(process: process, sender: sender, receiver: receiver, counter: counter, window: window)
    }

    /// The same bytes as the DERP run: one SendPacket frame per packet,
    /// written in batches as DERPClient does.
    func transfer(count: Int, size: Int) async throws {
        let frameSize = DERPWire.frameHeaderLength + DERPWire.keyLength + size
        counter.frameSize.withLock { $0 = frameSize }
        let destination = X25519.PrivateKey().publicKey
        let packet = [UInt8](repeating: 0x5a, count: size)
        var batch = sender.allocator.buffer(capacity: 64 * frameSize)
        var last: EventLoopFuture<Void>?
        for i in 0..<count {
            await window.admit(i)
            Frame.writeSendPacket(destination: destination, packet: packet, into: &batch)
            if batch.readableBytes >= 16 << 10 || i == count - 1 {
                last = sender.writeAndFlush(batch)
                batch = sender.allocator.buffer(capacity: 64 * frameSize)
            }
        }
        try await last?.get()
        await window.wait(until: count)
    }

    func stop() {
        sender.close(promise: nil)
        receiver.close(promise: nil)
        process.terminate()
        process.waitUntilExit()
    }
}

// MARK: - Memory per idle client

func residentKiB(_ pid: Int32) -> Double {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
    }
    return 0
}

/// The server's resident memory growth per logged-in idle client.
func idleClientMemory(clients count: Int) async throws -> Double {
    let (process, port) = try await spawnDERP(queueDepth: 32)
    defer {
        process.terminate()
        process.waitUntilExit()
    }
    let url = DERPURL(host: "127.0.0.1", port: port)
    // Warm up the server's allocator and event loops with a few clients.
    var clients: [DERPClient] = []
    for _ in 0..<100 {
        let client = DERPClient(url: url, privateKey: X25519.PrivateKey())
        try await client.connect()
        clients.append(client)
    }
    try await Task.sleep(for: .milliseconds(500))
    let before = residentKiB(process.processIdentifier)
    for wave in stride(from: 0, to: count, by: 250) {
        try await withThrowingTaskGroup(of: DERPClient.self) { group in
            for _ in wave..<min(wave + 250, count) {
                group.addTask {
                    let client = DERPClient(url: url, privateKey: X25519.PrivateKey())
                    try await client.connect()
                    return client
                }
            }
            for try await client in group { clients.append(client) }
        }
    }
    try await Task.sleep(for: .seconds(1))
    let after = residentKiB(process.processIdentifier)
    await withTaskGroup(of: Void.self) { group in
        for client in clients { group.addTask { await client.close() } }
    }
    return (after - before) / Double(count)
}

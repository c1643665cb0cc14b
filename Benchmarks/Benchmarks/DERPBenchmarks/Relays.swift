import CryptoPrimitives
import DERP
import Foundation
import NIOCore
import NIOPosix
import Synchronization

struct BenchmarkFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// One timed transfer through a relay process.
struct RelayRun {
    var packetsPerSecond: Double
    var cpuMicrosecondsPerPacket: Double
}

// MARK: - Pacing

/// Lets the sender run at most `window` packets ahead of the receiver, and
/// fails a run whose receiver stops making progress (a drop would hang it).
final class Window: Sendable {
    let window: Int
    private struct State {
        var received = 0
        var target = 0
        var waiter: CheckedContinuation<Void, any Error>?
        var failed: String?
    }
    private let state = Mutex(State())
    init(window: Int) { self.window = window }

    var received: Int { state.withLock { $0.received } }

    func received(_ n: Int) {
        let waiter = state.withLock { s -> CheckedContinuation<Void, any Error>? in
            s.received += n
            guard let w = s.waiter, s.received >= s.target else { return nil }
            s.waiter = nil
            return w
        }
        waiter?.resume()
    }

    func fail(_ why: String) {
        let waiter = state.withLock { s -> CheckedContinuation<Void, any Error>? in
            s.failed = why
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume(throwing: BenchmarkFailure(why))
    }

    /// Waits until at least `count` packets have arrived.
    func wait(until count: Int) async throws {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
            let now = state.withLock { s -> Result<Bool, BenchmarkFailure> in
                if let failed = s.failed { return .failure(BenchmarkFailure(failed)) }
                if s.received >= count { return .success(true) }
                s.target = count
                s.waiter = c
                return .success(false)
            }
            switch now {
            case .success(true): c.resume()
            case .success(false): break
            case .failure(let e): c.resume(throwing: e)
            }
        }
    }

    /// Before sending packet number `sent` (0-based).
    func admit(_ sent: Int) async throws {
        if sent >= window && sent % (window / 4) == 0 { try await wait(until: sent - window / 2) }
    }

    /// Fails the run when nothing arrives for `stall` while it is running.
    func watchdog(stall: Duration = .seconds(5)) -> Task<Void, Never> {
        Task {
            var last = -1
            var quietSince = ContinuousClock.now
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(200))
                let now = received
                if now != last {
                    last = now
                    quietSince = .now
                } else if ContinuousClock.now - quietSince > stall {
                    fail("no packet arrived for \(stall) (\(now) received): did the relay drop?")
                    return
                }
            }
        }
    }
}

// MARK: - Processes

/// CPU time used so far by every thread of process `pid`, in nanoseconds
/// (`/proc/<pid>/task/*/schedstat`, first field).
func cpuNanoseconds(_ pid: Int32) -> Double {
    let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
    var total = 0.0
    for task in tasks {
        if let text = try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/schedstat", encoding: .utf8),
            let first = text.split(separator: " ").first, let ns = Double(first)
        {
            total += ns
        }
    }
    return total
}

func residentKiB(_ pid: Int32) -> Double {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
    }
    return 0
}

func freePort() throws -> Int {
    let channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).wait()
    defer { try? channel.close().wait() }
    return channel.localAddress!.port!
}

func stop(_ process: Process) {
    process.terminate()
    process.waitUntilExit()
}

/// Starts the relay in its own process and waits until it answers: this
/// executable in `relay` mode (what `tether derp` runs, without building
/// the whole CLI), or `$TETHER_BIN derp` when that is set.
func spawnDERP(queueDepth: Int) async throws -> (Process, Int) {
    let port = try freePort()
    let process = Process()
    if let tether = env["TETHER_BIN"] {
        process.executableURL = URL(fileURLWithPath: tether)
        process.arguments = ["derp", "--host", "127.0.0.1", "--port", "\(port)", "--queue-depth", "\(queueDepth)"]
    } else {
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        process.arguments = ["relay", "\(port)", "\(queueDepth)"]
    }
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    for _ in 0..<500 {
        if (try? await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: port).get().close().get()) != nil {
            return (process, port)
        }
        try await Task.sleep(for: .milliseconds(20))
    }
    stop(process)
    throw BenchmarkFailure("the relay did not start")
}

/// Starts `socat` relaying between two loopback listeners, as a plain TCP
/// relay with socat's largest useful buffer, Nagle off on both sides as on
/// the DERP server's connections.
func spawnSocat() throws -> (Process, Int, Int) {
    let inPort = try freePort()
    let outPort = try freePort()
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/socat")
    process.arguments = [
        "-b", "65536", "TCP-LISTEN:\(inPort),bind=127.0.0.1,reuseaddr,nodelay", "TCP-LISTEN:\(outPort),bind=127.0.0.1,reuseaddr,nodelay",
    ]
    process.standardError = FileHandle.nullDevice
    try process.run()
    return (process, inPort, outPort)
}

// MARK: - The runs

extension RelayRun {
    /// Packets in flight; the DERP server's queue holds twice as many.
    static let window = Int(env["DERP_BENCH_WINDOW"] ?? "") ?? 2048

    /// Ours, driven by the raw sender and receiver.
    static func derp(size: Int, count: Int) async throws -> RelayRun {
        let (process, port) = try await spawnDERP(queueDepth: 2 * window)
        defer { stop(process) }
        let window = Window(window: window)
        let receiver = try await RawDERPPeer.connect(port: port, window: window)
        let sender = try await RawDERPPeer.connect(port: port, window: nil)
        defer {
            receiver.channel.close(promise: nil)
            sender.channel.close(promise: nil)
        }
        receiver.counter.frameSize.store(DERPWire.frameHeaderLength + DERPWire.keyLength + size, ordering: .relaxed)
        return try await timed(relay: process.processIdentifier, count: count, window: window) {
            try await sendFrames(on: sender.channel, to: receiver.key, count: count, size: size, window: window)
        }
    }

    /// socat, driven by the same sender and receiver code, same bytes.
    static func socat(size: Int, count: Int) async throws -> RelayRun {
        let (process, inPort, outPort) = try spawnSocat()
        defer { stop(process) }
        let window = Window(window: window)
        let counter = FrameCounter(window: window)
        counter.frameSize.store(DERPWire.frameHeaderLength + DERPWire.keyLength + size, ordering: .relaxed)
        let sender = try await connectRetrying(port: inPort) { _ in }
        let receiver = try await connectRetrying(port: outPort) { try $0.pipeline.syncOperations.addHandler(counter) }
        defer {
            receiver.close(promise: nil)
            sender.close(promise: nil)
        }
        let destination = X25519.PrivateKey().publicKey
        return try await timed(relay: process.processIdentifier, count: count, window: window) {
            try await sendFrames(on: sender, to: destination, count: count, size: size, window: window)
        }
    }

    /// Ours with `DERPClient` at both ends: the whole stack.
    static func derpClients(size: Int, count: Int) async throws -> RelayRun {
        let (process, port) = try await spawnDERP(queueDepth: 2 * window)
        defer { stop(process) }
        let url = DERPURL(host: "127.0.0.1", port: port)
        let window = Window(window: window)
        let sender = DERPClient(url: url, privateKey: X25519.PrivateKey())
        let receiver = DERPClient(url: url, privateKey: X25519.PrivateKey()) { _, _ in window.received(1) }
        try await sender.connect()
        try await receiver.connect()
        let packet = [UInt8](repeating: 0x5a, count: size)
        let destination = receiver.publicKey
        let run = try await timed(relay: process.processIdentifier, count: count, window: window) {
            for i in 0..<count {
                try await window.admit(i)
                try await sender.send(to: destination, packet: packet)
            }
        }
        await sender.close()
        await receiver.close()
        return run
    }

    static func timed(relay pid: Int32, count: Int, window: Window, send: () async throws -> Void) async throws -> RelayRun {
        let watchdog = window.watchdog()
        defer { watchdog.cancel() }
        let cpuBefore = cpuNanoseconds(pid)
        let start = ContinuousClock.now
        try await send()
        try await window.wait(until: count)
        let elapsed = ContinuousClock.now - start
        let cpu = cpuNanoseconds(pid) - cpuBefore
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return RelayRun(packetsPerSecond: Double(count) / seconds, cpuMicrosecondsPerPacket: cpu / 1000 / Double(count))
    }
}

/// One SendPacket frame per packet, written in batches of about 16 KiB as
/// `DERPClient` does.
func sendFrames(on channel: any Channel, to destination: NodeKey, count: Int, size: Int, window: Window) async throws {
    let frameSize = DERPWire.frameHeaderLength + DERPWire.keyLength + size
    let packet = [UInt8](repeating: 0x5a, count: size)
    var batch = channel.allocator.buffer(capacity: 64 * frameSize)
    var last: EventLoopFuture<Void>?
    for i in 0..<count {
        try await window.admit(i)
        Frame.writeSendPacket(destination: destination, packet: packet, into: &batch)
        if batch.readableBytes >= 16 << 10 || i == count - 1 {
            last = channel.writeAndFlush(batch)
            batch = channel.allocator.buffer(capacity: 64 * frameSize)
        }
    }
    try await last?.get()
}

func connectRetrying(port: Int, _ configure: @escaping @Sendable (any Channel) throws -> Void) async throws -> any Channel {
    for _ in 0..<200 {
        if let channel = try? await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer({ channel in channel.eventLoop.makeCompletedFuture { try configure(channel) } })
            .connect(host: "127.0.0.1", port: port).get()
        {
            return channel
        }
        try await Task.sleep(for: .milliseconds(10))
    }
    throw BenchmarkFailure("nothing listens on \(port)")
}

// MARK: - Memory per idle client

/// The server's resident memory growth per logged-in idle client. The
/// clients are raw logged-in connections of this process, so the server's
/// figure carries none of their cost.
func idleClientMemory(clients count: Int) async throws -> Double {
    let (process, port) = try await spawnDERP(queueDepth: 32)
    defer { stop(process) }
    var peers: [RawDERPPeer] = []
    defer { for peer in peers { peer.channel.close(promise: nil) } }
    // Warm the server's allocator and event loops up with a few clients.
    for _ in 0..<100 { peers.append(try await RawDERPPeer.connect(port: port, window: nil)) }
    try await Task.sleep(for: .milliseconds(500))
    let before = residentKiB(process.processIdentifier)
    for wave in stride(from: 0, to: count, by: 200) {
        try await withThrowingTaskGroup(of: RawDERPPeer.self) { group in
            for _ in wave..<min(wave + 200, count) {
                group.addTask { try await RawDERPPeer.connect(port: port, window: nil) }
            }
            for try await peer in group { peers.append(peer) }
        }
    }
    try await Task.sleep(for: .seconds(1))
    let after = residentKiB(process.processIdentifier)
    return (after - before) / Double(count)
}

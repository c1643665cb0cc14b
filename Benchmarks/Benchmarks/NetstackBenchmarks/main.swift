import Foundation
import Netstack
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

// Netstack benchmarks (issue 4), each printed beside a reference measured in
// the same run and the ratio:
//
//   1. bulk TCP between two stacks in memory, vs the kernel's TCP over
//      loopback (goal ≥ 5 Gbit/s on one core);
//   2. our stack ↔ the kernel over a TUN device, each direction, vs kernel ↔
//      kernel over a veth pair (goal ≥ 0.5 of it; needs root), with the
//      TUN link's segmentation and checksum offload (the default) and
//      without;
//   3. memory per idle established connection (goal ≤ 4 KiB);
//   4. bulk TCP over an in-memory link with 1 % loss and 50 ms one-way delay
//      vs the same link without loss.
//
// A plain executable rather than a package-benchmark target: every scenario
// runs for a fixed time and a watchdog ends the process if anything stalls,
// so the run is bounded. BENCH_SECONDS sets the length of each throughput
// run (default 3; the lossy runs take four times that).

let env = ProcessInfo.processInfo.environment
let seconds = Double(env["BENCH_SECONDS"] ?? "") ?? 3
let only = env["BENCH_ONLY"].map { Set($0.split(separator: ",").map(String.init)) }
func selected(_ name: String) -> Bool { only?.contains(name) ?? true }

// MARK: Output

func pad(_ s: String, _ width: Int) -> String {
    s.count >= width ? s : s + String(repeating: " ", count: width - s.count)
}
func num(_ v: Double, _ width: Int = 11) -> String {
    let s = String(format: v < 10 ? "%.2f" : "%.1f", v)
    return String(repeating: " ", count: max(0, width - s.count)) + s
}
func loadAverage() -> String {
    ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?").split(separator: " ").prefix(3)
        .joined(separator: " ")
}
/// One line: our figure, the reference's, ours ÷ reference, and the load average.
func row(_ name: String, ours: Double, reference: Double, unit: String) {
    let ratio = reference > 0 ? ours / reference : 0
    print(
        pad(name, 58) + num(ours) + num(reference) + " " + pad(unit, 8) + String(format: "%7.3f", ratio)
            + "   load " + loadAverage())
    fflush(nil)
}

// MARK: Watchdog

/// Ends the process if the whole run takes longer than it can legitimately take.
func startWatchdog(limit: Double) {
    let t = Thread {
        Thread.sleep(forTimeInterval: limit)
        FileHandle.standardError.write(Data("NetstackBenchmarks: watchdog: run exceeded \(Int(limit)) s, exiting\n".utf8))
        exit(3)
    }
    t.start()
}

// MARK: 1. bulk in memory

/// Two stacks joined by in-memory links and one connection between them.
final class StackPair: Sendable {
    let a: NetStack
    let b: NetStack
    let links: [MemoryLink]
    let client: TCPStream
    let server: TCPStream

    init(mtu: Int, delay: Duration = .zero, loss: Double = 0) async throws {
        let linkA = MemoryLink(mtu: mtu, delay: delay, loss: loss)
        let linkB = MemoryLink(mtu: mtu, delay: delay, loss: loss)
        a = NetStack(.init(addresses: [IPAddress("fd00::a")!]), link: linkA)
        b = NetStack(.init(addresses: [IPAddress("fd00::b")!]), link: linkB)
        linkA.deliver(to: b)
        linkB.deliver(to: a)
        links = [linkA, linkB]
        let listener = try b.listen(port: 5001)
        async let accepted = listener.accept()
        client = try await a.dial(SocketAddress(IPAddress("fd00::b")!, 5001))
        server = try await accepted
        listener.close()
    }

    /// Writes for `duration`, reading on the other end; returns bytes received per second.
    func transfer(for duration: Double) async throws -> Double {
        let received = Atomic<Int>(0)
        let server = server
        let reader = Task {
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
            defer { buffer.deallocate() }
            while true {
                guard let n = try? await server.read(into: buffer), n > 0 else { break }
                received.add(n, ordering: .relaxed)
            }
        }
        let chunk = [UInt8](repeating: 0x5a, count: 1 << 20)
        let start = ContinuousClock.now
        let end = start + .milliseconds(Int(duration * 1000))
        while ContinuousClock.now < end {
            try await client.write(chunk)
        }
        let got = received.load(ordering: .relaxed)
        let elapsed = ContinuousClock.now - start
        client.abort()
        a.stop()
        b.stop()
        _ = await reader.value
        return Double(got) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }
}

/// The kernel's TCP over 127.0.0.1: one thread writes, one reads, for `duration`.
func kernelLoopback(for duration: Double) throws -> Double {
    let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, len) } }
    _ = Glibc.listen(listener, 1)
    _ = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &len) }
    }
    let sender = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(sender, $0, len) } }
    let receiver = accept(listener, nil, nil)
    Glibc.close(listener)
    let received = Atomic<Int>(0)
    let done = DispatchSemaphore(value: 0)
    Thread {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        while true {
            let n = read(receiver, buffer.baseAddress, buffer.count)
            if n <= 0 { break }
            received.add(n, ordering: .relaxed)
        }
        buffer.deallocate()
        Glibc.close(receiver)
        done.signal()
    }.start()
    let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
    chunk.initializeMemory(as: UInt8.self, repeating: 0x5a)
    let start = Date()
    while Date().timeIntervalSince(start) < duration {
        var off = 0
        while off < chunk.count {
            let n = write(sender, chunk.baseAddress! + off, chunk.count - off)
            if n <= 0 { break }
            off += n
        }
    }
    let got = received.load(ordering: .relaxed)
    let elapsed = Date().timeIntervalSince(start)
    Glibc.close(sender)
    done.wait()
    chunk.deallocate()
    return Double(got) / elapsed
}

func gbit(_ bytesPerSecond: Double) -> Double { bytesPerSecond * 8 / 1e9 }

// MARK: 3. memory per idle connection

func residentBytes() -> Int {
    guard let s = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let f = s.split(separator: " ")
    return (Int(f[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// Opens `count` connections between two stacks, exchanges a few bytes on
/// each, lets them go idle, and returns the resident-memory growth per
/// connection end (each connection has two ends, one in each stack).
func idleConnectionMemory(count: Int) async throws -> Double {
    let linkA = MemoryLink(mtu: 1500)
    let linkB = MemoryLink(mtu: 1500)
    let a = NetStack(.init(addresses: [IPAddress("fd00::a")!]), link: linkA)
    let b = NetStack(.init(addresses: [IPAddress("fd00::b")!]), link: linkB)
    linkA.deliver(to: b)
    linkB.deliver(to: a)
    defer {
        a.stop()
        b.stop()
    }
    let listener = try b.listen(port: 80, backlog: count)
    let before = residentBytes()
    var clients: [TCPStream] = []
    var servers: [TCPStream] = []
    clients.reserveCapacity(count)
    servers.reserveCapacity(count)
    let ping: [UInt8] = Array("ping".utf8)
    var i = 0
    while i < count {
        let batch = min(200, count - i)
        try await withThrowingTaskGroup(of: TCPStream.self) { group in
            for _ in 0..<batch { group.addTask { try await a.dial(SocketAddress(IPAddress("fd00::b")!, 80)) } }
            for try await c in group { clients.append(c) }
        }
        for _ in 0..<batch { servers.append(try await listener.accept()) }
        i += batch
        if env["BENCH_DEBUG"] != nil { FileHandle.standardError.write(Data("\(i) \(Date())\n".utf8)) }
    }
    // Every connection carries a little data both ways before it idles.
    for c in clients { try await c.write(ping) }
    for s in servers {
        _ = try await s.read()
        try await s.write(ping)
    }
    for c in clients { _ = try await c.read() }
    try await Task.sleep(for: .milliseconds(300))  // delayed ACKs go out, queues drain
    let after = residentBytes()
    _ = (clients.count, servers.count)
    withExtendedLifetime((clients, servers, listener)) {}
    return Double(after - before) / Double(2 * count)
}

/// The kernel's figure for the same: the slab objects one socket end of an
/// established TCP connection holds (tcp_sock, socket inode, file, dentry),
/// from /proc/slabinfo; buffers are not counted there either. Measuring the
/// kernel by slab growth instead is too noisy on a shared machine.
func kernelSocketObjects() -> Double {
    // Foundation's file reading sees /proc/slabinfo as empty (size 0); read it through cat.
    guard let s = try? KernelPaths.sh("cat /proc/slabinfo") else { return 0 }
    var total = 0
    for line in s.split(separator: "\n") {
        let f = line.split(separator: " ", omittingEmptySubsequences: true)
        guard f.count > 4, ["TCP", "sock_inode_cache", "filp", "dentry"].contains(String(f[0])) else { continue }
        total += Int(f[3]) ?? 0
    }
    return Double(total)
}

// MARK: Run

startWatchdog(limit: 120 + seconds * 80)
print(pad("NetstackBenchmarks", 58) + pad("       ours", 11) + pad("  reference", 11) + " unit      ratio")

if selected("bulk") {
    for mtu in [65535, 1500] {
        let pair = try await StackPair(mtu: mtu)
        let ours = try await pair.transfer(for: seconds)
        let kernel = try kernelLoopback(for: seconds)
        row(
            "bulk TCP in memory, MTU \(mtu) · kernel loopback", ours: gbit(ours), reference: gbit(kernel),
            unit: "Gbit/s")
    }
}

if selected("tun") {
    if let reason = KernelPaths.unavailableReason {
        print("ours ↔ kernel over TUN: skipped (\(reason))")
    } else {
        let t = max(Int(seconds), 1)
        let ours = try await KernelPaths.ours(seconds: t, offload: true)
        let plain = try await KernelPaths.ours(seconds: t, offload: false)
        let kernel = try KernelPaths.kernel(seconds: t)
        row("TUN, ours → kernel iperf3 · kernel → kernel over veth", ours: gbit(ours.up), reference: gbit(kernel.up), unit: "Gbit/s")
        row("TUN, kernel iperf3 → ours · kernel → kernel over veth", ours: gbit(ours.down), reference: gbit(kernel.down), unit: "Gbit/s")
        // The same without the virtio-net header: one MTU-sized packet per system call.
        row("TUN without offload, ours → kernel · veth", ours: gbit(plain.up), reference: gbit(kernel.up), unit: "Gbit/s")
        row("TUN without offload, kernel → ours · veth", ours: gbit(plain.down), reference: gbit(kernel.down), unit: "Gbit/s")
    }
}

if selected("idle") {
    let count = Int(env["BENCH_CONNECTIONS"] ?? "") ?? 10_000
    let ours = try await idleConnectionMemory(count: count)
    row("RSS per idle connection end (\(count) conns) · goal", ours: ours, reference: 4096, unit: "bytes")
    row("RSS per idle connection end · kernel socket objects", ours: ours, reference: kernelSocketObjects(), unit: "bytes")
}

if selected("lossy") {
    let lossy = try await StackPair(mtu: 1280, delay: .milliseconds(50), loss: 0.01)
    let ours = try await lossy.transfer(for: seconds * 4)
    let clean = try await StackPair(mtu: 1280, delay: .milliseconds(50), loss: 0)
    let reference = try await clean.transfer(for: seconds * 4)
    row("50 ms one way, 1% loss · same link loss-free", ours: ours * 8 / 1e6, reference: reference * 8 / 1e6, unit: "Mbit/s")
    // What any Reno-style sender can reach at this loss and RTT (Mathis et al. 1997): MSS/RTT · 1.22/√p.
    let mss = 1280.0 - 40 - 20 - 12
    let mathis = mss / 0.1 * 1.22 / 0.01.squareRoot()
    row("50 ms one way, 1% loss · Mathis bound MSS/RTT·1.22/√p", ours: ours * 8 / 1e6, reference: mathis * 8 / 1e6, unit: "Mbit/s")
}
exit(0)

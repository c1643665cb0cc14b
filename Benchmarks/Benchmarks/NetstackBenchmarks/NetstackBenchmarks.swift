import Benchmark
import Glibc
import Netstack

/// Netstack throughput, each beside a reference from the same run:
/// - bulk TCP between two stacks in memory vs the kernel's TCP over loopback
///   (issue 4 goal: ≥ 5 Gbit/s ≈ 600 MiB/s on one core);
/// - bulk TCP over an in-memory link with 50 ms delay and 1 % loss vs the same
///   link without loss.
/// One iteration writes 1 MiB (64 KiB on the slow link) into a connection
/// whose far end reads continuously, so iterations per second measure
/// throughput once the send buffer's backpressure sets the pace. At 1 % loss
/// and 100 ms RTT, Reno-style congestion control is bounded near
/// MSS/RTT·1.22/√p ≈ 150 KB/s (Mathis et al.), hence the smaller unit.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock],
        scalingFactor: .one,
        maxDuration: .seconds(5),
        maxIterations: 100_000
    )
    let chunk = [UInt8](repeating: 0x5a, count: 1 << 20)
    let smallChunk = [UInt8](repeating: 0x5a, count: 64 << 10)

    Benchmark("TCP bulk in memory, MiB per s · ours") { benchmark async throws in
        let pair = try await StackPair(mtu: 1500, delay: .zero, loss: 0)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { try await pair.client.write(chunk) }
        benchmark.stopMeasurement()
        pair.stop()
    }
    Benchmark("TCP bulk in memory, MiB per s · kernel loopback") { benchmark in
        let k = try KernelLoopback()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { k.write(chunk) }
        benchmark.stopMeasurement()
        k.close()
    }

    Benchmark(
        "TCP 50 ms one way with 1% loss, 64 KiB per s · ours",
        configuration: .init(
            metrics: [.throughput], warmupIterations: 0, scalingFactor: .one, maxDuration: .seconds(20),
            maxIterations: 2000)
    ) { benchmark async throws in
        let pair = try await StackPair(mtu: 1280, delay: .milliseconds(50), loss: 0.01, sendBuffer: 512 << 10)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { try await pair.client.write(smallChunk) }
        benchmark.stopMeasurement()
        pair.stop()
    }
    Benchmark(
        "TCP 50 ms one way with 1% loss, 64 KiB per s · same link loss-free",
        configuration: .init(
            metrics: [.throughput], warmupIterations: 0, scalingFactor: .one, maxDuration: .seconds(20),
            maxIterations: 2000)
    ) { benchmark async throws in
        let pair = try await StackPair(mtu: 1280, delay: .milliseconds(50), loss: 0, sendBuffer: 512 << 10)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { try await pair.client.write(smallChunk) }
        benchmark.stopMeasurement()
        pair.stop()
    }
}

/// Two stacks on a `MemoryLink` pair, a connection between them, and a task
/// on the server side reading everything.
final class StackPair: Sendable {
    let a: NetStack
    let b: NetStack
    let links: [MemoryLink]
    let client: TCPStream
    let reader: Task<Void, Never>

    /// `sendBuffer` is kept small on slow links so backpressure, not the
    /// initial fill of the buffer, sets the per-iteration pace.
    init(mtu: Int, delay: Duration, loss: Double, sendBuffer: Int = 4 << 20) async throws {
        let linkA = MemoryLink(mtu: mtu, delay: delay, loss: loss)
        let linkB = MemoryLink(mtu: mtu, delay: delay, loss: loss)
        var config = NetStack.Configuration(addresses: [IPAddress("fd00::a")!])
        config.sendBuffer = sendBuffer
        a = NetStack(config, link: linkA)
        b = NetStack(.init(addresses: [IPAddress("fd00::b")!]), link: linkB)
        linkA.deliver(to: b)
        linkB.deliver(to: a)
        links = [linkA, linkB]
        let listener = try b.listen(port: 5001)
        async let accepted = listener.accept()
        client = try await a.dial(SocketAddress(IPAddress("fd00::b")!, 5001))
        let server = try await accepted
        reader = Task {
            while let d = try? await server.read(maximumCount: 1 << 20), !d.isEmpty {}
            server.close()
            listener.close()
        }
    }

    func stop() {
        client.abort()
        reader.cancel()
        a.stop()
        b.stop()
    }
}

/// The kernel's TCP over 127.0.0.1: a connected pair, with a thread draining the far end.
final class KernelLoopback {
    let sender: Int32

    init() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, len) }
        }
        _ = Glibc.listen(listener, 1)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &len) }
        }
        sender = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        _ = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(sender, $0, len) }
        }
        let receiver = accept(listener, nil, nil)
        Glibc.close(listener)
        var thread = pthread_t()
        let box = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
        box.pointee = receiver
        pthread_create(
            &thread, nil,
            { arg in
                let p = arg!.assumingMemoryBound(to: Int32.self)
                let fd = p.pointee
                p.deallocate()
                var buffer = [UInt8](repeating: 0, count: 1 << 20)
                while buffer.withUnsafeMutableBytes({ read(fd, $0.baseAddress, $0.count) }) > 0 {}
                Glibc.close(fd)
                return nil
            }, box)
        pthread_detach(thread)
    }

    func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { buf in
            var off = 0
            while off < buf.count {
                let n = Glibc.write(sender, buf.baseAddress! + off, buf.count - off)
                if n <= 0 { return }
                off += n
            }
        }
    }

    func close() { Glibc.close(sender) }
}

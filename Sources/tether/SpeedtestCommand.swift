import Agent
import ArgumentParser
import Foundation
import Logging
import Mesh
import Netstack
import WireGuardCore

#if canImport(Glibc)
    import Glibc
#endif

/// `tether speedtest WORKSPACE`: TCP throughput to (`--direction up`) or
/// from (`down`, the default) the workspace's agent through the tunnel, on
/// its speedtest port 3 (`Agent.Speedtest` has the protocol), printed per
/// second and in total as `coder speedtest` does. `--direct` waits for a
/// direct UDP path first, so the figure is not the DERP relay's.
struct SpeedtestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "speedtest",
        abstract: "Measure throughput to or from a workspace's agent through the tunnel.")

    enum Way: String, ExpressibleByArgument, CaseIterable {
        case up, down
    }

    @Argument(help: "WORKSPACE[.AGENT], optionally followed by the host suffix (.coder).")
    var target: String
    @Option(name: [.customShort("t"), .long], help: "Seconds to transfer (1 to 30).")
    var time: Double = 5
    @Option(help: "down: the agent sends; up: this machine sends.")
    var direction: Way = .down
    @Flag(name: .shortAndLong, help: "Wait for a direct path (not the DERP relay) before testing; fail if none comes.")
    var direct = false
    @Option(help: "Host suffix to strip from the target.")
    var suffix = "coder"
    @Option(help: "Seconds to wait for the agent's tunnel (and, with --direct, a direct path) before giving up.")
    var timeout: Double = 30

    func validate() throws {
        guard time >= 1, time <= 30 else { throw ValidationError("--time must be between 1 and 30 seconds, not \(time)") }
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
    }

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = .warning
            return h
        }
        let config = Speedtest.Config(
            duration: .milliseconds(Int64(time * 1000)), direction: direction == .down ? .download : .upload)
        let (direct, timeout, name, seconds) = (direct, timeout, target, time)
        await TailnetClient(command: "speedtest", target: target, suffix: suffix, timeout: timeout).join {
            node, address, watchdog in
            Task {
                if direct { await Self.waitForDirectPath(node, address, name: name, timeout: timeout) }
                do {
                    let stream = try await node.dial(address, port: Speedtest.port)
                    watchdog.cancel()
                    print("\(config.direction) test of \(String(format: "%g", seconds)) s with \(name) (\(address))")
                    print(Self.header)
                    let results = try await Self.measure(stream, config)
                    for r in results where !r.total { print(Self.row(r)) }
                    print(String(repeating: "-", count: Self.header.count + 8))
                    for r in results where r.total { print(Self.row(r)) }
                    fflush(nil)
                    Glibc.exit(0)
                } catch {
                    TailnetClient.fail("speedtest", "\(error)")
                }
            }
        }
    }

    /// Pings over disco until a pong comes back over a direct path.
    static func waitForDirectPath(_ node: MeshNode, _ address: WireGuardCore.IPAddress, name: String, timeout: Double) async {
        let end = ContinuousClock.now + .seconds(timeout)
        while ContinuousClock.now < end {
            if let result = try? await node.ping(address, timeout: .seconds(2)), case .direct = result.path { return }
            try? await Task.sleep(for: .milliseconds(500))
        }
        TailnetClient.fail("speedtest", "no direct path to \(name) within \(Int(timeout)) s (--direct)")
    }

    enum Failure: Error, CustomStringConvertible {
        case refused(String)
        case noAnswer

        var description: String {
            switch self {
            case .refused(let why): "the agent refused the test: \(why)"
            case .noAnswer: "the agent's speedtest server did not answer the config"
            }
        }
    }

    /// Runs the test on `stream`; the intervals as they closed, the last
    /// partial one, then the total. Intervals are printed as they close.
    static func measure(_ stream: TCPStream, _ config: Speedtest.Config) async throws -> [Speedtest.Result] {
        stream.setNoDelay(true)
        try await stream.write(config.encoded())
        var received: [UInt8] = []
        var leftover = 0
        while true {
            let chunk = try await stream.read()
            if chunk.isEmpty { throw Failure.noAnswer }
            received += chunk
            if let (answer, consumed) = Speedtest.parseAnswer(received) {
                guard let answer else { throw Failure.noAnswer }
                if let error = answer.error { throw Failure.refused(error) }
                leftover = received.count - consumed
                break
            }
            if received.count > Speedtest.maximumConfigBytes { throw Failure.noAnswer }
        }
        let start = monotonicNanos()
        var meter = Speedtest.Meter(start: start)
        func count(_ n: Int) {
            if let closed = meter.record(n, at: monotonicNanos()) {
                print(row(closed))
                fflush(nil)
            }
        }
        switch config.direction {
        case .download:
            count(leftover)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 << 10, alignment: 16)
            defer { buffer.deallocate() }
            while true {
                let n = try await stream.read(into: buffer)
                if n == 0 { break }
                count(n)
            }
        case .upload:
            let block = SpeedtestServer.randomBlock()
            let end = start + config.time
            while monotonicNanos() < end {
                try await stream.write(block)
                count(block.count)
            }
            // Done when the agent has read it all and closes its end.
            stream.shutdownWrite()
            while true {
                let rest = try await stream.read()
                if rest.isEmpty { break }
            }
        }
        stream.close()
        return meter.finish(at: monotonicNanos()).filter { $0.total || $0.bytes > 0 }
    }

    static let header = "Interval          Transfer           Bandwidth"

    static func row(_ r: Speedtest.Result) -> String {
        let interval = String(format: "%.2f-%.2f sec", Double(r.start) / 1e9, Double(r.end) / 1e9)
        let transfer = String(format: "%.4f MBits", r.megabits)
        let bandwidth = String(format: "%.4f Mbits/sec", r.megabitsPerSecond)
        return interval.padding(toLength: 18, withPad: " ", startingAt: 0)
            + transfer.padding(toLength: 19, withPad: " ", startingAt: 0) + bandwidth
    }
}

import CryptoPrimitives
import DERP
import Foundation
import NIOCore
import NIOPosix

// DERP relay figures beside a plain TCP relay (`socat` between two loopback
// connections) measured in the same run (issue 5):
//
//   1. relay throughput between two clients at 1,400-byte packets
//      (goal ≥ 0.7 of socat) and packets/s at 100 bytes;
//   2. the relay process's CPU time per packet, same runs (steadier than
//      wall-clock rates on a shared machine);
//   3. memory per idle client with 10,000 clients connected (goal ≤ 16 KiB).
//
// The relay under test runs in its own process, as socat does: this
// executable started as `DERPBenchmarks relay <port> <queue depth>` (the
// same DERPServer and DERPHTTPServer that `tether derp` runs), or
// `$TETHER_BIN derp` when TETHER_BIN is set. In rows 1 and 2 both
// relays are driven by the same raw NIO sender and receiver in this process,
// moving the same bytes: one DERP frame per packet (5 + 32 + payload), so
// the two relays see identical client load. A further row drives ours with
// `DERPClient` at both ends (the whole stack). The sender keeps at most
// `window` packets in flight, below the server's queue depth, so neither
// relay drops and both figures count delivered packets.
//
// A plain executable rather than a package-benchmark target: it measures
// other processes from outside and builds in bounded time.
//
// Environment: TETHER_BIN (optional); DERP_BENCH_ROUNDS (alternating rounds per size,
// default 5); DERP_BENCH_SECONDS (target length of one round, default 1.5);
// DERP_BENCH_CLIENTS (idle clients, default 10,000; 0 skips the row).

let env = ProcessInfo.processInfo.environment
let rounds = Int(env["DERP_BENCH_ROUNDS"] ?? "") ?? 5
let roundSeconds = Double(env["DERP_BENCH_SECONDS"] ?? "") ?? 1.5
let idleClients = Int(env["DERP_BENCH_CLIENTS"] ?? "") ?? 10_000

func loadAverage() -> String {
    (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
}

func pad(_ s: String, _ width: Int) -> String { s.count >= width ? s : s + String(repeating: " ", count: width - s.count) }
func num(_ v: Double, _ width: Int = 11, digits: Int = 1) -> String {
    let s = String(format: "%.\(digits)f", v)
    return String(repeating: " ", count: max(0, width - s.count)) + s
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    guard !s.isEmpty else { return .nan }
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

if CommandLine.arguments.count == 4, CommandLine.arguments[1] == "relay",
    let port = Int(CommandLine.arguments[2]), let queueDepth = Int(CommandLine.arguments[3])
{
    var configuration = DERPServer.Configuration()
    configuration.queueDepth = queueDepth
    configuration.logger.logLevel = .warning
    let server = DERPServer(privateKey: X25519.PrivateKey(), configuration: configuration)
    let listener = try await DERPHTTPServer.bind(server, host: "127.0.0.1", port: port)
    try await listener.channel.closeFuture.get()
    exit(0)
}

print("DERP benchmarks (issue 5), load average at start: \(loadAverage())")
print(pad("figure", 52) + "       ours  reference   ratio")

func row(_ name: String, _ ours: Double, _ reference: Double, digits: Int = 1, goal: String = "") {
    print(pad(name, 52) + num(ours, digits: digits) + num(reference, digits: digits) + num(ours / reference, 8, digits: 2) + (goal.isEmpty ? "" : "  " + goal))
}

/// Names the run a failure came from.
func labelled(_ name: String, _ run: () async throws -> RelayRun) async throws -> RelayRun {
    do { return try await run() } catch { throw BenchmarkFailure("\(name): \(error)") }
}

do {
    for size in [1400, 100] {
        // Packets per round from a first short probe, so that each round
        // lasts about `roundSeconds` whatever the machine's load.
        let probe = try await labelled("socat probe, \(size) B") { try await RelayRun.socat(size: size, count: 20_000) }
        let count = max(20_000, Int(probe.packetsPerSecond * roundSeconds))
        var ours: [RelayRun] = []
        var socat: [RelayRun] = []
        var client: [RelayRun] = []
        for round in 0..<rounds {
            ours.append(try await labelled("ours, \(size) B, round \(round + 1)") { try await RelayRun.derp(size: size, count: count) })
            socat.append(try await labelled("socat, \(size) B, round \(round + 1)") { try await RelayRun.socat(size: size, count: count) })
            client.append(
                try await labelled("DERPClient, \(size) B, round \(round + 1)") { try await RelayRun.derpClients(size: size, count: count) })
        }
        let ourRate = median(ours.map(\.packetsPerSecond))
        let socatRate = median(socat.map(\.packetsPerSecond))
        let goal = size == 1400 ? "goal ≥ 0.70" : ""
        row("relay \(size) B: k packets/s (median of \(rounds))", ourRate / 1000, socatRate / 1000, goal: goal)
        row("relay \(size) B: MB/s of packet payload", ourRate * Double(size) / 1e6, socatRate * Double(size) / 1e6, goal: goal)
        row(
            "relay \(size) B: relay CPU µs per packet", median(ours.map(\.cpuMicrosecondsPerPacket)),
            median(socat.map(\.cpuMicrosecondsPerPacket)), digits: 3)
        row("relay \(size) B: k packets/s, DERPClient at both ends", median(client.map(\.packetsPerSecond)) / 1000, socatRate / 1000)
        print("  (\(count) packets per round; load average now \(loadAverage()))")
    }
    if idleClients > 0 {
        let kib = try await idleClientMemory(clients: idleClients)
        print(pad("idle client: server KiB per client (\(idleClients))", 52) + num(kib, digits: 2) + num(16, digits: 2) + num(kib / 16, 8, digits: 2) + "  goal ≤ 16 KiB (reference = goal)")
        print("  (load average now \(loadAverage()))")
    }
} catch {
    print("DERP benchmark failed: \(error)")
    exit(1)
}

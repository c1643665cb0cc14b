import ArgumentParser
import Logging
import Mesh

#if canImport(Glibc)
    import Glibc
#endif

/// `tether ping WORKSPACE`: disco pings to the workspace's agent over the
/// tailnet, each line saying which path it took (DERP relay or a direct UDP
/// endpoint) and its round trip, as `tailscale ping` does. Useful to see
/// whether a connection went direct.
struct PingCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ping",
        abstract: "Ping a workspace's agent over the tailnet and show the path (DERP or direct) and latency.")

    @Argument(help: "WORKSPACE[.AGENT], optionally followed by the host suffix (.coder).")
    var target: String
    @Option(name: .shortAndLong, help: "Number of pings (with --until-direct: at most this many).")
    var count = 10
    @Option(help: "Seconds between pings.")
    var interval: Double = 0.5
    @Flag(help: "Stop at the first ping that went over a direct path; fail if none did.")
    var untilDirect = false
    @Option(help: "Host suffix to strip from the target.")
    var suffix = "coder"
    @Option(help: "Seconds to wait for the agent's tunnel before giving up.")
    var timeout: Double = 30

    func validate() throws {
        guard count > 0 else { throw ValidationError("--count must be at least 1") }
        guard interval >= 0.01 else { throw ValidationError("--interval must be at least 0.01 seconds") }
    }

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = .warning
            return h
        }
        let (count, interval, untilDirect, name) = (count, interval, untilDirect, target)
        await TailnetClient(command: "ping", target: target, suffix: suffix, timeout: timeout).join {
            node, address, watchdog in
            watchdog.cancel()
            Task {
                var answered = 0
                for i in 1...count {
                    do {
                        let result = try await node.ping(address, timeout: .seconds(5))
                        answered += 1
                        let ms = Double(result.latency.components.attoseconds) / 1e15
                            + Double(result.latency.components.seconds) * 1000
                        print("pong from \(name) (\(address)) via \(result.path) in \(String(format: "%.1f", ms)) ms")
                        fflush(nil)
                        if untilDirect, case .direct = result.path { Glibc.exit(0) }
                    } catch {
                        print("ping \(i): \(error)")
                        fflush(nil)
                    }
                    if i < count { try? await Task.sleep(for: .seconds(interval)) }
                }
                if untilDirect { TailnetClient.fail("ping", "no direct path to \(name) after \(count) pings") }
                if answered == 0 { TailnetClient.fail("ping", "no pong from \(name)") }
                Glibc.exit(0)
            }
        }
    }
}

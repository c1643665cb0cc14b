import Agent
import ArgumentParser
import Logging
import Mesh
import WireGuardCore

#if canImport(Glibc)
    import Glibc
#endif

/// `tether ssh --stdio WORKSPACE[.AGENT][.SUFFIX]`: OpenSSH's ProxyCommand.
/// Joins the tailnet in this process (`TailnetClient`), dials the agent's
/// SSH port through it and moves the bytes between that connection and
/// stdin/stdout. The path starts on the DERP relay and moves to a direct
/// UDP path when disco finds one, without the SSH session noticing.
struct SSHCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ssh",
        abstract: "Carry an SSH connection to a workspace over the tailnet (OpenSSH's ProxyCommand).",
        discussion: """
            Used by the Host block `tether config-ssh` writes: `ssh NAME.coder` runs
            `tether ssh --stdio NAME.coder`. NAME is a workspace, or WORKSPACE.AGENT when
            the workspace has several agents.
            """)

    @Flag(help: "Use stdin and stdout as the connection (required: how OpenSSH runs a ProxyCommand).")
    var stdio = false
    @Argument(help: "WORKSPACE[.AGENT], optionally followed by the host suffix (.coder).")
    var target: String
    @Option(help: "Host suffix to strip from the target.")
    var suffix = "coder"
    @Option(help: "Seconds to wait for the agent's tunnel before giving up.")
    var timeout: Double = 30
    @Option(help: "Tunnel port of the agent's SSH server.")
    var port: UInt16 = 22

    func run() async throws {
        guard stdio else {
            throw ValidationError("only --stdio is supported: run `tether config-ssh`, then `ssh WORKSPACE.\(suffix)`")
        }
        // stdout carries the SSH stream: every log line goes to stderr, and
        // only warnings and errors.
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = .warning
            return h
        }
        let port = port
        await TailnetClient(command: "ssh", target: target, suffix: suffix, timeout: timeout).join {
            node, address, watchdog in
            Task { await Self.connect(node, to: address, port: port, watchdog: watchdog) }
        }
    }

    /// Dials the agent and bridges stdin/stdout; exits when both directions end.
    static func connect(_ node: MeshNode, to address: IPAddress, port: UInt16, watchdog: Task<Void, any Error>) async {
        do {
            let stream = try await node.dial(address, port: port)
            watchdog.cancel()
            stream.setNoDelay(true)
            StreamBridge.run(stream, readFD: 0, writeFD: 1, closeDescriptors: false) { Glibc.exit(0) }
        } catch {
            fail("cannot reach the agent's SSH server at [\(address)]:\(port): \(error)")
        }
    }

    static func fail(_ message: String) -> Never {
        TailnetClient.fail("ssh", message)
    }
}

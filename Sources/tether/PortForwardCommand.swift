import Agent
import ArgumentParser
import Logging
import Mesh
import WireGuardCore

#if canImport(Glibc)
    import Glibc
#endif

/// `tether port-forward WORKSPACE --tcp [BIND:]LOCAL:REMOTE --udp … `:
/// listens on this machine and carries each connection (or UDP client)
/// through the tailnet to the workspace, where the agent connects it to
/// REMOTE on the workspace's loopback (`LoopbackForwarder`). Like `kubectl
/// port-forward` and `coder port-forward`; ends with Ctrl-C.
struct PortForwardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "port-forward",
        abstract: "Forward local TCP ports to ports on a workspace's loopback, over the tailnet.",
        discussion: """
            --tcp 8080:80 listens on 127.0.0.1:8080 and forwards to port 80 in the workspace;
            --tcp 0.0.0.0:8080:80 or --tcp [::1]:8080:80 choose the local address; --tcp 3000
            forwards port 3000 to port 3000. A local port of 0 picks a free one. --udp takes
            the same forms for UDP (replies go back to the local client that sent).
            """)

    @Argument(help: "WORKSPACE[.AGENT], optionally followed by the host suffix (.coder).")
    var target: String
    @Option(name: .customLong("tcp"), help: "[BIND:]LOCAL:REMOTE, or PORT for the same port on both ends (repeatable).")
    var tcp: [String] = []
    @Option(name: .customLong("udp"), help: "[BIND:]LOCAL:REMOTE, or PORT, for UDP (repeatable).")
    var udp: [String] = []
    @Option(help: "Host suffix to strip from the target.")
    var suffix = "coder"
    @Option(help: "Seconds to wait for the agent's tunnel before giving up.")
    var timeout: Double = 30

    func validate() throws {
        guard !tcp.isEmpty || !udp.isEmpty else {
            throw ValidationError("nothing to forward: give at least one --tcp or --udp [BIND:]LOCAL:REMOTE")
        }
        for spec in tcp { _ = try ForwardSpec(parsing: spec, flag: "--tcp") }
        for spec in udp { _ = try ForwardSpec(parsing: spec, flag: "--udp") }
    }

    func run() async throws {
        let specs = try tcp.map { try ForwardSpec(parsing: $0, flag: "--tcp") }
        let udpSpecs = try udp.map { try ForwardSpec(parsing: $0, flag: "--udp") }
        // Listen and bind first: a port in use is an error before any tunnel work.
        var listeners: [HostTCPListener] = []
        var relays: [HostUDPRelay] = []
        do {
            for spec in specs { listeners.append(try HostTCPListener(host: spec.bindHost, port: spec.localPort)) }
            for spec in udpSpecs { relays.append(try HostUDPRelay(host: spec.bindHost, port: spec.localPort)) }
        } catch {
            throw ValidationError("\(error)")
        }
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = .warning
            return h
        }
        let (name, pairs, udpPairs) = (target, Array(zip(specs, listeners)), Array(zip(udpSpecs, relays)))
        await TailnetClient(command: "port-forward", target: target, suffix: suffix, timeout: timeout).join {
            node, address, watchdog in
            watchdog.cancel()
            for (spec, listener) in pairs {
                print("forwarding \(spec.bindDescription):\(listener.port) → \(name) port \(spec.remotePort)")
                listener.acceptLoop { fd in
                    Task { await Self.forward(fd, node: node, to: address, port: spec.remotePort) }
                }
            }
            for (spec, relay) in udpPairs {
                print("forwarding UDP \(spec.bindDescription):\(relay.port) → \(name) port \(spec.remotePort)")
                relay.run(node: node, to: address, port: spec.remotePort)
            }
            fflush(nil)
        }
    }

    /// Dials the workspace's port through the tunnel and bridges it with the
    /// accepted local connection; a failure closes only that connection.
    static func forward(_ fd: Int32, node: MeshNode, to address: IPAddress, port: UInt16) async {
        do {
            let stream = try await node.dial(address, port: port)
            stream.setNoDelay(true)
            StreamBridge.run(stream, readFD: fd, writeFD: fd, closeDescriptors: true)
        } catch {
            let line = "tether port-forward: a connection to workspace port \(port) failed: \(error)\n"
            _ = line.withCString { write(2, $0, strlen($0)) }
            close(fd)
        }
    }
}

/// One `--tcp` or `--udp` argument: `[BIND:]LOCAL:REMOTE` or `PORT`.
struct ForwardSpec: Equatable {
    var bindHost = "127.0.0.1"
    var localPort: UInt16
    var remotePort: UInt16

    var bindDescription: String { bindHost.contains(":") ? "[\(bindHost)]" : bindHost }

    init(parsing text: String, flag: String) throws {
        func port(_ s: Substring, allowZero: Bool) throws -> UInt16 {
            guard let p = UInt16(s), p > 0 || allowZero else {
                throw ValidationError(
                    "\(flag) \(text): '\(s)' is not a port (1-65535\(allowZero ? ", or 0 for any free local port" : ""))")
            }
            return p
        }
        var rest = Substring(text)
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]"), rest[rest.index(after: close)...].hasPrefix(":") else {
                throw ValidationError("\(flag) \(text): an IPv6 bind address needs brackets and a port, e.g. [::1]:8080:80")
            }
            bindHost = String(rest[rest.index(after: rest.startIndex)..<close])
            rest = rest[rest.index(close, offsetBy: 2)...]
        }
        let parts = rest.split(separator: ":", omittingEmptySubsequences: false)
        switch (parts.count, text.hasPrefix("[")) {
        case (1, false):
            remotePort = try port(parts[0], allowZero: false)
            localPort = remotePort
        case (2, _):
            localPort = try port(parts[0], allowZero: true)
            remotePort = try port(parts[1], allowZero: false)
        case (3, false):
            bindHost = String(parts[0])
            localPort = try port(parts[1], allowZero: true)
            remotePort = try port(parts[2], allowZero: false)
        default:
            throw ValidationError("\(flag) \(text): expected [BIND:]LOCAL:REMOTE, e.g. 8080:80, 0.0.0.0:8080:80 or [::1]:8080:80")
        }
        if bindHost == "localhost" { bindHost = "127.0.0.1" }
        guard HostTCPListener.isAddressLiteral(bindHost) else {
            throw ValidationError("\(flag) \(text): bind address '\(bindHost)' must be an IP address or localhost")
        }
    }
}

import Agent
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The main job end to end, with the real OpenSSH client: a real `tether
/// server` (coordination, embedded DERP and STUN) and a real `tether agent`
/// on loopback, `tether config-ssh` writing the Host block, and `ssh
/// WORKSPACE.coder` running `tether ssh --stdio` as its ProxyCommand, which
/// joins the tailnet in-process and reaches the agent's SSH server through
/// WireGuard, Netstack and (first) the DERP relay.
@Suite(.serialized) struct SSHThroughTunnelTests {
    struct Run {
        let status: Int32
        let out: Data
        let err: String
        var text: String { String(decoding: out, as: UTF8.self) }
    }

    /// `ssh` with the test's config and known_hosts; stdin from `input`.
    static func ssh(_ cp: TestControlPlane, _ args: [String], input: String? = nil, strict: Bool = false) async throws -> Run {
        let dir = cp.dir
        return try await offload {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/ssh")
            p.arguments = [
                "-F", dir + "/ssh_config", "-o", "UserKnownHostsFile=\(dir)/known_hosts",
                "-o", "StrictHostKeyChecking=\(strict ? "yes" : "accept-new")", "-o", "BatchMode=yes",
                "-o", "LogLevel=ERROR",
            ] + args
            let out = Pipe(), err = Pipe()
            p.standardOutput = out
            p.standardError = err
            p.standardInput = input.map { FileHandle(forReadingAtPath: $0)! } ?? FileHandle.nullDevice
            try p.run()
            // Drain stderr on its own thread so neither pipe can fill and block ssh.
            let errText = SharedBox("")
            let errDone = DispatchSemaphore(value: 0)
            Thread.detachNewThread {
                errText.set(String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
                errDone.signal()
            }
            let data = out.fileHandleForReading.readDataToEndOfFile()
            errDone.wait()
            p.waitUntilExit()
            return Run(status: p.terminationStatus, out: data, err: errText.get())
        }
    }

    static func sha256(_ data: Data) throws -> String {
        let path = NSTemporaryDirectory() + "tether-sha-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try data.write(to: URL(fileURLWithPath: path))
        defer { unlink(path) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        p.arguments = [path]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return String(text.prefix(64))
    }

    static func startWorkspace(_ cp: TestControlPlane, name: String) async throws -> (token: String, agent: Child) {
        let tokens = try await cp.create(
            WorkspaceSpec(name: name, agents: [AgentSpec(name: "main", scripts: [ScriptSpec(displayName: "hi", script: "echo up", runOnStart: true)])]))
        let token = try #require(tokens["main"])
        let agent = try cp.startAgent(token: token, name: name)
        _ = try await cp.waitLifecycle(name, "main", ["ready"])
        try await cp.cli(["config-ssh", "--ssh-config", cp.dir + "/ssh_config"])
        return (token, agent)
    }

    @Test func sshCommandsAndTenMiBThroughTheTunnel() async throws {
        let cp = try await TestControlPlane(name: "ssh-tunnel")
        defer { cp.shutdown() }
        let (token, agent) = try await Self.startWorkspace(cp, name: "devbox")

        let hello = try await Self.ssh(cp, ["devbox.coder", "echo ok; echo $SSH_CONNECTION; exit 3"])
        #expect(hello.status == 3, "ssh failed: \(hello.err)")
        let lines = hello.text.split(separator: "\n")
        #expect(lines.first == "ok")
        // Both ends are tailnet addresses: the session really came through the tunnel.
        let connection = lines.dropFirst().first.map { $0.split(separator: " ") } ?? []
        #expect(connection.count == 4 && connection[0].hasPrefix("fd74:6574:6865:1:") && connection[2].hasPrefix("fd74:6574:6865:0:"),
                "SSH_CONNECTION was \(lines.dropFirst().first ?? "")")
        #expect(connection.count == 4 && connection[3] == "22")

        // 10 MiB of random bytes through `cat`, both ways in one session.
        let blob = Data((0..<(10 << 20)).map { _ in UInt8.random(in: 0...255) })
        let path = cp.dir + "/blob"
        try blob.write(to: URL(fileURLWithPath: path))
        let echoed = try await Self.ssh(cp, ["devbox.coder", "cat"], input: path)
        #expect(echoed.status == 0, "ssh cat failed: \(echoed.err)")
        #expect(echoed.out.count == blob.count)
        #expect(try Self.sha256(echoed.out) == Self.sha256(blob))

        // `tether ping` starts on DERP and sees the path go direct (both
        // ends are on this machine's loopback, so disco finds it at once).
        let ping = try await cp.cli(["ping", "devbox", "--until-direct", "--count", "40", "--interval", "0.25"])
        #expect(ping.contains("via direct"), "tether ping said: \(ping)")

        // Every finished client is forgotten by the coordinator (and the agent).
        try await Harness.until("coordination clients to drop to 0") {
            try await cp.metrics().contains("tether_coordination_clients 0")
        }

        // The host key derives from the agent's identity: after a restart
        // (new WireGuard and disco keys) strict host key checking still passes.
        agent.signal(SIGTERM)
        _ = try await agent.waitExit()
        _ = try cp.startAgent(token: token, name: "devbox-again")
        _ = try await cp.waitLifecycle("devbox", "main", ["ready"])
        try await Harness.until("the restarted agent to publish its node", timeout: .seconds(10)) {
            try await cp.agent("devbox", "main")?.connected == true
        }
        let again = try await Self.ssh(cp, ["devbox.coder", "echo again"], strict: true)
        #expect(again.status == 0 && again.text == "again\n", "after restart: \(again.err)")
    }

    @Test func unknownWorkspaceAndStoppedAgentAreClearErrors() async throws {
        let cp = try await TestControlPlane(name: "ssh-errors")
        defer { cp.shutdown() }
        let (_, agent) = try await Self.startWorkspace(cp, name: "box")

        let unknown = try await Self.ssh(cp, ["nope.coder", "true"])
        #expect(unknown.status == 255)
        #expect(unknown.err.contains("no workspace named nope"), "stderr: \(unknown.err)")

        let badAgent = try await Self.ssh(cp, ["box.other.coder", "true"])
        #expect(badAgent.err.contains("has no agent other; its agents: main"), "stderr: \(badAgent.err)")

        agent.signal(SIGTERM)
        _ = try await agent.waitExit()
        let stopped = try await Self.ssh(cp, ["box.coder", "true"])
        #expect(stopped.status == 255)
        #expect(stopped.err.contains("agent box.main is not connected"), "stderr: \(stopped.err)")

        // A coordination socket with another user's token, or none, is refused before any upgrade.
        let (status, _) = try await cp.curl([
            "-H", "Connection: Upgrade", "-H", "Upgrade: websocket", "-H", "Sec-WebSocket-Version: 13",
            "-H", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", cp.url + "/api/v1/coordinate?workspace=box",
        ])
        #expect(status == 401)
    }
}

extension SSHThroughTunnelTests {
    /// `tether port-forward` on this machine → tunnel → the agent's
    /// `LoopbackForwarder` → a real HTTP server (python's) on the
    /// workspace's loopback: curl fetches 2 MiB byte-exact through it; a
    /// workspace port nobody listens on resets only that connection; a bad
    /// `--tcp` is a clear error before any network work.
    @Test func portForwardReachesTheWorkspaceLoopback() async throws {
        let cp = try await TestControlPlane(name: "port-forward")
        defer { cp.shutdown() }
        _ = try await Self.startWorkspace(cp, name: "web")

        let site = cp.dir + "/site"
        try FileManager.default.createDirectory(atPath: site, withIntermediateDirectories: true)
        let blob = Data((0..<(2 << 20)).map { _ in UInt8.random(in: 0...255) })
        try blob.write(to: URL(fileURLWithPath: site + "/blob"))
        let remote = Harness.freePort()
        let http = try Child(
            "/usr/bin/python3", ["-m", "http.server", "\(remote)", "--bind", "127.0.0.1", "--directory", site],
            logPath: cp.dir + "/http.log")
        cp.children.append(http)
        let closed = Harness.freePort()
        let local = Harness.freePort()
        let localClosed = Harness.freePort()
        try await Harness.until("python's HTTP server to listen") {
            (try? await cp.curl(["http://127.0.0.1:\(remote)/"]))?.0 == 200
        }

        let badText = await Self.cliFailure(cp, ["port-forward", "web", "--tcp", "8080:99999"])
        #expect(badText.contains("'99999' is not a port"), "bad --tcp said: \(badText)")

        // A UDP echo server on the workspace's loopback.
        let udpRemote = Harness.freePort()
        let udpLocal = Harness.freePort()
        let echo = try Child(
            "/usr/bin/python3",
            [
                "-c",
                "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind(('127.0.0.1', \(udpRemote)))\n"
                    + "while True:\n    d, a = s.recvfrom(65535)\n    s.sendto(d[::-1], a)\n",
            ], logPath: cp.dir + "/udp-echo.log")
        cp.children.append(echo)

        let forward = try Child(
            Harness.tether,
            [
                "port-forward", "web", "--tcp", "127.0.0.1:\(local):\(remote)", "--tcp", "\(localClosed):\(closed)",
                "--udp", "\(udpLocal):\(udpRemote)",
            ],
            environment: ["TETHER_CONFIG_DIR": cp.dir + "/cli"], logPath: cp.dir + "/port-forward.log")
        cp.children.append(forward)
        try await Harness.until("port-forward to be ready", timeout: .seconds(30)) {
            forward.output.contains("forwarding 127.0.0.1:\(localClosed)")
        }
        let (status, body) = try await cp.curl(["--max-time", "30", "http://127.0.0.1:\(local)/blob"])
        #expect(status == 200, "port-forward log: \(forward.output)")
        #expect(body.count == blob.count)
        #expect(try Self.sha256(body) == Self.sha256(blob))

        // Nothing listens on the workspace's port: curl sees the connection
        // reset, and the forwarder keeps serving the other port.
        let (closedStatus, _) = try await cp.curl(["--max-time", "10", "http://127.0.0.1:\(localClosed)/"])
        #expect(closedStatus != 200)
        let (again, _) = try await cp.curl(["--max-time", "30", "http://127.0.0.1:\(local)/"])
        #expect(again == 200)
        #expect(forward.process.isRunning)

        // UDP both ways: three datagrams, each answered reversed by the
        // workspace's echo server, through the agent's UDP forwarding.
        let udp = try await offload {
            try TestControlPlane.runPython(
                "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.settimeout(5)\nout = []\n"
                    + "for m in [b'one', b'two', b'three']:\n    s.sendto(m, ('127.0.0.1', \(udpLocal)))\n"
                    + "    out.append(s.recvfrom(65535)[0].decode())\nprint(','.join(out))\n")
        }
        #expect(udp == "eno,owt,eerht\n", "UDP through port-forward: \(udp); log: \(forward.output)")
    }

    /// `tether speedtest` against the agent's speedtest server on tunnel
    /// port 3, both ways (up after waiting for a direct path): per-second
    /// rows, then a total that moved bytes; a bad `--time` is a clear error.
    @Test func speedtestBothWays() async throws {
        let cp = try await TestControlPlane(name: "speedtest")
        defer { cp.shutdown() }
        _ = try await Self.startWorkspace(cp, name: "speed")

        for arguments in [["-t", "2"], ["-t", "2", "--direction", "up", "--direct"]] {
            let out = try await cp.cli(["speedtest", "speed"] + arguments)
            let lines = out.split(separator: "\n").map(String.init)
            let direction = arguments.contains("up") ? "upload" : "download"
            #expect(lines.first?.hasPrefix("\(direction) test of 2 s with speed") == true, "speedtest said: \(out)")
            #expect(lines.contains { $0.hasPrefix("0.00-1.") }, "speedtest said: \(out)")
            // The total: "0.00-2.0x sec  N MBits  R Mbits/sec", after the rule.
            let total = try #require(lines.last, "speedtest said: \(out)")
            let fields = total.split(separator: " ")
            #expect(fields.count == 6 && fields[0].hasPrefix("0.00-2.") && fields[5] == "Mbits/sec", "total row: \(total)")
            let megabits = fields.count == 6 ? Double(fields[2]) ?? 0 : 0
            #expect(megabits > 1, "\(direction) moved \(megabits) Mbit in 2 s: \(out)")
            #expect(lines.dropLast().last?.allSatisfy { $0 == "-" } == true, "speedtest said: \(out)")
        }

        let bad = await Self.cliFailure(cp, ["speedtest", "speed", "-t", "60"])
        #expect(bad.contains("--time must be between 1 and 30 seconds"), "bad --time said: \(bad)")

        // A raw client on port 3 (through port-forward): a wrong version
        // gets its error line, garbage gets one too, and the server still
        // serves a good config after them.
        let local = Harness.freePort()
        let forward = try Child(
            Harness.tether, ["port-forward", "speed", "--tcp", "127.0.0.1:\(local):\(Speedtest.port)"],
            environment: ["TETHER_CONFIG_DIR": cp.dir + "/cli"], logPath: cp.dir + "/speedtest-forward.log")
        cp.children.append(forward)
        try await Harness.until("port-forward to be ready", timeout: .seconds(30)) {
            forward.output.contains("forwarding 127.0.0.1:\(local)")
        }
        let answers = try await offload {
            try TestControlPlane.runPython(
                "import socket\ndef ask(line):\n    s = socket.create_connection(('127.0.0.1', \(local)), timeout=10)\n"
                    + "    s.sendall(line)\n    data = b''\n    while True:\n        d = s.recv(65536)\n        if not d: break\n        data += d\n"
                    + "    return data\n"
                    + "print(ask(b'{\"version\":1,\"time\":1000000000,\"direction\":0}\\n').decode().strip())\n"
                    + "print(ask(b'\\x00garbage\\n').decode().strip())\n"
                    + "d = ask(b'{\"version\":2,\"time\":1000000000,\"direction\":0}\\n')\n"
                    + "print(d[:3].decode().strip(), len(d) > 1000000)\n")
        }
        let lines = answers.split(separator: "\n").map(String.init)
        #expect(lines.count == 3, "raw speedtest clients: \(answers); forward log: \(forward.output)")
        #expect(lines.first?.contains(#""error":"version mismatch! Server is version 2, client is version 1""#) == true, "\(answers)")
        #expect(lines.dropFirst().first?.contains(#""error":"speedtest config is not a JSON object"#) == true, "\(answers)")
        #expect(lines.last == "{} True", "\(answers)")
    }

    /// The combined output of a CLI run that is expected to fail.
    static func cliFailure(_ cp: TestControlPlane, _ arguments: [String]) async -> String {
        do {
            let out = try await cp.cli(arguments)
            return "unexpected success: \(out)"
        } catch {
            return "\(error)"
        }
    }
}

/// A value shared with a helper thread.
final class SharedBox<Value: Sendable>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()
    init(_ value: Value) { self.value = value }
    func set(_ v: Value) { lock.withLock { value = v } }
    func get() -> Value { lock.withLock { value } }
}

import Agent
import Testing

@Suite struct CodecTests {
    let manifest = Manifest(
        agentID: "a1", workspaceID: "w1", workspaceName: "dev",
        spec: AgentSpec(
            name: "main", env: ["A": "1"],
            scripts: [ScriptSpec(displayName: "setup", script: "echo hi", runOnStart: true, timeoutSeconds: 5)],
            apps: [AppSpec(slug: "web", url: "http://127.0.0.1:8080", healthcheck: HealthcheckSpec(url: "http://127.0.0.1:8080/h"))],
            metadata: [MetadataSpec(key: "load", script: "cat /proc/loadavg", intervalSeconds: 1, timeoutSeconds: 1)]))

    @Test func agentMessagesRoundTrip() throws {
        let messages: [AgentMessage] = [
            .hello(Hello(agentVersion: "0.1.0", session: "s", startedAt: 1, hostname: "h", os: "linux", arch: "x86_64")),
            .lifecycle(LifecycleUpdate(state: .startTimeout, changedAt: 2)),
            .logs(LogBatch(session: "s", entries: [LogEntry(seq: 1, source: "setup", level: .info, at: 3, output: "héllo \"x\"\n")])),
            .metadata(MetadataBatch(results: [MetadataResult(key: "load", value: "0.1", error: "", collectedAt: 4)])),
            .appHealth(AppHealthReport(apps: [.init(slug: "web", health: .unhealthy)])),
            .stats(Stats(collectedAt: 5, uptimeSeconds: 6, residentBytes: 7, load1: 0.5, scriptsRunning: 1, txBytes: 8, rxBytes: 9)),
            .listeningPorts(ListeningPorts(ports: [ListeningPort(network: "tcp6", address: "::", port: 22)])),
        ]
        for m in messages {
            #expect(try ControlCodec.decodeAgentMessage(ControlCodec.encode(m)) == m)
        }
    }

    @Test func serverMessagesRoundTrip() throws {
        let messages: [ServerMessage] = [
            .welcome(Welcome(manifest: manifest, resumeLogSeq: 42)),
            .logsAck(LogsAck(session: "s", seq: 9)),
            .error(ProtocolError(code: "malformed", message: "x")),
        ]
        for m in messages {
            #expect(try ControlCodec.decodeServerMessage(ControlCodec.encode(m)) == m)
        }
    }

    /// The SSH server (a later issue) reads these two from the manifest:
    /// they must survive spec → manifest → `welcome` on the wire.
    @Test func manifestCarriesStartBlocksLoginAndMOTDPath() throws {
        let spec = AgentSpec(
            name: "main", motdPath: "/etc/motd",
            scripts: [
                ScriptSpec(displayName: "clone", script: "true", runOnStart: true, startBlocksLogin: true),
                ScriptSpec(displayName: "warm", script: "true", runOnStart: true),
            ])
        let welcome = Welcome(manifest: Manifest(agentID: "a", workspaceID: "w", workspaceName: "dev", spec: spec), resumeLogSeq: 0)
        let bytes = ControlCodec.encode(.welcome(welcome))
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.contains(#""motd_path":"\/etc\/motd""#) || text.contains(#""motd_path":"/etc/motd""#))
        #expect(text.contains(#""start_blocks_login":true"#))
        guard case .welcome(let decoded) = try ControlCodec.decodeServerMessage(bytes) else {
            Issue.record("not a welcome: \(text)")
            return
        }
        #expect(decoded.manifest.motdPath == "/etc/motd")
        #expect(decoded.manifest.scripts.map(\.startBlocksLogin) == [true, false])
    }

    @Test func wireFormatIsFlatSnakeCase() {
        let text = String(decoding: ControlCodec.encode(.lifecycle(LifecycleUpdate(state: .shuttingDown, changedAt: 7))), as: UTF8.self)
        #expect(text == #"{"changed_at":7,"state":"shutting_down","type":"lifecycle"}"#)
    }

    @Test func unknownTypeIsSkippedNotAnError() throws {
        #expect(try ControlCodec.decodeAgentMessage(Array(#"{"type":"future_thing","x":1}"#.utf8)) == .unknown(type: "future_thing"))
    }

    @Test func hostileInputNeverTraps() {
        let inputs: [String] = [
            "", "null", "[]", "{}", #"{"type":1}"#, #"{"type":"logs"}"#, #"{"type":"logs","session":"s","entries":[{"seq":-1}]}"#,
            #"{"type":"lifecycle","state":"sleeping","changed_at":1}"#, "{\"type\":\"hello\"", String(repeating: "[", count: 100_000),
        ]
        for input in inputs {
            #expect(throws: CodecError.self) { try ControlCodec.decodeAgentMessage(Array(input.utf8)) }
        }
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            let bytes = (0..<Int.random(in: 0..<64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            _ = try? ControlCodec.decodeAgentMessage(bytes)
            _ = try? ControlCodec.decodeServerMessage(bytes)
        }
    }

    @Test func oversizedMessageIsRejectedBeforeParsing() {
        let big = [UInt8](repeating: UInt8(ascii: " "), count: ControlLimits.maxMessageBytes + 1)
        #expect(throws: CodecError.tooLarge(big.count)) { try ControlCodec.decodeAgentMessage(big) }
    }

    @Test func lifecycleEdges() {
        #expect(LifecycleState.created.canTransition(to: .starting))
        #expect(LifecycleState.starting.canTransition(to: .startTimeout))
        #expect(LifecycleState.ready.canTransition(to: .shuttingDown))
        #expect(LifecycleState.shuttingDown.canTransition(to: .shutdownTimeout))
        #expect(!LifecycleState.ready.canTransition(to: .starting))
        #expect(!LifecycleState.off.canTransition(to: .ready))
        #expect(!LifecycleState.created.canTransition(to: .ready))
    }
}

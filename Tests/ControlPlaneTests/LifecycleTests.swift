import Agent
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `tether server` + `tether agent` as separate processes on loopback.
@Suite(.serialized) struct AgentLifecycleTests {
    @Test func startupLogsMetadataAndGracefulStop() async throws {
        let cp = try await TestControlPlane(name: "lifecycle")
        defer { cp.shutdown() }
        let marker = cp.dir + "/stopped"
        let tokens = try await cp.create(
            WorkspaceSpec(
                name: "dev",
                agents: [
                    AgentSpec(
                        name: "main", directory: cp.dir + "/home", env: ["GREETING": "hello"],
                        scripts: [
                            ScriptSpec(displayName: "count", script: "for i in $(seq 1 500); do echo \"$GREETING $i\"; done", runOnStart: true, timeoutSeconds: 30),
                            ScriptSpec(displayName: "second", script: "echo parallel; pwd", runOnStart: true),
                            ScriptSpec(displayName: "stop", script: "echo stopping; touch \(marker)", runOnStop: true, timeoutSeconds: 10),
                        ],
                        metadata: [
                            MetadataSpec(key: "clock", script: "date +%s%N", intervalSeconds: 1, timeoutSeconds: 1),
                            MetadataSpec(key: "hang", script: "sleep 60", intervalSeconds: 1, timeoutSeconds: 1),
                            MetadataSpec(key: "fails", script: "echo boom; exit 4", intervalSeconds: 5, timeoutSeconds: 1),
                        ])
                ]))
        let agent = try cp.startAgent(token: tokens["main"]!, name: "main")

        let ready = try await cp.waitLifecycle("dev", "main", ["ready", "start_error", "start_timeout"])
        #expect(ready.lifecycle == "ready")
        #expect(ready.connected)
        #expect(ready.version == "0.1.0")

        // Start-script logs arrive complete and in order.
        try await Harness.until("all 500 lines") { try await cp.logs(agentID: ready.id).filter { $0.source == "count" }.count >= 500 }
        let logs = try await cp.logs(agentID: ready.id)
        let counted = logs.filter { $0.source == "count" }.map(\.output)
        #expect(counted == (1...500).map { "hello \($0)" })
        #expect(logs.map(\.seq) == (1...UInt64(logs.count)).map { $0 })
        #expect(logs.contains { $0.source == "second" && $0.output == cp.dir + "/home" })

        // Metadata: a value that changes at its interval, a timeout, a failure.
        var first: MetadataResult?
        try await Harness.until("clock metadata") {
            first = try await cp.agent("dev", "main")?.metadata.first { $0.key == "clock" && !$0.value.isEmpty }
            return first != nil
        }
        try await Harness.until("clock to change", timeout: .seconds(5)) {
            let now = try await cp.agent("dev", "main")?.metadata.first { $0.key == "clock" }
            return now.map { $0.value != first!.value && $0.collectedAt > first!.collectedAt } ?? false
        }
        try await Harness.until("hang to time out", timeout: .seconds(10)) {
            try await cp.agent("dev", "main")?.metadata.first { $0.key == "hang" }?.error.contains("timed out after 1s") ?? false
        }
        try await Harness.until("fails to report its exit", timeout: .seconds(10)) {
            let m = try await cp.agent("dev", "main")?.metadata.first { $0.key == "fails" }
            return m?.error == "exit status 4: boom"
        }
        // Samples arrive at their interval: never faster than 1 s apart
        // (less 10% for clock and scheduling jitter), and they keep coming.
        // Watched for 6 s: a run may take up to its 1 s timeout, and a cold
        // CI run with seven of these tests at once once saw one sample in 4 s.
        var samples: [Int64] = []
        let watchUntil = ContinuousClock.now + .seconds(6)
        while ContinuousClock.now < watchUntil {
            if let at = try await cp.agent("dev", "main")?.metadata.first(where: { $0.key == "clock" })?.collectedAt, at != samples.last {
                samples.append(at)
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(samples.count >= 2, "only \(samples.count) clock samples in 6 s")
        let gaps = zip(samples.dropFirst(), samples).map { $0 - $1 }
        #expect(gaps.allSatisfy { $0 >= 900 }, "clock samples closer than the 1 s interval: \(gaps) ms")

        // SIGTERM: stop scripts, shutting_down → off, then exit 0.
        agent.signal(SIGTERM)
        #expect(try await agent.waitExit() == 0)
        let off = try await cp.waitLifecycle("dev", "main", ["off", "shutdown_error", "shutdown_timeout"], timeout: .seconds(10))
        #expect(off.lifecycle == "off")
        #expect(FileManager.default.fileExists(atPath: marker))
        #expect(try await cp.logs(agentID: ready.id).contains { $0.source == "stop" && $0.output == "stopping" })
        try await Harness.until("disconnect to show") { try await cp.agent("dev", "main")?.connected == false }
        // The agent's own log file exists (rotating file log).
        #expect(FileManager.default.fileExists(atPath: cp.dir + "/agent-main/tether-agent.log"))
    }

    @Test func failingAndSlowStartScripts() async throws {
        let cp = try await TestControlPlane(name: "failures")
        defer { cp.shutdown() }
        let tokens = try await cp.create(
            WorkspaceSpec(
                name: "bad",
                agents: [
                    AgentSpec(name: "fails", scripts: [
                        ScriptSpec(displayName: "ok", script: "echo fine", runOnStart: true),
                        ScriptSpec(displayName: "broken", script: "echo about to fail; exit 7", runOnStart: true),
                    ]),
                    AgentSpec(name: "slow", scripts: [
                        ScriptSpec(displayName: "sleepy", script: "echo zzz; sleep 60", runOnStart: true, timeoutSeconds: 1)
                    ]),
                    AgentSpec(name: "empty"),
                ]))
        for (name, token) in tokens { _ = try cp.startAgent(token: token, name: name) }
        let failed = try await cp.waitLifecycle("bad", "fails", ["ready", "start_error", "start_timeout"])
        #expect(failed.lifecycle == "start_error")
        let slow = try await cp.waitLifecycle("bad", "slow", ["ready", "start_error", "start_timeout"])
        #expect(slow.lifecycle == "start_timeout")
        let empty = try await cp.waitLifecycle("bad", "empty", ["ready", "start_error", "start_timeout"])
        #expect(empty.lifecycle == "ready")
        try await Harness.until("failure logged") {
            try await cp.logs(agentID: failed.id).contains { $0.source == "broken" && $0.output.contains("exit status 7") }
        }
        try await Harness.until("timeout logged") {
            try await cp.logs(agentID: slow.id).contains { $0.source == "sleepy" && $0.output.contains("timed out after 1s") }
        }
    }

    /// Kill -9 the control plane while an agent is streaming startup logs,
    /// restart it on the same port and data: every line arrives exactly once.
    @Test func controlPlaneRestartLosesAndDuplicatesNothing() async throws {
        let cp = try await TestControlPlane(name: "restart")
        defer { cp.shutdown() }
        let lines = 3000
        let tokens = try await cp.create(
            WorkspaceSpec(
                name: "rs",
                agents: [
                    AgentSpec(name: "main", scripts: [
                        ScriptSpec(
                            displayName: "stream",
                            script: "i=1; while [ $i -le \(lines) ]; do echo \"line $i\"; if [ $((i % 100)) -eq 0 ]; then sleep 0.1; fi; i=$((i+1)); done",
                            runOnStart: true, timeoutSeconds: 60)
                    ])
                ]))
        let agent = try cp.startAgent(token: tokens["main"]!, name: "main")
        var id = ""
        try await Harness.until("some lines") {
            guard let v = try await cp.agent("rs", "main") else { return false }
            id = v.id
            return try await cp.logs(agentID: v.id).count > 200
        }
        cp.killServer()
        try await Task.sleep(for: .milliseconds(1500))
        try await cp.startServer()
        let ready = try await cp.waitLifecycle("rs", "main", ["ready", "start_error", "start_timeout"], timeout: .seconds(40))
        #expect(ready.lifecycle == "ready")
        try await Harness.until("all lines after restart", timeout: .seconds(20)) {
            try await cp.logs(agentID: id).filter { $0.source == "stream" }.count >= lines
        }
        let got = try await cp.logs(agentID: id).filter { $0.source == "stream" }.map(\.output)
        #expect(got.count == lines)
        #expect(got == (1...lines).map { "line \($0)" })
        #expect(agent.output.contains("connected to control plane"))
    }

    /// A script printing 1 GiB is cut at 1 MiB with a marker; the agent's
    /// memory stays small and it still reaches `ready`.
    @Test func gigabyteOfOutputIsTruncated() async throws {
        let cp = try await TestControlPlane(name: "flood")
        defer { cp.shutdown() }
        let tokens = try await cp.create(
            WorkspaceSpec(
                name: "flood",
                agents: [
                    AgentSpec(name: "main", scripts: [
                        ScriptSpec(displayName: "flood", script: "yes 'all work and no play' | head -c 1073741824", runOnStart: true, timeoutSeconds: 120)
                    ])
                ]))
        let agent = try cp.startAgent(token: tokens["main"]!, name: "main")
        let ready = try await cp.waitLifecycle("flood", "main", ["ready", "start_error", "start_timeout"], timeout: .seconds(120))
        #expect(ready.lifecycle == "ready")
        try await Harness.until("truncation notes") {
            try await cp.logs(agentID: ready.id).contains { $0.output.contains("further bytes of \"flood\" output discarded") }
        }
        let logs = try await cp.logs(agentID: ready.id).filter { $0.source == "flood" }
        // Kept output: the lines and their newlines (the last line was cut mid-way).
        let info = logs.filter { $0.level == .info }
        let kept = info.reduce(0) { $0 + $1.output.utf8.count } + info.count - 1
        #expect(kept <= 1 << 20 && kept > (1 << 20) - 64)
        #expect(logs.contains { $0.output == "[tether] output of \"flood\" truncated after 1048576 bytes" })
        #expect(logs.last?.output == "[tether] \((1 << 30) - (1 << 20)) further bytes of \"flood\" output discarded")
        let peak = agent.peakResidentKiB
        #expect(peak > 0 && peak < 96 * 1024, "agent peak RSS \(peak) KiB")
    }
}

import Agent
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The paths a platform team uses: the init script, and the agent as the
/// PID 1 of a container.
@Suite(.serialized) struct BootstrapTests {
    /// `GET /api/v1/init.sh` run by `sh`: it downloads the agent binary from
    /// the control plane and execs it; the agent reaches `ready`, and SIGTERM
    /// to that same process ends in `off`.
    @Test func initScriptDownloadsAndExecsTheAgent() async throws {
        let cp = try await TestControlPlane(name: "init")
        defer { cp.shutdown() }
        let tokens = try await cp.create(
            WorkspaceSpec(name: "pod", agents: [AgentSpec(name: "main", scripts: [ScriptSpec(displayName: "hi", script: "echo from init", runOnStart: true)])]))
        let (status, script) = try await cp.curl([cp.url + "/api/v1/init.sh"])
        #expect(status == 200)
        let text = String(decoding: script, as: UTF8.self)
        #expect(text.hasPrefix("#!/bin/sh"))
        #expect(!text.contains("ttha_"))
        let path = cp.dir + "/init.sh"
        try script.write(to: URL(fileURLWithPath: path))
        // Without a token the script refuses to run.
        let noToken = try Child("/bin/sh", [path], environment: ["TETHER_AGENT_TOKEN": ""], logPath: cp.dir + "/init-notoken.out")
        #expect(try await noToken.waitExit() != 0)

        let agent = try Child(
            "/bin/sh", [path],
            environment: ["TETHER_AGENT_TOKEN": tokens["main"]!, "TETHER_AGENT_DIR": cp.dir + "/bin", "TETHER_AGENT_LOG_DIR": cp.dir + "/agentlog"],
            logPath: cp.dir + "/init.out")
        cp.children.append(agent)
        let ready = try await cp.waitLifecycle("pod", "main", ["ready", "start_error", "start_timeout"], timeout: .seconds(60))
        #expect(ready.lifecycle == "ready")
        #expect(FileManager.default.isExecutableFile(atPath: cp.dir + "/bin/tether"))
        let downloaded = try Data(contentsOf: URL(fileURLWithPath: cp.dir + "/bin/tether"))
        let downloadedSame = downloaded == (try Data(contentsOf: URL(fileURLWithPath: Harness.tether)))
        #expect(downloadedSame, "the init script's binary differs from the control plane's")
        // The shell exec'd the agent: same process.
        let comm = try String(contentsOfFile: "/proc/\(agent.pid)/comm", encoding: .utf8)
        #expect(comm.hasPrefix("tether"))
        agent.signal(SIGTERM)
        #expect(try await agent.waitExit() == 0)
        #expect(try await cp.waitLifecycle("pod", "main", ["off"]).lifecycle == "off")
        // A wrong architecture is refused.
        #expect(try await cp.curl([cp.url + "/api/v1/bin/tether?arch=sparc"]).0 == 404)
        #expect(try await cp.curl([cp.url + "/api/v1/bin/tether.gz?arch=sparc"]).0 == 404)
        // The script took the gzip copy (this machine has gzip): it is under
        // half the binary, and gzip itself restores the binary from it; the
        // plain route serves the binary as is.
        let binary = try Data(contentsOf: URL(fileURLWithPath: Harness.tether))
        let (gzStatus, gz) = try await cp.curl(["--max-time", "60", cp.url + "/api/v1/bin/tether.gz"])
        #expect(gzStatus == 200)
        #expect(gz.count > 0 && gz.count < binary.count / 2, "gzip copy of \(gz.count) bytes for a \(binary.count)-byte binary")
        try gz.write(to: URL(fileURLWithPath: cp.dir + "/tether.gz"))
        let restored = try Child("/bin/sh", ["-c", "gzip -dc '\(cp.dir)/tether.gz' > '\(cp.dir)/tether.restored'"], logPath: cp.dir + "/gunzip.out")
        #expect(try await restored.waitExit(timeout: .seconds(60)) == 0)
        // Bools, not `==` of two binaries inside #expect, which would diff them on a mismatch.
        let restoredSame = try Data(contentsOf: URL(fileURLWithPath: cp.dir + "/tether.restored")) == binary
        #expect(restoredSame)
        let (plainStatus, plain) = try await cp.curl(["--max-time", "60", cp.url + "/api/v1/bin/tether"])
        #expect(plainStatus == 200)
        let plainSame = plain == binary
        #expect(plainSame)
    }

    static let canUnshare = getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare")

    /// As PID 1 of a new PID namespace the agent reaps orphans: a start
    /// script that leaves grandchildren behind leaves no zombies.
    @Test(.enabled(if: canUnshare, "needs root and unshare(1) for a PID namespace"))
    func reapsOrphansAsPID1() async throws {
        let cp = try await TestControlPlane(name: "pid1")
        defer { cp.shutdown() }
        let tokens = try await cp.create(
            WorkspaceSpec(
                name: "ctr",
                agents: [
                    AgentSpec(name: "main", scripts: [
                        ScriptSpec(displayName: "orphans", script: "for i in 1 2 3 4 5; do (sleep 0.3 &); done; echo spawned", runOnStart: true)
                    ])
                ]))
        let agent = try Child(
            "/usr/bin/unshare", ["--pid", "--fork", "--kill-child", Harness.tether, "agent", "--url", cp.url],
            environment: ["TETHER_AGENT_TOKEN": tokens["main"]!, "TETHER_AGENT_LOG_DIR": cp.dir + "/agentlog"],
            logPath: cp.dir + "/pid1.out")
        cp.children.append(agent)
        _ = try await cp.waitLifecycle("ctr", "main", ["ready"])
        #expect(agent.output.contains("running as PID 1"))
        // The agent is unshare's child; orphans are re-parented to it.
        let agentPID = try children(of: agent.pid).first ?? -1
        #expect(agentPID > 0)
        try await Task.sleep(for: .seconds(1))
        let zombies = try children(of: agentPID).filter { state(of: $0) == "Z" }
        #expect(zombies.isEmpty, "zombies left under the PID-1 agent: \(zombies)")
        agent.signal(SIGKILL)
    }

    /// A workspace image has no Swift toolchain. The init script runs in a
    /// mount namespace where the folder holding the Swift runtime that this
    /// test process itself loaded (`libswiftCore.so`) is covered by an empty
    /// tmpfs; the downloaded agent must still start and reach `ready`.
    @Test(.enabled(if: canUnshare, "needs root and unshare(1) for a mount namespace"))
    func agentStartsWithoutSwiftToolchain() async throws {
        // Read to the end: String(contentsOfFile:) stops at 4 KiB of /proc.
        let handle = try #require(FileHandle(forReadingAtPath: "/proc/self/maps"))
        let maps = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
        let runtime = try #require(
            maps.split(separator: "\n").lazy.compactMap { $0.split(separator: " ").last }.first { $0.hasSuffix("/libswiftCore.so") },
            "this test process loads no libswiftCore.so")
        let runtimeDir = String(runtime.dropLast("/libswiftCore.so".count))

        let cp = try await TestControlPlane(name: "bare")
        defer { cp.shutdown() }
        let tokens = try await cp.create(
            WorkspaceSpec(name: "bare", agents: [AgentSpec(name: "main", scripts: [ScriptSpec(displayName: "hi", script: "echo bare", runOnStart: true)])]))
        let (_, script) = try await cp.curl([cp.url + "/api/v1/init.sh"])
        try script.write(to: URL(fileURLWithPath: cp.dir + "/init.sh"))
        let hidden = "mount -t tmpfs none '\(runtimeDir)' && test ! -e '\(runtimeDir)/libswiftCore.so' && exec sh '\(cp.dir)/init.sh'"
        let agent = try Child(
            "/usr/bin/unshare", ["--mount", "--propagation", "private", "/bin/sh", "-c", hidden],
            environment: ["TETHER_AGENT_TOKEN": tokens["main"]!, "TETHER_AGENT_DIR": cp.dir + "/bin", "TETHER_AGENT_LOG_DIR": cp.dir + "/agentlog"],
            logPath: cp.dir + "/bare.out")
        cp.children.append(agent)
        let ready = try await cp.waitLifecycle("bare", "main", ["ready", "start_error", "start_timeout", "off"], timeout: .seconds(60))
        #expect(ready.lifecycle == "ready", "agent output: \(agent.output)")
        agent.signal(SIGTERM)
        #expect(try await agent.waitExit() == 0)
    }

    func children(of pid: Int32) throws -> [Int32] {
        try FileManager.default.contentsOfDirectory(atPath: "/proc").compactMap { Int32($0) }.filter { p in
            guard let stat = try? String(contentsOfFile: "/proc/\(p)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return false }
            let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
            return fields.count > 1 && Int32(fields[1]) == pid
        }
    }

    func state(of pid: Int32) -> String {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return "" }
        return String(stat[stat.index(close, offsetBy: 2)])
    }
}

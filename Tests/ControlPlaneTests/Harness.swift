import Agent
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Real `tether server` and `tether agent` processes on loopback, driven
/// through the CLI and the HTTP API as a user would.
enum Harness {
    /// The `tether` executable built next to this test bundle.
    static let tether: String = {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("tether").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
        return URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("tether").path
    }()

    static func tempDir(_ name: String) -> String {
        let path = NSTemporaryDirectory() + "tether-test-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// A port free right now on 127.0.0.1.
    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    static func until(_ what: String, timeout: Duration = .seconds(20), _ check: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if (try? await check()) == true { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        if try await check() { return }
        throw HarnessError("timed out after \(timeout) waiting for \(what)")
    }
}

/// Runs blocking work (waiting for a process, reading a pipe) on a thread
/// of its own: Swift concurrency has as many threads as cores (two here),
/// and a test blocking them would stall every other test in the process.
func offload<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
    }
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// A child process whose combined output is kept in a file.
final class Child: @unchecked Sendable {
    let process = Process()
    let logPath: String

    init(_ executable: String, _ arguments: [String], environment: [String: String] = [:], logPath: String) throws {
        self.logPath = logPath
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = FileHandle(forWritingAtPath: logPath)!
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        process.standardOutput = log
        process.standardError = log
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }
    var output: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    func signal(_ s: Int32) { kill(process.processIdentifier, s) }

    func waitExit(timeout: Duration = .seconds(20)) async throws -> Int32 {
        try await Harness.until("process \(pid) to exit", timeout: timeout) { !process.isRunning }
        return process.terminationStatus
    }

    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// Peak resident memory (VmHWM) in KiB.
    var peakResidentKiB: Int {
        let text = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? 0
        }
        return 0
    }
}

/// One control plane with a signed-in CLI session in a temporary directory.
final class TestControlPlane: @unchecked Sendable {
    let dir: String
    let port: Int
    var url: String { "http://127.0.0.1:\(port)" }
    var server: Child?
    var userToken = ""
    var children: [Child] = []
    /// Extra `tether server` flags, kept for restarts.
    let serverArguments: [String]

    init(name: String, serverArguments: [String] = []) async throws {
        self.serverArguments = serverArguments
        dir = Harness.tempDir(name)
        port = Harness.freePort()
        try await startServer()
        _ = try await cli(["login", url, "--first-user", "admin"])
        let session = try JSONDecoder().decode([String: String].self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/cli/session.json")))
        userToken = session["token"]!
    }

    func startServer() async throws {
        let child = try Child(
            Harness.tether, ["server", "--address", "127.0.0.1:\(port)", "--data-dir", dir + "/data"] + serverArguments,
            logPath: dir + "/server-\(Int.random(in: 0...1_000_000)).log")
        server = child
        try await Harness.until("server to listen") { child.output.contains("listening on") }
    }

    func killServer() {
        server?.stop()
    }

    /// Runs the CLI with this control plane's session directory.
    @discardableResult
    func cli(_ arguments: [String]) async throws -> String {
        let dir = self.dir
        return try await offload { try Self.runCLI(arguments, dir: dir) }
    }

    static func runCLI(_ arguments: [String], dir: String) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Harness.tether)
        p.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env["TETHER_CONFIG_DIR"] = dir + "/cli"
        p.environment = env
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard p.terminationStatus == 0 else { throw HarnessError("tether \(arguments.joined(separator: " ")) failed: \(text)") }
        return text
    }

    /// Runs a python3 program; returns its stdout (stderr appended on failure).
    static func runPython(_ program: String) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        p.arguments = ["-c", program]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        return p.terminationStatus == 0 ? text : text + String(decoding: errData, as: UTF8.self)
    }

    /// Creates a workspace from `spec`; returns agent name → token.
    func create(_ spec: WorkspaceSpec) async throws -> [String: String] {
        let path = dir + "/\(spec.name).json"
        try JSONEncoder().encode(spec).write(to: URL(fileURLWithPath: path))
        struct Reply: Decodable {
            struct A: Decodable { let name: String; let token: String }
            let agents: [A]
        }
        let reply = try JSONDecoder().decode(Reply.self, from: Data(await cli(["create", "--spec", path, "--json"]).utf8))
        return Dictionary(uniqueKeysWithValues: reply.agents.map { ($0.name, $0.token) })
    }

    func startAgent(token: String, name: String) throws -> Child {
        let child = try Child(
            Harness.tether, ["agent", "--url", url],
            environment: ["TETHER_AGENT_TOKEN": token, "TETHER_AGENT_LOG_DIR": dir + "/agent-\(name)"],
            logPath: dir + "/agent-\(name).out")
        children.append(child)
        return child
    }

    struct View: Decodable {
        let id: String
        let workspace: String
        let name: String
        let connected: Bool
        let lifecycle: String
        let version: String
        let session: String?
        let metadata: [MetadataResult]
        let apps: [App]
        let ports: [ListeningPort]
        struct App: Decodable { let slug: String; let health: String }
    }

    func get(_ path: String, token: String? = nil) async throws -> (Int, Data) {
        try await curl(["-H", "Authorization: Bearer \(token ?? userToken)", url + path])
    }

    func curl(_ args: [String]) async throws -> (Int, Data) {
        try await offload { try Self.runCurl(args) }
    }

    static func runCurl(_ args: [String]) throws -> (Int, Data) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        p.arguments = ["-s", "-o", "-", "-w", "\n%{http_code}", "--max-time", "10"] + args
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard let nl = data.lastIndex(of: UInt8(ascii: "\n")), let code = Int(String(decoding: data[(nl + 1)...], as: UTF8.self)) else {
            throw HarnessError("curl gave no status")
        }
        return (code, data[..<nl])
    }

    func agent(_ workspace: String, _ name: String) async throws -> View? {
        let (status, data) = try await get("/api/v1/workspaces")
        guard status == 200 else { throw HarnessError("workspaces: HTTP \(status)") }
        return try JSONDecoder().decode([View].self, from: data).first { $0.workspace == workspace && $0.name == name }
    }

    func waitLifecycle(_ workspace: String, _ name: String, _ states: Set<String>, timeout: Duration = .seconds(30)) async throws -> View {
        var last: View?
        do {
            try await Harness.until("\(workspace).\(name) to reach \(states)", timeout: timeout) {
                last = try await agent(workspace, name)
                return last.map { states.contains($0.lifecycle) } ?? false
            }
        } catch {
            throw HarnessError("\(error); last seen \(last?.lifecycle ?? "nothing")")
        }
        return last!
    }

    func logs(agentID: String, session: String? = nil) async throws -> [LogEntry] {
        let (status, data) = try await get("/api/v1/agents/\(agentID)/logs?limit=100000" + (session.map { "&session=\($0)" } ?? ""))
        guard status == 200 else { throw HarnessError("logs: HTTP \(status)") }
        return try JSONDecoder().decode([LogEntry].self, from: data)
    }

    func metrics() async throws -> String {
        String(decoding: try await curl([url + "/metrics"]).1, as: UTF8.self)
    }

    func shutdown() {
        for c in children { c.stop() }
        server?.stop()
    }
}

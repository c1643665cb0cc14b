import Agent
import Foundation
import HTTPTypes
import Logging
import Synchronization
import WSClient

#if canImport(Glibc)
    import Glibc
#endif

// System-level benchmarks of the control plane and the agent, each printed
// as "<figure> · ours" beside its goal from issue 8 (no other agent runs on
// this machine to measure against, so the goal is the reference):
//
//   1. agent resident memory when idle and connected   (goal ≤ 15 MiB)
//   2. agent start to `ready`, trivial start script     (goal ≤ 100 ms)
//   3. control plane CPU and memory with 1,000 simulated agents each
//      reporting metadata every second (simulated in this process over
//      real WebSockets; the figures are the server process's own).
//
// Beside 1 and 2, the same figures of a reference: ReferenceProcess, the
// smallest Swift program that links Foundation, built next to this one
// with the same flags (the floor any Swift agent starts from). Every
// figure is printed with the load average at the time it was taken.
//
// TETHER_BIN names the `tether` binary (scripts/bench.sh builds it in
// release); BENCH_AGENTS and BENCH_SECONDS scale scenario 3.

let env = ProcessInfo.processInfo.environment
let tether = env["TETHER_BIN"] ?? "../.build/release/tether"
let simulatedAgents = Int(env["BENCH_AGENTS"] ?? "") ?? 1000
let loadSeconds = Int(env["BENCH_SECONDS"] ?? "") ?? 20

func pad(_ s: String, _ width: Int) -> String { s.count >= width ? s : s + String(repeating: " ", count: width - s.count) }
func num(_ v: Double, _ width: Int = 10) -> String {
    let s = String(format: "%.1f", v)
    return String(repeating: " ", count: max(0, width - s.count)) + s
}

func row(_ name: String, _ ours: Double, _ goal: Double) {
    let ratio = ours / goal
    print(pad(name, 64) + num(ours) + num(goal) + num(ratio, 8) + "  " + (ratio <= 1 ? "meets goal" : "misses goal"))
}

func figure(_ name: String, _ value: Double) { print(pad("  " + name, 64) + num(value)) }

func loadAverage() -> String {
    let text = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?"
    return "load average " + text.split(separator: " ").prefix(3).joined(separator: " ")
}

/// A reference figure beside ours: its value and ours / reference.
func reference(_ name: String, _ ref: Double, ours: Double) {
    print(pad("  reference: " + name, 64) + num(ref) + "    ours/reference " + String(format: "%.2f", ours / ref))
}

/// ReferenceProcess, built beside this executable.
let referenceBinary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("ReferenceProcess").path

/// Starts ReferenceProcess; returns its spawn-to-first-line time (ms) and,
/// if asked, its resident memory (MiB) after `settle` seconds.
func runReference(measureMemoryAfter settle: UInt32? = nil) throws -> (ms: Double, rssMiB: Double) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: referenceBinary)
    let input = Pipe()
    let output = Pipe()
    p.standardInput = input
    p.standardOutput = output
    let started = ContinuousClock.now
    try p.run()
    var first = Data()
    while !first.contains(UInt8(ascii: "\n")) {
        let chunk = output.fileHandleForReading.availableData
        if chunk.isEmpty { break }
        first += chunk
    }
    let elapsed = ContinuousClock.now - started
    var rss = 0.0
    if let settle {
        sleep(settle)
        rss = procStatus(p.processIdentifier, "VmRSS") / 1024
    }
    try input.fileHandleForWriting.close()
    p.waitUntilExit()
    return (Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1000, rss)
}

func shell(_ path: String, _ args: [String], env extra: [String: String] = [:], output: String? = nil) throws -> Process {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = args
    var e = ProcessInfo.processInfo.environment
    for (k, v) in extra { e[k] = v }
    p.environment = e
    if let output {
        FileManager.default.createFile(atPath: output, contents: nil)
        let h = FileHandle(forWritingAtPath: output)!
        p.standardOutput = h
        p.standardError = h
    }
    try p.run()
    return p
}

func curl(_ args: [String]) throws -> (Int, Data) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
    p.arguments = ["-s", "-o", "-", "-w", "\n%{http_code}"] + args
    let pipe = Pipe()
    p.standardOutput = pipe
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    let nl = data.lastIndex(of: UInt8(ascii: "\n"))!
    return (Int(String(decoding: data[(nl + 1)...], as: UTF8.self)) ?? 0, data[..<nl])
}

func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    return Int(UInt16(bigEndian: addr.sin_port))
}

func procStatus(_ pid: Int32, _ field: String) -> Double {
    let text = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
    for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
        // "Name:\t  value kB" or "Name:\tvalue": tabs and spaces both separate.
        let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        return fields.count > 1 ? Double(fields[1]) ?? 0 : 0
    }
    return 0
}

/// utime + stime of a process, in seconds.
func cpuSeconds(_ pid: Int32) -> Double {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return 0 }
    let f = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
    return (Double(f[11])! + Double(f[12])!) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

struct ControlPlane {
    let dir: String
    let url: String
    let server: Process
    let token: String

    static func start() throws -> ControlPlane {
        let dir = NSTemporaryDirectory() + "tether-bench-\(getpid())"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let port = freePort()
        let server = try shell(tether, ["server", "--address", "127.0.0.1:\(port)", "--data-dir", dir + "/data", "--log-level", "warning"], output: dir + "/server.log")
        let url = "http://127.0.0.1:\(port)"
        for _ in 0..<200 {
            if (try? curl([url + "/healthz"]).0) == 200 { break }
            usleep(50_000)
        }
        let (_, body) = try curl(["-X", "POST", "-d", #"{"name":"bench"}"#, url + "/api/v1/users/first"])
        let token = (try JSONSerialization.jsonObject(with: body) as! [String: Any])["token"] as! String
        return ControlPlane(dir: dir, url: url, server: server, token: token)
    }

    /// Creates a workspace; returns agent name → (id, token).
    func create(_ spec: WorkspaceSpec) throws -> [String: (String, String)] {
        let (status, body) = try curl(["-X", "POST", "-H", "Authorization: Bearer \(token)", "--data-binary", String(decoding: JSONEncoder().encode(spec), as: UTF8.self), url + "/api/v1/workspaces"])
        guard status == 201 else { fatalError("create: HTTP \(status) \(String(decoding: body, as: UTF8.self))") }
        let agents = (try JSONSerialization.jsonObject(with: body) as! [String: Any])["agents"] as! [[String: String]]
        return Dictionary(uniqueKeysWithValues: agents.map { ($0["name"]!, ($0["id"]!, $0["token"]!)) })
    }

    func lifecycle(agentID: String) throws -> (String, Int64) {
        let (_, body) = try curl(["-H", "Authorization: Bearer \(token)", url + "/api/v1/workspaces"])
        let views = try JSONSerialization.jsonObject(with: body) as! [[String: Any]]
        let v = views.first { $0["id"] as? String == agentID }!
        return (v["lifecycle"] as! String, (v["lifecycle_changed_at"] as! NSNumber).int64Value)
    }

    func stop() {
        server.terminate()
        server.waitUntilExit()
        try? FileManager.default.removeItem(atPath: dir)
    }
}

func nowMillis() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

print(pad("benchmark", 64) + "      ours      goal   ratio")
let cp = try ControlPlane.start()
defer { cp.stop() }

// 1 and 2: one agent with a trivial start script, started 10 times.
let agent = try cp.create(WorkspaceSpec(name: "bench", agents: [AgentSpec(name: "main", scripts: [ScriptSpec(displayName: "trivial", script: "true", runOnStart: true)])]))["main"]!
var readyTimes: [Double] = []
var idleRSS = 0.0
var idleRSSEarly = 0.0
var idleAnon = 0.0
var idleFile = 0.0
var idleThreads = 0.0
var idleLoad = ""
var untrimmedRSS = 0.0
// Run 0 measures memory with the agent's default resident-set trimming,
// run 1 the same agent with --no-trim-memory; all 10 time start to ready.
for run in 0..<10 {
    let spawned = nowMillis()
    let arguments = ["agent", "--url", cp.url, "--log-level", "warning"] + (run == 1 ? ["--no-trim-memory"] : [])
    let p = try shell(tether, arguments, env: ["TETHER_AGENT_TOKEN": agent.1, "TETHER_AGENT_LOG_DIR": cp.dir + "/agent"], output: cp.dir + "/agent-\(run).log")
    while true {
        let (state, at) = try cp.lifecycle(agentID: agent.0)
        if state == "ready" && at >= spawned {
            readyTimes.append(Double(at - spawned))
            break
        }
        usleep(5_000)
    }
    if run == 0 {
        // Idle and connected: stats, ports and pings only. 5 s after
        // ready (2 s after the first trim), then 30 s after, past three
        // stats reports and many port scans; the figure is the larger.
        sleep(5)
        idleRSSEarly = procStatus(p.processIdentifier, "VmRSS") / 1024
        sleep(25)
        idleRSS = max(idleRSSEarly, procStatus(p.processIdentifier, "VmRSS") / 1024)
        idleAnon = procStatus(p.processIdentifier, "RssAnon") / 1024
        idleFile = procStatus(p.processIdentifier, "RssFile") / 1024
        idleThreads = procStatus(p.processIdentifier, "Threads")
        idleLoad = loadAverage()
    } else if run == 1 {
        sleep(5)
        untrimmedRSS = procStatus(p.processIdentifier, "VmRSS") / 1024
    }
    kill(p.processIdentifier, SIGTERM)
    p.waitUntilExit()
}
let readyLoad = loadAverage()
let referenceRSS = try runReference(measureMemoryAfter: 2).rssMiB
let referenceLoad = loadAverage()
var referenceTimes = try (0..<10).map { _ in try runReference().ms }
referenceTimes.sort()
let referenceTimeLoad = loadAverage()

row("agent resident memory, idle and connected (MiB)", idleRSS, 15)
print("    (\(idleLoad); 5 s after ready \(String(format: "%.1f", idleRSSEarly)), 30 s after \(String(format: "%.1f", idleRSS)))")
reference("same agent with --no-trim-memory, 5 s after ready (MiB)", untrimmedRSS, ours: idleRSS)
figure("of which anonymous (MiB)", idleAnon)
figure("of which file-backed: code and data of binary and libraries (MiB)", idleFile)
figure("threads", idleThreads)
reference("minimal Swift process linking Foundation (MiB)", referenceRSS, ours: idleRSS)
print("    (\(referenceLoad))")
readyTimes.sort()
row("agent start to ready, trivial start script, median of 10 (ms)", readyTimes[readyTimes.count / 2], 100)
print("    (\(readyLoad); all 10: \(readyTimes.map { Int($0) }))")
reference("same process, spawn to first line, median of 10 (ms)", referenceTimes[referenceTimes.count / 2], ours: readyTimes[readyTimes.count / 2])
print("    (\(referenceTimeLoad); all 10: \(referenceTimes.map { Int($0) }))")

// 3: 1,000 simulated agents, metadata every second.
var tokens: [String] = []
let perWorkspace = 16
for w in 0..<((simulatedAgents + perWorkspace - 1) / perWorkspace) {
    let count = min(perWorkspace, simulatedAgents - w * perWorkspace)
    let agents = (0..<count).map { AgentSpec(name: "a\($0)", metadata: [MetadataSpec(key: "load", script: "true", intervalSeconds: 1, timeoutSeconds: 1)]) }
    tokens += try cp.create(WorkspaceSpec(name: "sim\(w)", agents: agents)).values.map(\.1)
}
let agentTokens = tokens
let connected = Atomic<Int>(0)
let sent = Atomic<Int>(0)
let socketURL = cp.url.replacingOccurrences(of: "http://", with: "ws://") + ControlProtocolVersion.agentPath
let stopAt = ContinuousClock.now + .seconds(loadSeconds + 75)
let finished = Atomic<Bool>(false)
let serverPID = cp.server.processIdentifier

await withTaskGroup(of: Void.self) { group in
    for (i, token) in agentTokens.enumerated() {
        group.addTask {
            try? await Task.sleep(for: .milliseconds(i * 5))  // ramp up over 5 s
            let client = WebSocketClient(
                url: socketURL, configuration: .init(additionalHeaders: [.authorization: "Bearer \(token)"]),
                logger: Logger(label: "sim")
            ) { inbound, outbound, _ in
                let hello = Hello(agentVersion: "sim", session: "sim\(i)", startedAt: nowMillis(), hostname: "sim", os: "linux", arch: "x86_64")
                try await outbound.write(.text(String(decoding: ControlCodec.encode(.hello(hello)), as: UTF8.self)))
                var it = inbound.messages(maxSize: 1 << 20).makeAsyncIterator()
                _ = try await it.next()
                connected.add(1, ordering: .relaxed)
                let phase = Duration.milliseconds(Int.random(in: 0..<1000))
                try await Task.sleep(for: phase)
                while ContinuousClock.now < stopAt, !finished.load(ordering: .relaxed) {
                    let result = MetadataResult(key: "load", value: String(Double.random(in: 0..<4)), error: "", collectedAt: nowMillis())
                    try await outbound.write(.text(String(decoding: ControlCodec.encode(.metadata(MetadataBatch(results: [result]))), as: UTF8.self)))
                    sent.add(1, ordering: .relaxed)
                    try await Task.sleep(for: .seconds(1))
                }
                try await outbound.close(.normalClosure, reason: nil)
            }
            _ = try? await client.run()
        }
    }
    group.addTask {
        // Measure once every agent is connected (or 60 s), over `loadSeconds`.
        let rampLimit = ContinuousClock.now + .seconds(60)
        while connected.load(ordering: .relaxed) < agentTokens.count, ContinuousClock.now < rampLimit {
            try? await Task.sleep(for: .milliseconds(200))
        }
        try? await Task.sleep(for: .seconds(2))
        let cpu0 = cpuSeconds(serverPID)
        let t0 = ContinuousClock.now
        let sent0 = sent.load(ordering: .relaxed)
        try? await Task.sleep(for: .seconds(loadSeconds))
        let elapsed = ContinuousClock.now - t0
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let cpu = (cpuSeconds(serverPID) - cpu0) / seconds * 100
        let rate = Double(sent.load(ordering: .relaxed) - sent0) / seconds
        print("control plane with \(connected.load(ordering: .relaxed)) of \(agentTokens.count) simulated agents connected, over \(loadSeconds) s (\(loadAverage())):")
        figure("metadata results sent per second", rate)
        figure("server CPU, % of one core", cpu)
        figure("server resident memory (MiB)", procStatus(serverPID, "VmRSS") / 1024)
        figure("server CPU per 1,000 metadata results (ms)", cpu * 10 / max(rate / 1000, 0.001))
        let (_, metrics) = (try? curl([cp.url + "/metrics"])) ?? (0, Data())
        let received = String(decoding: metrics, as: UTF8.self).split(separator: "\n").first { $0.hasPrefix("tether_agent_metadata_results_total ") }
        print("  server counted: \(received ?? "?")")
        finished.store(true, ordering: .relaxed)
    }
}

@preconcurrency import Dispatch
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

public enum AgentBuild {
    public static let version = "0.1.0"
}

public struct AgentOptions: Sendable {
    /// Control plane base URL, e.g. `http://127.0.0.1:3000`.
    public var url: String
    public var token: String
    public var statsInterval: Duration = .seconds(10)
    public var portsInterval: Duration = .seconds(2)
    /// How long shutdown waits to deliver the final state and logs.
    public var flushLimit: Duration = .seconds(5)
    /// How often to drop code pages the agent no longer uses from its
    /// resident set (`ResidentSetTrim`), first shortly after start-up; nil:
    /// never.
    public var trimInterval: Duration? = .seconds(60)

    public init(url: String, token: String) {
        self.url = url
        self.token = token
    }
}

/// `tether agent`: connects, runs the manifest's scripts and reporters,
/// and on SIGTERM or SIGINT runs the stop scripts and exits.
///
/// ```
///   created ──(manifest)──▶ starting ──(start scripts)──▶ ready | start_error | start_timeout
///      │                                                      │
///      └──────────────(SIGTERM/SIGINT)──▶ shutting_down ◀─────┘──(stop scripts)──▶ off | …
/// ```
public final class AgentRuntime: Sendable {
    let options: AgentOptions
    let logger: Logger
    let reporter: Reporter
    let connection: ControlConnection
    let startedAt = monotonicNanos()
    private let manifest = Locked<Manifest?>(nil)
    private let manifestArrived = WakeSignal()
    /// The tailnet side (mesh node + SSH server), made at the first
    /// coordination message, which follows `welcome` and its manifest.
    private let tunnel = Locked<AgentTunnel?>(nil)

    public init(options: AgentOptions, logger: Logger = Logger(label: "tether.agent")) {
        self.options = options
        self.logger = logger
        var rng = SystemRandomNumberGenerator()
        let session = (0..<4).map { _ in
            let v = rng.next() as UInt32
            let s = String(v, radix: 16)
            return String(repeating: "0", count: 8 - s.count) + s
        }.joined()
        reporter = Reporter(session: session)
        let hello = Hello(
            agentVersion: AgentBuild.version, session: session, startedAt: nowMillis(), hostname: hostName(),
            os: "linux", arch: machineArchitecture())
        let manifest = self.manifest
        let arrived = manifestArrived
        let tunnel = self.tunnel
        let reporter = self.reporter
        let token = options.token
        connection = ControlConnection(
            url: options.url, token: options.token, hello: hello, reporter: reporter, logger: logger,
            onManifest: { m in
                let first = manifest.withLock { current -> Bool in
                    guard current == nil else { return false }
                    current = m
                    return true
                }
                if first { arrived.notify() }
            },
            onCoordination: { message in
                let current = tunnel.withLock { t -> AgentTunnel in
                    if let t { return t }
                    let motd = manifest.value?.motdPath ?? ""
                    let made = AgentTunnel(
                        identity: token, motdPath: motd.isEmpty ? nil : expandTilde(motd), logger: logger,
                        publish: { reporter.setNode($0) }, peerReady: { reporter.readyForHandshake(nodeKey: $0) })
                    t = made
                    return made
                }
                switch message {
                case .tunnel(let config): current.configure(config)
                case .peerUpsert(let peer): current.upsertPeer(peer.node)
                case .peerRemove(let peer): current.removePeer(nodeKey: peer.nodeKey)
                default: break
                }
            })
        reporter.setLifecycle(.created)
    }

    /// Runs until a stop signal has been handled; returns the exit status.
    public func run() async -> Int32 {
        let signals = StopSignals()
        if getpid() == 1 { logger.info("running as PID 1: reaping orphaned processes") }
        _ = ChildReaper.shared
        logger.info("tether agent \(AgentBuild.version) starting; session \(reporter.session)")
        let connectionTask = Task { await connection.run() }

        let work = Task { await runWorkspace() }
        let signal = await signals.next()
        logger.info("received signal \(signal): shutting down")
        work.cancel()
        _ = await work.value

        reporter.setLifecycle(.shuttingDown)
        let final: LifecycleState
        if let m = manifest.withLock({ $0 }) {
            let stops = m.scripts.filter(\.runOnStop)
            let result = await runScripts(stops, manifest: m)
            final = result == .ok ? .off : result == .timeout ? .shutdownTimeout : .shutdownError
        } else {
            final = .off
        }
        reporter.setLifecycle(final)
        logger.info("lifecycle \(final.rawValue); delivering final state")
        if !(await connection.waitFlushed(limit: options.flushLimit)) {
            logger.warning("could not deliver everything to the control plane within \(options.flushLimit)")
        }
        connection.finish()
        let closing = Task {
            try? await Task.sleep(for: .seconds(2))
            connectionTask.cancel()
        }
        await connectionTask.value
        closing.cancel()
        if let t = tunnel.value { await t.stop() }
        logger.info("agent stopped")
        return 0
    }

    // MARK: Startup and background work

    private func runWorkspace() async {
        await manifestArrived.wait()
        guard !Task.isCancelled, let m = manifest.withLock({ $0 }) else { return }
        logger.info("manifest for \(m.workspaceName).\(m.agentName): \(m.scripts.count) scripts, \(m.apps.count) apps, \(m.metadata.count) metadata")
        reporter.setLifecycle(.starting)
        await withTaskGroup(of: Void.self) { group in
            group.addTask { [self] in await collectStats() }
            group.addTask { [self] in await scanPorts() }
            if let interval = options.trimInterval { group.addTask { [self] in await trimResidentSet(every: interval) } }
            for item in m.metadata { group.addTask { [self] in await collectMetadata(item, manifest: m) } }
            for app in m.apps { group.addTask { [self] in await checkHealth(app) } }
            group.addTask { [self] in
                let result = await runScripts(m.scripts.filter(\.runOnStart), manifest: m)
                guard !Task.isCancelled else { return }
                let state: LifecycleState = result == .ok ? .ready : result == .timeout ? .startTimeout : .startError
                reporter.setLifecycle(state)
                logger.info("startup finished: \(state.rawValue) after \((monotonicNanos() - startedAt) / 1_000_000) ms")
                await withTaskGroup(of: Void.self) { crons in
                    for script in m.scripts where script.cron != nil {
                        crons.addTask { [self] in await runCron(script, manifest: m) }
                    }
                }
            }
        }
    }

    enum ScriptsResult { case ok, error, timeout }

    /// Runs scripts in parallel; `timeout` if any timed out, else `error` if
    /// any failed, else `ok`.
    private func runScripts(_ scripts: [ScriptSpec], manifest m: Manifest) async -> ScriptsResult {
        let outcomes = await withTaskGroup(of: ScriptOutcome.self) { group in
            for s in scripts { group.addTask { [self] in await runScript(s, manifest: m) } }
            var all: [ScriptOutcome] = []
            for await o in group { all.append(o) }
            return all
        }
        if outcomes.contains(where: \.timedOut) { return .timeout }
        if outcomes.contains(where: { !$0.succeeded }) { return .error }
        return .ok
    }

    private func runScript(_ s: ScriptSpec, manifest m: Manifest) async -> ScriptOutcome {
        let reporter = self.reporter
        let output = Mutex(ScriptOutput(source: s.displayName))
        let started = monotonicNanos()
        let outcome = await ScriptProcess.run(
            script: s.script, directory: workingDirectory(m), environment: environment(m),
            timeout: s.timeoutSeconds > 0 ? .seconds(s.timeoutSeconds) : nil
        ) { chunk in
            output.withLock { $0.feed(chunk) { level, line in reporter.log(source: s.displayName, level: level, line) } }
        }
        output.withLock { $0.finish { level, line in reporter.log(source: s.displayName, level: level, line) } }
        let ms = (monotonicNanos() - started) / 1_000_000
        if !outcome.succeeded {
            let why = outcome.timedOut ? "timed out after \(s.timeoutSeconds)s" : outcome.summary
            reporter.log(source: s.displayName, level: .error, "[tether] script \"\(s.displayName)\" \(why)")
            logger.warning("script \(s.displayName): \(why) (\(ms) ms)")
        } else {
            logger.info("script \(s.displayName) finished in \(ms) ms")
        }
        return outcome
    }

    private func runCron(_ s: ScriptSpec, manifest m: Manifest) async {
        guard let text = s.cron, let schedule = try? CronSchedule(parsing: text) else { return }
        while !Task.isCancelled {
            let now = nowMillis()
            guard let next = schedule.next(after: now / 1000) else { return }
            try? await Task.sleep(for: .milliseconds(next * 1000 - now))
            guard !Task.isCancelled else { return }
            _ = await runScript(s, manifest: m)
        }
    }

    private func collectMetadata(_ item: MetadataSpec, manifest m: Manifest) async {
        let limit = ControlLimits.maxMetadataValueBytes
        while !Task.isCancelled {
            let started = ContinuousClock.now
            let captured = Mutex<[UInt8]>([])
            let outcome = await ScriptProcess.run(
                script: item.script, directory: workingDirectory(m), environment: environment(m),
                timeout: .seconds(item.timeoutSeconds)
            ) { chunk in
                captured.withLock { buf in
                    let room = limit - buf.count
                    if room > 0 { buf.append(contentsOf: chunk.prefix(room)) }
                }
            }
            guard !Task.isCancelled else { return }
            let text = String(decoding: captured.withLock { $0 }, as: UTF8.self).trimmingSpace()
            let result: MetadataResult
            if outcome.timedOut {
                result = MetadataResult(key: item.key, value: "", error: "timed out after \(item.timeoutSeconds)s", collectedAt: nowMillis())
            } else if !outcome.succeeded {
                let detail = text.isEmpty ? "" : ": \(text)"
                result = MetadataResult(key: item.key, value: "", error: outcome.summary + detail, collectedAt: nowMillis())
            } else {
                result = MetadataResult(key: item.key, value: text, error: "", collectedAt: nowMillis())
            }
            reporter.setMetadata(result)
            try? await Task.sleep(until: started + .seconds(item.intervalSeconds))
        }
    }

    private func checkHealth(_ app: AppSpec) async {
        guard let check = app.healthcheck, let url = HTTPURL(check.url) else {
            reporter.setAppHealth(app.slug, .disabled)
            return
        }
        reporter.setAppHealth(app.slug, .initializing)
        var failures = 0
        let interval = Duration.seconds(check.intervalSeconds)
        while !Task.isCancelled {
            let started = ContinuousClock.now
            if await HTTPProbe.check(url, timeout: interval) {
                failures = 0
                reporter.setAppHealth(app.slug, .healthy)
            } else {
                failures += 1
                if failures >= check.threshold { reporter.setAppHealth(app.slug, .unhealthy) }
            }
            try? await Task.sleep(until: started + interval)
        }
    }

    private func collectStats() async {
        while !Task.isCancelled {
            reporter.setStats(
                Stats(
                    collectedAt: nowMillis(), uptimeSeconds: (monotonicNanos() - startedAt) / 1_000_000_000,
                    residentBytes: ProcessStats.residentBytes(), load1: ProcessStats.load1(),
                    scriptsRunning: 0, txBytes: connection.txBytes.load(ordering: .relaxed),
                    rxBytes: connection.rxBytes.load(ordering: .relaxed)))
            try? await Task.sleep(for: options.statsInterval)
        }
    }

    /// Start-up touches much code once (TLS, key exchange, JSON schemas,
    /// the manifest); 3 s after it, and then every `interval`, that is let
    /// go so the idle agent's resident set is what it keeps using.
    private func trimResidentSet(every interval: Duration) async {
        try? await Task.sleep(for: .seconds(3))
        while !Task.isCancelled {
            let before = ProcessStats.residentBytes()
            let (mappings, _) = ResidentSetTrim.apply()
            let after = ProcessStats.residentBytes()
            logger.debug("resident set trimmed: \(mappings) mappings, \(before >> 10) → \(after >> 10) KiB")
            try? await Task.sleep(for: interval)
        }
    }

    private func scanPorts() async {
        while !Task.isCancelled {
            reporter.setPorts(ListeningPortsScanner.scan())
            try? await Task.sleep(for: options.portsInterval)
        }
    }

    // MARK: Script environment

    private func workingDirectory(_ m: Manifest) -> String {
        let dir = expandTilde(m.directory.isEmpty ? "~" : m.directory)
        if !isDirectory(dir) { makeDirectories(dir) }
        return isDirectory(dir) ? dir : homeDirectory()
    }

    /// The agent's environment without its token, plus the manifest's.
    private func environment(_ m: Manifest) -> [String] {
        var env: [String: String] = [:]
        var p = environ
        while let entry = p.pointee {
            let s = String(cString: entry)
            if let eq = s.firstIndex(of: "=") { env[String(s[..<eq])] = String(s[s.index(after: eq)...]) }
            p += 1
        }
        env["TETHER_AGENT_TOKEN"] = nil
        env["TETHER"] = "true"
        env["TETHER_WORKSPACE_NAME"] = m.workspaceName
        env["TETHER_WORKSPACE_AGENT_NAME"] = m.agentName
        for (k, v) in m.env { env[k] = v }
        return env.map { "\($0.key)=\($0.value)" }
    }
}

extension String {
    func trimmingSpace() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })!
        return String(scalars[first...last])
    }
}

/// SIGTERM and SIGINT as an awaitable event. The default actions are
/// replaced (as PID 1 the kernel would ignore them anyway), so the agent
/// always gets to run its stop scripts.
final class StopSignals: Sendable {
    nonisolated(unsafe) private let sources: [any DispatchSourceSignal]
    private let fired = WakeSignal()
    private let which = Locked<Int32>(0)

    init() {
        signal(SIGPIPE, SIG_IGN)
        var sources: [any DispatchSourceSignal] = []
        let fired = self.fired
        let which = self.which
        for s in [SIGTERM, SIGINT] {
            signal(s, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: s, queue: .global())
            source.setEventHandler {
                which.withLock { $0 = s }
                fired.notify()
            }
            source.resume()
            sources.append(source)
        }
        self.sources = sources
    }

    func next() async -> Int32 {
        await fired.wait()
        return which.value
    }
}

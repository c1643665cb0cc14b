import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// How a script run ended.
public struct ScriptOutcome: Sendable, Equatable {
    /// Exit code, when it exited normally.
    public var exitCode: Int32?
    /// Terminating signal, when it was killed.
    public var signal: Int32?
    /// Killed by us at its timeout.
    public var timedOut: Bool
    /// Why it could not be started at all.
    public var spawnError: String?

    public var succeeded: Bool { exitCode == 0 && !timedOut && spawnError == nil }

    public var summary: String {
        if let spawnError { return "could not start: \(spawnError)" }
        if timedOut { return "timed out" }
        if let exitCode { return "exit status \(exitCode)" }
        if let signal { return "killed by signal \(signal)" }
        return "unknown"
    }
}

/// Runs `sh -c SCRIPT` in its own process group, stdin from /dev/null,
/// stdout and stderr into one pipe whose bytes go to `onOutput` from a
/// reader thread. A timeout (or cancellation of the calling task) kills the
/// whole group with SIGKILL, so children the script started go too.
public enum ScriptProcess {
    /// After the shell exits, how long its background children may keep
    /// the pipe open before the reader stops listening.
    static let drainGrace: Duration = .seconds(1)

    public static func run(
        script: String, directory: String, environment: [String], timeout: Duration?,
        onOutput: @escaping @Sendable (UnsafeRawBufferPointer) -> Void
    ) async -> ScriptOutcome {
        let exit = ExitBox()
        var spawnError = ""
        var fds: [Int32] = [-1, -1]
        // The pipe is made under the reaper's lock, which every spawn holds,
        // so no other child can inherit it before it is marked close-on-exec.
        let pid = ChildReaper.shared.spawnRegistered({
            guard pipe(&fds) == 0 else {
                spawnError = "pipe: \(String(cString: strerror(errno)))"
                return nil
            }
            _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
            _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
            var pid: pid_t = 0
            let rc = spawnShell(script: script, directory: directory, environment: environment, stdoutFD: fds[1], pid: &pid)
            if rc != 0 {
                spawnError = String(cString: strerror(rc))
                close(fds[0])
                close(fds[1])
                return nil
            }
            return pid
        }, onExit: { status in exit.complete(status) })
        guard let pid else { return ScriptOutcome(timedOut: false, spawnError: spawnError) }
        close(fds[1])
        let readFD = fds[0]

        let reader = PipeReader(fd: readFD, onOutput: onOutput)
        reader.start()
        let timedOut = Flag()
        let status = await withTaskCancellationHandler {
            await withTaskGroup(of: Int32?.self) { group in
                group.addTask { await exit.wait() }
                if let timeout {
                    group.addTask {
                        try? await Task.sleep(for: timeout)
                        if !Task.isCancelled {
                            timedOut.value.store(true, ordering: .relaxed)
                            kill(-pid, SIGKILL)
                        }
                        return nil
                    }
                }
                var status: Int32 = 0
                for await value in group {
                    if let value {
                        status = value
                        group.cancelAll()
                        break
                    }
                }
                return status
            }
        } onCancel: {
            kill(-pid, SIGKILL)
        }
        await reader.finish(grace: drainGrace)
        var outcome = ScriptOutcome(timedOut: timedOut.value.load(ordering: .relaxed))
        if status & 0x7f == 0 {
            outcome.exitCode = (status >> 8) & 0xff
        } else {
            outcome.signal = status & 0x7f
        }
        return outcome
    }

    /// glibc ≥ 2.29's `posix_spawn_file_actions_addchdir_np`, found at run
    /// time because Swift's Glibc module hides GNU extensions.
    nonisolated(unsafe) static let addChdir: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addchdir_np") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32).self)
    }()

    /// posix_spawn of /bin/sh; returns 0 or an errno.
    private static func spawnShell(
        script: String, directory: String, environment: [String], stdoutFD: Int32, pid: inout pid_t
    ) -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, stdoutFD, 1)
        posix_spawn_file_actions_adddup2(&actions, stdoutFD, 2)
        var script = script
        if !directory.isEmpty {
            if let addChdir = Self.addChdir {
                _ = addChdir(&actions, directory)
            } else {
                script = "cd '\(directory.replacingQuote())' || exit 1\n" + script
            }
        }

        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGTERM, SIGINT, SIGPIPE, SIGCHLD, SIGHUP, SIGQUIT] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigmask(&attr, &noSignals)
        posix_spawnattr_setsigdefault(&attr, &defaults)
        posix_spawnattr_setpgroup(&attr, 0)
        posix_spawnattr_setflags(
            &attr, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv: [String] = ["sh", "-c", script]
        return withCStrings(argv) { cArgv in
            withCStrings(environment) { cEnv in
                posix_spawn(&pid, "/bin/sh", &actions, &attr, cArgv, cEnv)
            }
        }
    }
}

/// NUL-terminated C string array for exec-style calls.
func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    let pointers = strings.map { strdup($0) } + [nil]
    defer { for p in pointers { free(p) } }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}

/// A child's wait status, delivered by the reaper thread to one awaiting task.
final class ExitBox: Sendable {
    private let state = Mutex<(status: Int32?, waiter: CheckedContinuation<Int32?, Never>?)>((nil, nil))

    func complete(_ status: Int32) {
        let waiter = state.withLock { s -> CheckedContinuation<Int32?, Never>? in
            s.status = status
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume(returning: status)
    }

    func wait() async -> Int32? {
        await withCheckedContinuation { c in
            let ready = state.withLock { s -> Int32? in
                if let status = s.status { return status }
                s.waiter = c
                return nil
            }
            if let ready { c.resume(returning: ready) }
        }
    }
}

/// Reads a pipe on its own thread until EOF, or until told to stop after
/// the writer has gone (background children may hold the pipe open).
final class PipeReader: Sendable {
    let fd: Int32
    let onOutput: @Sendable (UnsafeRawBufferPointer) -> Void
    private let stopAfter = Atomic<Int64>(Int64.max)  // monotonic ns
    private let done = ExitBox()

    init(fd: Int32, onOutput: @escaping @Sendable (UnsafeRawBufferPointer) -> Void) {
        self.fd = fd
        self.onOutput = onOutput
    }

    func start() {
        startThread(name: "pipe-reader") { [self] in
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 16)
            defer { buffer.deallocate() }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            while true {
                let ready = poll(&pfd, 1, 100)
                if ready == 0 {
                    if monotonicNanos() >= stopAfter.load(ordering: .relaxed) { break }
                    continue
                }
                if ready < 0 {
                    if errno == EINTR { continue }
                    break
                }
                let n = read(fd, buffer.baseAddress, buffer.count)
                if n > 0 {
                    onOutput(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
                } else if n < 0, errno == EINTR || errno == EAGAIN {
                    continue
                } else {
                    break
                }
            }
            close(fd)
            done.complete(0)
        }
    }

    /// Waits for EOF, or for `grace` and then stops reading.
    func finish(grace: Duration) async {
        let (s, a) = grace.components
        stopAfter.store(monotonicNanos() + s * 1_000_000_000 + a / 1_000_000_000, ordering: .relaxed)
        _ = await done.wait()
    }
}

public func monotonicNanos() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}

extension String {
    /// For a single-quoted sh word: ' becomes '\''.
    func replacingQuote() -> String {
        var out = ""
        for c in self { if c == "'" { out += "'\\''" } else { out.append(c) } }
        return out
    }
}

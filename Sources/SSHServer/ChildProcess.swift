import CLibSSH
import Glibc

/// The account sessions run as: the server's own user (the agent runs as the
/// workspace user; it never switches users, so it needs no privileges).
struct LoginUser: Sendable {
    let name: String
    let home: String
    let shell: String

    static func current(defaultShell: String) -> LoginUser {
        let uid = getuid()
        var name = "user"
        var home = "/"
        var shell = defaultShell
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        if getpwuid_r(uid, &entry, &buffer, buffer.count, &result) == 0, result != nil {
            name = String(cString: entry.pw_name)
            home = String(cString: entry.pw_dir)
            let s = String(cString: entry.pw_shell)
            if !s.isEmpty { shell = s }
        }
        if let h = getenv("HOME"), uid == geteuid(), home == "/" { home = String(cString: h) }
        return LoginUser(name: name, home: home, shell: shell)
    }
}

/// A child started for a session: its pid, a pidfd that becomes readable
/// when it exits (so exits are events in the connection's poll loop, with no
/// SIGCHLD handler shared across threads; -1 where the kernel has none), and
/// our ends of its stdio.
struct ChildProcess {
    let pid: pid_t
    let pidfd: Int32
    /// Our end of the child's stdin (the pty master with a pty).
    var stdin: Int32
    /// Our end of the child's stdout (the pty master with a pty).
    var stdout: Int32
    /// Our end of the child's stderr; -1 with a pty (merged into it).
    var stderr: Int32

    enum SpawnError: Error { case system(String, Int32) }

    /// `F_SETPIPE_SZ` (fcntl(2), Linux ≥ 2.6.35), declared by glibc only
    /// under `_GNU_SOURCE`.
    static let setPipeSize: Int32 = 1031
    static let pipeSize: Int32 = 256 << 10

    /// Starts `argv` with `environment` in `directory`.
    ///
    /// `posix_spawn`, not `fork`: after `fork` in a multi-threaded process
    /// only async-signal-safe calls are allowed, which rules out Swift code.
    /// The child always starts a session of its own (`setsid`), as sshd's
    /// session children do: job-control signals aimed at the server's
    /// process group never reach it, and on a kernel with autogroup
    /// scheduling it gets its own CPU share rather than one cut from the
    /// server's (without this, `ssh host true` on a busy machine took 2.6 s
    /// against sshd's 0.7 s). With `ptySlave`, opening the slave without
    /// `O_NOCTTY` then makes it the controlling terminal (glibc runs
    /// `setsid` before the file actions).
    static func spawn(
        path: String, argv: [String], environment: [String], directory: String, ptySlave: String?
    ) throws(SpawnError) -> ChildProcess {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }

        // Default dispositions and an empty mask: the server ignores SIGPIPE,
        // and a shell must not inherit that.
        var all = sigset_t()
        sigfillset(&all)
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setsigmask(&attributes, &none)
        let flags = Int32(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK) | Int32(TETHER_POSIX_SPAWN_SETSID)

        var ours: [Int32] = []
        var theirs: [Int32] = []
        func closeAll(_ fds: [Int32]) { for fd in fds { close(fd) } }
        let stdinFD: Int32
        let stdoutFD: Int32
        let stderrFD: Int32
        if let slave = ptySlave {
            posix_spawn_file_actions_addopen(&actions, 0, slave, O_RDWR, 0)
            posix_spawn_file_actions_adddup2(&actions, 0, 1)
            posix_spawn_file_actions_adddup2(&actions, 0, 2)
            stdinFD = -1
            stdoutFD = -1
            stderrFD = -1
        } else {
            // Three pipes so that stdin EOF, stdout and stderr are separate.
            var pipes: [(Int32, Int32)] = []
            for _ in 0..<3 {
                var p: [Int32] = [-1, -1]
                guard pipe2(&p, O_CLOEXEC) == 0 else {
                    let e = errno
                    closeAll(ours + theirs)
                    throw .system("pipe2", e)
                }
                pipes.append((p[0], p[1]))
            }
            // stdin: child reads [0].0, we write [0].1; stdout/stderr reverse.
            stdinFD = pipes[0].1
            stdoutFD = pipes[1].0
            stderrFD = pipes[2].0
            // stdin and stdout hold 256 KiB instead of 64 KiB (one read
            // of the connection's scratch buffer): bulk transfers move in
            // larger reads and writes with fewer wake-ups on both sides.
            // Not more, and not stderr: pipe pages count against the user's
            // pipe-user-pages-soft (64 MiB by default), past which Linux
            // gives all of that user's new pipes a minimal buffer. Refusal
            // is harmless.
            for fd in [stdinFD, stdoutFD] { _ = fcntl(fd, ChildProcess.setPipeSize, ChildProcess.pipeSize) }
            ours = [stdinFD, stdoutFD, stderrFD]
            theirs = [pipes[0].0, pipes[1].1, pipes[2].1]
            posix_spawn_file_actions_adddup2(&actions, pipes[0].0, 0)
            posix_spawn_file_actions_adddup2(&actions, pipes[1].1, 1)
            posix_spawn_file_actions_adddup2(&actions, pipes[2].1, 2)
        }
        // Whatever else the process has open (other connections' sockets,
        // the agent's files) must not leak into a user's shell.
        posix_spawn_file_actions_addclosefrom_np(&actions, 3)
        posix_spawn_file_actions_addchdir_np(&actions, directory)
        posix_spawnattr_setflags(&attributes, Int16(flags))

        var pid: pid_t = 0
        let cArgv = argv.map { strdup($0) } + [nil]
        let cEnv = environment.map { strdup($0) } + [nil]
        defer {
            for p in cArgv { free(p) }
            for p in cEnv { free(p) }
        }
        let rc = posix_spawn(&pid, path, &actions, &attributes, cArgv, cEnv)
        closeAll(theirs)
        guard rc == 0 else {
            closeAll(ours)
            throw .system("posix_spawn \(path)", rc)
        }
        let pidfd = pidfd_open(pid, 0)
        // Without pidfds (Linux < 5.3, or valgrind, which does not know the
        // call) the session checks for the exit on each loop turn instead.
        guard pidfd >= 0 || errno == ENOSYS else {
            let e = errno
            closeAll(ours)
            kill(pid, SIGKILL)
            Reaper.reap(pid)
            throw .system("pidfd_open", e)
        }
        if pidfd >= 0 { _ = fcntl(pidfd, F_SETFD, FD_CLOEXEC) }
        for fd in ours { setNonBlocking(fd) }
        return ChildProcess(pid: pid, pidfd: pidfd, stdin: stdinFD, stdout: stdoutFD, stderr: stderrFD)
    }

    /// Collects the exit of a child whose pidfd became readable.
    /// Returns the raw wait status, or nil if it has not exited yet.
    func collectExit() -> Int32? {
        var status: Int32 = 0
        let rc = waitpid(pid, &status, WNOHANG)
        return rc == pid ? status : nil
    }
}

/// Reaps children a finished connection no longer waits for, so none is
/// left a zombie. Rare (a channel closed while its process still ran), so a
/// short-lived thread per child is fine.
enum Reaper {
    static func reap(_ pid: pid_t) {
        let thread = PThread {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        }
        thread.start()
    }
}

func setNonBlocking(_ fd: Int32) {
    let flags = fcntl(fd, F_GETFL)
    _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
}

/// The name of a signal as SSH spells it (RFC 4254 §6.10: without "SIG").
enum SignalName {
    static let table: [(String, Int32)] = [
        ("ABRT", SIGABRT), ("ALRM", SIGALRM), ("FPE", SIGFPE), ("HUP", SIGHUP), ("ILL", SIGILL),
        ("INT", SIGINT), ("KILL", SIGKILL), ("PIPE", SIGPIPE), ("QUIT", SIGQUIT), ("SEGV", SIGSEGV),
        ("TERM", SIGTERM), ("USR1", SIGUSR1), ("USR2", SIGUSR2),
    ]

    static func number(_ name: String) -> Int32? {
        let bare = name.hasPrefix("SIG") ? String(name.dropFirst(3)) : name
        return table.first { $0.0 == bare }?.1
    }

    /// Signals outside RFC 4254's list get libc's description in capitals;
    /// OpenSSH's client only prints the name.
    static func name(_ number: Int32) -> String {
        if let known = table.first(where: { $0.1 == number }) { return known.0 }
        if let s = strsignal(number) { return String(cString: s).uppercased().replacingSpaces() }
        return "SIG\(number)"
    }
}

extension String {
    fileprivate func replacingSpaces() -> String { String(map { $0 == " " ? "_" : $0 }) }
}

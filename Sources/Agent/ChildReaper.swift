#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The agent's one `waitpid` loop: a thread that hands each registered
/// child's exit status to its waiter. When the agent is PID 1 of a
/// container, orphaned grandchildren are re-parented to it, so there it
/// reaps every child (the job tini or dumb-init would otherwise do);
/// elsewhere it peeks with `waitid(WNOWAIT)` and reaps only its own, leaving
/// other children of the process (say, a test harness's) to their owners.
///
/// Spawning happens under the same lock the reaper takes before looking a
/// pid up, so a child that exits at once is still matched to its waiter.
final class ChildReaper: @unchecked Sendable {
    static let shared = ChildReaper()

    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let cond: UnsafeMutablePointer<pthread_cond_t>
    private var waiters: [pid_t: @Sendable (Int32) -> Void] = [:]
    private var wakeRequested = false
    /// Zombies reaped that no one waited for (orphans adopted as PID 1).
    private(set) var orphansReaped = 0

    private init() {
        mutex = .allocate(capacity: 1)
        cond = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(cond, nil)
        startThread(name: "reaper") { [self] in loop() }
    }

    /// Runs `spawn` (which returns a pid or nil) under the lock and
    /// registers `onExit` for the pid it returns.
    func spawnRegistered(_ spawn: () -> pid_t?, onExit: @escaping @Sendable (Int32) -> Void) -> pid_t? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        guard let pid = spawn() else { return nil }
        waiters[pid] = onExit
        wakeRequested = true
        pthread_cond_signal(cond)
        return pid
    }

    private func loop() {
        let reapAll = getpid() == 1
        while true {
            var status: Int32 = 0
            var pid: pid_t = -1
            if reapAll {
                pid = waitpid(-1, &status, 0)
            } else {
                var info = siginfo_t()
                if waitid(P_ALL, 0, &info, WEXITED | WNOWAIT) == 0 {
                    let exited = info._sifields._sigchld.si_pid
                    pthread_mutex_lock(mutex)
                    let ours = waiters[exited] != nil
                    pthread_mutex_unlock(mutex)
                    if ours {
                        pid = waitpid(exited, &status, 0)
                    } else {
                        usleep(10_000)  // someone else's child: its owner reaps it
                        continue
                    }
                }
            }
            if pid > 0 {
                pthread_mutex_lock(mutex)
                let waiter = waiters.removeValue(forKey: pid)
                if waiter == nil { orphansReaped += 1 }
                pthread_mutex_unlock(mutex)
                waiter?(status)
            } else if errno == EINTR {
                continue
            } else {
                // ECHILD: no children now. Sleep until a spawn, or a second
                // (as PID 1, orphans can be adopted at any time).
                pthread_mutex_lock(mutex)
                if !wakeRequested {
                    var deadline = timespec()
                    clock_gettime(CLOCK_REALTIME, &deadline)
                    deadline.tv_sec += 1
                    pthread_cond_timedwait(cond, mutex, &deadline)
                }
                wakeRequested = false
                pthread_mutex_unlock(mutex)
            }
        }
    }
}

/// Starts a detached POSIX thread running `body`: for work that blocks in
/// a system call (pipe reads, `waitpid`), which must not hold one of Swift
/// concurrency's few cooperative threads.
public func startThread(name: String, _ body: @escaping @Sendable () -> Void) {
    final class Box {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    let box = Unmanaged.passRetained(Box(body)).toOpaque()
    var attr = pthread_attr_t()
    pthread_attr_init(&attr)
    pthread_attr_setdetachstate(&attr, Int32(PTHREAD_CREATE_DETACHED))
    pthread_attr_setstacksize(&attr, 256 << 10)
    var thread = pthread_t()
    let rc = pthread_create(&thread, &attr, { raw in
        let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
        box.body()
        return nil
    }, box)
    pthread_attr_destroy(&attr)
    precondition(rc == 0, "pthread_create failed: \(rc)")
    _ = name
}

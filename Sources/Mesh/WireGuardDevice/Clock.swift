import CMeshLinux
import WireGuardCore

#if canImport(Glibc)
    import Glibc
#endif

/// The real clocks the device feeds the core.
enum DeviceClock {
    static func now() -> Instant { Instant(nanoseconds: tether_monotonic_ns()) }
    /// Unix time minus monotonic time: the core's `wallClockOffset`.
    static func wallClockOffset() -> Int64 { tether_realtime_ns() - tether_monotonic_ns() }
}

func usleepMilliseconds(_ ms: Int) { usleep(useconds_t(ms * 1000)) }

private final class ThreadBody {
    let body: @Sendable () -> Void
    init(_ body: @escaping @Sendable () -> Void) { self.body = body }
}

/// Starts a detached POSIX thread (the device's loops block in system calls,
/// so they get threads of their own rather than a cooperative pool's).
func startThread(_ body: @escaping @Sendable () -> Void) {
    let context = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
    var thread = pthread_t()
    let rc = pthread_create(
        &thread, nil,
        { context in
            Unmanaged<ThreadBody>.fromOpaque(context!).takeRetainedValue().body()
            return nil
        }, context)
    precondition(rc == 0, "pthread_create failed: \(rc)")
    pthread_detach(thread)
}

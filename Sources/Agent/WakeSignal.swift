import Synchronization

/// A level-triggered wake-up for one waiting task: `notify` sets it, `wait`
/// returns at once if set (clearing it) or suspends until the next notify
/// or cancellation. Cheaper than an AsyncStream and safe to wait on from
/// one connection after another.
final class WakeSignal: Sendable {
    private let state = Mutex<(set: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))

    func notify() {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if let w = s.waiter {
                s.waiter = nil
                return w
            }
            s.set = true
            return nil
        }
        waiter?.resume()
    }

    func wait() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { s -> Bool in
                    if s.set || Task.isCancelled {
                        s.set = false
                        return true
                    }
                    s.waiter?.resume()
                    s.waiter = c
                    return false
                }
                if resumeNow { c.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
                defer { s.waiter = nil }
                return s.waiter
            }
            waiter?.resume()
        }
    }
}

/// Runs blocking work on its own thread and awaits the result.
func onThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { c in
        startThread(name: "blocking") { c.resume(returning: body()) }
    }
}

/// A `Mutex` in a class, for state captured by escaping closures (a
/// noncopyable `Mutex` cannot be captured by value).
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<R: Sendable>(_ body: (inout sending Value) throws -> sending R) rethrows -> R { try mutex.withLock(body) }
    var value: Value { mutex.withLock { $0 } }
}

import Synchronization

/// The node keys coordination has introduced: each connected client's and
/// each agent's current one. The embedded DERP relay admits only these
/// (Tailscale's DERP `verifyClients` asks its control plane the same), so
/// the relay carries the tailnet's traffic and nobody else's.
final class NodeKeyRegistry: Sendable {
    private let keys = Mutex<[String: Int]>([:])

    /// Counts, so a key reported twice stays known until both reports are withdrawn.
    func insert(_ key: String) {
        keys.withLock { $0[key, default: 0] += 1 }
    }

    func remove(_ key: String) {
        keys.withLock { k in
            guard let n = k[key] else { return }
            k[key] = n > 1 ? n - 1 : nil
        }
    }

    func contains(_ key: String) -> Bool { keys.withLock { $0[key] != nil } }

    /// Whether `key` is, or within `timeout` becomes, known: a node dials
    /// DERP while the `node` message that introduces it is still on its
    /// way to the coordinator.
    func admits(_ key: String, within timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while !contains(key) {
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return true
    }
}

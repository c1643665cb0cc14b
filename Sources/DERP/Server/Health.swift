import NIOCore
import Synchronization

/// Health and Restarting: what the server tells every client about itself.
///
/// Health (frame 0x14) carries free text naming a problem, empty when all
/// is well again. It has two sources: the operator or embedder
/// (`setHealthProblem`) and the mesh (a neighbour unreachable for longer
/// than `meshHealthGrace`); clients see them joined. Every change goes to
/// every client, and a client that logs in while a problem stands hears it
/// right after ServerInfo.
///
/// Restarting (frame 0x15) goes out on a graceful shutdown: reconnect in
/// X ms, and keep trying for Y ms, so clients come back to the restarted
/// server quickly instead of backing off.
struct HealthState: ~Copyable {
    var problem: String?
    /// Problems of mesh neighbours, by neighbour URL.
    var mesh: [String: String] = [:]

    var text: String? {
        let all = (problem.map { [$0] } ?? []) + mesh.keys.sorted().map { mesh[$0]! }
        return all.isEmpty ? nil : all.joined(separator: "; ")
    }
}

extension DERPServer {
    /// The problem clients are told about now; nil when healthy.
    public var healthProblem: String? { health.withLock { $0.text } }

    /// Sets (or, with nil, clears) the operator's problem text; every
    /// client hears the change in a Health frame.
    public func setHealthProblem(_ problem: String?) {
        updateHealth { $0.problem = (problem?.isEmpty ?? true) ? nil : problem }
    }

    func setMeshProblem(_ problem: String?, for peer: DERPURL) {
        updateHealth { $0.mesh[peer.description] = problem }
    }

    private func updateHealth(_ change: (inout HealthState) -> Void) {
        let (changed, text) = health.withLock { h -> (Bool, String?) in
            let before = h.text
            change(&h)
            return (h.text != before, h.text)
        }
        guard changed else { return }
        // Snapshot after the change: a client registering meanwhile reads
        // the new text itself (`register`), so none misses it.
        let clients = registry.withLock { Array($0.clients.values) }
        if let text {
            configuration.logger.warning("DERP server health problem", metadata: ["problem": "\(text)"])
        } else {
            configuration.logger.info("DERP server healthy again")
        }
        let frame = Frame.health(text ?? "").encoded()
        for client in clients { client.enqueue(frame: frame) }
    }

    /// Closes every client connection after telling it, in a Restarting
    /// frame, when to come back (graceful shutdown).
    public func closeAllRestarting(reason: String) {
        guard let restarting = configuration.restarting else { return closeAll(reason: reason) }
        let frame = Frame.restarting(
            reconnectInMilliseconds: UInt32(clamping: restarting.reconnectIn.nanoseconds / 1_000_000),
            tryForMilliseconds: UInt32(clamping: restarting.tryFor.nanoseconds / 1_000_000))
        let all = registry.withLock { Array($0.clients.values) }
        for client in all { client.requestClose(after: frame, reason: reason) }
    }
}

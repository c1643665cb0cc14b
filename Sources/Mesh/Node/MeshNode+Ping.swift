import CryptoPrimitives
import Synchronization
import WireGuardCore

/// `ping`: a disco Ping over whichever path data would take now, timed to
/// its Pong, reporting that path (what `tether ping` prints).
public struct MeshPingResult: Sendable, Equatable {
    /// `.direct(endpoint)` when the ping went over UDP, else `.derp`.
    public var path: PeerPath.Kind
    public var latency: Duration
}

public struct MeshPingError: Error, CustomStringConvertible {
    public var description: String
}

final class APIPing: @unchecked Sendable {
    let sent: Instant
    let path: PeerPath.Kind
    private let continuation = Mutex<CheckedContinuation<MeshPingResult, any Error>?>(nil)

    init(sent: Instant, path: PeerPath.Kind) {
        self.sent = sent
        self.path = path
    }

    func install(_ c: CheckedContinuation<MeshPingResult, any Error>) { continuation.withLock { $0 = c } }

    func complete(now: Instant) {
        continuation.withLock { $0.take() }?.resume(returning: MeshPingResult(path: path, latency: now - sent))
    }

    func fail(_ message: String) {
        continuation.withLock { $0.take() }?.resume(throwing: MeshPingError(description: message))
    }
}

extension MeshNode {
    /// Pings the peer that owns tailnet address `address`.
    public func ping(_ address: WireGuardCore.IPAddress, timeout: Duration = .seconds(5)) async throws
        -> MeshPingResult
    {
        let id = device.withInterface { $0.route(to: address) }
        let key = state.withLock { s in s.peers.entries.values.first { $0.id == id }?.peer.nodeKey }
        guard let key else { throw MeshPingError(description: "no peer has \(address)") }
        return try await ping(nodeKey: key, timeout: timeout)
    }

    public func ping(nodeKey: X25519.PublicKey, timeout: Duration = .seconds(5)) async throws -> MeshPingResult {
        let now = DeviceClock.now()
        let txID = Disco.TxID.random()
        let found = state.withLock { s -> (PeerPath.Kind, MeshPeer, NaClBox.SharedKey, APIPing)? in
            guard let handle = s.peers.handle(nodeKey: nodeKey), let entry = s.peers[handle] else { return nil }
            var kind = entry.path.kind(now: now)
            if case .derpAndDirect = kind { kind = .derp }
            let ping = APIPing(sent: now, path: kind)
            s.apiPings[txID] = ping
            s.peers[handle]!.path.noteActivity(now: now)
            return (kind, entry.peer, entry.discoShared, ping)
        }
        guard let (kind, peer, key, ping) = found else { throw MeshPingError(description: "unknown peer") }
        let timer = Task {
            try await Task.sleep(for: timeout)
            _ = state.withLock { $0.apiPings.removeValue(forKey: txID) }
            ping.fail("no pong within \(timeout)")
        }
        defer { timer.cancel() }
        return try await withCheckedThrowingContinuation { continuation in
            ping.install(continuation)
            let message = Disco.Message.ping(Disco.Ping(txID: txID, nodeKey: self.nodeKey))
            switch kind {
            case .direct(let endpoint): sendDisco(message, key: key, to: endpoint)
            default: sendDiscoOverDERP(message, key: key, peer: peer)
            }
        }
    }
}

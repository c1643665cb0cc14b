import Logging
import NIOCore

extension DERPServer {
    /// Decides whether a key may use this server: the control plane refuses
    /// keys it did not introduce. Runs once per login, after the client
    /// proved it holds the key.
    public typealias Admission = @Sendable (NodeKey, ClientInfo) async -> Bool

    public struct Configuration: Sendable {
        /// Servers of one region share this key; a client presenting it may
        /// watch connections, forward packets and close peers.
        public var meshKey: String?
        /// Other servers of the region (e.g. `http://10.0.0.2:3340/derp`),
        /// watched and forwarded to. Only used with a mesh key.
        public var meshPeers: [DERPURL] = []
        public var admission: Admission?
        /// Per-client token bucket on the bytes a client sends. Nil: none.
        public var rateLimit: (bytesPerSecond: Int, burst: Int)?
        /// Packets queued per client before the oldest is dropped
        /// (Tailscale's `perClientSendQueueDepth`).
        public var queueDepth = 32
        public var discoQueueDepth = 32
        /// How often the server sends KeepAlive (Tailscale's `KeepAlive`).
        public var keepAliveInterval: TimeAmount = .seconds(60)
        /// A connection that has not finished the login by then is closed.
        public var handshakeTimeout: TimeAmount = .seconds(10)
        /// What a graceful shutdown (`DERPHTTPServer.close()`) tells every
        /// client in a Restarting frame: come back after `reconnectIn`, and
        /// keep trying for `tryFor`. Nil: close without the frame.
        public var restarting: (reconnectIn: TimeAmount, tryFor: TimeAmount)? = (.seconds(1), .seconds(30))
        /// How long a mesh neighbour may stay unreachable before clients
        /// hear about it in a Health frame (a restart of the neighbour
        /// should not alarm anyone).
        public var meshHealthGrace: TimeAmount = .seconds(5)
        /// Whether `GET /metrics` serves the counters in Prometheus text.
        public var servesMetrics = true
        public var logger = Logger(label: "tether.derp.server")

        public init(meshKey: String? = nil, meshPeers: [DERPURL] = [], admission: Admission? = nil) {
            self.meshKey = meshKey
            self.meshPeers = meshPeers
            self.admission = admission
        }
    }
}

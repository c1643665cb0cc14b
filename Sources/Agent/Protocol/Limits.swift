/// Constants of the control protocol, in one place. The first group is the
/// specification (both ends must agree); the second is this implementation's
/// choice of bounds, which a peer may not exceed.
public enum ControlProtocolVersion {
    /// The version this build speaks. A peer sends it in `hello`; the control
    /// plane answers a different one with `error` code `unsupported_version`.
    public static let current = 1
    /// Versions this build accepts from a peer.
    public static let supported: ClosedRange<Int> = 1...1
    /// HTTP path of the agent's WebSocket.
    public static let agentPath = "/api/v1/agent/ws"
}

/// Bounds that keep every queue and message finite. A message over
/// `maxMessageBytes` closes the connection (WebSocket code 1009).
public enum ControlLimits {
    /// Largest JSON message either side sends or accepts.
    public static let maxMessageBytes = 1 << 20
    /// Largest number of entries in one `logs` message.
    public static let maxLogEntriesPerBatch = 1_000
    /// Largest sum of `output` bytes in one `logs` message.
    public static let maxLogBytesPerBatch = 256 << 10
    /// A longer log line is cut here (its tail is dropped and counted).
    public static let maxLogLineBytes = 16 << 10
    /// Output one script run may log; past it the agent emits one marker
    /// line and discards (but keeps draining) the rest.
    public static let maxLogBytesPerScriptRun = 1 << 20
    /// Unacknowledged log bytes the agent keeps in memory while the control
    /// plane is unreachable; past it new lines are dropped behind a marker.
    public static let maxPendingLogBytes = 8 << 20
    /// A metadata value longer than this is cut (Coder uses the same order).
    public static let maxMetadataValueBytes = 4 << 10
    /// Entries in `metadata`, `app_health` and `listening_ports` messages.
    public static let maxItemsPerReport = 256
}

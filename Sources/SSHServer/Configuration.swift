import CryptoPrimitives

/// Everything an embedded SSH server needs to know; plain values, no I/O.
public struct SSHServerConfiguration: Sendable {
    /// How clients prove who they are.
    public enum Authentication: Sendable, Equatable {
        /// No user authentication: the transport already authenticated the
        /// peer (inside the WireGuard tunnel, DESIGN.md "Security model").
        case none
        /// Public-key authentication against an OpenSSH `authorized_keys`
        /// file, re-read at every attempt as sshd does.
        case authorizedKeys(path: String)
    }

    /// 32 bytes from which the ed25519 host key is derived, so the host key
    /// (and so `known_hosts`) stays the same across restarts.
    public var hostKeySeed: Bytes32
    public var authentication: Authentication
    /// Printed before an interactive shell starts unless `~/.hushlogin`
    /// exists (login(1) behaviour). `nil`: no message of the day.
    public var motdPath: String?
    /// The login shell when the user's passwd entry has none.
    public var defaultShell: String = "/bin/sh"
    /// Seconds without any packet from the client after which the server asks
    /// for a reply (`keepalive@openssh.com`), as sshd's `ClientAliveInterval`.
    /// 0 turns keepalives off.
    public var keepaliveInterval: Double = 15
    /// Unanswered keepalives after which the connection is dropped, as
    /// sshd's `ClientAliveCountMax`.
    public var keepaliveCountMax: Int = 3
    /// Seconds without channel data in either direction after which the
    /// connection is closed. 0: never.
    public var idleTimeout: Double = 0
    /// Longest life of one connection in seconds. 0: unlimited.
    public var maxSessionDuration: Double = 0
    /// Seconds a client has to finish key exchange and authentication.
    public var loginGraceTime: Double = 60
    /// Channels one connection may have open at once; a client that opens
    /// more is disconnected (it is either broken or hostile; OpenSSH itself
    /// never needs more than a few hundred).
    public var maxChannels: Int = 1024
    /// Where the server logs one line per event (connection, reason it ended).
    public var log: @Sendable (String) -> Void = { _ in }

    public init(hostKeySeed: Bytes32, authentication: Authentication, motdPath: String? = nil) {
        self.hostKeySeed = hostKeySeed
        self.authentication = authentication
        self.motdPath = motdPath
    }
}

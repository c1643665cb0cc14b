/// Why a socket operation failed. A struct with a public kind, so new
/// diagnostics can be added without breaking callers.
public struct NetstackError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable {
        /// The peer answered the SYN with RST: nothing listens there.
        case connectionRefused
        /// The peer reset an established connection.
        case connectionReset
        /// Retransmissions, SYNs or keepalives went unanswered.
        case timedOut
        /// ICMP said the host or port cannot be reached, or no route exists.
        case unreachable
        /// The socket was closed locally (or the write side shut down).
        case closed
        /// The local address and port are taken.
        case addressInUse
        /// An argument made no sense (port 0, family mismatch, …).
        case invalidArgument
    }

    public let kind: Kind
    private let detail: String

    package init(_ kind: Kind, _ detail: String = "") {
        self.kind = kind
        self.detail = detail
    }

    public static func == (a: NetstackError, b: NetstackError) -> Bool { a.kind == b.kind }
    public func hash(into h: inout Hasher) { h.combine(kind) }

    public var description: String { detail.isEmpty ? "\(kind)" : "\(kind): \(detail)" }
}

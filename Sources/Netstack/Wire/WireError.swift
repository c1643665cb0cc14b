/// Why a packet was dropped by the wire layer. Parsing never traps: every
/// malformed input surfaces as one of these, and the stack counts it.
public enum WireError: Error, Hashable, Sendable {
    /// The buffer is shorter than the header or a length field claims.
    case truncated
    /// A field holds a value the protocol forbids (version, header length, flag combination, port 0).
    case malformed
    /// The checksum does not match.
    case badChecksum
    /// Valid, but outside what this stack implements (IP fragments, ESP, unknown ICMP types).
    case unsupported
}

/// An error from the DERP codec, server or client.
///
/// Like `CryptoError`: a public `kind` to switch on and a private diagnostic
/// for logs (the "logged reason" a closed connection carries).
public struct DERPError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable {
        /// A frame's length field exceeds the limit for its type.
        case frameTooLarge
        /// A frame's payload does not have the layout its type requires.
        case malformedFrame
        /// The byte stream ended in the middle of a frame.
        case truncatedFrame
        /// A frame arrived that is not allowed in the current state.
        case unexpectedFrame
        /// The login failed: the box did not open, the JSON did not parse, or
        /// the peer is not who it claims.
        case loginFailed
        /// The server's admission hook refused the client's key.
        case notAdmitted
        /// The peer did not finish the login in time, or went silent.
        case timeout
        /// A mesh-only frame from a client without the mesh key.
        case notPermitted
        /// The HTTP upgrade (or WebSocket handshake) was refused.
        case upgradeRefused
        /// The connection is closed.
        case connectionClosed
        /// A caller's argument was out of range (e.g. a packet too large).
        case invalidArgument
    }

    public let kind: Kind
    private let diagnostic: String

    init(_ kind: Kind, _ diagnostic: String) {
        self.kind = kind
        self.diagnostic = diagnostic
    }

    public var description: String { diagnostic }

    @inline(never)
    static func frameTooLarge(_ type: UInt8, length: Int, limit: Int) -> DERPError {
        DERPError(.frameTooLarge, "frame type 0x\(hex(type)) of \(length) bytes exceeds the limit of \(limit)")
    }

    @inline(never)
    static func malformed(_ type: UInt8, _ why: String) -> DERPError {
        DERPError(.malformedFrame, "malformed frame type 0x\(hex(type)): \(why)")
    }

    static func hex(_ byte: UInt8) -> String {
        let s = String(byte, radix: 16)
        return s.count == 1 ? "0" + s : s
    }
}

/// An error from a cryptographic primitive.
///
/// Modelled on swift-nio-ssh's `NIOSSHError`: a public `kind` that callers
/// switch on, and a private diagnostic for logs, so new cases do not break
/// callers. Errors never carry key or plaintext bytes.
public struct CryptoError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable {
        /// The tag did not verify: wrong key, nonce, additional data, or the
        /// ciphertext was altered or truncated.
        case authenticationFailure
        /// A buffer or input was of the wrong length.
        case invalidLength
        /// An X25519 result was all zeros: the peer's public key is of low
        /// order (RFC 7748 §6.1) and must be rejected.
        case weakPublicKey
        /// The underlying C library reported a failure it should not have.
        case libraryFailure
        /// Text that should hold a key was not valid base64 or hex.
        case invalidEncoding
    }

    public let kind: Kind
    private let diagnostic: String

    private init(_ kind: Kind, _ diagnostic: String) {
        self.kind = kind
        self.diagnostic = diagnostic
    }

    public var description: String { "CryptoError.\(kind): \(diagnostic)" }

    @usableFromInline @inline(never)
    static func authenticationFailure(_ what: String) -> CryptoError {
        CryptoError(.authenticationFailure, "\(what): authentication tag did not verify")
    }

    @usableFromInline @inline(never)
    static func invalidLength(_ what: String, expected: String, got: Int) -> CryptoError {
        CryptoError(.invalidLength, "\(what): expected \(expected) bytes, got \(got)")
    }

    @usableFromInline @inline(never)
    static func weakPublicKey(_ what: String) -> CryptoError {
        CryptoError(.weakPublicKey, "\(what): shared secret is all zeros (low-order public key)")
    }

    @usableFromInline @inline(never)
    static func libraryFailure(_ what: String) -> CryptoError {
        CryptoError(.libraryFailure, "\(what) failed")
    }

    @usableFromInline @inline(never)
    static func invalidEncoding(_ what: String) -> CryptoError {
        CryptoError(.invalidEncoding, what)
    }
}

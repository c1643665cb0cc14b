import CryptoPrimitives

/// Bearer tokens: `<kind>_<id>_<secret>`, where `kind` is `tthu` (user) or
/// `ttha` (agent), `id` is 12 hex digits naming the row, and `secret` is
/// 32 random bytes in hex. Only BLAKE2s-256(secret) is stored; a token is
/// checked by looking its row up by `id` and comparing hashes in constant
/// time, so neither a database leak nor response timing reveals a secret.
public enum TokenKind: String, Sendable {
    case user = "tthu"
    case agent = "ttha"
}

public struct IssuedToken: Sendable {
    public let id: String
    public let hash: [UInt8]
    /// The whole token, shown once to whoever asked for it.
    public let plaintext: String
}

public enum Tokens {
    public static func issue(_ kind: TokenKind) -> IssuedToken {
        let id = Hex.encode(SecureRandom.bytes(6))
        let secret = SecureRandom.bytes(32)
        return IssuedToken(id: id, hash: BLAKE2s.hash(secret).bytes, plaintext: "\(kind.rawValue)_\(id)_\(Hex.encode(secret))")
    }

    /// Splits a presented token; nil unless it has the exact shape.
    public static func parse(_ text: String, kind: TokenKind) -> (id: String, secretHash: [UInt8])? {
        let parts = text.split(separator: "_", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == kind.rawValue, parts[1].utf8.count == 12, parts[2].utf8.count == 64,
            Hex.decode(String(parts[1])) != nil, let secret = Hex.decode(String(parts[2]))
        else { return nil }
        return (String(parts[1]), BLAKE2s.hash(secret).bytes)
    }

    /// Constant-time comparison of a presented hash with the stored one; a
    /// missing row is compared against a dummy so both paths cost the same.
    public static func matches(presented: [UInt8], stored: [UInt8]?) -> Bool {
        let dummy = [UInt8](repeating: 0, count: 32)
        let equal = constantTimeEquals(presented, stored ?? dummy)
        return equal && stored != nil
    }

    /// A random identifier for rows (16 bytes, hex).
    public static func newID() -> String { Hex.encode(SecureRandom.bytes(16)) }
}

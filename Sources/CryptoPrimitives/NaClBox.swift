import CSodium

/// NaCl `crypto_box` (Curve25519 + XSalsa20-Poly1305), as Go's
/// `golang.org/x/crypto/nacl/box` and Tailscale's DERP and disco use it.
///
/// Wire layout of a sealed box, as `box.Seal` writes it:
///
///     +----------------+------------------------+
///     | tag (16 bytes) | ciphertext (len(msg))  |
///     +----------------+------------------------+
///
/// The key agreement is done once per peer (`SharedKey`, libsodium's
/// `crypto_box_beforenm`: HSalsa20 of the X25519 result), so each message
/// costs only the symmetric cipher.
public enum NaClBox {
    public static let tagCount = 16

    /// The precomputed key for one (our private, their public) pair.
    public struct SharedKey: Sendable {
        @usableFromInline var key: Bytes32

        /// Throws `weakPublicKey` for a low-order peer key.
        public init(privateKey: borrowing X25519.PrivateKey, peer: X25519.PublicKey) throws {
            ensureSodium()
            var out = Bytes32()
            let rc = privateKey.withUnsafeSecretBytes { sk in
                peer.withUnsafeBytes { pk in
                    out.withUnsafeMutableBytes {
                        crypto_box_beforenm(
                            $0.baseAddress!.assumingMemoryBound(to: UInt8.self),
                            pk.baseAddress!.assumingMemoryBound(to: UInt8.self),
                            sk.baseAddress!.assumingMemoryBound(to: UInt8.self))
                    }
                }
            }
            guard rc == 0 else { throw CryptoError.weakPublicKey("crypto_box_beforenm") }
            key = out
        }
    }

    /// Seals in place. `buffer` is 16 bytes of room for the tag followed by
    /// the plaintext; afterwards it holds tag ‖ ciphertext.
    @inlinable
    public static func seal(key: SharedKey, nonce: Nonce24, buffer: UnsafeMutableRawBufferPointer) throws {
        guard buffer.count >= tagCount else {
            throw CryptoError.invalidLength("NaCl box seal buffer", expected: "at least 16", got: buffer.count)
        }
        ensureSodium()
        let base = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self)
        key.key.withUnsafeBytes { k in
            nonce.withUnsafeBytes { n in
                _ = crypto_box_detached_afternm(
                    base + tagCount, base, base + tagCount, UInt64(buffer.count - tagCount),
                    n.baseAddress!.assumingMemoryBound(to: UInt8.self),
                    k.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
    }

    /// Opens tag ‖ ciphertext in place; the plaintext is then at
    /// `buffer[16...]`. Returns its length.
    @inlinable
    public static func open(key: SharedKey, nonce: Nonce24, buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard buffer.count >= tagCount else {
            throw CryptoError.invalidLength("NaCl box", expected: "at least 16", got: buffer.count)
        }
        ensureSodium()
        let base = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let rc = key.key.withUnsafeBytes { k in
            nonce.withUnsafeBytes { n in
                crypto_box_open_detached_afternm(
                    base + tagCount, base + tagCount, base, UInt64(buffer.count - tagCount),
                    n.baseAddress!.assumingMemoryBound(to: UInt8.self),
                    k.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
        guard rc == 0 else { throw CryptoError.authenticationFailure("NaCl box") }
        return buffer.count - tagCount
    }

    /// Convenience: returns tag ‖ ciphertext.
    public static func seal(key: SharedKey, nonce: Nonce24, message: some RawBytes) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: tagCount)
        message.withUnsafeBytes { out.append(contentsOf: $0) }
        out.withUnsafeMutableBytes { try! seal(key: key, nonce: nonce, buffer: $0) }
        return out
    }

    /// Convenience: opens tag ‖ ciphertext into a new array.
    public static func open(key: SharedKey, nonce: Nonce24, box: some RawBytes) throws -> [UInt8] {
        var out = box.withUnsafeBytes { Array($0) }
        let count = try out.withUnsafeMutableBytes { try open(key: key, nonce: nonce, buffer: $0) }
        return Array(out[tagCount..<(tagCount + count)])
    }
}

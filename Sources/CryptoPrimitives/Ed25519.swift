import CSodium

/// Ed25519 (RFC 8032) key pairs from a 32-byte seed, over libsodium's
/// `crypto_sign_seed_keypair`. The SSH server uses it to derive its host key
/// deterministically from the agent's identity, so `known_hosts` entries
/// survive restarts.
public enum Ed25519 {
    /// A key pair. `~Copyable` like `X25519.PrivateKey`: the 64-byte secret
    /// (seed ‖ public key, libsodium's and OpenSSH's layout) lives in one heap
    /// cell that is zeroed when the owner goes away.
    public struct KeyPair: ~Copyable, @unchecked Sendable {
        private let cell: UnsafeMutableRawPointer
        /// The 32-byte public key (RFC 8032 §5.1.5, the encoded point A).
        public let publicKey: Bytes32

        /// Derives the pair from `seed` (RFC 8032 §5.1.5: the private key is
        /// the seed; its SHA-512 gives the scalar and the nonce prefix).
        public init(seed: Bytes32) {
            ensureSodium()
            let cell = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 16)
            var pk = Bytes32()
            seed.withUnsafeBytes { s in
                pk.withUnsafeMutableBytes { p in
                    _ = crypto_sign_seed_keypair(
                        p.baseAddress!.assumingMemoryBound(to: UInt8.self),
                        cell.assumingMemoryBound(to: UInt8.self),
                        s.baseAddress!.assumingMemoryBound(to: UInt8.self))
                }
            }
            self.cell = cell
            self.publicKey = pk
        }

        deinit {
            sodium_memzero(cell, 64)
            cell.deallocate()
        }

        /// Lends the 64-byte secret key (seed ‖ public key), the form OpenSSH
        /// stores in its private key files.
        public func withUnsafeSecretBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
            try body(UnsafeRawBufferPointer(start: cell, count: 64))
        }

        /// A detached signature of `message` (64 bytes).
        public func sign(_ message: some RawBytes) -> [UInt8] {
            var signature = [UInt8](repeating: 0, count: 64)
            message.withUnsafeBytes { m in
                signature.withUnsafeMutableBytes { s in
                    _ = crypto_sign_detached(
                        s.baseAddress!.assumingMemoryBound(to: UInt8.self), nil,
                        m.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(m.count),
                        cell.assumingMemoryBound(to: UInt8.self))
                }
            }
            return signature
        }
    }

    /// Verifies a detached signature made by `publicKey`.
    public static func verify(signature: some RawBytes, message: some RawBytes, publicKey: Bytes32) -> Bool {
        ensureSodium()
        return signature.withUnsafeBytes { s in
            message.withUnsafeBytes { m in
                publicKey.withUnsafeBytes { p in
                    guard s.count == 64 else { return false }
                    return crypto_sign_verify_detached(
                        s.baseAddress!.assumingMemoryBound(to: UInt8.self),
                        m.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(m.count),
                        p.baseAddress!.assumingMemoryBound(to: UInt8.self)) == 0
                }
            }
        }
    }
}

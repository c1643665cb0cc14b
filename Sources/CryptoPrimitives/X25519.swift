import CSodium

/// X25519 Diffie-Hellman (RFC 7748 §5, §6.1) over libsodium's
/// `crypto_scalarmult_curve25519`.
public enum X25519 {
    /// A public key: the u-coordinate of a point on Curve25519.
    public struct PublicKey: Hashable, Sendable, RawBytes, CustomStringConvertible {
        public var raw: Bytes32

        public init(_ raw: Bytes32) { self.raw = raw }
        public init(_ bytes: some RawBytes) throws { raw = try Bytes32(bytes) }
        public init(base64: String) throws { raw = try Bytes32(base64: base64) }

        public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
            try raw.withUnsafeBytes(body)
        }

        public var base64: String { raw.base64 }
        public var description: String { raw.base64 }
    }

    /// A private key. `~Copyable` so it has one owner; its bytes live in a
    /// heap cell that is zeroed when the owner goes away (a plain value could
    /// leave copies behind each time it moved).
    public struct PrivateKey: ~Copyable, @unchecked Sendable {
        private let cell: UnsafeMutableRawPointer

        private init(cell: UnsafeMutableRawPointer) { self.cell = cell }

        private static func makeCell() -> UnsafeMutableRawPointer {
            UnsafeMutableRawPointer.allocate(byteCount: 32, alignment: 16)
        }

        /// A fresh random key, clamped as RFC 7748 §5 decodes scalars (and as
        /// `wg genkey` stores them).
        public init() {
            ensureSodium()
            let cell = Self.makeCell()
            randombytes_buf(cell, 32)
            Self.clamp(cell)
            self.init(cell: cell)
        }

        /// Takes 32 bytes of key material (stored as given; X25519 clamps when
        /// it uses the scalar, so clamping first changes nothing).
        public init(_ bytes: some RawBytes) throws {
            ensureSodium()
            let cell = Self.makeCell()
            let ok = bytes.withUnsafeBytes { source -> Bool in
                guard source.count == 32 else { return false }
                cell.copyMemory(from: source.baseAddress!, byteCount: 32)
                return true
            }
            guard ok else {
                cell.deallocate()
                throw CryptoError.invalidLength(
                    "X25519 private key", expected: "32", got: bytes.withUnsafeBytes { $0.count })
            }
            self.init(cell: cell)
        }

        public init(base64: String) throws {
            var raw = try Bytes32(base64: base64)
            defer { raw.withUnsafeMutableBytes { sodium_memzero($0.baseAddress, 32) } }
            try self.init(raw)
        }

        deinit {
            sodium_memzero(cell, 32)
            cell.deallocate()
        }

        /// A second, independently owned copy (explicit, so copies are visible).
        public func duplicate() -> PrivateKey {
            let other = Self.makeCell()
            other.copyMemory(from: cell, byteCount: 32)
            return PrivateKey(cell: other)
        }

        private static func clamp(_ cell: UnsafeMutableRawPointer) {
            let bytes = cell.assumingMemoryBound(to: UInt8.self)
            bytes[0] &= 248
            bytes[31] = (bytes[31] & 127) | 64
        }

        public var publicKey: PublicKey {
            var out = Bytes32()
            out.withUnsafeMutableBytes { _ = crypto_scalarmult_curve25519_base($0.baseAddress!, cell) }
            return PublicKey(out)
        }

        /// X25519(self, peer). Throws `weakPublicKey` when the result is all
        /// zeros (RFC 7748 §6.1: a low-order point), which libsodium detects.
        public func sharedSecret(with peer: PublicKey) throws -> Bytes32 {
            var out = Bytes32()
            let rc = peer.withUnsafeBytes { pk in
                out.withUnsafeMutableBytes { crypto_scalarmult_curve25519($0.baseAddress!, cell, pk.baseAddress!) }
            }
            guard rc == 0 else { throw CryptoError.weakPublicKey("X25519") }
            return out
        }

        /// Lends the secret bytes, for encoders (`wg`-style base64, UAPI hex)
        /// and for the NaCl box precomputation in this module.
        public func withUnsafeSecretBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
            try body(UnsafeRawBufferPointer(start: cell, count: 32))
        }

        /// The key as `wg genkey` prints it.
        public var base64: String {
            withUnsafeSecretBytes { (try? Bytes32($0))?.base64 ?? "" }
        }
    }
}

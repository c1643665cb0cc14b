import CSodium

/// A 96-bit ChaCha20-Poly1305 nonce (RFC 8439 §2.8). WireGuard's transport
/// nonce is 32 zero bits followed by the 64-bit little-endian counter
/// (whitepaper §5.4.6), which `init(counter:)` builds.
public struct Nonce12: Hashable, Sendable, RawBytes {
    @usableFromInline var storage: SIMD16<UInt8>

    public init(_ bytes: some RawBytes) throws {
        var value = SIMD16<UInt8>.zero
        let ok = bytes.withUnsafeBytes { source in
            guard source.count == 12 else { return false }
            Swift.withUnsafeMutableBytes(of: &value) { $0.copyMemory(from: source) }
            return true
        }
        guard ok else {
            throw CryptoError.invalidLength("nonce", expected: "12", got: bytes.withUnsafeBytes { $0.count })
        }
        storage = value
    }

    @inlinable
    public init(counter: UInt64) {
        var value = SIMD16<UInt8>.zero
        Swift.withUnsafeMutableBytes(of: &value) {
            $0.storeBytes(of: counter.littleEndian, toByteOffset: 4, as: UInt64.self)
        }
        storage = value
    }

    @inlinable
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeBytes(of: storage) { try body(UnsafeRawBufferPointer(rebasing: $0[0..<12])) }
    }
}

/// A 192-bit nonce for XChaCha20-Poly1305 and NaCl box.
public struct Nonce24: Hashable, Sendable, RawBytes {
    @usableFromInline var storage: Words4

    public init(_ bytes: some RawBytes) throws {
        var value = Words4()
        let ok = bytes.withUnsafeBytes { source in
            guard source.count == 24 else { return false }
            Swift.withUnsafeMutableBytes(of: &value) { $0.copyMemory(from: source) }
            return true
        }
        guard ok else {
            throw CryptoError.invalidLength("nonce", expected: "24", got: bytes.withUnsafeBytes { $0.count })
        }
        storage = value
    }

    /// A fresh random nonce: 192 bits make random nonces safe to use freely.
    public static func random() -> Nonce24 {
        var value = Words4()
        Swift.withUnsafeMutableBytes(of: &value) {
            SecureRandom.fill(UnsafeMutableRawBufferPointer(rebasing: $0[0..<24]))
        }
        return try! Nonce24(Swift.withUnsafeBytes(of: value) { Array($0[0..<24]) })
    }

    @inlinable
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeBytes(of: storage) { try body(UnsafeRawBufferPointer(rebasing: $0[0..<24])) }
    }
}

extension UnsafeRawBufferPointer {
    /// The empty buffer, for "no additional data".
    public static var empty: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: nil, count: 0) }
}

/// ChaCha20-Poly1305 AEAD, IETF variant (RFC 8439 §2.8), over libsodium.
///
/// The buffer APIs work in place on caller memory and never allocate: seal
/// reads `plaintextCount` bytes at the start of `buffer` and leaves
/// ciphertext ‖ 16-byte tag there; open does the reverse.
public enum ChaCha20Poly1305 {
    public static let tagCount = 16

    /// Seals in place; `buffer` must hold at least `plaintextCount + 16`
    /// bytes. Returns the sealed length (`plaintextCount + 16`).
    @inlinable
    public static func seal(
        key: Bytes32, nonce: Nonce12, buffer: UnsafeMutableRawBufferPointer, plaintextCount: Int,
        additionalData: UnsafeRawBufferPointer = .empty
    ) throws -> Int {
        guard plaintextCount >= 0, buffer.count - tagCount >= plaintextCount else {
            throw CryptoError.invalidLength(
                "ChaCha20-Poly1305 seal buffer", expected: "plaintext + 16", got: buffer.count)
        }
        ensureSodium()
        let base = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self)
        key.withUnsafeBytes { k in
            nonce.withUnsafeBytes { n in
                _ = crypto_aead_chacha20poly1305_ietf_encrypt_detached(
                    base, base + plaintextCount, nil, base, UInt64(plaintextCount),
                    additionalData.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(additionalData.count),
                    nil, n.baseAddress!.assumingMemoryBound(to: UInt8.self),
                    k.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
        return plaintextCount + tagCount
    }

    /// Opens ciphertext ‖ tag in place; returns the plaintext length. On
    /// failure nothing is released and the buffer holds no plaintext.
    @inlinable
    public static func open(
        key: Bytes32, nonce: Nonce12, buffer: UnsafeMutableRawBufferPointer,
        additionalData: UnsafeRawBufferPointer = .empty
    ) throws -> Int {
        guard buffer.count >= tagCount else {
            throw CryptoError.invalidLength("ChaCha20-Poly1305 ciphertext", expected: "at least 16", got: buffer.count)
        }
        let count = buffer.count - tagCount
        ensureSodium()
        let base = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let rc = key.withUnsafeBytes { k in
            nonce.withUnsafeBytes { n in
                crypto_aead_chacha20poly1305_ietf_decrypt_detached(
                    base, nil, base, UInt64(count), base + count,
                    additionalData.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(additionalData.count),
                    n.baseAddress!.assumingMemoryBound(to: UInt8.self),
                    k.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
        guard rc == 0 else { throw CryptoError.authenticationFailure("ChaCha20-Poly1305") }
        return count
    }

    /// Convenience: returns ciphertext ‖ tag (allocates; not for the data path).
    public static func seal(
        key: Bytes32, nonce: Nonce12, plaintext: some RawBytes, additionalData: some RawBytes = [UInt8]()
    ) -> [UInt8] {
        var out = plaintext.withUnsafeBytes { Array($0) }
        out.append(contentsOf: repeatElement(0, count: tagCount))
        let count = out.count - tagCount
        additionalData.withUnsafeBytes { ad in
            out.withUnsafeMutableBytes {
                _ = try! seal(key: key, nonce: nonce, buffer: $0, plaintextCount: count, additionalData: ad)
            }
        }
        return out
    }

    /// Convenience: opens ciphertext ‖ tag into a new array.
    public static func open(
        key: Bytes32, nonce: Nonce12, ciphertext: some RawBytes, additionalData: some RawBytes = [UInt8]()
    ) throws -> [UInt8] {
        var out = ciphertext.withUnsafeBytes { Array($0) }
        let count = try additionalData.withUnsafeBytes { ad in
            try out.withUnsafeMutableBytes { try open(key: key, nonce: nonce, buffer: $0, additionalData: ad) }
        }
        out.removeLast(out.count - count)
        return out
    }
}

/// XChaCha20-Poly1305 AEAD (draft-irtf-cfrg-xchacha §2): ChaCha20-Poly1305
/// under an HChaCha20-derived subkey, with a 192-bit nonce. WireGuard seals
/// cookies with it (whitepaper §5.4.7). Same in-place contract as
/// `ChaCha20Poly1305`.
public enum XChaCha20Poly1305 {
    public static let tagCount = 16

    @inlinable
    public static func seal(
        key: Bytes32, nonce: Nonce24, buffer: UnsafeMutableRawBufferPointer, plaintextCount: Int,
        additionalData: UnsafeRawBufferPointer = .empty
    ) throws -> Int {
        guard plaintextCount >= 0, buffer.count - tagCount >= plaintextCount else {
            throw CryptoError.invalidLength(
                "XChaCha20-Poly1305 seal buffer", expected: "plaintext + 16", got: buffer.count)
        }
        ensureSodium()
        let base = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self)
        key.withUnsafeBytes { k in
            nonce.withUnsafeBytes { n in
                _ = crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
                    base, base + plaintextCount, nil, base, UInt64(plaintextCount),
                    additionalData.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(additionalData.count),
                    nil, n.baseAddress!.assumingMemoryBound(to: UInt8.self),
                    k.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
        return plaintextCount + tagCount
    }

    @inlinable
    public static func open(
        key: Bytes32, nonce: Nonce24, buffer: UnsafeMutableRawBufferPointer,
        additionalData: UnsafeRawBufferPointer = .empty
    ) throws -> Int {
        guard buffer.count >= tagCount else {
            throw CryptoError.invalidLength("XChaCha20-Poly1305 ciphertext", expected: "at least 16", got: buffer.count)
        }
        let count = buffer.count - tagCount
        ensureSodium()
        let base = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let rc = key.withUnsafeBytes { k in
            nonce.withUnsafeBytes { n in
                crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
                    base, nil, base, UInt64(count), base + count,
                    additionalData.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(additionalData.count),
                    n.baseAddress!.assumingMemoryBound(to: UInt8.self),
                    k.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
        guard rc == 0 else { throw CryptoError.authenticationFailure("XChaCha20-Poly1305") }
        return count
    }

    public static func seal(
        key: Bytes32, nonce: Nonce24, plaintext: some RawBytes, additionalData: some RawBytes = [UInt8]()
    ) -> [UInt8] {
        var out = plaintext.withUnsafeBytes { Array($0) }
        out.append(contentsOf: repeatElement(0, count: tagCount))
        let count = out.count - tagCount
        additionalData.withUnsafeBytes { ad in
            out.withUnsafeMutableBytes {
                _ = try! seal(key: key, nonce: nonce, buffer: $0, plaintextCount: count, additionalData: ad)
            }
        }
        return out
    }

    public static func open(
        key: Bytes32, nonce: Nonce24, ciphertext: some RawBytes, additionalData: some RawBytes = [UInt8]()
    ) throws -> [UInt8] {
        var out = ciphertext.withUnsafeBytes { Array($0) }
        let count = try additionalData.withUnsafeBytes { ad in
            try out.withUnsafeMutableBytes { try open(key: key, nonce: nonce, buffer: $0, additionalData: ad) }
        }
        out.removeLast(out.count - count)
        return out
    }
}

import CryptoPrimitives

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The server's ed25519 host key, derived from a 32-byte seed.
///
/// libssh imports host keys from OpenSSH's private key format, so the key is
/// handed over in that format (PROTOCOL.key in OpenSSH, unencrypted form):
///
///     "openssh-key-v1" 0x00
///     string  ciphername = "none"
///     string  kdfname    = "none"
///     string  kdfoptions = ""
///     uint32  number of keys = 1
///     string  public key  = string "ssh-ed25519" ‖ string pk[32]
///     string  private block:
///         uint32 check ‖ uint32 check          (equal; a decryption check)
///         string "ssh-ed25519" ‖ string pk[32] ‖ string (seed[32] ‖ pk[32])
///         string comment
///         bytes  1, 2, 3 … up to a multiple of 8
///
/// wrapped in base64 between `-----BEGIN/END OPENSSH PRIVATE KEY-----`.
package struct HostKey: Sendable {
    /// The public key blob (RFC 8709 §4): string "ssh-ed25519" ‖ string pk.
    package let publicBlob: [UInt8]
    /// The private key file's text. It holds the secret; never logged.
    package let privateKeyFile: String

    package init(seed: Bytes32) {
        let pair = Ed25519.KeyPair(seed: seed)
        var blob = WireWriter()
        blob.string("ssh-ed25519")
        blob.string(pair.publicKey.bytes)
        publicBlob = blob.bytes

        var secret = WireWriter(capacity: 160)
        // The check words only detect a wrong passphrase; any value works
        // unencrypted, and a fixed one keeps the file deterministic.
        secret.uint32(0x7465_7468)
        secret.uint32(0x7465_7468)
        secret.string("ssh-ed25519")
        secret.string(pair.publicKey.bytes)
        pair.withUnsafeSecretBytes { secret.string($0) }
        secret.string("tether host key")
        var pad: UInt8 = 1
        while secret.bytes.count % 8 != 0 {
            secret.byte(pad)
            pad += 1
        }

        var file = WireWriter(capacity: 300)
        file.raw(Array("openssh-key-v1".utf8))
        file.byte(0)
        file.string("none")
        file.string("none")
        file.string([UInt8]())
        file.uint32(1)
        file.string(publicBlob)
        file.string(secret.bytes)
        let encoded = Data(file.bytes).base64EncodedString()
        var lines = ["-----BEGIN OPENSSH PRIVATE KEY-----"]
        var rest = Substring(encoded)
        while !rest.isEmpty {
            lines.append(String(rest.prefix(70)))
            rest = rest.dropFirst(70)
        }
        lines.append("-----END OPENSSH PRIVATE KEY-----")
        privateKeyFile = lines.joined(separator: "\n") + "\n"
        for i in secret.bytes.indices { secret.bytes[i] = 0 }
        for i in file.bytes.indices { file.bytes[i] = 0 }
    }

    /// The line a `known_hosts` file or `authorized_keys` holds for this key.
    package var publicKeyLine: String {
        "ssh-ed25519 " + Data(publicBlob).base64EncodedString()
    }
}

import CLibSSH
import Glibc

/// An OpenSSH `authorized_keys` file (sshd(8) "AUTHORIZED_KEYS FILE FORMAT"):
/// one key per line, `[options] keytype base64 [comment]`; `#` starts a
/// comment line. Options are accepted and ignored (the server enforces none
/// of them yet), so a file written for sshd still authorizes the same keys.
package struct AuthorizedKeys {
    /// (key type, base64 blob) of each usable line.
    package private(set) var entries: [(type: String, base64: String)] = []

    package init(text: String) {
        for raw in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let line = raw.drop(while: { $0 == " " || $0 == "\t" })
            guard !line.isEmpty, line.first != "#" else { continue }
            let fields = Self.fields(of: line)
            // The key type is the first field that names one; anything before
            // it is the options field.
            guard let i = fields.firstIndex(where: Self.isKeyType), i + 1 < fields.count else { continue }
            entries.append((fields[i], fields[i + 1]))
        }
    }

    /// Reads the file; a missing or unreadable file authorizes nobody.
    static func load(path: String) -> AuthorizedKeys {
        guard let file = fopen(path, "r") else { return AuthorizedKeys(text: "") }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&chunk, 1, chunk.count, file)
            if n <= 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
            if bytes.count > 1 << 20 { break }  // no sane file is larger
        }
        return AuthorizedKeys(text: String(decoding: bytes, as: UTF8.self))
    }

    static func isKeyType(_ s: String) -> Bool {
        s.hasPrefix("ssh-") || s.hasPrefix("ecdsa-sha2-") || s.hasPrefix("sk-")
    }

    /// Splits on blanks, keeping double-quoted option values (which may hold
    /// blanks, e.g. `command="ls -l"`) in one field.
    private static func fields(of line: Substring) -> [String] {
        var out: [String] = []
        var current = ""
        var quoted = false
        for ch in line {
            if ch == "\"" { quoted.toggle() }
            if (ch == " " || ch == "\t") && !quoted {
                if !current.isEmpty { out.append(current) }
                current = ""
            } else {
                current.append(ch)
            }
        }
        if !current.isEmpty { out.append(current) }
        return out
    }

    /// Whether `key` (a libssh public key) is one of the entries.
    func contains(_ key: OpaquePointer) -> Bool {
        for entry in entries {
            var candidate: OpaquePointer?
            let type = ssh_key_type_from_name(entry.type)
            guard type != SSH_KEYTYPE_UNKNOWN,
                ssh_pki_import_pubkey_base64(entry.base64, type, &candidate) == SSH_OK, let candidate
            else { continue }
            defer { ssh_key_free(candidate) }
            if ssh_key_cmp(candidate, key, SSH_KEY_CMP_PUBLIC) == 0 { return true }
        }
        return false
    }
}

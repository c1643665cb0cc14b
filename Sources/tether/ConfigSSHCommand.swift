import ArgumentParser

import Foundation

/// `tether config-ssh`: writes one marked Host block into the user's SSH
/// config so that `ssh WORKSPACE.coder` (and scp, rsync, IDE remote modes)
/// reach workspaces through `tether ssh --stdio`. Running it again replaces
/// the block in place; the rest of the file is never touched.
struct ConfigSSH: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config-ssh", abstract: "Add a Host block to ~/.ssh/config so `ssh WORKSPACE.coder` works.")

    @Option(help: "SSH config file to update.")
    var sshConfig = (ProcessInfo.processInfo.environment["HOME"] ?? ".") + "/.ssh/config"
    @Option(help: "Host suffix that marks a workspace.")
    var suffix = "coder"
    @Flag(help: "Print the block instead of writing it.")
    var dryRun = false

    static let begin = "# ------------START-TETHER------------"
    static let end = "# ------------END-TETHER--------------"

    func run() throws {
        guard !suffix.isEmpty, suffix.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" }) else {
            throw ValidationError("--suffix must be letters, digits and '-' (got \(suffix))")
        }
        let session = try CLISession.load()
        let block = Self.block(binary: Self.executablePath(), suffix: suffix, url: session.url,
                               configDir: ProcessInfo.processInfo.environment["TETHER_CONFIG_DIR"])
        if dryRun {
            print(block, terminator: "")
            return
        }
        let existing = (try? String(contentsOfFile: sshConfig, encoding: .utf8)) ?? ""
        let updated = Self.replacingBlock(in: existing, with: block)
        let directory = (sshConfig as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try updated.write(toFile: sshConfig, atomically: true, encoding: .utf8)
        chmod(sshConfig, 0o600)
        print("\(sshConfig): Host *.\(suffix) now goes through tether (\(session.url)). Try: ssh WORKSPACE.\(suffix)")
    }

    /// The Host block; `configDir` pins the CLI session when not the default.
    static func block(binary: String, suffix: String, url: String, configDir: String?) -> String {
        let env = configDir.map { "env TETHER_CONFIG_DIR=\(shellQuoted($0)) " } ?? ""
        return """
            \(begin)
            # Written by `tether config-ssh` for \(url); run it again to update, delete the block to remove.
            Host *.\(suffix)
              ProxyCommand \(env)\(shellQuoted(binary)) ssh --stdio --suffix \(suffix) %h
              ConnectTimeout 0
              ServerAliveInterval 15
            \(end)

            """
    }

    /// `existing` with its Tether block replaced by `block`, or with `block`
    /// prepended (Host blocks match first-wins, so ours must not sit behind a
    /// `Host *` of the user's).
    static func replacingBlock(in existing: String, with block: String) -> String {
        if let start = existing.range(of: begin), let stop = existing.range(of: end, range: start.upperBound..<existing.endIndex) {
            var after = existing[stop.upperBound...]
            if after.hasPrefix("\n") { after = after.dropFirst() }
            return String(existing[..<start.lowerBound]) + block + after
        }
        return block + (existing.isEmpty ? "" : "\n" + existing)
    }

    static func shellQuoted(_ s: String) -> String {
        s.allSatisfy({ $0.isLetter || $0.isNumber || "/._-+=:,".contains($0) }) ? s : "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    static func executablePath() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        return n > 0 ? String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : CommandLine.arguments[0]
    }
}

import ArgumentParser
import CryptoPrimitives
import SSHServer

#if canImport(Glibc)
    import Glibc
#endif

/// `tether ssh-server`: the embedded SSH server on a host port, for
/// debugging and for operators who want `--ssh-listen`-style access. The
/// agent serves the same server inside the tunnel.
struct SSHServerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ssh-server", abstract: "Serve the embedded SSH server on a host TCP address (debugging).")

    @Option(help: "Address to listen on, HOST:PORT (port 0 picks a free one).")
    var listen: String = "127.0.0.1:2222"

    @Option(help: "Host key seed: 64 hex digits. Default: random (the host key changes each run).")
    var hostKeySeed: String?

    @Option(help: "authorized_keys file for public-key auth. Without it, clients need no authentication.")
    var authorizedKeys: String?

    @Option(help: "Message of the day shown to interactive shells.")
    var motd: String?

    @Option(help: "Seconds between keepalives when the client is silent (0: off).")
    var keepalive: Double = 15

    @Option(help: "Close connections idle this many seconds (0: never).")
    var idleTimeout: Double = 0

    @Option(help: "Close connections older than this many seconds (0: no limit).")
    var maxSessionDuration: Double = 0

    func run() throws {
        guard let colon = listen.lastIndex(of: ":"), let port = UInt16(listen[listen.index(after: colon)...]) else {
            throw ValidationError("--listen must be HOST:PORT, e.g. 127.0.0.1:2222")
        }
        var host = String(listen[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let seed: Bytes32
        if let hex = hostKeySeed {
            guard let value = try? Bytes32(hex: hex) else {
                throw ValidationError("--host-key-seed must be 64 hex digits (32 bytes)")
            }
            seed = value
        } else {
            seed = SecureRandom.bytes32()
        }
        var config = SSHServerConfiguration(
            hostKeySeed: seed, authentication: authorizedKeys.map { .authorizedKeys(path: $0) } ?? .none,
            motdPath: motd)
        config.keepaliveInterval = keepalive
        config.idleTimeout = idleTimeout
        config.maxSessionDuration = maxSessionDuration
        config.log = { line in
            let text = Array((line + "\n").utf8)
            _ = text.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        }
        let server = SSHServer(configuration: config)
        let listener = try server.listen(host: host, port: port)
        print("listening on \(host):\(listener.port)")
        print("host key: \(server.hostPublicKey)")
        fflush(nil)
        while true { pause() }
    }
}

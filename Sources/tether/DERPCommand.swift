import ArgumentParser
import CryptoPrimitives
import Dispatch
import DERP
import Logging
import NIOSSL

#if canImport(Glibc)
    import Glibc
#endif

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// `tether derp`: runs a DERP relay on its own (the control plane embeds
/// the same server).
struct DERPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "derp",
        abstract: "Run a DERP relay server (Tailscale-compatible, protocol version 2).")

    @Option(help: "Address to listen on.")
    var host = "0.0.0.0"

    @Option(help: "TCP port to listen on.")
    var port = 3340

    @Option(help: "File holding the server's private key (base64, as `tether genkey` prints); a new key each start if omitted.")
    var keyFile: String?

    @Option(help: "PEM certificate chain for TLS; plain HTTP without it.")
    var certificate: String?

    @Option(help: "PEM private key for --certificate.")
    var certificateKey: String?

    @Option(help: "File holding the region's mesh key (shared by all its servers).")
    var meshKeyFile: String?

    @Option(name: .customLong("mesh-peer"), help: "URL of another server of the region, e.g. http://10.0.0.2:3340/derp (repeatable).")
    var meshPeers: [String] = []

    @Option(help: "Per-client rate limit in bytes per second (0: none).")
    var rateLimit = 0

    @Option(help: "Burst of the per-client rate limit in bytes.")
    var rateBurst = 0

    @Option(help: "Packets queued per client before the oldest is dropped.")
    var queueDepth = 32

    @Option(help: "On SIGTERM/SIGINT, tell clients to reconnect after this many milliseconds (Restarting frame).")
    var restartReconnectIn = 1000

    @Option(help: "… and to keep trying for this many milliseconds.")
    var restartTryFor = 30_000

    @Flag(help: "Log every connection at debug level.")
    var verbose = false

    func run() async throws {
        let privateKey: X25519.PrivateKey
        if let keyFile {
            let text = try String(contentsOfFile: keyFile, encoding: .utf8).filter { !$0.isWhitespace }
            do {
                privateKey = try X25519.PrivateKey(base64: text)
            } catch {
                throw ValidationError("\(keyFile) does not hold a private key: expected 44 characters of base64 (32 bytes)")
            }
        } else {
            privateKey = X25519.PrivateKey()
        }
        var configuration = DERPServer.Configuration()
        if let meshKeyFile {
            let meshKey = try String(contentsOfFile: meshKeyFile, encoding: .utf8).filter { !$0.isWhitespace }
            guard !meshKey.isEmpty else { throw ValidationError("\(meshKeyFile) is empty") }
            configuration.meshKey = meshKey
        }
        configuration.meshPeers = try meshPeers.map {
            guard let url = DERPURL($0) else { throw ValidationError("--mesh-peer \($0) is not an http:// or https:// URL") }
            return url
        }
        if !configuration.meshPeers.isEmpty && configuration.meshKey == nil {
            throw ValidationError("--mesh-peer needs --mesh-key-file")
        }
        if rateLimit > 0 { configuration.rateLimit = (rateLimit, max(rateBurst, rateLimit / 10, 64 << 10)) }
        guard queueDepth > 0 else { throw ValidationError("--queue-depth must be at least 1") }
        configuration.queueDepth = queueDepth
        configuration.logger.logLevel = verbose ? .debug : .info
        guard restartReconnectIn >= 0, restartTryFor >= 0 else { throw ValidationError("--restart-reconnect-in and --restart-try-for must not be negative") }
        configuration.restarting = (.milliseconds(Int64(restartReconnectIn)), .milliseconds(Int64(restartTryFor)))
        var tls: NIOSSLContext?
        if let certificate {
            guard let certificateKey else { throw ValidationError("--certificate needs --certificate-key") }
            var tlsConfiguration = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: certificateKey, format: .pem)))
            tlsConfiguration.applicationProtocols = ["http/1.1"]
            tls = try NIOSSLContext(configuration: tlsConfiguration)
        }
        let server = DERPServer(privateKey: privateKey, configuration: configuration)
        let listener = try await DERPHTTPServer.bind(server, host: host, port: port, tls: tls)
        configuration.logger.info(
            "DERP server listening",
            metadata: [
                "address": "\(listener.localAddress.map { "\($0)" } ?? "?")", "tls": "\(tls != nil)",
                "public_key": "\(server.publicKey)", "mesh_peers": "\(configuration.meshPeers.count)",
            ])
        // SIGINT/SIGTERM: a graceful shutdown. Every client hears Restarting
        // (reconnect in, try for) before its connection closes. Dispatch
        // sources, as the async root command runs on a pool thread.
        let logger = configuration.logger
        let watchers = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                Task {
                    logger.info("DERP server shutting down", metadata: ["signal": "\(number)"])
                    try? await listener.close()
                }
            }
            source.resume()
            return source
        }
        defer { watchers.forEach { $0.cancel() } }
        try await listener.channel.closeFuture.get()
        // Leave the Restarting frames time to reach the clients.
        try? await Task.sleep(for: .milliseconds(200))
    }
}

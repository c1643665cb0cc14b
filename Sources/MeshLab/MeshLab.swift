import ArgumentParser
import CryptoPrimitives
import DERP
import Mesh
import WireGuardCore

#if canImport(Glibc)
    import Glibc
#endif

/// `mesh-lab`: the processes the Mesh namespace scenarios and benchmarks
/// run inside their namespaces: a node, a DERP relay, a STUN server. A
/// test-only executable, so the scenarios need neither the control plane
/// nor the whole `tether` CLI built.
@main
struct MeshLabCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mesh-lab", abstract: "Mesh test processes (node, DERP relay, STUN server).",
        subcommands: [NodeCommand.self, RelayCommand.self, STUNCommand.self])
}

/// A DERP relay on `host:port` (plain HTTP), as `tether derp` runs it.
struct RelayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "derp", abstract: "Run a DERP relay.")

    @Option var host = "0.0.0.0"
    @Option var port = 3340
    @Option(help: "Packets queued per client before the oldest is dropped.") var queueDepth = 32

    func run() async throws {
        var configuration = DERPServer.Configuration()
        configuration.queueDepth = queueDepth
        let server = try await DERPHTTPServer.bind(
            DERPServer(privateKey: X25519.PrivateKey(), configuration: configuration), host: host, port: port)
        print("derp listening on \(host):\(server.port)")
        try await Task.sleep(for: .seconds(86_400))
    }
}

/// A STUN server on one UDP address.
struct STUNCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stun", abstract: "Run a STUN server.")

    @Option var listen = "0.0.0.0:3478"

    func run() throws {
        guard let endpoint = Endpoint(listen) else { throw ValidationError("--listen \(listen)") }
        let server = try STUNServer(listen: endpoint)
        server.start()
        print("stun listening on \(server.localEndpoint)")
        while true { pause() }
    }
}

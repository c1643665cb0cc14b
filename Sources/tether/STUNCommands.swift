import ArgumentParser
import Mesh

#if canImport(Glibc)
    import Glibc
#endif

/// `tether stun`: a standalone STUN server (RFC 5389 Binding), the same one
/// the control plane embeds.
struct STUNCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stun", abstract: "Run a STUN server (RFC 5389 Binding requests only).")

    @Option(help: "UDP address to listen on, e.g. 0.0.0.0:3478 or [::]:3478.")
    var listen: String = "[::]:3478"

    func run() throws {
        guard let endpoint = Endpoint(listen) else {
            throw ValidationError("--listen \(listen) is not an address:port (examples: 0.0.0.0:3478, [::]:3478)")
        }
        let server = try STUNServer(listen: endpoint)
        server.start()
        print("tether stun: serving Binding requests on \(server.localEndpoint)")
        while true { pause() }
    }
}

/// `tether netcheck`: asks STUN servers how this host's UDP traffic looks
/// from outside (the mapped address WireGuard's packets would carry).
struct NetcheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "netcheck", abstract: "Report this host's public UDP address as STUN servers see it.")

    @Option(name: .customLong("stun"), help: "STUN server address:port (repeatable).")
    var servers: [String] = []

    func run() throws {
        guard !servers.isEmpty else {
            throw ValidationError("give at least one --stun address:port (for example --stun 127.0.0.1:3478)")
        }
        // One socket per family, reused for every server, so a NAT that maps
        // each destination to a new port shows up as differing mappings.
        var sockets: [Bool: UDPSocket] = [:]
        var mappings: [Endpoint] = []
        for text in servers {
            guard let server = Endpoint(text) else {
                throw ValidationError("--stun \(text) is not an address:port (names are not resolved yet; use an IP)")
            }
            let socket =
                try sockets[server.isIPv4]
                ?? UDPSocket(bind: server.isIPv4 ? Endpoint("0.0.0.0:0")! : Endpoint("[::]:0")!)
            sockets[server.isIPv4] = socket
            do {
                let mapped = try STUNClient.mappedAddress(via: socket, server: server)
                mappings.append(mapped)
                print("\(server): mapped \(socket.localEndpoint.port) → \(mapped)")
            } catch {
                print("\(server): \(error)")
            }
        }
        if mappings.count > 1 {
            let stable = Set(mappings.map(\.port)).count == 1
            print("mapping varies by destination: \(stable ? "no" : "yes (hard NAT; expect DERP)")")
        }
        if mappings.isEmpty { throw ExitCode(1) }
    }
}

import ArgumentParser
import CryptoPrimitives

#if canImport(Glibc)
    import Glibc
#endif

/// The `tether` command line. Subcommands are added as their modules land.
@main
struct Tether: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tether",
        abstract: "Connectivity for self-hosted cloud development environments.",
        subcommands: [
            Server.self, AgentCommand.self, Login.self, Create.self, List.self, Dashboard.self, SSHCommand.self, ConfigSSH.self,
            PortForwardCommand.self, PingCommand.self, SpeedtestCommand.self,
            SSHServerCommand.self, DERPCommand.self, STUNCommand.self, NetcheckCommand.self, WireGuardCommand.self,
            GenKey.self, PubKey.self,
        ]
    )
}

/// `tether genkey`: a new X25519 private key in base64, as `wg genkey` prints.
struct GenKey: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "genkey", abstract: "Print a new private key (base64, as `wg genkey`).")

    func run() {
        print(X25519.PrivateKey().base64)
    }
}

/// `tether pubkey`: reads a private key on stdin, prints its public key.
struct PubKey: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pubkey", abstract: "Read a private key on stdin and print its public key (as `wg pubkey`).")

    func run() throws {
        guard let line = readLine(strippingNewline: true) else {
            throw ValidationError("no private key on standard input; pipe one in, e.g. `tether genkey | tether pubkey`")
        }
        do {
            let key = try X25519.PrivateKey(base64: line.trimmingCharacters())
            print(key.publicKey.base64)
        } catch {
            throw ValidationError("standard input is not a private key: expected 44 characters of base64 (32 bytes)")
        }
    }
}

extension String {
    fileprivate func trimmingCharacters() -> String {
        String(
            self.drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: {
                $0 == " " || $0 == "\t" || $0 == "\r"
            }).reversed())
    }
}

import ArgumentParser
import CryptoPrimitives
import DERP
import Mesh
import Netstack
import Synchronization
import WireGuardCore

#if canImport(Glibc)
    import Glibc
#endif

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// `mesh-lab node`: one tailnet node configured from the command line,
/// without a control plane (peers given as flags). It moves one TCP stream
/// through the mesh, a file in or out, and prints its path as it goes:
/// what the namespace tests and benchmarks drive.
///
/// Output lines (times in ms since start):
///     ready <t> <udp-port> <endpoints…>
///     status <t> <direct|derp|derp+direct> <wg-rx-bytes> <wg-tx-bytes> <stream-bytes>
///     first-byte <t>   done <t> <bytes>   error <text>
struct NodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node", abstract: "Run one mesh node with a static peer and move a TCP stream.")

    @Option(help: "Private key (base64).") var key: String
    @Option(help: "Disco private key (base64); random if omitted.") var discoKey: String?
    @Option(help: "Own tailnet address.") var address: String
    @Option(help: "UDP port.") var port: UInt16 = 0
    @Option(help: "DERP server URL (region 1).") var derp: String
    @Option(help: "STUN server address:port for region 1.") var stun: String?
    @Option(help: "Peer's public key (base64).") var peerKey: String
    @Option(help: "Peer's disco public key (base64).") var peerDisco: String
    @Option(help: "Peer's tailnet address.") var peerAddress: String
    @Option(help: "Peer endpoint address:port (repeatable).") var peerEndpoint: [String] = []
    @Flag(help: "DERP only: no disco, no STUN.") var noDirect = false
    @Option(help: "Listen on this tailnet TCP port and write what arrives to --file.") var listen: UInt16?
    @Option(help: "Connect to the peer's tailnet TCP port and send --file.") var connect: UInt16?
    @Option(help: "File to send or to write.") var file: String?
    @Option(help: "Send at most this many bytes per second (0: no limit).") var rate: Int = 0
    @Option(help: "Status line interval in ms.") var statusInterval: Int = 100

    func run() async throws {
        let clock = ContinuousClock()
        let start = clock.now
        func ms() -> Int64 { (clock.now - start).nanoseconds / 1_000_000 }
        guard let url = DERPURL(derp) else { throw ValidationError("--derp \(derp) is not a URL") }
        guard let own = WireGuardCore.IPAddress(address), let peerIP = WireGuardCore.IPAddress(peerAddress) else {
            throw ValidationError("--address/--peer-address must be IP addresses")
        }
        let stunEndpoint = try stun.map {
            guard let e = Endpoint($0) else { throw ValidationError("--stun \($0) is not address:port") }
            return e
        }
        var configuration = MeshNode.Configuration(
            addresses: [own], derpMap: DERPMap(regions: [DERPMap.Region(id: 1, url: url, stun: stunEndpoint)]))
        configuration.listenPort = port
        configuration.directPaths = !noDirect
        let disco = try discoKey.map { try X25519.PrivateKey(base64: $0) } ?? X25519.PrivateKey()
        let node = try MeshNode(
            privateKey: try X25519.PrivateKey(base64: key), discoKey: disco, configuration: configuration)
        let width = peerIP.isIPv4 ? 32 : 128
        try node.upsertPeer(
            MeshPeer(
                nodeKey: try X25519.PublicKey(base64: peerKey), discoKey: try X25519.PublicKey(base64: peerDisco),
                homeRegion: 1, endpoints: try peerEndpoint.map {
                    guard let e = Endpoint($0) else { throw ValidationError("--peer-endpoint \($0)") }
                    return e
                }, addresses: [IPPrefix(address: peerIP, length: width)!]))
        await node.start()
        print("ready \(ms()) \(node.listenPort) \(node.endpoints.map(\.description).joined(separator: " "))")
        let peer = try X25519.PublicKey(base64: peerKey)
        let progress = Atomic<Int>(0)
        let reporter = Task {
            while !Task.isCancelled {
                if let s = node.statistics(of: peer) {
                    let path =
                        switch s.path {
                        case .direct: "direct"
                        case .derp: "derp"
                        case .derpAndDirect: "derp+direct"
                        }
                    let moved = progress.load(ordering: .relaxed)
                    print("status \(ms()) \(path) \(s.receivedBytes) \(s.sentBytes) \(moved)")
                    fflush(nil)
                }
                try? await Task.sleep(for: .milliseconds(statusInterval))
            }
        }
        do {
            if let listen {
                let listener = try node.listen(port: listen)
                let stream = try await listener.accept()
                var out: [UInt8] = []
                while true {
                    let chunk = try await stream.read()
                    if chunk.isEmpty { break }
                    if out.isEmpty { print("first-byte \(ms())") }
                    out += chunk
                    progress.store(out.count, ordering: .relaxed)
                }
                if let file { FileManager.default.createFile(atPath: file, contents: Data(out)) }
                print("done \(ms()) \(out.count)")
                stream.close()
            } else if let connect {
                let data = try file.map { try [UInt8](Data(contentsOf: URL(fileURLWithPath: $0))) } ?? []
                let stream = try await node.dial(peerIP, port: connect)
                print("connected \(ms())")
                let chunk = 16 * 1024
                var offset = 0
                let began = clock.now
                while offset < data.count {
                    let end = min(data.count, offset + chunk)
                    try await stream.write(Array(data[offset..<end]))
                    offset = end
                    progress.store(offset, ordering: .relaxed)
                    if rate > 0 {
                        let due = began + .milliseconds(Int64(offset) * 1000 / Int64(rate))
                        if clock.now < due { try await Task.sleep(until: due, clock: clock) }
                    }
                }
                try await stream.flush()
                stream.shutdownWrite()
                _ = try? await stream.read()  // the receiver closes after reading everything
                print("done \(ms()) \(offset)")
                stream.close()
            } else {
                try await Task.sleep(for: .seconds(3600))
            }
        } catch {
            print("error \(error)")
        }
        fflush(nil)
        try? await Task.sleep(for: .milliseconds(300))
        reporter.cancel()
        await node.stop()
    }
}

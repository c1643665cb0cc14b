import CryptoPrimitives
import DERP
import Foundation
import Mesh
import Netstack
import Testing
import WireGuardCore

/// Two nodes in one process with a real DERP server on loopback: a TCP
/// stream through Netstack ⇄ WireGuard ⇄ (UDP or DERP) ⇄ WireGuard ⇄ Netstack.
@Suite(.serialized) struct MeshNodeTests {
    struct Pair {
        let a: MeshNode
        let b: MeshNode
        let server: DERPHTTPServer
        let addressA = WireGuardCore.IPAddress("fd7a:115c:a1e0::1")!
        let addressB = WireGuardCore.IPAddress("fd7a:115c:a1e0::2")!

        func stop() async {
            await a.stop()
            await b.stop()
            try? await server.close()
        }
    }

    static func pair(directPaths: Bool) async throws -> Pair {
        let server = try await DERPHTTPServer.bind(
            DERPServer(privateKey: X25519.PrivateKey()), host: "127.0.0.1", port: 0)
        let map = DERPMap(regions: [DERPMap.Region(id: 1, url: DERPURL(host: "127.0.0.1", port: server.port))])
        let addressA = WireGuardCore.IPAddress("fd7a:115c:a1e0::1")!
        let addressB = WireGuardCore.IPAddress("fd7a:115c:a1e0::2")!
        var ca = MeshNode.Configuration(addresses: [addressA], derpMap: map)
        var cb = MeshNode.Configuration(addresses: [addressB], derpMap: map)
        ca.directPaths = directPaths
        cb.directPaths = directPaths
        let a = try MeshNode(privateKey: X25519.PrivateKey(), configuration: ca)
        let b = try MeshNode(privateKey: X25519.PrivateKey(), configuration: cb)
        try a.upsertPeer(
            MeshPeer(
                nodeKey: b.publicKey, discoKey: b.discoKey, homeRegion: 1,
                endpoints: [Endpoint("127.0.0.1:\(b.listenPort)")!], addresses: [IPPrefix("fd7a:115c:a1e0::2/128")!]))
        try b.upsertPeer(
            MeshPeer(
                nodeKey: a.publicKey, discoKey: a.discoKey, homeRegion: 1,
                endpoints: [Endpoint("127.0.0.1:\(a.listenPort)")!], addresses: [IPPrefix("fd7a:115c:a1e0::1/128")!]))
        await a.start()
        await b.start()
        return Pair(a: a, b: b, server: server)
    }

    /// Sends `count` bytes A → B over a Netstack TCP connection; returns
    /// what B read.
    static func transfer(_ pair: Pair, count: Int, port: UInt16 = 7000) async throws -> (sent: [UInt8], got: [UInt8]) {
        var rng = SystemRandomNumberGenerator()
        let data = (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let listener = try pair.b.listen(port: port)
        async let received: [UInt8] = {
            let stream = try await listener.accept()
            var got: [UInt8] = []
            while got.count < count {
                let chunk = try await stream.read()
                if chunk.isEmpty { break }
                got += chunk
            }
            stream.close()
            return got
        }()
        let stream = try await pair.a.dial(pair.addressB, port: port)
        var offset = 0
        while offset < count {
            let end = min(count, offset + 64 * 1024)
            try await stream.write(Array(data[offset..<end]))
            offset = end
        }
        try await stream.flush()
        let got = try await received
        stream.close()
        listener.close()
        return (data, got)
    }

    @Test func directOnLoopback() async throws {
        let pair = try await Self.pair(directPaths: true)
        do {
            // Traffic starts over DERP; wait for the direct path before the
            // measured stream (DERP is fast enough now to carry all of it
            // before the upgrade otherwise).
            _ = try await Self.transfer(pair, count: 64 << 10, port: 7001)
            let deadline = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < deadline {
                if case .direct = pair.a.statistics(of: pair.b.publicKey)?.path { break }
                _ = try? await pair.a.ping(pair.addressB)
                try await Task.sleep(for: .milliseconds(100))
            }
            let (sent, got) = try await Self.transfer(pair, count: 4 << 20)
            #expect(got == sent)
            let stats = pair.a.statistics(of: pair.b.publicKey)!
            guard case .direct = stats.path else {
                Issue.record("path is \(stats.path), not direct")
                await pair.stop()
                return
            }
            #expect(stats.packets.sentDirect > 1000)
            let received = pair.b.statistics(of: pair.a.publicKey)!
            #expect(received.receivedBytes > 4 << 20, "WireGuard counted the stream at B")
            #expect(received.packets.receivedDirect > 1000)
            let ping = try await pair.a.ping(pair.addressB)
            guard case .direct = ping.path else {
                Issue.record("ping went \(ping.path)")
                await pair.stop()
                return
            }
        } catch {
            Issue.record("\(error)")
        }
        await pair.stop()
    }

    @Test func derpOnlyWhenDirectPathsAreOff() async throws {
        let pair = try await Self.pair(directPaths: false)
        do {
            let (sent, got) = try await Self.transfer(pair, count: 1 << 20)
            #expect(got == sent)
            let stats = pair.a.statistics(of: pair.b.publicKey)!
            #expect(stats.path == .derp)
            #expect(stats.packets.sentDirect == 0)
            #expect(stats.packets.sentRelayed > 100)
            let ping = try await pair.a.ping(pair.addressB)
            #expect(ping.path == .derp)
        } catch {
            Issue.record("\(error)")
        }
        await pair.stop()
    }
}

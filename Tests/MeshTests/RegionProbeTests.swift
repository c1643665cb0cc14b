import CryptoPrimitives
import DERP
import Foundation
import Mesh
import NIOSSL
import Testing
import WireGuardCore

/// Home region choice from probe rounds: the pure round with a fake clock,
/// then the HTTPS latency probe and a whole node against real DERP servers
/// on loopback (plain HTTP and TLS).
@Suite struct RegionProbeRoundTests {
    let t0 = Instant(nanoseconds: 1_000_000_000)
    typealias Probe = RegionProbeRound.Probe

    @Test func finishesWhenEveryProbeAnswered() {
        var round = RegionProbeRound(
            started: t0,
            probes: [Probe(region: 1, method: .stun), Probe(region: 1, method: .https), Probe(region: 2, method: .https)])
        round.answered(Probe(region: 1, method: .stun), latency: .milliseconds(30))
        round.answered(Probe(region: 1, method: .https), latency: .milliseconds(20))
        #expect(!round.isFinished(now: t0 + .milliseconds(50)))
        round.failed(Probe(region: 2, method: .https))
        #expect(round.isFinished(now: t0 + .milliseconds(50)))
        #expect(round.latencies == [1: .milliseconds(20)], "best of STUN and HTTPS; region 2 unreachable")
        #expect(round.samples.count == 2)
    }

    @Test func timesOutWithWhatAnswered() {
        var round = RegionProbeRound(
            started: t0, probes: [Probe(region: 1, method: .stun), Probe(region: 2, method: .stun)])
        round.answered(Probe(region: 2, method: .stun), latency: .milliseconds(80))
        #expect(!round.isFinished(now: t0 + PathConstants.probeRoundTimeout - .milliseconds(1)))
        #expect(round.isFinished(now: t0 + PathConstants.probeRoundTimeout))
        #expect(round.latencies == [2: .milliseconds(80)])
    }

    @Test func ignoresStrayAndDuplicateAnswers() {
        var round = RegionProbeRound(started: t0, probes: [Probe(region: 1, method: .https)])
        round.answered(Probe(region: 9, method: .https), latency: .milliseconds(1))
        round.answered(Probe(region: 1, method: .stun), latency: .milliseconds(1))
        round.answered(Probe(region: 1, method: .https), latency: .milliseconds(40))
        round.answered(Probe(region: 1, method: .https), latency: .milliseconds(2))
        #expect(round.latencies == [1: .milliseconds(40)])
    }

    /// Successive rounds through `HomeRegion.choose`: the home moves only
    /// when a region is clearly better, and stays when its region is
    /// merely a little slower or a round measured nothing.
    @Test func roundsKeepTheHomeSticky() {
        var home: Int? = nil
        var now = t0
        func round(_ answers: [Int: Duration]) {
            var r = RegionProbeRound(started: now, probes: answers.keys.map { Probe(region: $0, method: .https) })
            for (region, latency) in answers { r.answered(Probe(region: region, method: .https), latency: latency) }
            #expect(r.isFinished(now: now))
            home = HomeRegion.choose(current: home, latencies: r.latencies)
            now += PathConstants.rediscoveryInterval
        }
        round([1: .milliseconds(50), 2: .milliseconds(40)])
        #expect(home == 2)
        round([1: .milliseconds(35), 2: .milliseconds(40)])
        #expect(home == 2, "35 ms is not clearly better than 40 ms")
        round([:])
        #expect(home == 2)
        round([1: .milliseconds(20), 2: .milliseconds(40)])
        #expect(home == 1)
        round([2: .milliseconds(40)])
        #expect(home == 2, "home stopped answering")
    }
}

@Suite(.serialized) struct HTTPSLatencyProbeTests {
    /// A throwaway self-signed certificate for 127.0.0.1 (openssl CLI).
    static func selfSigned() throws -> (certificate: NIOSSLCertificate, key: NIOSSLPrivateKey) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mesh-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", dir.appendingPathComponent("key.pem").path, "-out", dir.appendingPathComponent("cert.pem").path,
        ]
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        let certificate = try NIOSSLCertificate(file: dir.appendingPathComponent("cert.pem").path, format: .pem)
        let key = try NIOSSLPrivateKey(file: dir.appendingPathComponent("key.pem").path, format: .pem)
        return (certificate, key)
    }

    static func clientTLS(trusting certificate: NIOSSLCertificate) -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates([certificate])
        return tls
    }

    static func tlsServer(_ certificate: NIOSSLCertificate, _ key: NIOSSLPrivateKey) async throws -> DERPHTTPServer {
        var serverTLS = TLSConfiguration.makeServerConfiguration(certificateChain: [.certificate(certificate)], privateKey: .privateKey(key))
        serverTLS.applicationProtocols = ["http/1.1"]
        return try await DERPHTTPServer.bind(
            DERPServer(privateKey: X25519.PrivateKey()), host: "127.0.0.1", port: 0,
            tls: try NIOSSLContext(configuration: serverTLS))
    }

    /// A port nothing listens on (bound, then closed).
    static func closedPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    @Test func measuresRealServersOverHTTPAndTLS() async throws {
        let (certificate, key) = try Self.selfSigned()
        let plain = try await DERPHTTPServer.bind(DERPServer(privateKey: X25519.PrivateKey()), host: "127.0.0.1", port: 0)
        let secure = try await Self.tlsServer(certificate, key)
        do {
            let overHTTP = try await HTTPSLatencyProbe.measure(DERPURL(host: "127.0.0.1", port: plain.port))
            let overTLS = try await HTTPSLatencyProbe.measure(
                DERPURL(host: "127.0.0.1", port: secure.port, useTLS: true), tls: Self.clientTLS(trusting: certificate))
            #expect(overHTTP > .zero && overHTTP < .seconds(1))
            #expect(overTLS > .zero && overTLS < .seconds(1))
            // An untrusted certificate is an error, not a latency.
            await #expect(throws: (any Error).self) {
                _ = try await HTTPSLatencyProbe.measure(DERPURL(host: "127.0.0.1", port: secure.port, useTLS: true))
            }
            await #expect(throws: (any Error).self) {
                _ = try await HTTPSLatencyProbe.measure(DERPURL(host: "127.0.0.1", port: try Self.closedPort()))
            }
        } catch {
            Issue.record("\(error)")
        }
        try? await plain.close()
        try? await secure.close()
    }

    /// A node whose first probe round measures nothing (no region is up
    /// yet) does not wait for a session to probe again: it retries after
    /// 1 s, 2 s, …, so a relay that comes up later becomes its home.
    @Test func emptyProbeRoundIsRetried() async throws {
        let later = try Self.closedPort()
        let map = DERPMap(regions: [
            DERPMap.Region(id: 1, url: DERPURL(host: "127.0.0.1", port: try Self.closedPort())),
            DERPMap.Region(id: 2, url: DERPURL(host: "127.0.0.1", port: later)),
        ])
        var configuration = MeshNode.Configuration(addresses: [WireGuardCore.IPAddress("fd7a:115c:a1e0::8")!], derpMap: map)
        configuration.directPaths = false
        let node = try MeshNode(privateKey: X25519.PrivateKey(), configuration: configuration)
        await node.start(derpTimeout: .milliseconds(50))
        try await Task.sleep(for: .seconds(4))  // the first round ends empty (probe timeout 3 s)
        #expect(node.homeRegion == 1)
        let server = try await DERPHTTPServer.bind(DERPServer(privateKey: X25519.PrivateKey()), host: "127.0.0.1", port: later)
        let deadline = ContinuousClock.now + .seconds(15)
        while node.homeRegion != 2 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(node.homeRegion == 2, "latencies \(node.regionLatencies)")
        await node.stop()
        try? await server.close()
    }

    /// A node whose first region is dead moves its home to a live one after
    /// its first probe round (HTTPS only: the map has no STUN servers), and
    /// keeps a DERP connection there that carries traffic to a peer.
    @Test func nodeChoosesHomeFromProbeRound() async throws {
        let (certificate, key) = try Self.selfSigned()
        let plain = try await DERPHTTPServer.bind(DERPServer(privateKey: X25519.PrivateKey()), host: "127.0.0.1", port: 0)
        let secure = try await Self.tlsServer(certificate, key)
        let map = DERPMap(regions: [
            DERPMap.Region(id: 1, url: DERPURL(host: "127.0.0.1", port: try Self.closedPort())),
            DERPMap.Region(id: 2, url: DERPURL(host: "127.0.0.1", port: plain.port)),
            DERPMap.Region(id: 3, url: DERPURL(host: "127.0.0.1", port: secure.port, useTLS: true)),
        ])
        var configuration = MeshNode.Configuration(addresses: [WireGuardCore.IPAddress("fd7a:115c:a1e0::7")!], derpMap: map)
        configuration.directPaths = false
        configuration.derpTLS = Self.clientTLS(trusting: certificate)
        let node = try MeshNode(privateKey: X25519.PrivateKey(), configuration: configuration)
        #expect(node.homeRegion == 1)
        await node.start(derpTimeout: .milliseconds(50))
        // 15 s: on a loaded machine a first round can lose every probe; the
        // node then tries again after 1 s, 2 s, ….
        let deadline = ContinuousClock.now + .seconds(15)
        while node.homeRegion == 1 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        let home = node.homeRegion
        let latencies = node.regionLatencies
        #expect(home == 2 || home == 3, "home \(String(describing: home)) after \(latencies)")
        #expect(Set(latencies.keys) == [2, 3], "the dead region has no latency")
        #expect(latencies.values.allSatisfy { $0 > .zero && $0 < .seconds(1) })
        await node.stop()
        try? await plain.close()
        try? await secure.close()
    }
}

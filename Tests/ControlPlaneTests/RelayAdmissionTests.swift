import CryptoPrimitives
import DERP
import Foundation
import Testing

/// The embedded DERP relay carries the tailnet's traffic and nobody
/// else's: it admits the keys coordination introduced (connected clients,
/// agents) and refuses any other, after waiting a moment for an
/// introduction on its way.
@Suite(.serialized) struct RelayAdmissionTests {
    @Test func unknownKeysAreRefusedKnownOnesAdmitted() async throws {
        let cp = try await TestControlPlane(name: "relay-admission")
        defer { cp.shutdown() }
        _ = try await SSHThroughTunnelTests.startWorkspace(cp, name: "adm")

        // A client and the agent, both introduced, use the relay.
        let hello = try await SSHThroughTunnelTests.ssh(cp, ["adm.coder", "echo through"])
        #expect(hello.status == 0 && hello.text == "through\n", "ssh: \(hello.err)")
        let server = try #require(cp.server)
        #expect(!server.output.contains("admission refused"), "server log: \(server.output)")

        // A key nobody introduced: the login fails and the server says why.
        let line = try #require(server.output.split(separator: "\n").first { $0.contains("embedded DERP relay at ") })
        let text = String(line[line.range(of: "relay at ")!.upperBound...].prefix { $0 != "," && $0 != " " })
        let url = try #require(DERPURL(text), "no DERP URL in \(line)")
        let stranger = DERPClient(url: url, privateKey: X25519.PrivateKey())
        await #expect(throws: (any Error).self) { try await stranger.connect() }
        await stranger.close()
        try await Harness.until("the refusal in the server log") { server.output.contains("admission refused") }
    }
}

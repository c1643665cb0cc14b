import CryptoPrimitives
import Foundation
import Testing

/// The six scenarios of issue 7, each with two `tether mesh-node`
/// processes (`MeshLab node`) in their own namespaces, a DERP relay and a STUN server
/// in a server namespace, and one TCP stream through Netstack whose
/// received bytes must have the sent bytes' SHA-256.
@Suite(.serialized) struct MeshScenarioTests {
    struct Status {
        var t: Int
        var path: String
        /// Stream bytes written so far.
        var moved: Int
    }

    /// One run: lab, servers, two nodes; A sends `size` bytes to B at `rate`.
    final class Run: @unchecked Sendable {
        let lab: MeshLab
        let size: Int

        init(_ topology: MeshLab.Topology, size: Int, rate: Int, blockFirst: Bool = false) throws {
            lab = try MeshLab(topology)
            self.size = size
            do {
                try start(rate: rate, blockFirst: blockFirst)
            } catch {
                lab.teardown()
                throw error
            }
        }

        private func start(rate: Int, blockFirst: Bool) throws {
            var rng = SystemRandomNumberGenerator()
            let data = Data((0..<size).map { _ in UInt8.random(in: 0...255, using: &rng) })
            try data.write(to: URL(fileURLWithPath: lab.file("send")))
            let ka = X25519.PrivateKey(), kb = X25519.PrivateKey()
            let da = X25519.PrivateKey(), db = X25519.PrivateKey()
            let server = lab.serverIP
            try lab.spawn(lab.nsS, name: "derp", ["derp", "--host", server, "--port", "3340", "--queue-depth", "256"])
            try lab.spawn(lab.nsS, name: "stun", ["stun", "--listen", MeshLab.hostPort(server, 3478)])
            if blockFirst { try lab.blockUDP() }
            try waitForPort(lab.nsS, 3340)
            let common = [
                "--derp", "http://\(MeshLab.hostPort(server, 3340))/derp", "--stun", MeshLab.hostPort(server, 3478),
                "--port", "41641",
            ]
            try lab.spawn(
                lab.nsB, name: "b",
                ["node", "--key", kb.base64, "--disco-key", db.base64, "--address", "fd7a:115c:a1e0::2",
                 "--peer-key", ka.publicKey.base64, "--peer-disco", da.publicKey.base64,
                 "--peer-address", "fd7a:115c:a1e0::1", "--peer-endpoint", MeshLab.hostPort(lab.aIP, 41641),
                 "--listen", "5000", "--file", lab.file("received")] + common)
            guard waitFor({ self.lab.log("b").contains { $0.hasPrefix("ready") } }, seconds: 15) else {
                throw MeshLab.LabError(description: "node B never ready: \(lab.log("b").suffix(5))")
            }
            try lab.spawn(
                lab.nsA, name: "a",
                ["node", "--key", ka.base64, "--disco-key", da.base64, "--address", "fd7a:115c:a1e0::1",
                 "--peer-key", kb.publicKey.base64, "--peer-disco", db.publicKey.base64,
                 "--peer-address", "fd7a:115c:a1e0::2", "--peer-endpoint", MeshLab.hostPort(lab.bIP, 41641),
                 "--connect", "5000", "--file", lab.file("send"), "--rate", "\(rate)"] + common)
        }

        private func waitForPort(_ ns: String, _ port: Int) throws {
            let ok = waitFor({ (try? MeshLab.sh("ip netns exec \(ns) ss -ltnH 'sport = :\(port)'"))?.isEmpty == false }, seconds: 15)
            if !ok { throw MeshLab.LabError(description: "DERP server not listening: \(lab.log("derp").suffix(5))") }
        }

        var statusA: [Status] {
            lab.log("a").compactMap { line in
                let f = line.split(separator: " ")
                guard f.count == 6, f[0] == "status", let t = Int(f[1]), let moved = Int(f[5]) else { return nil }
                return Status(t: t, path: String(f[2]), moved: moved)
            }
        }

        func time(_ name: String, _ event: String) -> Int? {
            lab.log(name).first { $0.hasPrefix(event + " ") }.flatMap { Int($0.split(separator: " ")[1]) }
        }

        /// Waits for both ends to finish; true when B got every byte and the
        /// SHA-256 of what it wrote equals that of what A sent.
        func finish(seconds: Double) -> Bool {
            let done = waitFor({ self.time("a", "done") != nil && self.time("b", "done") != nil }, seconds: seconds)
            guard done else { return false }
            let sums = (try? MeshLab.sh("sha256sum \(lab.file("send")) \(lab.file("received"))")) ?? ""
            let hashes = sums.split(separator: "\n").map { $0.split(separator: " ").first.map(String.init) ?? "" }
            return hashes.count == 2 && hashes[0] == hashes[1] && !hashes[0].isEmpty
        }

        func diagnostics() -> String {
            "A: \(lab.log("a").filter { !$0.hasPrefix("status") }.suffix(8))\n"
                + "A paths: \(Self.transitions(statusA))\nB: \(lab.log("b").filter { !$0.hasPrefix("status") }.suffix(8))"
        }

        static func transitions(_ s: [Status]) -> String {
            var out: [String] = []
            var last = ""
            for x in s where x.path != last {
                out.append("\(x.t)ms:\(x.path)")
                last = x.path
            }
            return out.joined(separator: " ")
        }
    }

    static func waitFor(_ condition: () -> Bool, seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            usleep(50_000)
        }
        return condition()
    }

    // 1. Same LAN → direct within 2 s.
    @Test func sameLANGoesDirectWithinTwoSeconds() throws {
        if let reason = MeshLab.skipReason {
            print("skipped: \(reason)")
            return
        }
        let run = try Run(.lan, size: 8 << 20, rate: 0)
        defer { run.lab.teardown() }
        #expect(run.finish(seconds: 60), "transfer with matching SHA-256\n\(run.diagnostics())")
        let ready = run.time("a", "ready") ?? 0
        let direct = run.statusA.first { $0.path == "direct" }?.t
        #expect(direct != nil && direct! - ready <= 2000, "direct at \(direct.map(String.init) ?? "never") ms, ready at \(ready)\n\(run.diagnostics())")
    }

    // 1 over IPv6: the LAN has IPv6 only, so DERP, STUN, disco and the
    // direct WireGuard path all run over IPv6 on the dual-stack socket.
    @Test func sameLANOverIPv6GoesDirect() throws {
        if let reason = MeshLab.skipReason {
            print("skipped: \(reason)")
            return
        }
        let run = try Run(.lan6, size: 4 << 20, rate: 0)
        defer { run.lab.teardown() }
        #expect(run.finish(seconds: 60), "transfer with matching SHA-256\n\(run.diagnostics())")
        let ready = run.time("a", "ready") ?? 0
        let direct = run.statusA.first { $0.path == "direct" }?.t
        #expect(direct != nil && direct! - ready <= 2000, "direct at \(direct.map(String.init) ?? "never") ms\n\(run.diagnostics())")
        // A's candidates (interfaces and STUN's answer) are IPv6 only.
        let endpoints = run.lab.log("a").first { $0.hasPrefix("ready") }?.split(separator: " ").dropFirst(3) ?? []
        #expect(!endpoints.isEmpty && endpoints.allSatisfy { $0.hasPrefix("[fd00:") }, "endpoints \(Array(endpoints))")
    }

    // 4. UDP blocked entirely → DERP.
    @Test func udpBlockedUsesDERP() throws {
        if let reason = MeshLab.skipReason {
            print("skipped: \(reason)")
            return
        }
        let run = try Run(.lan, size: 2 << 20, rate: 0, blockFirst: true)
        defer { run.lab.teardown() }
        #expect(run.finish(seconds: 90), "transfer with matching SHA-256\n\(run.diagnostics())")
        let paths = Set(run.statusA.map(\.path))
        #expect(!paths.contains("direct"), "never direct: \(Run.transitions(run.statusA))")
        #expect(paths.contains("derp"))
    }

    // 5. UDP blocked mid-transfer → finishes via DERP without reset; direct
    //    again within 10 s after unblocking.
    @Test func udpBlockedMidTransferFallsBackAndReturns() throws {
        if let reason = MeshLab.skipReason {
            print("skipped: \(reason)")
            return
        }
        let run = try Run(.lan, size: 12 << 20, rate: 512 << 10)
        defer { run.lab.teardown() }
        let directEarly = Self.waitFor({ run.statusA.last.map { $0.path == "direct" && $0.moved > 1 << 20 } ?? false }, seconds: 20)
        #expect(directEarly, "direct with data moving before the block\n\(run.diagnostics())")
        try run.lab.blockUDP()
        let fellBack = Self.waitFor({ run.statusA.last.map { $0.path != "direct" } ?? false }, seconds: 12)
        #expect(fellBack, "left the direct path after the block")
        // Data keeps moving over DERP while UDP is blocked.
        let txAtFallback = run.statusA.last?.moved ?? 0
        _ = Self.waitFor({ false }, seconds: 8)
        let moved = (run.statusA.last?.moved ?? 0) - txAtFallback
        #expect(moved > 128 << 10, "moved \(moved) bytes over DERP in 8 s\n\(run.diagnostics())")
        let unblockedAt = run.statusA.last?.t ?? 0
        try run.lab.unblockUDP()
        let back = Self.waitFor({ run.statusA.last.map { $0.path == "direct" } ?? false }, seconds: 12)
        let backAt = run.statusA.first { $0.t > unblockedAt && $0.path == "direct" }?.t
        #expect(back && backAt != nil && backAt! - unblockedAt <= 10_000, "direct again \(backAt.map { "\($0 - unblockedAt) ms" } ?? "never") after unblock\n\(run.diagnostics())")
        #expect(run.finish(seconds: 60), "same stream finished with matching SHA-256 (no reset)\n\(run.diagnostics())")
        #expect(!run.lab.log("a").contains { $0.hasPrefix("error") })
    }

    // 2. Both behind endpoint-independent NAT → direct by hole punching.
    @Test func bothBehindEndpointIndependentNATHolePunch() throws {
        if let reason = MeshLab.skipReason {
            print("skipped: \(reason)")
            return
        }
        let run = try Run(.nat(symmetricB: false), size: 8 << 20, rate: 1 << 20)
        defer { run.lab.teardown() }
        #expect(run.finish(seconds: 60), "transfer with matching SHA-256\n\(run.diagnostics())")
        #expect(run.statusA.contains { $0.path == "direct" }, "went direct: \(Run.transitions(run.statusA))")
    }

    // 3. One behind a NAT mapping each destination to a new port → DERP, works.
    @Test func oneBehindSymmetricNATStaysOnDERP() throws {
        if let reason = MeshLab.skipReason {
            print("skipped: \(reason)")
            return
        }
        let run = try Run(.nat(symmetricB: true), size: 2 << 20, rate: 256 << 10)
        defer { run.lab.teardown() }
        #expect(run.finish(seconds: 60), "transfer with matching SHA-256\n\(run.diagnostics())")
        #expect(!run.statusA.contains { $0.path == "direct" }, "stayed on DERP: \(Run.transitions(run.statusA))")
    }

    // 6. Roaming: A's address changes mid-transfer → the session survives.
    @Test func roamingSurvives() throws {
        if let reason = MeshLab.skipReason {
            print("skipped: \(reason)")
            return
        }
        let run = try Run(.lan, size: 6 << 20, rate: 512 << 10)
        defer { run.lab.teardown() }
        let moving = Self.waitFor({ run.statusA.last.map { $0.moved > 1 << 20 } ?? false }, seconds: 20)
        #expect(moving)
        let device = try MeshLab.sh("ip -n \(run.lab.nsA) -o -4 addr show | grep \"\(run.lab.aIP)/\" | awk '{print $2}'")
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let moved = "10.\(run.lab.net).0.\(Int.random(in: 10...200))"
        // Keep the new (secondary) address when the old primary goes.
        try MeshLab.sh("ip netns exec \(run.lab.nsA) sysctl -qw net.ipv4.conf.all.promote_secondaries=1 net.ipv4.conf.\(device).promote_secondaries=1")
        try MeshLab.sh("ip -n \(run.lab.nsA) addr add \(moved)/24 dev \(device) && ip -n \(run.lab.nsA) addr del \(run.lab.aIP)/24 dev \(device)")
        #expect(run.finish(seconds: 60), "transfer survived the move with matching SHA-256\n\(run.diagnostics())")
        #expect(!run.lab.log("a").contains { $0.hasPrefix("error") })
    }
}

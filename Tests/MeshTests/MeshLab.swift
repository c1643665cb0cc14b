import CryptoPrimitives
import Foundation
import Testing

/// Network namespaces for the mesh scenarios: two node namespaces, a server
/// namespace running `MeshLab derp` and `MeshLab stun`, and (for the NAT
/// scenarios) a router namespace in front of each node with nftables
/// masquerade. Names carry a per-run suffix; `teardown()` deletes every
/// namespace made (the links go with them), also after a failure.
final class MeshLab: @unchecked Sendable {
    enum Topology: Equatable {
        /// A, B and the server on one bridge (10.N.0.0/24).
        case lan
        /// The same bridge with IPv6 only (fd00:N::/64): DERP, STUN and the
        /// direct path all over IPv6.
        case lan6
        /// A and B each behind its own router; routers and server share the
        /// "internet" bridge. `symmetricB`: B's router maps each destination
        /// to a new port (nftables `masquerade random`).
        case nat(symmetricB: Bool)
    }

    static let binary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        .deletingLastPathComponent().appendingPathComponent("MeshLab").path

    static var skipReason: String? {
        if getuid() != 0 { return "not root: namespace scenarios need CAP_NET_ADMIN" }
        if !FileManager.default.isExecutableFile(atPath: "/usr/sbin/nft") { return "nft not installed (scripts/bootstrap.sh)" }
        return nil
    }

    let suffix: String
    let net: Int
    var namespaces: [String] = []
    var processes: [Process] = []
    let directory: URL
    let serverIP: String
    let aIP: String
    let bIP: String

    var nsA: String { "ma\(suffix)" }
    var nsB: String { "mb\(suffix)" }
    var nsS: String { "ms\(suffix)" }
    var nsRA: String { "mra\(suffix)" }
    var nsRB: String { "mrb\(suffix)" }

    init(_ topology: Topology) throws {
        suffix = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        net = Int.random(in: 100...250)
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("meshlab-\(suffix)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        serverIP = topology == .lan6 ? "fd00:\(net)::1" : "10.\(net).0.1"
        switch topology {
        case .lan:
            aIP = "10.\(net).0.2"
            bIP = "10.\(net).0.3"
        case .lan6:
            aIP = "fd00:\(net)::2"
            bIP = "fd00:\(net)::3"
        case .nat:
            aIP = "192.168.\(net).2"
            bIP = "192.168.\(net + 1).2"
        }
        do { try build(topology) } catch {
            teardown()
            throw error
        }
    }

    private func add(_ ns: String) throws {
        try Self.sh("ip netns add \(ns)")
        namespaces.append(ns)
        try Self.sh("ip -n \(ns) link set lo up")
    }

    /// A veth pair: `name` into `inner` with `address`, its peer attached
    /// to the bridge in the server namespace (or into `outer` with `outerAddress`).
    private func veth(_ name: String, inner: String, address: String, bridge: Bool, outer: String? = nil, outerAddress: String? = nil) throws {
        let peer = "p\(name)"
        try Self.sh("ip link add \(name) netns \(inner) type veth peer name \(peer) netns \(outer ?? nsS)")
        try Self.sh("ip -n \(inner) addr add \(address) dev \(name) && ip -n \(inner) link set \(name) up")
        if bridge { try Self.sh("ip -n \(nsS) link set \(peer) master br0") }
        if let outerAddress { try Self.sh("ip -n \(outer ?? nsS) addr add \(outerAddress) dev \(peer)") }
        try Self.sh("ip -n \(outer ?? nsS) link set \(peer) up")
    }

    /// `ip:port` with an IPv6 address in brackets.
    static func hostPort(_ ip: String, _ port: Int) -> String { ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)" }

    private func build(_ topology: Topology) throws {
        try add(nsS)
        try add(nsA)
        try add(nsB)
        // IPv6 addresses without duplicate address detection: usable at once.
        let serverPrefix = topology == .lan6 ? "\(serverIP)/64 nodad" : "\(serverIP)/24"
        try Self.sh("ip -n \(nsS) link add br0 type bridge && ip -n \(nsS) addr add \(serverPrefix) dev br0 && ip -n \(nsS) link set br0 up")
        switch topology {
        case .lan:
            try veth("a\(suffix.prefix(6))", inner: nsA, address: "\(aIP)/24", bridge: true)
            try veth("b\(suffix.prefix(6))", inner: nsB, address: "\(bIP)/24", bridge: true)
        case .lan6:
            try veth("a\(suffix.prefix(6))", inner: nsA, address: "\(aIP)/64 nodad", bridge: true)
            try veth("b\(suffix.prefix(6))", inner: nsB, address: "\(bIP)/64 nodad", bridge: true)
        case .nat(let symmetricB):
            try add(nsRA)
            try add(nsRB)
            for (router, node, wan, lanNet, random) in [
                (nsRA, nsA, "10.\(net).0.2", "192.168.\(net)", false), (nsRB, nsB, "10.\(net).0.3", "192.168.\(net + 1)", symmetricB),
            ] {
                let tag = router == nsRA ? "a" : "b"
                // Router WAN on the bridge, LAN to the node.
                try Self.sh("ip link add wan netns \(router) type veth peer name w\(tag)\(suffix.prefix(6)) netns \(nsS)")
                try Self.sh("ip -n \(router) addr add \(wan)/24 dev wan && ip -n \(router) link set wan up")
                try Self.sh("ip -n \(nsS) link set w\(tag)\(suffix.prefix(6)) master br0 && ip -n \(nsS) link set w\(tag)\(suffix.prefix(6)) up")
                try Self.sh("ip link add lan netns \(router) type veth peer name eth0 netns \(node)")
                try Self.sh("ip -n \(router) addr add \(lanNet).1/24 dev lan && ip -n \(router) link set lan up")
                try Self.sh("ip -n \(node) addr add \(lanNet).2/24 dev eth0 && ip -n \(node) link set eth0 up")
                try Self.sh("ip -n \(node) route add default via \(lanNet).1")
                try Self.sh("ip netns exec \(router) sysctl -qw net.ipv4.ip_forward=1")
                // A home router: masquerade out of WAN; nothing unsolicited in
                // (dropped before conntrack confirms it, so it cannot steal
                // the port a later outbound mapping would reuse).
                let rules = """
                    table ip nat {
                      chain post {
                        type nat hook postrouting priority 100
                        oifname "wan" masquerade\(random ? " random" : "")
                      }
                    }
                    table inet filter {
                      chain input {
                        type filter hook input priority 0
                        iifname "wan" ct state new drop
                      }
                      chain forward {
                        type filter hook forward priority 0
                        iifname "wan" ct state new drop
                      }
                    }
                    """
                try nft(router, rules)
            }
        }
    }

    /// Loads an nftables ruleset in `ns`.
    func nft(_ ns: String, _ rules: String) throws {
        let file = directory.appendingPathComponent("rules-\(UUID().uuidString).nft")
        try rules.write(to: file, atomically: true, encoding: .utf8)
        try Self.sh("ip netns exec \(ns) nft -f \(file.path)")
    }

    /// Drops every UDP datagram in and out of node A's namespace.
    func blockUDP() throws {
        try nft(nsA, """
            table inet meshblock {
              chain in {
                type filter hook input priority -10
                meta l4proto udp drop
              }
              chain out {
                type filter hook output priority -10
                meta l4proto udp drop
              }
            }
            """)
    }

    func unblockUDP() throws { try Self.sh("ip netns exec \(nsA) nft delete table inet meshblock") }

    /// Starts `MeshLab <args>` in `ns`; its output goes to `<name>.log`.
    @discardableResult
    func spawn(_ ns: String, name: String, _ args: [String]) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        p.arguments = ["netns", "exec", ns, Self.binary] + args
        let log = directory.appendingPathComponent("\(name).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        processes.append(p)
        return p
    }

    func log(_ name: String) -> [String] {
        let text = (try? String(contentsOf: directory.appendingPathComponent("\(name).log"), encoding: .utf8)) ?? ""
        return text.split(separator: "\n").map(String.init)
    }

    func file(_ name: String) -> String { directory.appendingPathComponent(name).path }

    func teardown() {
        for p in processes where p.isRunning {
            kill(p.processIdentifier, SIGTERM)
        }
        for p in processes { waitOrKill(p) }
        for ns in namespaces.reversed() { _ = try? Self.sh("ip netns del \(ns)") }
        namespaces = []
        try? FileManager.default.removeItem(at: directory)
    }

    private func waitOrKill(_ p: Process) {
        let deadline = Date().addingTimeInterval(3)
        while p.isRunning, Date() < deadline { usleep(20_000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
    }

    @discardableResult
    static func sh(_ command: String) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", command]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard p.terminationStatus == 0 else {
            throw LabError(description: "`\(command)` failed (\(p.terminationStatus)): \(text)")
        }
        return text
    }

    struct LabError: Error, CustomStringConvertible { let description: String }
}

import Foundation
import Netstack

#if canImport(Glibc)
    import Glibc
#endif

/// Benchmark 2: our stack and the kernel across a TUN device, each
/// direction, against the kernel and the kernel across a veth pair. The
/// kernel side is `iperf3 -s` in a namespace made for this run in both
/// cases; our side is `IPerf3Client`, the reference's is `iperf3 -c`.
/// Needs root; names carry a per-run suffix and are removed on every exit path.
enum KernelPaths {
    static var unavailableReason: String? {
        if getuid() != 0 { return "not root" }
        if access("/dev/net/tun", R_OK | W_OK) != 0 { return "no /dev/net/tun" }
        for tool in ["/usr/bin/iperf3", "/usr/sbin/ip", "/usr/bin/ip", "/sbin/ip"] where access(tool, X_OK) == 0 {
            if tool.hasSuffix("iperf3") { continue }
            return access("/usr/bin/iperf3", X_OK) == 0 ? nil : "iperf3 not installed"
        }
        return "ip not installed"
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
            throw IPerf3Client.Failure(description: "`\(command)` failed: \(text)")
        }
        return text
    }

    /// Ends every process in namespace `ns`, then deletes it. `ip netns
    /// exec` forks, so terminating the spawned process alone would leave
    /// its iperf3 running, reparented to init, in a namespace without a name.
    static func removeNamespace(_ ns: String) {
        _ = try? sh("ip netns pids \(ns) | xargs -r kill -9")
        _ = try? sh("ip netns del \(ns)")
    }

    static func spawn(_ command: String) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", "exec " + command]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        return p
    }

    /// Bytes per second, ours → kernel and kernel → ours, over a TUN device
    /// with or without its virtio-net header (TSO and checksum offload).
    static func ours(seconds: Int, offload: Bool) async throws -> (up: Double, down: Double) {
        let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let ns = "nsbt\(suffix)"
        let tunName = "tnb\(suffix)"
        let tun = try TUNLink(name: tunName, mtu: 1500, offload: offload)
        guard tun.offload == offload else {
            throw IPerf3Client.Failure(description: "the kernel refused the TUN offload (IFF_VNET_HDR, TUNSETOFFLOAD)")
        }
        let stack = NetStack(.init(addresses: [IPAddress("10.201.0.2")!]), link: tun)
        var server: Process?
        defer {
            if let server, server.isRunning { server.terminate() }
            tun.stop()
            stack.stop()
            removeNamespace(ns)
        }
        try sh("ip netns add \(ns)")
        try sh("ip link set \(tunName) netns \(ns)")
        try sh(
            "ip netns exec \(ns) sh -c 'ip link set lo up && ip addr add 10.201.0.1/24 dev \(tunName) && ip link set \(tunName) up'"
        )
        tun.start(delivering: stack)
        server = try spawn("ip netns exec \(ns) iperf3 -s -p 5201")
        try await Task.sleep(for: .milliseconds(500))
        let client = IPerf3Client(stack: stack, server: SocketAddress(IPAddress("10.201.0.1")!, 5201))
        let up = try await client.run(seconds: seconds, reverse: false)
        try await Task.sleep(for: .milliseconds(300))
        let down = try await client.run(seconds: seconds, reverse: true)
        return (up, down)
    }

    /// Bytes per second between two namespaces joined by a veth pair, iperf3 at both ends.
    static func kernel(seconds: Int) throws -> (up: Double, down: Double) {
        let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let a = "nsba\(suffix)"
        let b = "nsbb\(suffix)"
        var server: Process?
        defer {
            if let server, server.isRunning { server.terminate() }
            removeNamespace(a)
            removeNamespace(b)
        }
        try sh("ip netns add \(a) && ip netns add \(b)")
        try sh("ip link add vba\(suffix) netns \(a) type veth peer name vbb\(suffix) netns \(b)")
        try sh(
            "ip netns exec \(a) sh -c 'ip link set lo up && ip addr add 10.202.0.2/24 dev vba\(suffix) && ip link set vba\(suffix) up'"
        )
        try sh(
            "ip netns exec \(b) sh -c 'ip link set lo up && ip addr add 10.202.0.1/24 dev vbb\(suffix) && ip link set vbb\(suffix) up'"
        )
        server = try spawn("ip netns exec \(b) iperf3 -s -p 5201")
        usleep(500_000)
        func measure(_ reverse: Bool) throws -> Double {
            let json = try sh(
                "ip netns exec \(a) iperf3 -c 10.202.0.1 -p 5201 -t \(seconds) -J \(reverse ? "-R" : "")")
            guard let o = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
                let end = o["end"] as? [String: Any], let sum = end["sum_received"] as? [String: Any],
                let bps = (sum["bits_per_second"] as? NSNumber)?.doubleValue
            else { throw IPerf3Client.Failure(description: "iperf3 -J output not understood") }
            return bps / 8
        }
        let up = try measure(false)
        usleep(300_000)
        let down = try measure(true)
        return (up, down)
    }
}

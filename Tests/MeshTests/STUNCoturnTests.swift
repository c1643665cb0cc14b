import Foundation
import Mesh
import Testing

/// STUN both ways against coturn, the real peer DESIGN.md names: our client
/// against `turnserver`, and coturn's `turnutils_stunclient` against ours.
/// Loopback only.
@Suite(.serialized) struct STUNCoturnTests {
    @Test(arguments: ["127.0.0.1", "::1"])
    func ourClientAgainstTurnserver(_ host: String) throws {
        let turnserver = try #require(Tool.path("turnserver"), "coturn is not installed; run scripts/bootstrap.sh")
        let port = try Tool.freeUDPPort(host)
        let dir = try Tool.temporaryDirectory("coturn")
        defer { try? FileManager.default.removeItem(at: dir) }
        let server = try Tool.start(
            turnserver,
            [
                "-n", "--listening-ip=\(host)", "-p", "\(port)", "--stun-only", "--no-tls", "--no-dtls", "--no-cli",
                "--pidfile", dir.appendingPathComponent("pid").path, "--log-file",
                dir.appendingPathComponent("log").path,
                "--userdb", dir.appendingPathComponent("db").path, "--no-stdout-log",
            ])
        defer { Tool.stop(server) }

        let socket = try UDPSocket(bind: Endpoint(host)!)
        let serverEndpoint = Endpoint(host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)")!
        // turnserver needs a moment to bind; our client retransmits, and we
        // retry the whole query a few times while it starts.
        var mapped: Endpoint?
        for _ in 0..<20 where mapped == nil {
            mapped = try? STUNClient.mappedAddress(via: socket, server: serverEndpoint, attempts: 2)
        }
        #expect(
            mapped == socket.localEndpoint, "coturn saw \(String(describing: mapped)), we are \(socket.localEndpoint)")
    }

    @Test(arguments: ["127.0.0.1", "::1"])
    func turnutilsStunclientAgainstOurServer(_ host: String) throws {
        let client = try #require(
            Tool.path("turnutils_stunclient"), "coturn is not installed; run scripts/bootstrap.sh")
        let server = try STUNServer(listen: Endpoint(host)!)
        server.start()
        defer { server.stop() }
        let result = try Tool.run(client, ["-p", "\(server.localEndpoint.port)", host])
        #expect(result.status == 0, "turnutils_stunclient failed: \(result.output)")
        let expected = host.contains(":") ? "UDP reflexive addr: [\(host)]:" : "UDP reflexive addr: \(host):"
        #expect(
            result.output.contains("UDP reflexive addr:")
                && (result.output.contains(expected) || result.output.contains("\(host):")),
            "unexpected output: \(result.output)")
        #expect(server.counters.answered >= 1)
    }
}

/// Process helpers for tests that drive real peers.
enum Tool {
    static func path(_ name: String) -> String? {
        for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/bin", "/sbin"]
        where FileManager.default.isExecutableFile(atPath: "\(dir)/\(name)") {
            return "\(dir)/\(name)"
        }
        return nil
    }

    static func temporaryDirectory(_ prefix: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tether-\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// A UDP port that was free a moment ago on `host`.
    static func freeUDPPort(_ host: String) throws -> UInt16 {
        let socket = try UDPSocket(bind: Endpoint(host)!)
        return socket.localEndpoint.port
    }

    static func start(_ path: String, _ args: [String]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = args
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// turnserver does not exit promptly on SIGTERM, so peers are killed.
    static func stop(_ process: Process) {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    static func run(_ path: String, _ args: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = args
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

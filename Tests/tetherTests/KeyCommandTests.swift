import Foundation
import Testing

/// `tether genkey` / `tether pubkey` against the real peer, `wg pubkey`
/// from wireguard-tools: both must derive the same public key.
@Suite struct KeyCommandTests {
    static let tether = productsDirectory().appendingPathComponent("tether").path

    /// The test runner (`<name>PackageTests.xctest`) is built next to the
    /// products, so `tether` is in the same folder.
    static func productsDirectory() -> URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    }

    static func run(_ path: String, _ args: [String], stdin: String = "") throws -> (status: Int32, out: String, err: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = args
        let input = Pipe(), output = Pipe(), error = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = error
        try process.run()
        input.fileHandleForWriting.write(Data(stdin.utf8))
        try input.fileHandleForWriting.close()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }

    static func which(_ tool: String) -> String? {
        for dir in ["/usr/bin", "/usr/local/bin", "/bin"] where FileManager.default.isExecutableFile(atPath: "\(dir)/\(tool)") {
            return "\(dir)/\(tool)"
        }
        return nil
    }

    @Test func pubkeyMatchesWireGuardTools() throws {
        let wg = try #require(Self.which("wg"), "wireguard-tools (wg) is not installed; run scripts/bootstrap.sh")
        for _ in 0..<5 {
            let key = try Self.run(Self.tether, ["genkey"])
            #expect(key.status == 0)
            let ours = try Self.run(Self.tether, ["pubkey"], stdin: key.out)
            let theirs = try Self.run(wg, ["pubkey"], stdin: key.out)
            #expect(ours.status == 0 && theirs.status == 0)
            #expect(ours.out == theirs.out, "tether pubkey and wg pubkey disagree")
        }
        // And a key made by `wg genkey` reads the same way.
        let wgKey = try Self.run(wg, ["genkey"])
        #expect(try Self.run(Self.tether, ["pubkey"], stdin: wgKey.out).out == Self.run(wg, ["pubkey"], stdin: wgKey.out).out)
    }

    @Test func badKeyIsAClearError() throws {
        let result = try Self.run(Self.tether, ["pubkey"], stdin: "not a key\n")
        #expect(result.status != 0)
        #expect(result.err.contains("expected 44 characters of base64"))
    }
}

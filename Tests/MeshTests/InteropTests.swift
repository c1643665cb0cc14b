import Foundation
import Testing

/// Interop against Debian's wireguard-go and wg in network namespaces
/// (scripts/interop/wireguard-go.sh). Runs as root with the tools present;
/// otherwise skipped with the reason printed.
@Suite(.serialized) struct InteropTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static var skipReason: String? {
        if getuid() != 0 { return "not root: namespace interop tests skipped" }
        for tool in ["/usr/bin/wireguard-go", "/usr/bin/wg", "/usr/bin/python3", "/usr/bin/bc"]
        where !FileManager.default.isExecutableFile(atPath: tool) {
            return "\(tool) missing (scripts/bootstrap.sh installs it): interop tests skipped"
        }
        if tether == nil { return "tether binary not built: interop tests skipped" }
        return nil
    }

    static var tether: String? {
        #if DEBUG
            let config = "debug"
        #else
            let config = "release"
        #endif
        let path = root.appendingPathComponent(".build/\(config)/tether").path
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }

    @Test(arguments: ["nopsk", "psk"])
    func againstWireGuardGo(mode: String) throws {
        if let reason = Self.skipReason {
            print("InteropTests: \(reason)")
            return
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [
            Self.root.appendingPathComponent("scripts/interop/wireguard-go.sh").path, Self.tether!, mode, "256",
        ]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        print(text)
        #expect(process.terminationStatus == 0)
        #expect(text.contains("6 passed, 0 failed"))
    }
}

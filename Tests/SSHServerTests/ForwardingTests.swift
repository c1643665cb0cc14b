import Foundation
import Testing

/// Port and agent forwarding with the real OpenSSH client, reaching a small
/// HTTP server through the tunnel with curl.
@Suite(.serialized) struct ForwardingTests {
    let server = TestServer.shared
    let app = TinyHTTPServer()

    private func curl(_ arguments: [String]) throws -> String {
        try run(["curl", "-s", "--max-time", "5"] + arguments).text
    }

    private func forwarded(_ arguments: [String], check: () throws -> String) throws -> String {
        let ssh = try BackgroundProcess(
            ["ssh", "-F", server.config, "-N", "-o", "ExitOnForwardFailure=yes", "-o", "LogLevel=INFO"] + arguments
                + ["tether-test"])
        defer { ssh.stop() }
        var last = ""
        _ = try eventually(15) {
            last = try check()
            return last == TinyHTTPServer.body
        }
        return last + ssh.stderr
    }

    @Test func localForward() throws {
        let port = freePort()
        let body = try forwarded(["-L", "\(port):127.0.0.1:\(app.port)"]) {
            try curl(["http://127.0.0.1:\(port)/"])
        }
        #expect(body.hasPrefix(TinyHTTPServer.body))
    }

    @Test func dynamicForwardWithSocks5Hostname() throws {
        let port = freePort()
        let body = try forwarded(["-D", "127.0.0.1:\(port)"]) {
            try curl(["--socks5-hostname", "127.0.0.1:\(port)", "http://localhost:\(app.port)/"])
        }
        #expect(body.hasPrefix(TinyHTTPServer.body))
    }

    @Test func directTCPIPToAClosedPortIsRefused() throws {
        let port = freePort()
        let closed = freePort()
        let ssh = try BackgroundProcess(
            ["ssh", "-F", server.config, "-N", "-o", "LogLevel=INFO", "-L", "\(port):127.0.0.1:\(closed)", "tether-test"])
        defer { ssh.stop() }
        #expect(try eventually(15) {
            _ = try curl(["http://127.0.0.1:\(port)/"])
            return ssh.stderr.contains("open failed")
        })
    }

    @Test func remoteForwardFixedPort() throws {
        let port = freePort()
        let body = try forwarded(["-R", "\(port):127.0.0.1:\(app.port)"]) {
            try curl(["http://127.0.0.1:\(port)/"])
        }
        #expect(body.hasPrefix(TinyHTTPServer.body))
    }

    @Test func remoteForwardPortZeroIsAllocated() throws {
        let ssh = try BackgroundProcess(
            ["ssh", "-F", server.config, "-N", "-o", "LogLevel=INFO", "-o", "ExitOnForwardFailure=yes",
             "-R", "0:127.0.0.1:\(app.port)", "tether-test"])
        defer { ssh.stop() }
        var port: UInt16?
        _ = eventually(15) {
            // "Allocated port 41234 for remote forward to 127.0.0.1:…"
            let words = ssh.stderr.split(whereSeparator: \.isWhitespace)
            if let i = words.firstIndex(of: "port"), i > 0, words[i - 1] == "Allocated", i + 1 < words.count {
                port = UInt16(words[i + 1])
            }
            return port != nil
        }
        let allocated = try #require(port, "ssh said: \(ssh.stderr)")
        #expect(allocated != 0)
        var body = ""
        _ = try eventually(10) {
            body = try curl(["http://127.0.0.1:\(allocated)/"])
            return body == TinyHTTPServer.body
        }
        #expect(body == TinyHTTPServer.body)
    }

    @Test func agentForwarding() throws {
        let socket = server.directory + "/agent-\(UUID().uuidString.prefix(8))"
        let agent = try run(["ssh-agent", "-a", socket])
        let pidLine = agent.text.split(separator: ";").first { $0.contains("SSH_AGENT_PID=") }
        let pid = pidLine.flatMap { Int32($0.split(separator: "=").last ?? "") }
        defer { if let pid { kill(pid, SIGTERM) } }
        let env = ["SSH_AUTH_SOCK": socket]
        #expect(try run(["ssh-add", server.directory + "/id_ed25519"], environment: env).status == 0)
        let result = try run(
            ["ssh", "-F", server.config, "-A", "tether-test", "echo $SSH_AUTH_SOCK; ssh-add -l"], environment: env)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.text.contains("tether-test-key (ED25519)"))
        #expect(!result.text.hasPrefix(socket))  // the session sees the server's forwarded socket
    }

    @Test func x11RequestSetsDisplayAndCookie() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/xauth") else {
            Issue.record("xauth is not installed (scripts/apt-packages.txt lists it)")
            return
        }
        let result = try run(
            ["ssh", "-F", server.config, "-X", "-o", "ForwardX11Trusted=yes", "tether-test",
             "echo $DISPLAY; xauth list \"$DISPLAY\""],
            environment: ["DISPLAY": ":97", "XAUTHORITY": server.directory + "/client-xauthority"])
        let lines = result.text.split(separator: "\n")
        #expect(lines.first?.hasPrefix("localhost:") == true, "\(result.stderr)")
        #expect(lines.count >= 2 && lines[1].contains("MIT-MAGIC-COOKIE-1"))
    }
}

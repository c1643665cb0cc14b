import CLibSSH
import Glibc

/// X11 forwarding (RFC 4254 §6.3), as sshd does it with `X11UseLocalhost
/// yes`: listen on 127.0.0.1:6000+N for the first free display N ≥ 10,
/// record the client's cookie with `xauth` so X clients present it, and
/// export `DISPLAY=localhost:N.screen`. Each connection to the display
/// becomes an `x11` channel toward the client.
extension Connection {
    static let firstX11Display = 10

    func x11Display(protocol: String, cookie: String, screen: UInt32) -> String? {
        guard `protocol` == "MIT-MAGIC-COOKIE-1", !cookie.isEmpty,
            cookie.allSatisfy({ $0.isHexDigit })
        else { return nil }
        for number in Self.firstX11Display..<(Self.firstX11Display + 990) {
            guard let (fds, _) = SocketAddress.listenTCP(host: "127.0.0.1", port: UInt16(6000 + number)) else {
                continue
            }
            for fd in fds { listeners[fd] = ForwardListener(fd: fd, kind: .x11) }
            let display = "unix:\(number).\(screen)"
            if !runXauth(["xauth", "-q", "add", display, `protocol`, cookie]) {
                log("x11: xauth failed; X clients will lack the cookie")
            }
            return "localhost:\(number).\(screen)"
        }
        return nil
    }

    private func runXauth(_ argv: [String]) -> Bool {
        for directory in ["/usr/bin", "/usr/local/bin", "/bin"] {
            let path = directory + "/xauth"
            guard access(path, X_OK) == 0 else { continue }
            var environment = ["HOME=\(user.home)", "PATH=/usr/bin:/bin"]
            if let xa = getenv("XAUTHORITY") { environment.append("XAUTHORITY=" + String(cString: xa)) }
            // The same careful spawn as a session's program; xauth is quick,
            // so waiting for it here holds up only this connection.
            guard
                let child = try? ChildProcess.spawn(
                    path: path, argv: argv, environment: environment, directory: user.home, ptySlave: nil)
            else { return false }
            // stdout and stderr stay open until it exits: a closed pipe
            // would kill it with SIGPIPE on its first warning, before it
            // wrote the file. Both pipes hold far more than xauth says.
            close(child.stdin)
            var status: Int32 = 0
            while waitpid(child.pid, &status, 0) < 0 && errno == EINTR {}
            var said = [UInt8](repeating: 0, count: 4096)
            let n = said.withUnsafeMutableBytes { read(child.stderr, $0.baseAddress, $0.count) }
            for fd in [child.stdout, child.stderr, child.pidfd] where fd >= 0 { close(fd) }
            if status != 0 {
                let text = n > 0 ? String(decoding: said[0..<n], as: UTF8.self) : "no message"
                log("x11: \(argv.joined(separator: " ")) exited with status \(status): \(text)")
            }
            return status == 0
        }
        return false
    }
}

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
            for fd in [child.stdin, child.stdout, child.stderr, child.pidfd] { close(fd) }
            var status: Int32 = 0
            while waitpid(child.pid, &status, 0) < 0 && errno == EINTR {}
            return status == 0
        }
        return false
    }
}

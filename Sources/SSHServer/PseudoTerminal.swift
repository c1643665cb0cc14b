import CLibSSH
import Glibc

/// A pseudo-terminal for a `pty-req` (RFC 4254 §6.2). The server keeps the
/// slave side open until the program exits: without that, reading the master
/// before the child has opened its slave would report end of file.
///
/// The request's terminal modes (`TerminalModes`) are applied to the
/// slave's termios on top of the kernel's defaults plus IUTF8: clients that
/// send no modes (paramiko, `ssh -tt` from a pipe) still get a terminal whose
/// line editing erases whole UTF-8 characters, as on any modern login.
final class PseudoTerminal {
    let master: Int32
    private var slave: Int32
    let slavePath: String
    let term: String

    private init(master: Int32, slave: Int32, slavePath: String, term: String) {
        self.master = master
        self.slave = slave
        self.slavePath = slavePath
        self.term = term
    }

    static func open(term: String) -> PseudoTerminal? {
        let master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard master >= 0 else { return nil }
        var name = [CChar](repeating: 0, count: 128)
        guard grantpt(master) == 0, unlockpt(master) == 0, ptsname_r(master, &name, name.count) == 0 else {
            close(master)
            return nil
        }
        let path = String(cString: name)
        let slave = Glibc.open(path, O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard slave >= 0 else {
            close(master)
            return nil
        }
        setNonBlocking(master)
        return PseudoTerminal(master: master, slave: slave, slavePath: path, term: term.isEmpty ? "vt100" : term)
    }

    /// TIOCSWINSZ; the kernel sends SIGWINCH to the foreground job.
    func resize(columns: Int32, rows: Int32, pixelWidth: Int32, pixelHeight: Int32) {
        func clamp(_ v: Int32) -> UInt16 { UInt16(clamping: max(0, v)) }
        _ = tether_pty_set_winsize(master, clamp(rows), clamp(columns), clamp(pixelWidth), clamp(pixelHeight))
    }

    /// Applies `modes` (after IUTF8 as the default) to the terminal.
    func apply(_ modes: TerminalModes) {
        guard slave >= 0 else { return }
        var settings = termios()
        guard tcgetattr(slave, &settings) == 0 else { return }
        settings.c_iflag |= UInt32(IUTF8)
        modes.apply(to: &settings)
        _ = tcsetattr(slave, TCSANOW, &settings)
    }

    func closeSlave() {
        if slave >= 0 {
            close(slave)
            slave = -1
        }
    }

    /// The master is closed by the channel (it is its source and sink).
    func closeAll() { closeSlave() }
}

/// The environment of a session's program, as a login would set it
/// (sshd(8) "ENVIRONMENT", login(1)): the server's own environment minus
/// what belongs to its own session, then the account's variables, then
/// what the client sent (`SendEnv`/`SetEnv`; all names are accepted).
enum LoginEnvironment {
    private static let dropped: Set<String> = [
        "SSH_AUTH_SOCK", "SSH_CLIENT", "SSH_CONNECTION", "SSH_TTY", "TERM", "DISPLAY", "SSH_ORIGINAL_COMMAND",
        "XAUTHORITY", "OLDPWD", "PWD", "SHLVL", "_",
    ]

    static func build(
        user: LoginUser, endpoints: SSHConnectionEndpoints, term: String?, tty: String?, agentSocket: String?,
        display: String?, client: [(String, String)]
    ) -> [String] {
        var order: [String] = []
        var values: [String: String] = [:]
        func set(_ name: String, _ value: String) {
            if values[name] == nil { order.append(name) }
            values[name] = value
        }
        var cursor = environ
        while let entry = cursor.pointee {
            let text = String(cString: entry)
            if let eq = text.firstIndex(of: "=") {
                let name = String(text[..<eq])
                if !dropped.contains(name) { set(name, String(text[text.index(after: eq)...])) }
            }
            cursor += 1
        }
        set("USER", user.name)
        set("LOGNAME", user.name)
        set("HOME", user.home)
        set("SHELL", user.shell)
        if values["PATH"] == nil { set("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin") }
        set(
            "SSH_CONNECTION",
            "\(endpoints.clientAddress) \(endpoints.clientPort) \(endpoints.serverAddress) \(endpoints.serverPort)")
        set("SSH_CLIENT", "\(endpoints.clientAddress) \(endpoints.clientPort) \(endpoints.serverPort)")
        if let tty { set("SSH_TTY", tty) }
        if let term { set("TERM", term) }
        if let agentSocket { set("SSH_AUTH_SOCK", agentSocket) }
        if let display { set("DISPLAY", display) }
        for (name, value) in client { set(name, value) }
        return order.map { "\($0)=\(values[$0]!)" }
    }
}

import CLibSSH
import Glibc

/// A "session" channel (RFC 4254 §6): requests that prepare it (`env`,
/// `pty-req`, `auth-agent-req@openssh.com`, `x11-req`), then exactly one of
/// `shell`, `exec` or `subsystem`, then `window-change` and `signal` while
/// it runs. When the program exits and its output is drained the server
/// sends `exit-status` (or `exit-signal`, §6.10), EOF and close.
final class SessionChannel: ChannelHandler {
    private var clientEnvironment: [(String, String)] = []
    private var pty: PseudoTerminal?
    private var child: ChildProcess?
    private var waitStatus: Int32?
    private var outputDone = false
    private var started = false
    private var agentSocket: String?
    private var display: String?
    private var sftp: SFTPSession?

    // MARK: requests before start

    override func envRequest(name: String, value: String) -> Bool {
        // Every name is accepted (the issue: "env (all accepted)"); a value
        // larger than any real one is refused rather than stored.
        guard !started, !name.isEmpty, !name.contains("="), value.utf8.count <= 64 * 1024 else { return false }
        clientEnvironment.removeAll { $0.0 == name }
        clientEnvironment.append((name, value))
        return true
    }

    override func ptyRequest(
        term: String, columns: Int32, rows: Int32, pixelWidth: Int32, pixelHeight: Int32, modes: TerminalModes
    ) -> Bool {
        guard !started, pty == nil, let terminal = PseudoTerminal.open(term: term) else { return false }
        terminal.apply(modes)
        terminal.resize(columns: columns, rows: rows, pixelWidth: pixelWidth, pixelHeight: pixelHeight)
        pty = terminal
        return true
    }

    override func windowChange(columns: Int32, rows: Int32, pixelWidth: Int32, pixelHeight: Int32) -> Bool {
        guard let pty else { return false }
        pty.resize(columns: columns, rows: rows, pixelWidth: pixelWidth, pixelHeight: pixelHeight)
        return true
    }

    override func agentForwardingRequest() {
        agentSocket = connection.agentSocketPath()
    }

    override func x11Request(singleConnection: Bool, protocol: String, cookie: String, screen: UInt32) {
        display = connection.x11Display(protocol: `protocol`, cookie: cookie, screen: screen)
    }

    override func signalRequest(_ name: String) {
        guard let child, waitStatus == nil, let number = SignalName.number(name) else { return }
        kill(child.pid, number)
    }

    // MARK: start

    override func shellRequest() -> Bool {
        guard !started else { return false }
        sendMessageOfTheDay()
        let shell = connection.user.shell
        let base = shell.split(separator: "/").last.map(String.init) ?? "sh"
        // argv[0] starting with "-" is how login(1) tells a shell it is a
        // login shell (bash reads ~/.profile, zsh ~/.zprofile).
        return start(argv: ["-" + base])
    }

    override func execRequest(_ command: String) -> Bool {
        guard !started else { return false }
        return start(argv: [connection.user.shell, "-c", command])
    }

    override func subsystemRequest(_ name: String) -> Bool {
        guard !started, name == "sftp" else { return false }
        started = true
        sftp = SFTPSession(home: connection.user.home)
        return true
    }

    private func start(argv: [String]) -> Bool {
        let environment = LoginEnvironment.build(
            user: connection.user, endpoints: connection.endpoints, term: pty?.term, tty: pty?.slavePath,
            agentSocket: agentSocket, display: display, client: clientEnvironment)
        do {
            let process = try ChildProcess.spawn(
                path: connection.user.shell, argv: argv, environment: environment, directory: connection.user.home,
                ptySlave: pty?.slavePath)
            child = process
            if let pty {
                source = pty.master
                sink = pty.master
            } else {
                source = process.stdout
                errorSource = process.stderr
                sink = process.stdin
            }
            started = true
            return true
        } catch {
            connection.log("cannot start \(argv[0]): \(error)")
            return false
        }
    }

    private func sendMessageOfTheDay() {
        guard let path = connection.configuration.motdPath,
            access(connection.user.home + "/.hushlogin", F_OK) != 0,
            var text = readSmallFile(path), !text.isEmpty
        else { return }
        if pty != nil {
            // The terminal is raw on the client side; a pty would add the CR.
            text = text.flatMap { $0 == 10 ? [13, 10] : [$0] }
        }
        _ = text.withUnsafeBytes { ssh_channel_write(channel, $0.baseAddress, UInt32($0.count)) }
    }

    // MARK: running

    /// A child's stdin pipe (not a pty: keystrokes go out at once; not
    /// SFTP, which reads requests itself). A client that closes the channel
    /// hangs the child up (`hangUp`), so held input loses nothing.
    override var batchesInput: Bool { pty == nil && sftp == nil && child != nil }

    override func receive(_ data: UnsafeRawBufferPointer, isStderr: Bool) -> Int {
        guard let sftp else { return super.receive(data, isStderr: isStderr) }
        connection.noteActivity()
        if finished { return data.count }
        // Stop taking requests while replies back up (a client that does not
        // read); libssh then holds the rest and stops opening the window.
        guard sftp.pendingOutput < SFTPSession.outputLimit else { return 0 }
        if !sftp.feed(data) {
            connection.log("sftp: malformed packet; closing the channel")
            finish()
        }
        flushSFTP()
        return data.count
    }

    override func receiveEOF() {
        if sftp != nil {
            // The client is done; answer as sshd's sftp-server would by
            // exiting 0 (scp treats any other status as failure).
            flushSFTP()
            ssh_channel_request_send_exit_status(channel, 0)
            sendEOF()
            finish()
            return
        }
        super.receiveEOF()
    }

    override func closeSink() {
        // A pty has no separate input to close (sshd ignores EOF there too).
        guard pty == nil else { return }
        closeFD(sink)
        sink = -1
    }

    override func service() {
        if let child, child.pidfd < 0, waitStatus == nil, !finished { collectExit(of: child) }
        if let sftp, !finished {
            flushSFTP()
            if sftp.pendingOutput < SFTPSession.outputLimit {
                // Requests left in libssh while replies were backed up.
                let scratch = connection.scratch
                let n = ssh_channel_read_nonblocking(channel, scratch.baseAddress, UInt32(scratch.count), 0)
                if n > 0 {
                    if !sftp.feed(UnsafeRawBufferPointer(rebasing: scratch[0..<Int(n)])) { finish() }
                    flushSFTP()
                }
            }
        }
        // With a pty, output after the exit is whatever the terminal holds:
        // drain it and finish, without waiting for background jobs that keep
        // the terminal open (as sshd does).
        if let pty, waitStatus != nil, !outputDone, !finished, ssh_channel_window_size(channel) > 0 {
            let scratch = connection.scratch
            while true {
                let window = Int(ssh_channel_window_size(channel))
                guard window > 0 else { return }
                let n = read(pty.master, scratch.baseAddress, min(window, scratch.count))
                if n <= 0 { break }
                ssh_channel_write(channel, scratch.baseAddress, UInt32(n))
            }
            outputDone = true
            reportExit()
        }
    }

    private func flushSFTP() {
        guard let sftp else { return }
        while sftp.pendingOutput > 0 {
            let window = Int(ssh_channel_window_size(channel))
            guard window > 0 else { return }
            let written = sftp.withPendingOutput(upTo: window) { chunk in
                ssh_channel_write(channel, chunk.baseAddress, UInt32(chunk.count))
            }
            guard written > 0 else {
                finish()
                return
            }
        }
    }

    override func extraWatches(into set: inout PollSet, owner: Int) {
        if let child, child.pidfd >= 0, waitStatus == nil { set.add(child.pidfd, Int16(POLLIN), owner: owner) }
    }

    override func handleExtra(fd: Int32, events: Int16) {
        guard let child, fd == child.pidfd else { return }
        collectExit(of: child)
    }

    private func collectExit(of child: ChildProcess) {
        guard let status = child.collectExit() else { return }
        waitStatus = status
        closeFD(child.pidfd)
        pty?.closeSlave()
        if outputDone { reportExit() }
    }

    override func outputFinished() {
        outputDone = true
        if waitStatus != nil { reportExit() }
    }

    /// RFC 4254 §6.10: exit-status for a normal exit, exit-signal when a
    /// signal ended the program (OpenSSH's client then exits with 255).
    private func reportExit() {
        guard let status = waitStatus, !finished else { return }
        let signal = status & 0x7f
        if signal == 0 {
            ssh_channel_request_send_exit_status(channel, (status >> 8) & 0xff)
        } else {
            ssh_channel_request_send_exit_signal(
                channel, SignalName.name(signal), status & 0x80 != 0 ? 1 : 0, "", "")
        }
        sendEOF()
        finish()
    }

    override func clientClosed() {
        hangUp()
        finish()
    }

    override func abandon() {
        hangUp()
        finish()
    }

    /// The client went away while the program runs: SIGHUP, as a terminal
    /// hang-up would, and let the reaper collect it.
    private func hangUp() {
        guard let child, waitStatus == nil else { return }
        if pty != nil {
            kill(-child.pid, SIGHUP)  // the whole session's process group
        }
        kill(child.pid, SIGHUP)
        closeFD(child.pidfd)
        waitStatus = 0
        Reaper.reap(child.pid)
    }

    override func finish() {
        super.finish()
        pty?.closeAll()
        pty = nil
        sftp?.closeAll()
    }
}

/// Reads a small text file (MOTD); nil when missing.
func readSmallFile(_ path: String, limit: Int = 64 * 1024) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while out.count < limit {
        let n = read(fd, &chunk, chunk.count)
        if n <= 0 { break }
        out.append(contentsOf: chunk[0..<n])
    }
    return out
}

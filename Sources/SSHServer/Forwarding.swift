import CLibSSH
import Glibc

/// A channel that carries one stream socket both ways: `direct-tcpip`
/// (RFC 4254 §7.2, `ssh -L`/`-D`), `forwarded-tcpip` (§7.2, `ssh -R`),
/// `auth-agent@openssh.com` (`ssh -A`) and `x11` (§6.3.2). EOF passes
/// through in each direction on its own (`shutdown(SHUT_WR)` one way, channel
/// EOF the other); the channel closes when both directions are done.
final class SocketChannel: ChannelHandler {
    /// Set while a channel we opened waits for the client's confirmation.
    private var pendingOpen: (() -> Int32)?
    private let socketFD: Int32
    private var readDone = false

    init(connection: Connection, channel: OpaquePointer, socket: Int32) {
        socketFD = socket
        super.init(connection: connection, channel: channel)
        setNonBlocking(socket)
        source = socket
        sink = socket
    }

    /// A channel the server opens toward the client; `open` is libssh's
    /// non-blocking open call, repeated until it stops saying SSH_AGAIN.
    init(connection: Connection, channel: OpaquePointer, socket: Int32, open: @escaping () -> Int32) {
        socketFD = socket
        super.init(connection: connection, channel: channel)
        setNonBlocking(socket)
        pendingOpen = open
        service()
    }

    override func service() {
        guard let open = pendingOpen, !finished else { return }
        let rc = open()
        if rc == SSH_OK {
            pendingOpen = nil
            source = socketFD
            sink = socketFD
        } else if rc != SSH_AGAIN {
            pendingOpen = nil
            closeFD(socketFD)
            finish()
        }
    }

    override func outputFinished() {
        readDone = true
        sendEOF()
        if sinkClosed { finish() }
    }

    override func closeSink() {
        super.closeSink()
        if readDone { finish() }
    }

    override func finish() {
        if pendingOpen != nil {
            pendingOpen = nil
            closeFD(socketFD)
        }
        super.finish()
    }
}

/// A listening socket that turns each accepted connection into a channel
/// the server opens toward the client: `tcpip-forward` (`ssh -R`), the
/// forwarded agent socket, X11 displays.
final class ForwardListener {
    enum Kind {
        /// RFC 4254 §7.1: the address and port as the client asked for them
        /// (with the allocated port when it asked for 0).
        case remoteForward(address: String, port: UInt16)
        case agent(directory: String)
        case x11
    }

    let fd: Int32
    let kind: Kind

    init(fd: Int32, kind: Kind) {
        self.fd = fd
        self.kind = kind
    }

    func accept(on connection: Connection) {
        while true {
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let client = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    accept4(fd, $0, &length, Int32(SOCK_CLOEXEC.rawValue | SOCK_NONBLOCK.rawValue))
                }
            }
            guard client >= 0 else { return }
            guard let channel = ssh_channel_new(connection.session) else {
                Glibc.close(client)
                return
            }
            let origin = SocketAddress.endpoint(of: &storage) ?? SocketAddress.Endpoint(host: "127.0.0.1", port: 0)
            let open: () -> Int32
            switch kind {
            case .remoteForward(let address, let port):
                SocketAddress.setNoDelay(client)
                open = {
                    ssh_channel_open_reverse_forward(channel, address, Int32(port), origin.host, Int32(origin.port))
                }
            case .agent:
                open = { ssh_channel_open_auth_agent(channel) }
            case .x11:
                open = { ssh_channel_open_x11(channel, origin.host, Int32(origin.port)) }
            }
            connection.adopt(SocketChannel(connection: connection, channel: channel, socket: client, open: open))
        }
    }

    func close() {
        Glibc.close(fd)
        if case .agent(let directory) = kind {
            unlink(directory + "/agent")
            rmdir(directory)
        }
    }
}

extension Connection {
    /// `tcpip-forward` (RFC 4254 §7.1). Like sshd with `GatewayPorts no`,
    /// the listener is bound to loopback whatever address the client names;
    /// port 0 asks for any free port, which the reply carries.
    func requestRemoteForward(_ message: OpaquePointer) -> Bool {
        let address = ssh_message_global_request_address(message).map { String(cString: $0) } ?? ""
        let requested = ssh_message_global_request_port(message)
        guard (0...65535).contains(requested) else { return false }
        let bindHost = address == "::1" || address == "localhost" ? address : "127.0.0.1"
        guard let (fds, port) = SocketAddress.listenTCP(host: bindHost, port: UInt16(requested)) else {
            log("tcpip-forward \(address):\(requested) refused: cannot listen")
            return false
        }
        for fd in fds { listeners[fd] = ForwardListener(fd: fd, kind: .remoteForward(address: address, port: port)) }
        ssh_message_global_request_reply_success(message, requested == 0 ? port : 0)
        return true
    }

    /// `cancel-tcpip-forward` (RFC 4254 §7.1).
    func cancelRemoteForward(_ message: OpaquePointer) -> Bool {
        let address = ssh_message_global_request_address(message).map { String(cString: $0) } ?? ""
        let port = ssh_message_global_request_port(message)
        var found = false
        for (fd, listener) in listeners {
            if case .remoteForward(let a, let p) = listener.kind, a == address, Int32(p) == port {
                listener.close()
                listeners[fd] = nil
                found = true
            }
        }
        guard found else { return false }
        ssh_message_global_request_reply_success(message, 0)
        return true
    }

    /// Starts the forwarded-agent socket for this connection (once) and
    /// returns its path for `SSH_AUTH_SOCK`.
    func agentSocketPath() -> String? {
        for listener in listeners.values {
            if case .agent(let directory) = listener.kind { return directory + "/agent" }
        }
        var template = Array("/tmp/tether-ssh-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { return nil }
        let directory = String(cString: made)
        let path = directory + "/agent"
        guard let fd = SocketAddress.listenUnix(path: path) else {
            rmdir(directory)
            return nil
        }
        listeners[fd] = ForwardListener(fd: fd, kind: .agent(directory: directory))
        return path
    }
}

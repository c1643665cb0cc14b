import CLibSSH
import Glibc
import Synchronization

/// An embedded SSH server (RFC 4250–4254) on libssh 0.10, serving
/// connections handed to it as file descriptors.
///
/// Each connection runs on its own thread with its own libssh session and
/// poll loop (see `Connection`), so a slow or stuck client only ever stalls
/// itself. Sessions run as the server's own user.
///
///     let server = SSHServer(configuration: config)
///     let listener = try server.listen(host: "127.0.0.1", port: 2222)  // a host port
///     let fd = try server.serveBridged()   // any byte stream: pump bytes through fd
public final class SSHServer: Sendable {
    public let configuration: SSHServerConfiguration
    private let hostKey: HostKey
    private let nextID = Atomic<Int>(1)

    public init(configuration: SSHServerConfiguration) {
        self.configuration = configuration
        hostKey = HostKey(seed: configuration.hostKeySeed)
        // A peer that goes away mid-write must be an error return, not a
        // process-killing signal; children get default dispositions back.
        signal(SIGPIPE, SIG_IGN)
    }

    /// The host's public key as a `known_hosts` / `authorized_keys` line
    /// body: `ssh-ed25519 AAAA…`.
    public var hostPublicKey: String { hostKey.publicKeyLine }

    /// Serves one connection on `fileDescriptor` (a connected stream socket,
    /// which the server now owns and closes). Returns at once.
    public func serve(fileDescriptor: Int32, endpoints: SSHConnectionEndpoints? = nil) {
        let id = nextID.add(1, ordering: .relaxed).oldValue
        let connection = Connection(
            configuration: configuration, hostKey: hostKey, socket: fileDescriptor, endpoints: endpoints, id: id)
        PThread { connection.run() }.start()
    }

    /// Serves a connection that arrives over some other byte stream (e.g. a
    /// Netstack TCP connection inside the tunnel): returns the other end of
    /// a `socketpair`; the caller moves the stream's bytes through it and
    /// closes it when the stream ends.
    public func serveBridged(endpoints: SSHConnectionEndpoints) throws -> Int32 {
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            throw SSHServerError.system("socketpair", errno)
        }
        serve(fileDescriptor: fds[0], endpoints: endpoints)
        return fds[1]
    }

    /// Listens on a host TCP address and serves every connection accepted.
    public func listen(host: String, port: UInt16) throws -> SSHListener {
        guard let (fds, bound) = SocketAddress.listenTCP(host: host, port: port) else {
            throw SSHServerError.system("listen on \(host):\(port)", errno)
        }
        return SSHListener(server: self, fds: fds, port: bound)
    }
}

public struct SSHServerError: Error, CustomStringConvertible {
    public let description: String

    static func system(_ what: String, _ code: Int32) -> SSHServerError {
        SSHServerError(description: "\(what): \(String(cString: strerror(code)))")
    }
}

/// Accepts TCP connections for an `SSHServer` on a thread of its own.
public final class SSHListener: Sendable {
    public let port: UInt16
    private let fds: [Int32]
    private let stop: (read: Int32, write: Int32)

    init(server: SSHServer, fds: [Int32], port: UInt16) {
        self.fds = fds
        self.port = port
        var p: [Int32] = [-1, -1]
        pipe2(&p, O_CLOEXEC)
        stop = (p[0], p[1])
        let stopFD = p[0]
        PThread {
            var polls = fds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            polls.append(pollfd(fd: stopFD, events: Int16(POLLIN), revents: 0))
            while true {
                guard poll(&polls, nfds_t(polls.count), -1) >= 0 || errno == EINTR else { return }
                if polls.last!.revents != 0 { return }
                for i in 0..<fds.count where polls[i].revents != 0 {
                    while true {
                        let client = accept4(fds[i], nil, nil, Int32(SOCK_CLOEXEC.rawValue))
                        guard client >= 0 else { break }
                        SocketAddress.setNoDelay(client)
                        server.serve(fileDescriptor: client)
                    }
                }
            }
        }.start()
    }

    /// Stops accepting; connections already served go on.
    public func close() {
        var byte: UInt8 = 1
        _ = write(stop.write, &byte, 1)
        for fd in fds { Glibc.close(fd) }
    }
}

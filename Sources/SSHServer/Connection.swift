import CLibSSH
import Glibc

/// Who is at each end of a connection, for `SSH_CONNECTION`/`SSH_CLIENT`
/// (sshd(8) ENVIRONMENT: "client-ip client-port server-ip server-port").
public struct SSHConnectionEndpoints: Sendable, Equatable {
    public var clientAddress: String
    public var clientPort: UInt16
    public var serverAddress: String
    public var serverPort: UInt16

    public init(clientAddress: String, clientPort: UInt16, serverAddress: String, serverPort: UInt16) {
        self.clientAddress = clientAddress
        self.clientPort = clientPort
        self.serverAddress = serverAddress
        self.serverPort = serverPort
    }

    /// Reads both ends of a TCP socket; nil for other sockets.
    static func of(socket fd: Int32) -> SSHConnectionEndpoints? {
        guard let peer = SocketAddress.peer(of: fd), let local = SocketAddress.local(of: fd) else { return nil }
        return SSHConnectionEndpoints(
            clientAddress: peer.host, clientPort: peer.port, serverAddress: local.host, serverPort: local.port)
    }
}

/// One SSH connection, from key exchange to disconnect, on its own thread.
///
/// The thread runs one `poll(2)` loop over the session's socket and every
/// descriptor its channels use (`PollSet`). When the socket is ready,
/// libssh reads and handles it (`ssh_event_dopoll` on an event holding only
/// the session) and calls back into the connection and its channel
/// handlers. Each turn of the loop:
///
///     describe the poll set → poll → session input/output → ready
///     descriptors → service channels (pending opens, exits) → timers
///
/// libssh reads at most 4 KiB per call (`MAX_BUF_SIZE` in libssh 0.10's
/// priv.h), where sshd reads up to 256 KiB. While a read fills that size
/// more input is likely queued, so the loop lets libssh read again at once
/// (a poll of one descriptor, no timeout) instead of going round the whole
/// loop: a 1 GiB upload is 262,144 reads.
final class Connection: @unchecked Sendable {
    let configuration: SSHServerConfiguration
    let hostKey: HostKey
    let endpoints: SSHConnectionEndpoints
    let user: LoginUser
    let id: Int
    private let socket: Int32

    private(set) var session: OpaquePointer!
    private var bind: OpaquePointer?
    private var event: OpaquePointer?
    private var serverCallbacks = UnsafeMutablePointer<ssh_server_callbacks_struct>.allocate(capacity: 1)
    /// Bytes on the socket (libssh's "socket counter").
    private var socketCounter = UnsafeMutablePointer<ssh_counter_struct>.allocate(capacity: 1)
    /// Packets and payload bytes (libssh's "raw counter").
    private var packetCounter = UnsafeMutablePointer<ssh_counter_struct>.allocate(capacity: 1)

    private(set) var handlers: [ChannelHandler] = []
    var listeners: [Int32: ForwardListener] = [:]
    private var pollSet = PollSet()
    /// One buffer for every read and write on this thread: no allocation per
    /// chunk on the data path.
    let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 * 1024, alignment: 16)

    private(set) var authenticated = false
    private(set) var userName = ""
    private var endReason: String?
    private let started = MonotonicClock.now()
    private var lastPacketIn = MonotonicClock.now()
    private var lastPacketCount: UInt64 = 0
    private var keepalivesUnanswered = 0
    private var lastActivity = MonotonicClock.now()

    init(
        configuration: SSHServerConfiguration, hostKey: HostKey, socket: Int32, endpoints: SSHConnectionEndpoints?,
        id: Int
    ) {
        self.configuration = configuration
        self.hostKey = hostKey
        self.socket = socket
        self.id = id
        self.endpoints =
            endpoints ?? .of(socket: socket)
            ?? SSHConnectionEndpoints(
                clientAddress: "127.0.0.1", clientPort: 0, serverAddress: "127.0.0.1", serverPort: 0)
        self.user = LoginUser.current(defaultShell: configuration.defaultShell)
        serverCallbacks.initialize(to: ssh_server_callbacks_struct())
        socketCounter.initialize(to: ssh_counter_struct())
        packetCounter.initialize(to: ssh_counter_struct())
    }

    deinit {
        serverCallbacks.deallocate()
        socketCounter.deallocate()
        packetCounter.deallocate()
        scratch.deallocate()
    }

    func log(_ message: String) {
        configuration.log("ssh[\(id)] \(endpoints.clientAddress):\(endpoints.clientPort): \(message)")
    }

    var lastError: String {
        guard let session else { return "no session" }
        return String(cString: ssh_get_error(UnsafeMutableRawPointer(session)))
    }

    func noteActivity() { lastActivity = MonotonicClock.now() }

    /// Ends the connection after this loop turn, logging `reason`.
    func end(_ reason: String) {
        if endReason == nil { endReason = reason }
    }

    // MARK: the thread

    func run() {
        _ = fcntl(socket, F_SETFD, FD_CLOEXEC)
        guard setUp() else {
            tearDown()
            return
        }
        log("user \(userName) authenticated; serving")
        loop()
        tearDown()
    }

    /// Key exchange and authentication. Returns false when the client gave
    /// up or failed.
    private func setUp() -> Bool {
        guard let bind = ssh_bind_new(), let session = ssh_new() else {
            close(socket)
            log("out of memory creating libssh session")
            return false
        }
        self.bind = bind
        self.session = session
        var noConfig = false
        ssh_bind_options_set(bind, SSH_BIND_OPTIONS_PROCESS_CONFIG, &noConfig)
        ssh_bind_options_set(bind, SSH_BIND_OPTIONS_BANNER, "Tether")
        var key: OpaquePointer?
        guard ssh_pki_import_privkey_base64(hostKey.privateKeyFile, nil, nil, nil, &key) == SSH_OK, let key,
            ssh_bind_options_set(bind, SSH_BIND_OPTIONS_IMPORT_KEY, UnsafeRawPointer(key)) == SSH_OK
        else {
            close(socket)
            log("host key rejected by libssh")
            return false
        }
        guard ssh_bind_accept_fd(bind, session, socket) == SSH_OK else {
            // libssh did not take the socket.
            close(socket)
            end("accept failed: \(String(cString: ssh_get_error(UnsafeMutableRawPointer(bind))))")
            return false
        }
        var grace = Int(max(1, configuration.loginGraceTime))
        ssh_options_set(session, SSH_OPTIONS_TIMEOUT, &grace)
        ssh_set_counters(session, socketCounter, packetCounter)

        installServerCallbacks()
        guard ssh_handle_key_exchange(session) == SSH_OK else {
            end("key exchange failed: \(lastError)")
            return false
        }
        ssh_set_blocking(session, 0)
        guard let event = ssh_event_new(), ssh_event_add_session(event, session) == SSH_OK else {
            end("could not create the poll loop")
            return false
        }
        self.event = event
        // Authentication happens in the callbacks, driven by this loop.
        while !authenticated && endReason == nil {
            let left = configuration.loginGraceTime - MonotonicClock.now().seconds(since: started)
            guard left > 0 else {
                end("not authenticated within \(Int(configuration.loginGraceTime)) s")
                break
            }
            ssh_event_dopoll(event, Int32(min(left, 1) * 1000))
            if sessionClosed {
                end("closed during authentication: \(lastError)")
            }
        }
        return authenticated && endReason == nil
    }

    private func installServerCallbacks() {
        let cb = serverCallbacks
        cb.pointee.size = MemoryLayout<ssh_server_callbacks_struct>.size
        cb.pointee.userdata = Unmanaged.passUnretained(self).toOpaque()
        cb.pointee.auth_none_function = { _, user, userdata in
            Connection.from(userdata).authenticateNone(user: user.map { String(cString: $0) } ?? "")
        }
        cb.pointee.auth_pubkey_function = { _, user, key, state, userdata in
            Connection.from(userdata).authenticate(
                user: user.map { String(cString: $0) } ?? "", key: key, signatureState: Int32(state))
        }
        cb.pointee.channel_open_request_session_function = { _, userdata in
            Connection.from(userdata).openSessionChannel()
        }
        ssh_set_server_callbacks(session, cb)
        ssh_set_auth_methods(
            session,
            Int32(
                configuration.authentication == .none
                    ? SSH_AUTH_METHOD_NONE | SSH_AUTH_METHOD_PUBLICKEY : SSH_AUTH_METHOD_PUBLICKEY))
        // Requests the server callbacks do not cover: direct-tcpip channels
        // and global requests (tcpip-forward).
        ssh_set_message_callback(
            session,
            { _, message, userdata in
                Connection.from(userdata).handle(message: message!)
            }, Unmanaged.passUnretained(self).toOpaque())
    }

    /// libssh marks a dead session in its status (a protocol error such as
    /// an oversized packet, a disconnect, a socket error) without always
    /// making the poll itself fail.
    private var sessionClosed: Bool {
        ssh_is_connected(session) == 0 || ssh_get_status(session) & (SSH_CLOSED | SSH_CLOSED_ERROR) != 0
    }

    static func from(_ userdata: UnsafeMutableRawPointer?) -> Connection {
        Unmanaged<Connection>.fromOpaque(userdata!).takeUnretainedValue()
    }

    // MARK: authentication (RFC 4252)

    private func authenticateNone(user: String) -> Int32 {
        guard configuration.authentication == .none else { return Int32(SSH_AUTH_DENIED.rawValue) }
        userName = user
        authenticated = true
        return Int32(SSH_AUTH_SUCCESS.rawValue)
    }

    private func authenticate(user: String, key: OpaquePointer?, signatureState: Int32) -> Int32 {
        let denied = Int32(SSH_AUTH_DENIED.rawValue)
        guard let key else { return denied }
        let allowed: Bool
        switch configuration.authentication {
        case .none: allowed = true
        case .authorizedKeys(let path): allowed = AuthorizedKeys.load(path: path).contains(key)
        }
        guard allowed else { return denied }
        switch signatureState {
        case Int32(SSH_PUBLICKEY_STATE_NONE.rawValue):
            return Int32(SSH_AUTH_SUCCESS.rawValue)  // "this key would do" (§7, SSH_MSG_USERAUTH_PK_OK)
        case Int32(SSH_PUBLICKEY_STATE_VALID.rawValue):
            userName = user
            authenticated = true
            return Int32(SSH_AUTH_SUCCESS.rawValue)
        default:
            return denied
        }
    }

    // MARK: channels

    private func admitChannel() -> OpaquePointer? {
        let open = handlers.count
        guard open < configuration.maxChannels else {
            end("client opened more than \(configuration.maxChannels) channels")
            return nil
        }
        return ssh_channel_new(session)
    }

    private func openSessionChannel() -> OpaquePointer? {
        guard let channel = admitChannel() else { return nil }
        handlers.append(SessionChannel(connection: self, channel: channel))
        return channel
    }

    func adopt(_ handler: ChannelHandler) { handlers.append(handler) }

    /// Requests outside the server callbacks. Returns 0 when handled, 1 for
    /// libssh's default reply (failure).
    private func handle(message: OpaquePointer) -> Int32 {
        let type = ssh_message_type(message)
        let subtype = ssh_message_subtype(message)
        if type == Int32(SSH_REQUEST_CHANNEL_OPEN.rawValue) && subtype == Int32(SSH_CHANNEL_DIRECT_TCPIP.rawValue) {
            return openDirectTCPIP(message) ? 0 : 1
        }
        if type == Int32(SSH_REQUEST_CHANNEL.rawValue) && subtype == Int32(SSH_CHANNEL_REQUEST_PTY.rawValue) {
            guard ptyRequest(message) else { return 1 }
            ssh_message_channel_request_reply_success(message)
            return 0
        }
        if type == Int32(SSH_REQUEST_GLOBAL.rawValue) {
            switch subtype {
            case Int32(SSH_GLOBAL_REQUEST_TCPIP_FORWARD.rawValue): return requestRemoteForward(message) ? 0 : 1
            case Int32(SSH_GLOBAL_REQUEST_CANCEL_TCPIP_FORWARD.rawValue): return cancelRemoteForward(message) ? 0 : 1
            default: return 1
            }
        }
        return 1
    }

    /// `pty-req` (RFC 4254 §6.2) arrives here rather than as a channel
    /// callback because only the message carries the encoded terminal modes.
    private func ptyRequest(_ message: OpaquePointer) -> Bool {
        var term: UnsafePointer<CChar>?
        var width: Int32 = 0
        var height: Int32 = 0
        var pxWidth: Int32 = 0
        var pxHeight: Int32 = 0
        var modes: UnsafePointer<UInt8>?
        var modesLength = 0
        guard
            tether_pty_request(message, &term, &width, &height, &pxWidth, &pxHeight, &modes, &modesLength) == 0,
            let channel = ssh_message_channel_request_channel(message),
            let handler = handlers.first(where: { $0.channel == channel })
        else { return false }
        return handler.ptyRequest(
            term: term.map { String(cString: $0) } ?? "", columns: width, rows: height, pixelWidth: pxWidth,
            pixelHeight: pxHeight, modes: TerminalModes(encoded: UnsafeBufferPointer(start: modes, count: modesLength)))
    }

    private func openDirectTCPIP(_ message: OpaquePointer) -> Bool {
        let host = String(cString: ssh_message_channel_request_open_destination(message))
        let port = ssh_message_channel_request_open_destination_port(message)
        guard (0...65535).contains(port) else { return false }
        guard handlers.count < configuration.maxChannels else {
            end("client opened more than \(configuration.maxChannels) channels")
            return false
        }
        // A blocking connect (bounded): only this connection waits, as in
        // sshd, and the client is told at once if the target refuses.
        guard let fd = SocketAddress.connectTCP(host: host, port: UInt16(port), timeoutSeconds: 10) else {
            return false
        }
        guard let channel = ssh_message_channel_request_open_reply_accept(message) else {
            close(fd)
            return false
        }
        handlers.append(SocketChannel(connection: self, channel: channel, socket: fd))
        return true
    }

    // MARK: the loop

    private func loop() {
        let socket = ssh_get_fd(session)
        while endReason == nil {
            describePollSet(socket: socket)
            let n = pollSet.wait(milliseconds: nextTimeoutMilliseconds())
            if n < 0 && errno != EINTR {
                end("poll failed: \(String(cString: strerror(errno)))")
                break
            }
            if n > 0 && pollSet.revents(0) != 0 { serviceSession() }
            if sessionClosed {
                let error = lastError
                if error.hasPrefix("Received SSH_MSG_DISCONNECT") || error.isEmpty {
                    end("client disconnected")
                } else {
                    end("connection error: \(error)")
                }
                break
            }
            if n > 0 {
                for slot in 1..<pollSet.count where pollSet.revents(slot) != 0 { dispatch(slot: slot) }
            }
            for handler in handlers { handler.service() }
            // Before the next poll: nothing held back for batching may wait
            // for input that is not coming (`ChannelHandler.receive`).
            for handler in handlers { handler.flushDeferredInput() }
            if handlers.contains(where: \.finished) {
                // Release outside the array mutation: libssh may call back
                // into this connection (and open new channels) while it
                // closes one.
                let done = handlers.filter(\.finished)
                handlers.removeAll(where: \.finished)
                for handler in done { handler.release() }
            }
            checkTimers()
        }
    }

    /// Lets libssh read and handle the socket, again at once while each
    /// read fills libssh's buffer (see the type's comment), up to
    /// `sessionRoundsPerTurn` reads before the channels get their turn.
    private func serviceSession() {
        for _ in 0..<Self.sessionRoundsPerTurn {
            let before = socketCounter.pointee.in_bytes
            guard ssh_event_dopoll(event, 0) >= 0, endReason == nil, !sessionClosed,
                socketCounter.pointee.in_bytes - before >= Self.libsshReadSize
            else { return }
        }
    }

    /// Whether the kernel holds unread bytes of the session's socket
    /// (`FIONREAD`, tcp(7)): more packets follow at once.
    func socketHasInput() -> Bool {
        var queued: Int32 = 0
        return ioctl(ssh_get_fd(session), UInt(FIONREAD), &queued) == 0 && queued > 0
    }

    /// libssh 0.10's `MAX_BUF_SIZE`: the most one socket read takes.
    static let libsshReadSize: UInt64 = 4096
    /// 64 reads of 4 KiB: 256 KiB, what sshd reads at once.
    static let sessionRoundsPerTurn = 64

    private func dispatch(slot: Int) {
        let fd = pollSet.fd(slot)
        let events = pollSet.revents(slot)
        let owner = pollSet.owners[slot]
        if owner == PollSet.listener {
            listeners[fd]?.accept(on: self)
        } else if owner < handlers.count {
            handlers[owner].handle(fd: fd, events: events)
        }
    }

    /// What the loop waits for this turn: the socket (and its output while
    /// libssh holds some), each channel's descriptors, the listeners.
    private func describePollSet(socket: Int32) {
        let writePending = ssh_get_poll_flags(session) & SSH_WRITE_PENDING != 0
        pollSet.begin(session: socket, events: Int16(POLLIN) | (writePending ? Int16(POLLOUT) : 0))
        for index in handlers.indices { handlers[index].watches(into: &pollSet, owner: index) }
        for fd in listeners.keys { pollSet.add(fd, Int16(POLLIN), owner: PollSet.listener) }
        pollSet.commit()
    }

    private func nextTimeoutMilliseconds() -> Int32 {
        var seconds = 1.0
        if configuration.keepaliveInterval > 0 { seconds = min(seconds, configuration.keepaliveInterval) }
        return Int32(seconds * 1000)
    }

    private func checkTimers() {
        let now = MonotonicClock.now()
        let packets = packetCounter.pointee.in_packets
        if packets != lastPacketCount {
            lastPacketCount = packets
            lastPacketIn = now
            keepalivesUnanswered = 0
        }
        let interval = configuration.keepaliveInterval
        if interval > 0 && now.seconds(since: lastPacketIn) >= interval * Double(keepalivesUnanswered + 1) {
            if keepalivesUnanswered >= configuration.keepaliveCountMax {
                end("no answer to \(keepalivesUnanswered) keepalives")
                return
            }
            keepalivesUnanswered += 1
            ssh_send_keepalive(session)
        }
        if configuration.idleTimeout > 0 && now.seconds(since: lastActivity) >= configuration.idleTimeout {
            end("idle for \(Int(configuration.idleTimeout)) s")
        }
        if configuration.maxSessionDuration > 0 && now.seconds(since: started) >= configuration.maxSessionDuration {
            end("reached the maximum session time of \(Int(configuration.maxSessionDuration)) s")
        }
    }

    private func tearDown() {
        let remaining = handlers
        handlers.removeAll()
        for handler in remaining {
            handler.abandon()
            handler.release()
        }
        for listener in listeners.values { listener.close() }
        listeners.removeAll()
        if let event {
            if let session { ssh_event_remove_session(event, session) }
            ssh_event_free(event)
        }
        if let session {
            if ssh_is_connected(session) != 0 { ssh_disconnect(session) }
            ssh_free(session)  // closes the socket
        }
        if let bind { ssh_bind_free(bind) }
        log(
            "connection ended: \(endReason ?? "done") (in \(socketCounter.pointee.in_bytes) B, out \(socketCounter.pointee.out_bytes) B)"
        )
    }
}

/// A monotonic time in seconds (`CLOCK_MONOTONIC`): wall-clock jumps must not
/// fire or postpone timeouts.
struct MonotonicClock {
    let value: Double

    static func now() -> MonotonicClock {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return MonotonicClock(value: Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9)
    }

    func seconds(since other: MonotonicClock) -> Double { value - other.value }
}

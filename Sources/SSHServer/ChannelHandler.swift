import CLibSSH
import Glibc

/// One SSH channel (RFC 4254 §5) and the file descriptors its bytes move
/// between: `source` is read and sent as channel data, `errorSource` as
/// extended data (stderr, §5.2), and channel data from the client is written
/// to `sink`. Subclasses say what the descriptors are (a child's stdio, a
/// TCP socket, a Unix socket) and what happens at the end.
///
/// Flow control follows the two windows:
/// - toward the client, a source is read only while the channel's remote
///   window is open, and never more than it allows, so libssh never has to
///   hold data we produced (a client that stops reading stops the child);
/// - from the client, data that the sink cannot take now is left in libssh's
///   channel buffer (the data callback consumes less), which stops libssh
///   from growing our window once ~1 MiB is buffered; it is pulled later with
///   `ssh_channel_read_nonblocking` when the sink is writable again.
class ChannelHandler {
    unowned let connection: Connection
    let channel: OpaquePointer
    private let callbacks: UnsafeMutablePointer<ssh_channel_callbacks_struct>

    var source: Int32 = -1
    var errorSource: Int32 = -1
    var sink: Int32 = -1
    /// Bytes pulled from libssh that the sink has not taken yet: those of
    /// `sinkPending` from `sinkPendingStart` on (an offset, so a partial
    /// write never moves the rest; the storage is reused).
    private var sinkPending: [UInt8] = []
    private var sinkPendingStart = 0
    private var hasSinkPending: Bool { sinkPendingStart < sinkPending.count }
    /// libssh holds client data we did not consume in the data callback.
    private var inputWaiting = false
    /// libssh holds client data we chose to write together with what
    /// follows it (see `receive`); `flushDeferredInput` hands it over once
    /// the session has read what the socket had.
    private var inputDeferred = false
    private(set) var clientSentEOF = false
    private(set) var sinkClosed = false
    private(set) var sentEOF = false
    /// The channel is finished on our side and freed; the connection drops it.
    private(set) var finished = false

    init(connection: Connection, channel: OpaquePointer) {
        self.connection = connection
        self.channel = channel
        callbacks = .allocate(capacity: 1)
        callbacks.initialize(to: ssh_channel_callbacks_struct())
        callbacks.pointee.size = MemoryLayout<ssh_channel_callbacks_struct>.size
        callbacks.pointee.userdata = Unmanaged.passUnretained(self).toOpaque()
        ChannelCallbacks.install(into: callbacks)
        ssh_set_channel_callbacks(channel, callbacks)
    }

    deinit { callbacks.deallocate() }

    // MARK: subclass hooks

    /// The source and error source reached end of file.
    func outputFinished() { finish() }
    /// The client closed the channel (§5.3); stop whatever runs behind it.
    func clientClosed() { finish() }
    /// The client sent EOF and everything before it reached the sink:
    /// sockets half-close here (subclasses with pipes close them).
    func closeSink() {
        if sink >= 0 { shutdown(sink, Int32(SHUT_WR)) }
    }
    /// Called once per loop turn; subclasses check timers or states here.
    func service() {}

    // Channel requests (RFC 4254 §6); only session channels accept them.
    func ptyRequest(
        term: String, columns: Int32, rows: Int32, pixelWidth: Int32, pixelHeight: Int32, modes: TerminalModes
    ) -> Bool {
        false
    }
    func windowChange(columns: Int32, rows: Int32, pixelWidth: Int32, pixelHeight: Int32) -> Bool { false }
    func shellRequest() -> Bool { false }
    func execRequest(_ command: String) -> Bool { false }
    func subsystemRequest(_ name: String) -> Bool { false }
    func envRequest(name: String, value: String) -> Bool { false }
    func signalRequest(_ name: String) {}
    func agentForwardingRequest() {}
    func x11Request(singleConnection: Bool, protocol: String, cookie: String, screen: UInt32) {}
    /// Descriptors the subclass watches besides source/sink (e.g. a pidfd).
    func extraWatches(into set: inout PollSet, owner: Int) {}
    func handleExtra(fd: Int32, events: Int16) {}

    /// The connection is going away: stop everything behind the channel.
    func abandon() { finish() }

    /// Closes a descriptor (the next turn's poll set no longer has it).
    func closeFD(_ fd: Int32) {
        guard fd >= 0 else { return }
        close(fd)
    }

    // MARK: data from the client

    /// While more of the stream is already queued on the socket, channel
    /// data is written to the sink in pieces of at least this size.
    static let sinkWriteBatch = 128 * 1024

    /// Whether `receive` may hold data back to batch it: only where the
    /// client closing the channel ends the program anyway (a session's
    /// child, `SessionChannel`). A forwarded socket is closed after what
    /// was written, and what libssh still held when the close arrived
    /// would be lost.
    var batchesInput: Bool { false }

    /// The channel data callback: hands what the sink takes now and leaves
    /// the rest in libssh (see the type's comment on flow control).
    ///
    /// A bulk upload arrives as 32 KiB packets. Writing each one to the
    /// child's pipe wakes the reader once per packet (sshd writes what it
    /// read from the socket, up to 256 KiB, at once). So while the socket
    /// already holds more input and less than `sinkWriteBatch` is buffered,
    /// nothing is consumed: libssh keeps the bytes in its channel buffer
    /// and passes all of it, contiguous, with the next packet, and one
    /// `write` takes the lot, with no copy of ours. Whatever is still held
    /// at the end of the loop's turn goes out in `flushDeferredInput`.
    func receive(_ data: UnsafeRawBufferPointer, isStderr: Bool) -> Int {
        connection.noteActivity()
        if isStderr || finished { return data.count }  // clients never send stderr; drop it
        guard sink >= 0, !sinkClosed else { return data.count }
        guard !inputWaiting, !hasSinkPending else { return 0 }
        if batchesInput && data.count < Self.sinkWriteBatch && connection.socketHasInput() {
            inputDeferred = true
            return 0
        }
        inputDeferred = false
        let written = data.isEmpty ? 0 : Glibc.write(sink, data.baseAddress, data.count)
        if written < 0 {
            if errno == EAGAIN || errno == EINTR {
                inputWaiting = true
                return 0
            }
            // The reader is gone (EPIPE): discard, as sshd does.
            closeSinkNow()
            return data.count
        }
        if written < data.count { inputWaiting = true }
        return written
    }

    func receiveEOF() {
        clientSentEOF = true
        if inputDeferred {
            // Held bytes come before the EOF: drain them, then close.
            inputDeferred = false
            inputWaiting = true
        }
        if !inputWaiting && !hasSinkPending { closeSinkNow() }
    }

    /// Writes what `receive` left in libssh to be batched; the connection
    /// calls it at the end of every loop turn, outside any callback.
    func flushDeferredInput() {
        guard inputDeferred, !finished else { return }
        inputDeferred = false
        inputWaiting = true
        drainToSink()
    }

    private func closeSinkNow() {
        guard !sinkClosed else { return }
        sinkClosed = true
        inputWaiting = false
        inputDeferred = false
        sinkPending = []
        sinkPendingStart = 0
        closeSink()
    }

    /// The sink is writable: move what libssh holds for it, straight from
    /// the connection's scratch buffer; only what the sink refuses is copied
    /// aside.
    private func drainToSink() {
        let scratch = connection.scratch
        while true {
            if hasSinkPending {
                let written = sinkPending.withUnsafeBytes {
                    Glibc.write(sink, $0.baseAddress! + sinkPendingStart, $0.count - sinkPendingStart)
                }
                if written < 0 {
                    if errno == EAGAIN || errno == EINTR { return }
                    closeSinkNow()
                    return
                }
                sinkPendingStart += written
                if hasSinkPending { return }
                sinkPending.removeAll(keepingCapacity: true)
                sinkPendingStart = 0
            }
            guard inputWaiting else { break }
            let n = Int(ssh_channel_read_nonblocking(channel, scratch.baseAddress, UInt32(scratch.count), 0))
            if n <= 0 {
                inputWaiting = false
                break
            }
            var written = Glibc.write(sink, scratch.baseAddress, n)
            if written < 0 {
                guard errno == EAGAIN || errno == EINTR else {
                    closeSinkNow()
                    return
                }
                written = 0
            }
            if written < n {
                sinkPending.append(contentsOf: UnsafeRawBufferPointer(rebasing: scratch[written..<n]))
                return
            }
        }
        if clientSentEOF { closeSinkNow() }
    }

    // MARK: data toward the client

    /// Reads what the remote window allows from `fd` and sends it. Returns
    /// false at end of file.
    private func pump(_ fd: Int32, isStderr: Bool) -> Bool {
        let window = Int(ssh_channel_window_size(channel))
        guard window > 0 else { return true }
        let scratch = connection.scratch
        let want = min(window, scratch.count)
        let n = Glibc.read(fd, scratch.baseAddress, want)
        if n == 0 { return false }
        if n < 0 {
            // EIO: a pty master whose slave side is closed everywhere.
            return errno == EAGAIN || errno == EINTR
        }
        connection.noteActivity()
        let rc =
            isStderr
            ? ssh_channel_write_stderr(channel, scratch.baseAddress, UInt32(n))
            : ssh_channel_write(channel, scratch.baseAddress, UInt32(n))
        if rc < 0 {
            connection.log("channel write failed: \(connection.lastError)")
            finish()
        }
        return true
    }

    // MARK: the connection's poll loop

    /// Adds what this channel waits for now to the loop's poll set, as
    /// `owner` (its index among the connection's handlers).
    func watches(into set: inout PollSet, owner: Int) {
        guard !finished else { return }
        let windowOpen = ssh_channel_window_size(channel) > 0
        if source >= 0 && windowOpen { set.add(source, Int16(POLLIN), owner: owner) }
        if errorSource >= 0 && windowOpen { set.add(errorSource, Int16(POLLIN), owner: owner) }
        if sink >= 0 && !sinkClosed && (inputWaiting || hasSinkPending) {
            set.add(sink, Int16(POLLOUT), owner: owner)
        }
        extraWatches(into: &set, owner: owner)
    }

    func handle(fd: Int32, events: Int16) {
        guard !finished else { return }
        let readable = events & Int16(POLLIN | POLLHUP | POLLERR) != 0
        if fd == sink && events & Int16(POLLOUT | POLLERR) != 0 && !sinkClosed { drainToSink() }
        if fd == source && readable && !finished {
            if !pump(fd, isStderr: false) { sourceEnded() }
        } else if fd == errorSource && readable && !finished {
            if !pump(fd, isStderr: true) {
                closeFD(errorSource)
                errorSource = -1
                if source < 0 { outputFinished() }
            }
        }
        if fd != source && fd != errorSource && fd != sink { handleExtra(fd: fd, events: events) }
    }

    private func sourceEnded() {
        if source == sink {
            // A socket or pty: only the read half ended.
            source = -1
        } else {
            closeFD(source)
            source = -1
        }
        if errorSource < 0 { outputFinished() }
    }

    /// Sends EOF once (§5.3); no more data will follow.
    func sendEOF() {
        guard !sentEOF else { return }
        sentEOF = true
        ssh_channel_send_eof(channel)
    }

    /// Ends the channel on our side: closes every descriptor; idempotent.
    /// The libssh side is released later by `release()`, because this may
    /// run inside a libssh callback, and freeing the channel there would
    /// pull it out from under libssh (it still uses it after the callback).
    func finish() {
        guard !finished else { return }
        finished = true
        for fd in Set([source, errorSource, sink]) where fd >= 0 { closeFD(fd) }
        source = -1
        errorSource = -1
        sink = -1
    }

    /// Closes and frees the libssh channel; the connection calls it outside
    /// any libssh callback, once `finished` is set.
    func release() {
        ssh_remove_channel_callbacks(channel, callbacks)
        ssh_channel_close(channel)
        ssh_channel_free(channel)
    }
}

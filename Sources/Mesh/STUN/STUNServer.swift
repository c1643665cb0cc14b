import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A standalone STUN server (the control plane embeds one; `tether stun`
/// runs one alone): answers Binding requests on a UDP socket, drops and
/// counts everything else. The protocol logic is `STUNBinding.respond`.
public final class STUNServer: Sendable {
    public struct Counters: Sendable, Equatable {
        public var answered = 0
        public var dropped: [STUNBinding.DropReason: Int] = [:]
    }

    private let socket: UDPSocket
    private let state = Mutex(Counters())
    private let stopping = Atomic<Bool>(false)
    private let finished = Atomic<Bool>(false)

    public init(listen: Endpoint) throws {
        socket = try UDPSocket(bind: listen)
    }

    public var localEndpoint: Endpoint { socket.localEndpoint }
    public var counters: Counters { state.withLock { $0 } }

    /// Serves on a dedicated thread until `stop()`.
    public func start() {
        let thread = PosixThread { [self] in self.serve() }
        thread.start()
    }

    public func stop() {
        stopping.store(true, ordering: .releasing)
        while !finished.load(ordering: .acquiring) { usleep(1_000) }
    }

    private func serve() {
        defer { finished.store(true, ordering: .releasing) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 16)
        defer { buffer.deallocate() }
        while !stopping.load(ordering: .acquiring) {
            guard let (count, from) = try? socket.receive(into: buffer, timeoutMilliseconds: 100) else { continue }
            switch STUNBinding.respond(to: UnsafeRawBufferPointer(rebasing: buffer[0..<count]), from: from) {
            case .reply(let bytes):
                if (try? socket.send(bytes, to: from)) != nil { state.withLock { $0.answered += 1 } }
            case .drop(let reason):
                state.withLock { $0.dropped[reason, default: 0] += 1 }
            }
        }
    }
}

/// A plain pthread for loops that block in syscalls, so they never occupy
/// a Swift concurrency thread.
final class PosixThread: @unchecked Sendable {
    private let body: @Sendable () -> Void

    init(_ body: @escaping @Sendable () -> Void) { self.body = body }

    func start() {
        var thread = pthread_t()
        let box = Unmanaged.passRetained(self)
        let rc = pthread_create(
            &thread, nil,
            { raw in
                let me = Unmanaged<PosixThread>.fromOpaque(raw!).takeRetainedValue()
                me.body()
                return nil
            }, box.toOpaque())
        precondition(rc == 0, "pthread_create failed: \(rc)")
        pthread_detach(thread)
    }
}

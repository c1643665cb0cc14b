#if canImport(Glibc)
    import Glibc

    /// A Linux TUN device as the link (layer 3, no packet-information
    /// header): for privileged mode and for tests against the kernel's own
    /// stack. A dedicated thread reads the device and feeds the stack.
    public final class TUNLink: NetLink {
        public let name: String
        public let mtu: Int
        private let fd: Int32
        private let running = Locked(true)

        /// `linux/if_tun.h`: `TUNSETIFF = _IOW('T', 202, int)`, `IFF_TUN`, `IFF_NO_PI`.
        private static let tunSetInterface: UInt = 0x4004_54CA
        private static let flagTUN: Int16 = 0x0001
        private static let flagNoPacketInfo: Int16 = 0x1000
        /// `struct ifreq`: a 16-byte name, then a 24-byte union whose first field is `ifr_flags`.
        private static let interfaceRequestSize = 40

        /// Creates (or attaches to) the TUN interface `name`. Needs CAP_NET_ADMIN.
        public init(name: String, mtu: Int = 1500) throws(NetstackError) {
            guard name.utf8.count < 16 else { throw NetstackError(.invalidArgument, "interface name too long") }
            let fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC)
            guard fd >= 0 else { throw NetstackError(.unreachable, "open /dev/net/tun: errno \(errno)") }
            var request = [UInt8](repeating: 0, count: Self.interfaceRequestSize)
            for (i, b) in name.utf8.enumerated() { request[i] = b }
            let flags = Self.flagTUN | Self.flagNoPacketInfo
            request[16] = UInt8(truncatingIfNeeded: flags)
            request[17] = UInt8(truncatingIfNeeded: flags >> 8)
            let rc = request.withUnsafeMutableBytes { ioctl(fd, Self.tunSetInterface, $0.baseAddress!) }
            guard rc == 0 else {
                let e = errno
                Glibc.close(fd)
                throw NetstackError(.unreachable, "TUNSETIFF \(name): errno \(e)")
            }
            self.fd = fd
            self.name = name
            self.mtu = mtu
        }

        deinit { Glibc.close(fd) }

        public func send(_ packets: [[UInt8]]) {
            for p in packets {
                _ = p.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            }
        }

        /// Starts the reader thread that hands every packet to `stack`. After
        /// each wake-up it reads whatever is queued (up to `readBatch`
        /// packets, non-blocking) and gives the stack the whole batch at once.
        public func start(delivering stack: NetStack) {
            let fd = fd
            let running = running
            let slot = Swift.max(mtu, 65536)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            startThread {
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: slot * Self.readBatch, alignment: 16)
                defer { buffer.deallocate() }
                var packets: [UnsafeRawBufferPointer] = []
                packets.reserveCapacity(Self.readBatch)
                var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                while running.withLock({ $0 }) {
                    guard poll(&pfd, 1, 100) > 0 else { continue }
                    packets.removeAll(keepingCapacity: true)
                    while packets.count < Self.readBatch {
                        let start = buffer.baseAddress! + packets.count * slot
                        let n = read(fd, start, slot)
                        if n <= 0 { break }
                        packets.append(UnsafeRawBufferPointer(start: start, count: n))
                    }
                    stack.input(packets)
                }
            }
        }

        /// Packets read per wake-up at most.
        static let readBatch = 64

        /// Stops the reader thread (within 100 ms).
        public func stop() {
            running.withLock { $0 = false }
        }
    }

    private final class ThreadBody {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }

    /// A plain OS thread: blocking reads must not occupy Swift's cooperative pool.
    func startThread(_ body: @escaping @Sendable () -> Void) {
        let context = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(
            &thread, nil,
            { arg in
                let body = Unmanaged<ThreadBody>.fromOpaque(arg!).takeRetainedValue()
                body.run()
                return nil
            }, context)
        if rc == 0 {
            pthread_detach(thread)
        } else {
            Unmanaged<ThreadBody>.fromOpaque(context).release()
        }
    }
#endif

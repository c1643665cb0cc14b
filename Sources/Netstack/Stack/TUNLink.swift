#if canImport(Glibc)
    import Glibc

    /// A Linux TUN device as the link (layer 3, no packet-information
    /// header): for privileged mode and for tests against the kernel's own
    /// stack. A dedicated thread reads the device and feeds the stack.
    ///
    /// With `offload` (the default, when the kernel allows it) the device
    /// carries a virtio-net header (`IFF_VNET_HDR`) and offers TCP
    /// segmentation and checksum offload, as wireguard-go's TUN code does:
    /// the kernel's TCP hands us segments of up to 64 KiB in one read, and
    /// our TCP hands it super-packets of whole MTU-sized segments with
    /// partial checksums (`NetLink.offloadsTCP`), so one system call and one
    /// pass of either stack moves dozens of segments. The kernel never
    /// computes checksums for these packets, nor do we: they do not leave
    /// the machine.
    public final class TUNLink: NetLink {
        public let name: String
        public let mtu: Int
        /// The device has a virtio-net header with TSO and checksum offload.
        public let offload: Bool
        public var offloadsTCP: Bool { offload }
        private let fd: Int32
        private let running = Locked(true)

        /// `linux/if_tun.h`: `TUNSETIFF = _IOW('T', 202, int)`, `IFF_TUN`, `IFF_NO_PI`, `IFF_VNET_HDR`.
        private static let tunSetInterface: UInt = 0x4004_54CA
        /// `TUNSETOFFLOAD = _IOW('T', 208, unsigned int)`, `TUNSETVNETHDRSZ = _IOW('T', 216, int)`.
        private static let tunSetOffload: UInt = 0x4004_54D0
        private static let tunSetVnetHeaderSize: UInt = 0x4004_54D8
        private static let flagTUN: Int16 = 0x0001
        private static let flagNoPacketInfo: Int16 = 0x1000
        private static let flagVnetHeader: Int16 = 0x4000
        /// `TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6`.
        private static let offloads: CInt = 0x01 | 0x02 | 0x04
        /// `struct ifreq`: a 16-byte name, then a 24-byte union whose first field is `ifr_flags`.
        private static let interfaceRequestSize = 40

        /// Creates (or attaches to) the TUN interface `name`. Needs CAP_NET_ADMIN.
        /// Without `offload`, or when the kernel refuses it, every packet is at most `mtu` bytes.
        public init(name: String, mtu: Int = 1500, offload: Bool = true) throws(NetstackError) {
            guard name.utf8.count < 16 else { throw NetstackError(.invalidArgument, "interface name too long") }
            var fd: Int32 = -1
            var withOffload = false
            if offload, let f = try? Self.open(name, vnetHeader: true) {
                var size = Int32(VirtioNetHeader.size)
                let sized = ioctl(f, Self.tunSetVnetHeaderSize, &size) == 0
                if sized && ioctl(f, Self.tunSetOffload, Self.offloads) == 0 {
                    fd = f
                    withOffload = true
                } else {
                    Glibc.close(f)
                }
            }
            if fd < 0 { fd = try Self.open(name, vnetHeader: false) }
            self.fd = fd
            self.offload = withOffload
            self.name = name
            self.mtu = mtu
        }

        private static func open(_ name: String, vnetHeader: Bool) throws(NetstackError) -> Int32 {
            let fd = Glibc.open("/dev/net/tun", O_RDWR | O_CLOEXEC)
            guard fd >= 0 else { throw NetstackError(.unreachable, "open /dev/net/tun: errno \(errno)") }
            var request = [UInt8](repeating: 0, count: Self.interfaceRequestSize)
            for (i, b) in name.utf8.enumerated() { request[i] = b }
            let flags = Self.flagTUN | Self.flagNoPacketInfo | (vnetHeader ? Self.flagVnetHeader : 0)
            request[16] = UInt8(truncatingIfNeeded: flags)
            request[17] = UInt8(truncatingIfNeeded: flags >> 8)
            let rc = request.withUnsafeMutableBytes { ioctl(fd, Self.tunSetInterface, $0.baseAddress!) }
            guard rc == 0 else {
                let e = errno
                Glibc.close(fd)
                throw NetstackError(.unreachable, "TUNSETIFF \(name): errno \(e)")
            }
            return fd
        }

        deinit { Glibc.close(fd) }

        public func send(_ packets: [[UInt8]]) {
            guard offload else {
                for p in packets {
                    _ = p.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                }
                return
            }
            // One header buffer and one iovec pair for the whole batch.
            withUnsafeTemporaryAllocation(byteCount: VirtioNetHeader.size, alignment: 2) { header in
                withUnsafeTemporaryAllocation(of: iovec.self, capacity: 2) { vectors in
                    vectors[0] = iovec(iov_base: header.baseAddress, iov_len: header.count)
                    for p in packets {
                        p.withUnsafeBytes { packet in
                            VirtioNetHeader(forOutgoing: packet, mtu: mtu).write(into: header)
                            vectors[1] = iovec(iov_base: UnsafeMutableRawPointer(mutating: packet.baseAddress), iov_len: packet.count)
                            _ = writev(fd, vectors.baseAddress, 2)
                        }
                    }
                }
            }
        }

        /// Starts the reader thread that hands every packet to `stack`. After
        /// each wake-up it reads whatever is queued (up to `readBatch`
        /// packets, non-blocking) and gives the stack the whole batch at once.
        public func start(delivering stack: NetStack) {
            let fd = fd
            let running = running
            let offload = offload
            let headerSize = offload ? VirtioNetHeader.size : 0
            let slot = Swift.max(mtu, 65536) + headerSize
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            startThread {
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: slot * Self.readBatch, alignment: 16)
                defer { buffer.deallocate() }
                var packets: [UnsafeRawBufferPointer] = []
                var verified: [Bool] = []
                packets.reserveCapacity(Self.readBatch)
                verified.reserveCapacity(Self.readBatch)
                var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                while running.withLock({ $0 }) {
                    guard poll(&pfd, 1, 100) > 0 else { continue }
                    packets.removeAll(keepingCapacity: true)
                    verified.removeAll(keepingCapacity: true)
                    var reads = 0
                    while reads < Self.readBatch {
                        let start = buffer.baseAddress! + reads * slot
                        let n = read(fd, start, slot)
                        if n <= 0 { break }
                        reads += 1
                        guard offload else {
                            packets.append(UnsafeRawBufferPointer(start: start, count: n))
                            continue
                        }
                        guard n > headerSize else { continue }
                        let header = VirtioNetHeader(UnsafeRawBufferPointer(start: start, count: headerSize))
                        let packet = UnsafeMutableRawBufferPointer(start: start + headerSize, count: n - headerSize)
                        guard let checksumVerified = header.prepareIncoming(packet) else { continue }
                        packets.append(UnsafeRawBufferPointer(packet))
                        verified.append(checksumVerified)
                    }
                    stack.input(packets, checksumVerified: verified)
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

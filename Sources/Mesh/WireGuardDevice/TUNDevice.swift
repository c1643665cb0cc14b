import Netstack
import CMeshLinux

#if canImport(Glibc)
    import Glibc
#endif

/// A Linux TUN device (layer 3, no packet-information header): the kernel's
/// network stack on one side, the WireGuard device on the other. Needs
/// CAP_NET_ADMIN. The interface is configured (address, MTU, up) with `ip`.
///
/// With `offload` (the default, when the kernel allows it) the device is
/// opened with a virtio_net_hdr and TCP segmentation offload, like
/// wireguard-go's and Tailscale's TUN code: the kernel's TCP hands us
/// segments of up to 64 KiB in one read, which `TCPSegmentation` splits to
/// the MTU, so one system call brings in dozens of packets.
public final class TUNDevice: PacketEnd, @unchecked Sendable {
    public let name: String
    public let mtu: Int
    public let offload: Bool
    private let fd: Int32
    /// Only the device's send thread reads, so one scratch buffer suffices.
    private let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_536 + 128, alignment: 64)
    /// Only the device's receive thread writes batches: where TCP segments
    /// are joined (`TCPCoalescing`).
    private let coalesced = UnsafeMutableRawBufferPointer.allocate(
        byteCount: VirtioNetHeader.size + TCPCoalescing.maxLength, alignment: 64)
    private var pending: (length: Int, layout: VirtioNetHeader.TCPLayout, gsoSize: Int, next: Int, count: Int)?

    public struct OpenError: Error, CustomStringConvertible {
        public let errno: Int32
        public let name: String
        public var description: String {
            "cannot create TUN device \(name): \(String(cString: strerror(errno))) (needs CAP_NET_ADMIN and /dev/net/tun)"
        }
    }

    public init(name: String, mtu: Int = 1420, offload: Bool = true) throws(OpenError) {
        var actual = [CChar](repeating: 0, count: 32)
        var rc: Int32 = -1
        var withOffload = false
        if offload {
            rc = tether_tun_open_offload(name, &actual)
            withOffload = rc >= 0
        }
        if rc < 0 { rc = tether_tun_open(name, &actual) }
        guard rc >= 0 else { throw OpenError(errno: -rc, name: name) }
        fd = rc
        self.offload = withOffload
        self.name = String(cString: actual)
        self.mtu = mtu
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
    }

    deinit {
        close(fd)
        scratch.deallocate()
        coalesced.deallocate()
    }

    public func readPackets(
        maximum: Int, timeoutMilliseconds: Int32, into buffer: (Int) -> UnsafeMutableRawBufferPointer, headroom: Int
    ) -> [Int] {
        var lengths: [Int] = []
        lengths.reserveCapacity(maximum)
        drainPending(&lengths, maximum, buffer, headroom)
        if lengths.isEmpty {
            guard tether_wait_readable(fd, timeoutMilliseconds) > 0 else { return [] }
        }
        while lengths.count < maximum, pending == nil {
            if !offload {
                let b = buffer(lengths.count)
                let n = read(fd, b.baseAddress! + headroom, b.count - headroom - 64)
                if n <= 0 { break }
                lengths.append(n)
                continue
            }
            let n = read(fd, scratch.baseAddress!, scratch.count)
            if n <= 0 { break }
            guard n > VirtioNetHeader.size else { continue }
            let header = VirtioNetHeader(UnsafeRawBufferPointer(rebasing: scratch[0..<10]))
            let packet = UnsafeMutableRawBufferPointer(rebasing: scratch[10..<n])
            switch header.gsoType & ~VirtioNetHeader.gsoECN {
            case VirtioNetHeader.gsoNone:
                if header.flags & VirtioNetHeader.needsChecksum != 0 {
                    VirtioNetHeader.completeChecksum(
                        packet, start: header.checksumStart, offset: header.checksumOffset)
                }
                let b = buffer(lengths.count)
                guard packet.count <= b.count - headroom - 64 else { continue }
                (b.baseAddress! + headroom).copyMemory(from: packet.baseAddress!, byteCount: packet.count)
                lengths.append(packet.count)
            case VirtioNetHeader.gsoTCPv4, VirtioNetHeader.gsoTCPv6:
                guard header.gsoSize > 0, let layout = VirtioNetHeader.tcpLayout(UnsafeRawBufferPointer(packet)) else {
                    continue
                }
                let count = TCPSegmentation.segmentCount(packet.count, layout, gsoSize: header.gsoSize)
                pending = (packet.count, layout, header.gsoSize, 0, count)
                drainPending(&lengths, maximum, buffer, headroom)
            default:
                continue  // a GSO type we did not offer
            }
        }
        return lengths
    }

    /// Emits segments of the held super-packet while slots remain.
    private func drainPending(
        _ lengths: inout [Int], _ maximum: Int, _ buffer: (Int) -> UnsafeMutableRawBufferPointer, _ headroom: Int
    ) {
        guard var p = pending else { return }
        let packet = UnsafeRawBufferPointer(rebasing: scratch[10..<(10 + p.length)])
        while p.next < p.count, lengths.count < maximum {
            let b = buffer(lengths.count)
            let n = TCPSegmentation.writeSegment(
                packet, p.layout, gsoSize: p.gsoSize, index: p.next, count: p.count,
                into: UnsafeMutableRawBufferPointer(rebasing: b[headroom..<(b.count - 64)]))
            p.next += 1
            if n > 0 { lengths.append(n) }
        }
        pending = p.next < p.count ? p : nil
    }

    /// With offload, runs of segments of one TCP flow go down as one
    /// super-packet each: one system call and one pass of the kernel's TCP
    /// receive for up to 64 segments.
    public func writePackets(count: Int, packet: (Int) -> UnsafeRawBufferPointer) {
        guard offload else {
            for i in 0..<count { writePacket(packet(i)) }
            return
        }
        TCPCoalescing.coalesce(count: count, packet: packet, scratch: coalesced) { output in
            switch output {
            case .single(let index): writePacket(packet(index))
            case .coalesced(let bytes, _): _ = write(fd, bytes.baseAddress, bytes.count)
            }
        }
    }

    public func writePacket(_ packet: UnsafeRawBufferPointer) {
        if offload {
            _ = tether_tun_write_vnet(fd, packet.baseAddress, packet.count)
        } else {
            _ = write(fd, packet.baseAddress, packet.count)
        }
    }
}

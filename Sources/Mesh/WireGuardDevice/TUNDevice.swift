import CMeshLinux

#if canImport(Glibc)
    import Glibc
#endif

/// A Linux TUN device (layer 3, no packet-information header): the kernel's
/// network stack on one side, the WireGuard device on the other. Needs
/// CAP_NET_ADMIN. The interface is configured (address, MTU, up) with `ip`.
public final class TUNDevice: PacketEnd, @unchecked Sendable {
    public let name: String
    public let mtu: Int
    private let fd: Int32

    public struct OpenError: Error, CustomStringConvertible {
        public let errno: Int32
        public let name: String
        public var description: String {
            "cannot create TUN device \(name): \(String(cString: strerror(errno))) (needs CAP_NET_ADMIN and /dev/net/tun)"
        }
    }

    public init(name: String, mtu: Int = 1420) throws(OpenError) {
        var actual = [CChar](repeating: 0, count: 32)
        let rc = tether_tun_open(name, &actual)
        guard rc >= 0 else { throw OpenError(errno: -rc, name: name) }
        fd = rc
        self.name = String(cString: actual)
        self.mtu = mtu
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
    }

    deinit { close(fd) }

    public func readPackets(
        maximum: Int, timeoutMilliseconds: Int32, into buffer: (Int) -> UnsafeMutableRawBufferPointer, headroom: Int
    ) -> [Int] {
        guard tether_wait_readable(fd, timeoutMilliseconds) > 0 else { return [] }
        var lengths: [Int] = []
        lengths.reserveCapacity(maximum)
        while lengths.count < maximum {
            let b = buffer(lengths.count)
            let n = read(fd, b.baseAddress! + headroom, b.count - headroom - 64)
            if n <= 0 { break }
            lengths.append(n)
        }
        return lengths
    }

    public func writePacket(_ packet: UnsafeRawBufferPointer) {
        _ = write(fd, packet.baseAddress, packet.count)
    }
}

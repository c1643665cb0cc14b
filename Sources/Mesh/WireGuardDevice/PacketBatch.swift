import WireGuardCore

/// A pool of packet buffers allocated once per thread and reused for every
/// batch: `count` slots of `stride` bytes, each with `headroom` bytes in
/// front of the packet (the transport header is written there in place)
/// and tailroom behind it (padding and tag). No allocation per packet.
final class PacketBatch: @unchecked Sendable {
    static let headroom = 64
    static let capacity = 65_535 + 64  // a whole UDP datagram or a TUN packet at any MTU
    static let stride = headroom + capacity + 64

    let count: Int
    let base: UnsafeMutableRawPointer
    /// Per slot: where the packet or datagram starts and how long it is.
    var offsets: [Int]
    var lengths: [Int]

    init(count: Int) {
        self.count = count
        base = UnsafeMutableRawPointer.allocate(byteCount: count * Self.stride, alignment: 64)
        offsets = Array(repeating: Self.headroom, count: count)
        lengths = Array(repeating: 0, count: count)
    }

    deinit { base.deallocate() }

    /// The whole buffer of slot `i`.
    func slot(_ i: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: base + i * Self.stride, count: Self.stride)
    }

    /// The bytes currently held in slot `i`.
    func contents(_ i: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: slot(i)[offsets[i]..<(offsets[i] + lengths[i])])
    }
}

/// The device's inside end: where plaintext IP packets come from and go to.
/// A TUN device for the kernel's stack, or a `PacketQueue` for a userspace
/// stack (Netstack) living in the same process.
public protocol PacketEnd: AnyObject, Sendable {
    /// Waits up to `timeoutMilliseconds` for packets and reads as many as are
    /// ready (at most `maximum`), each into `buffer(i)` at offset `headroom`.
    /// Returns the packet lengths.
    func readPackets(
        maximum: Int, timeoutMilliseconds: Int32, into buffer: (Int) -> UnsafeMutableRawBufferPointer, headroom: Int
    ) -> [Int]
    /// Delivers one decrypted packet.
    func writePacket(_ packet: UnsafeRawBufferPointer)
    /// Delivers `count` decrypted packets in order (a TUN device with
    /// offload joins TCP segments here); by default one `writePacket` each.
    func writePackets(count: Int, packet: (Int) -> UnsafeRawBufferPointer)
    var mtu: Int { get }
}

extension PacketEnd {
    public func writePackets(count: Int, packet: (Int) -> UnsafeRawBufferPointer) {
        for i in 0..<count { writePacket(packet(i)) }
    }
}

import Netstack
import Synchronization
import WireGuardCore

/// The device's packet end wired straight to a Netstack: decrypted packets
/// go into the stack on the device's receive thread, and what the stack
/// sends waits in a bounded queue for the device's send thread. One copy
/// each way and no extra thread (a `PacketQueue` would add a reader).
public final class NetstackLink: PacketEnd, NetLink, @unchecked Sendable {
    public let mtu: Int
    private let bound: Int
    private let outbound = Mutex<[[UInt8]]>([])
    private let ready = Condition()
    private let stack = Mutex<NetStack?>(nil)
    private let dropped = Atomic<Int>(0)

    public init(mtu: Int = 1280, bound: Int = 8192) {
        self.mtu = mtu
        self.bound = bound
    }

    /// The stack that receives packets (set once, right after it is made).
    func attach(_ stack: NetStack?) { self.stack.withLock { $0 = stack } }

    /// Packets dropped because the device had fallen behind.
    public var droppedPackets: Int { dropped.load(ordering: .relaxed) }

    // MARK: NetLink (the stack's side)

    public func send(_ packets: [[UInt8]]) {
        let refused = outbound.withLock { q -> Int in
            let room = max(0, bound - q.count)
            q.append(contentsOf: packets.prefix(room))
            return packets.count - min(room, packets.count)
        }
        if refused > 0 { dropped.add(refused, ordering: .relaxed) }
        ready.signal()
    }

    // MARK: PacketEnd (the device's side)

    public func readPackets(
        maximum: Int, timeoutMilliseconds: Int32, into buffer: (Int) -> UnsafeMutableRawBufferPointer, headroom: Int
    ) -> [Int] {
        var packets = take(maximum)
        if packets.isEmpty {
            ready.wait(milliseconds: timeoutMilliseconds)
            packets = take(maximum)
        }
        var lengths: [Int] = []
        lengths.reserveCapacity(packets.count)
        for (i, p) in packets.enumerated() {
            let b = buffer(i)
            let n = min(p.count, b.count - headroom)
            p.withUnsafeBytes { b.baseAddress!.advanced(by: headroom).copyMemory(from: $0.baseAddress!, byteCount: n) }
            lengths.append(n)
        }
        return lengths
    }

    private func take(_ maximum: Int) -> [[UInt8]] {
        outbound.withLock { q in
            guard !q.isEmpty else { return [] }
            if q.count <= maximum {
                defer { q.removeAll(keepingCapacity: true) }
                return q
            }
            let out = Array(q.prefix(maximum))
            q.removeFirst(maximum)
            return out
        }
    }

    public func writePacket(_ packet: UnsafeRawBufferPointer) {
        stack.withLock { $0 }?.input(packet)
    }

    /// A received batch goes to the stack in one `input` call: the stack takes
    /// its lock once and services each connection once per batch (one ACK for
    /// many segments), instead of once per packet.
    public func writePackets(count: Int, packet: (Int) -> UnsafeRawBufferPointer) {
        guard count > 0, let stack = stack.withLock({ $0 }) else { return }
        stack.input((0..<count).map(packet))
    }
}

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
    private let outbound = Mutex<Outbound>(Outbound())
    private let ready = Condition()
    private let stack = Mutex<NetStack?>(nil)
    private let dropped = Atomic<Int>(0)

    /// Packets from the stack waiting for the device: consumed from `head`
    /// (no shifting per batch), storage reused once drained.
    private struct Outbound {
        var packets: [[UInt8]] = []
        var head = 0
        var count: Int { packets.count - head }
    }

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
            q.packets.append(contentsOf: packets.prefix(room))
            return packets.count - min(room, packets.count)
        }
        if refused > 0 { dropped.add(refused, ordering: .relaxed) }
        ready.signal()
    }

    // MARK: PacketEnd (the device's side)

    public func readPackets(
        maximum: Int, timeoutMilliseconds: Int32, into buffer: (Int) -> UnsafeMutableRawBufferPointer, headroom: Int
    ) -> [Int] {
        var lengths = take(maximum, into: buffer, headroom: headroom)
        if lengths.isEmpty {
            ready.wait(milliseconds: timeoutMilliseconds)
            lengths = take(maximum, into: buffer, headroom: headroom)
        }
        return lengths
    }

    /// Copies up to `maximum` queued packets straight into the device's
    /// buffers (a few microseconds under the lock; no batch array made).
    private func take(
        _ maximum: Int, into buffer: (Int) -> UnsafeMutableRawBufferPointer, headroom: Int
    ) -> [Int] {
        outbound.withLock { q in
            guard q.count > 0 else { return [] }
            let n = min(maximum, q.count)
            var lengths: [Int] = []
            lengths.reserveCapacity(n)
            for i in 0..<n {
                let b = buffer(i)
                let p = q.packets[q.head + i]
                let length = min(p.count, b.count - headroom)
                p.withUnsafeBytes {
                    UnsafeMutableRawBufferPointer(rebasing: b[headroom..<(headroom + length)])
                        .copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[0..<length]))
                }
                lengths.append(length)
            }
            q.head += n
            if q.head == q.packets.count {
                q.packets.removeAll(keepingCapacity: true)
                q.head = 0
            } else if q.head >= 4096 {
                q.packets.removeFirst(q.head)
                q.head = 0
            }
            return lengths
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

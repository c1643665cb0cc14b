import Dispatch
import Synchronization

/// An in-process packet end: the device writes decrypted packets into
/// `inbound` and reads packets to encrypt from `outbound`. A userspace
/// TCP/IP stack (Netstack) sits on the other side.
public final class PacketQueue: PacketEnd, @unchecked Sendable {
    public let mtu: Int
    private let bound: Int
    private let toDevice = Mutex<[[UInt8]]>([])
    private let fromDevice = Mutex<[[UInt8]]>([])
    private let toDeviceReady = Condition()
    private let fromDeviceReady = Condition()

    public init(mtu: Int = 1420, bound: Int = 4096) {
        self.mtu = mtu
        self.bound = bound
    }

    /// Hands an IP packet to the device for encryption. False if the queue
    /// is full (the packet is dropped, as a full NIC queue would).
    @discardableResult
    public func send(_ packet: [UInt8]) -> Bool {
        let ok = toDevice.withLock { q in
            guard q.count < bound else { return false }
            q.append(packet)
            return true
        }
        if ok { toDeviceReady.signal() }
        return ok
    }

    /// Takes the decrypted packets received so far, waiting up to `timeout`
    /// milliseconds for the first.
    public func receive(timeoutMilliseconds: Int32) -> [[UInt8]] {
        if let packets = takeAll(fromDevice), !packets.isEmpty { return packets }
        fromDeviceReady.wait(milliseconds: timeoutMilliseconds)
        return takeAll(fromDevice) ?? []
    }

    private func takeAll(_ m: borrowing Mutex<[[UInt8]]>) -> [[UInt8]]? {
        m.withLock { q in
            let out = q
            q.removeAll(keepingCapacity: true)
            return out
        }
    }

    public func readPackets(
        maximum: Int, timeoutMilliseconds: Int32, into buffer: (Int) -> UnsafeMutableRawBufferPointer, headroom: Int
    ) -> [Int] {
        var packets = toDevice.withLock { q -> [[UInt8]] in
            let n = min(maximum, q.count)
            let out = Array(q.prefix(n))
            q.removeFirst(n)
            return out
        }
        if packets.isEmpty {
            toDeviceReady.wait(milliseconds: timeoutMilliseconds)
            packets = toDevice.withLock { q -> [[UInt8]] in
                let n = min(maximum, q.count)
                let out = Array(q.prefix(n))
                q.removeFirst(n)
                return out
            }
        }
        var lengths: [Int] = []
        for (i, p) in packets.enumerated() {
            let b = buffer(i)
            let n = min(p.count, b.count - headroom)
            p.withUnsafeBytes { b.baseAddress!.advanced(by: headroom).copyMemory(from: $0.baseAddress!, byteCount: n) }
            lengths.append(n)
        }
        return lengths
    }

    public func writePacket(_ packet: UnsafeRawBufferPointer) {
        let added = fromDevice.withLock { q in
            guard q.count < bound else { return false }
            q.append(Array(packet))
            return true
        }
        if added { fromDeviceReady.signal() }
    }
}

/// A wake-up signal with a timeout.
final class Condition: @unchecked Sendable {
    private let semaphore = DispatchSemaphore(value: 0)

    func signal() { semaphore.signal() }

    /// Returns when signalled or after `milliseconds`.
    func wait(milliseconds: Int32) {
        _ = semaphore.wait(timeout: .now() + .milliseconds(Int(milliseconds)))
    }
}

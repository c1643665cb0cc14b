import CMeshLinux
import Synchronization
import WireGuardCore

#if canImport(Glibc)
    import Glibc
#endif

/// The device's one UDP socket (dual-stack IPv6 when the host has it),
/// read and written in batches with recvmmsg/sendmmsg.
final class DeviceUDPSocket: @unchecked Sendable {
    let fd: Int32
    let port: UInt16

    struct OpenError: Error, CustomStringConvertible {
        let errno: Int32
        let port: UInt16
        var description: String { "cannot bind UDP port \(port): \(String(cString: strerror(errno)))" }
    }

    init(port: UInt16) throws(OpenError) {
        var bound: UInt16 = 0
        let rc = tether_udp_open(port, &bound)
        guard rc >= 0 else { throw OpenError(errno: -rc, port: port) }
        fd = rc
        self.port = bound
        _ = tether_udp_enable_gro(fd)  // best effort: without it, one datagram per slot
    }

    deinit { close(fd) }

    /// One received datagram: where it sits in the batch and who sent it.
    struct Received {
        var slot: Int
        var range: Range<Int>
        var source: WireGuardCore.Endpoint
    }

    /// Receives a batch into `batch` (slot i at its headroom) and lists the
    /// datagrams, splitting slots the kernel coalesced (UDP GRO). Empty after
    /// `timeoutMilliseconds`.
    func receive(into batch: PacketBatch, datagrams: inout [Received], timeoutMilliseconds: Int32) {
        datagrams.removeAll(keepingCapacity: true)
        var lengths = [UInt32](repeating: 0, count: batch.count)
        var segments = [UInt16](repeating: 0, count: batch.count)
        var raw = [tether_endpoint](repeating: tether_endpoint(), count: batch.count)
        let n = tether_udp_recv_batch(
            fd, batch.base.assumingMemoryBound(to: UInt8.self), PacketBatch.stride, PacketBatch.headroom,
            PacketBatch.capacity, UInt32(batch.count), &lengths, &segments, &raw, timeoutMilliseconds)
        guard n > 0 else { return }
        for i in 0..<Int(n) {
            let length = Int(lengths[i])
            guard length <= PacketBatch.capacity else { continue }  // truncated: drop
            let source = Self.endpoint(raw[i])
            let start = PacketBatch.headroom
            let step = segments[i] > 0 ? Int(segments[i]) : length
            var offset = 0
            repeat {
                let size = min(step, length - offset)
                datagrams.append(Received(slot: i, range: (start + offset)..<(start + offset + size), source: source))
                offset += size
            } while offset < length && step > 0
        }
    }

    /// Whether UDP segmentation offload still works on this socket; turned
    /// off at the first failure, after which datagrams go one by one.
    private let segmentationOffload = Atomic<Bool>(true)
    static let maxSegments = 64
    static let maxSegmentBytes = 65_000

    /// Sends datagrams (pointer, length, destination), coalescing runs of
    /// equal-size datagrams to one destination into single UDP GSO sends
    /// (the last of a run may be shorter). `scratch` must hold 64 KiB.
    func send(_ datagrams: [(UnsafeRawBufferPointer, WireGuardCore.Endpoint)], scratch: UnsafeMutableRawBufferPointer) {
        guard segmentationOffload.load(ordering: .relaxed), datagrams.count > 1 else {
            send(datagrams)
            return
        }
        var i = 0
        var singles: [(UnsafeRawBufferPointer, WireGuardCore.Endpoint)] = []
        while i < datagrams.count {
            let (first, destination) = datagrams[i]
            let size = first.count
            var j = i
            var total = 0
            // A run: same destination, same size, except a shorter last one.
            while j < datagrams.count, j - i < Self.maxSegments, datagrams[j].1 == destination,
                total + datagrams[j].0.count <= Self.maxSegmentBytes
            {
                let n = datagrams[j].0.count
                if n > size { break }
                (scratch.baseAddress! + total).copyMemory(from: datagrams[j].0.baseAddress!, byteCount: n)
                total += n
                j += 1
                if n < size { break }
            }
            if j - i >= 2 {
                // Singles gathered so far go first: per-peer order is kept.
                send(singles)
                singles.removeAll(keepingCapacity: true)
                var raw = Self.raw(destination)
                let rc = tether_udp_send_gso(
                    fd, scratch.baseAddress!.assumingMemoryBound(to: UInt8.self), total, UInt16(size), &raw)
                if rc != 0 {
                    segmentationOffload.store(false, ordering: .relaxed)
                    singles.append(contentsOf: datagrams[i..<j])
                }
            } else {
                singles.append(datagrams[i])
            }
            i = max(j, i + 1)
        }
        send(singles)
    }

    /// Sends datagrams given as (pointer, length, destination).
    func send(_ datagrams: [(UnsafeRawBufferPointer, WireGuardCore.Endpoint)]) {
        guard !datagrams.isEmpty else { return }
        let pointers: [UnsafePointer<UInt8>?] = datagrams.map { $0.0.baseAddress?.assumingMemoryBound(to: UInt8.self) }
        let lengths = datagrams.map { UInt32($0.0.count) }
        let destinations = datagrams.map { Self.raw($0.1) }
        _ = tether_udp_send_batch(fd, pointers, lengths, destinations, UInt32(datagrams.count))
    }

    func send(_ outgoing: [OutgoingDatagram]) {
        guard !outgoing.isEmpty else { return }
        // One contiguous copy, so every pointer is valid for the call.
        let joined = outgoing.flatMap(\.bytes)
        let lengths = outgoing.map { UInt32($0.bytes.count) }
        let destinations = outgoing.map { Self.raw($0.endpoint) }
        joined.withUnsafeBytes { all in
            var pointers: [UnsafePointer<UInt8>?] = []
            var offset = 0
            for length in lengths {
                pointers.append(all.baseAddress!.advanced(by: offset).assumingMemoryBound(to: UInt8.self))
                offset += Int(length)
            }
            _ = tether_udp_send_batch(fd, pointers, lengths, destinations, UInt32(outgoing.count))
        }
    }

    static func endpoint(_ e: tether_endpoint) -> WireGuardCore.Endpoint {
        var e = e
        let bytes = withUnsafeBytes(of: &e.address) { Array($0) }
        let address = e.family == 4 ? IPAddress(bytes: bytes[0..<4])! : IPAddress(bytes: bytes)!
        return WireGuardCore.Endpoint(address: address, port: e.port)
    }

    static func raw(_ endpoint: WireGuardCore.Endpoint) -> tether_endpoint {
        var e = tether_endpoint()
        e.family = endpoint.address.isIPv4 ? 4 : 6
        e.port = endpoint.port
        let bytes = endpoint.address.bytes
        withUnsafeMutableBytes(of: &e.address) { $0.copyBytes(from: bytes) }
        return e
    }
}

import CryptoPrimitives
import NIOCore
import WireGuardCore

/// The node as the device's datagram path: demultiplexing by shape on the
/// way in, routing by each peer's `PeerPath` on the way out.
///
/// On the shared socket (first bytes decide):
///
///     "TS💬" magic (54 53 f0 9f 92 ac)        → disco
///     top two bits 00 and cookie 0x2112A442    → STUN (our discovery answers)
///     anything else                            → WireGuard (types 1–4)
extension MeshNode: DatagramPath {
    public func received(_ datagram: UnsafeRawBufferPointer, from source: Endpoint) -> Endpoint? {
        if Disco.looksLikeDisco(datagram) {
            receivedDisco(datagram, via: .udp(source))
            return nil
        }
        if Self.looksLikeSTUN(datagram) {
            receivedSTUN(datagram, from: source)
            return nil
        }
        let handle = state.withLock { s -> Endpoint? in
            guard let handle = s.peers.handle(address: source) else {
                s.droppedUnknownSource += 1
                return nil
            }
            s.peers[handle]?.counters.receivedDirect += 1
            return handle
        }
        return handle
    }

    public func route(_ endpoint: Endpoint, packets: Int) -> DatagramRoute {
        let now = DeviceClock.now()
        return state.withLock { s -> DatagramRoute in
            guard s.peers[endpoint] != nil else { return .direct(endpoint) }  // not ours: plain UDP
            s.peers[endpoint]!.path.noteActivity(now: now)
            switch s.peers[endpoint]!.path.kind(now: now) {
            case .direct(let address):
                s.peers[endpoint]!.counters.sentDirect += packets
                return .direct(address)
            case .derp:
                return .relay
            case .derpAndDirect(let address):
                return .both(address)
            }
        }
    }

    public func relay(_ datagram: UnsafeRawBufferPointer, to endpoint: Endpoint) {
        let now = DeviceClock.now()
        let target = state.withLock { s -> (X25519.PublicKey, Int)? in
            guard let entry = s.peers[endpoint], let region = entry.peer.homeRegion ?? s.home else { return nil }
            s.peers[endpoint]!.counters.sentRelayed += 1
            return (entry.peer.nodeKey, region)
        }
        guard let (key, region) = target else { return }
        derp.send(datagram, to: key, region: region, now: now)
    }

    /// RFC 5389 §6: the two top bits of a STUN message are zero and the
    /// magic cookie follows the type and length.
    static func looksLikeSTUN(_ d: UnsafeRawBufferPointer) -> Bool {
        guard d.count >= STUN.headerLength, d[0] & 0xc0 == 0 else { return false }
        return d[4] == 0x21 && d[5] == 0x12 && d[6] == 0xa4 && d[7] == 0x42
    }

    /// WireGuard datagrams (and disco) that came over DERP: copied once
    /// into one buffer for the batch, disco taken out, the rest decrypted
    /// in place and delivered as one batch.
    func receivedFromDERP(_ batch: [(source: X25519.PublicKey, packet: ByteBuffer)]) {
        let total = batch.reduce(0) { $0 + $1.packet.readableBytes }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(total, 1), alignment: 16)
        defer { buffer.deallocate() }
        var wireGuard: [(source: X25519.PublicKey, range: Range<Int>)] = []
        wireGuard.reserveCapacity(batch.count)
        var offset = 0
        for (source, packet) in batch {
            let range = offset..<(offset + packet.readableBytes)
            packet.withUnsafeReadableBytes { UnsafeMutableRawBufferPointer(rebasing: buffer[range]).copyMemory(from: $0) }
            offset = range.upperBound
            let bytes = UnsafeRawBufferPointer(rebasing: buffer[range])
            if Disco.looksLikeDisco(bytes) {
                receivedDisco(bytes, via: .derp(source))
            } else {
                wireGuard.append((source, range))
            }
        }
        guard !wireGuard.isEmpty else { return }
        let now = DeviceClock.now()
        let datagrams = state.withLock { s -> [(range: Range<Int>, source: Endpoint)] in
            wireGuard.compactMap { source, range in
                guard let handle = s.peers.handle(nodeKey: source) else { return nil }
                s.peers[handle]!.counters.receivedRelayed += 1
                s.peers[handle]!.path.noteActivity(now: now)
                return (range, handle)
            }
        }
        device.receiveRelayed(buffer, datagrams: datagrams)
    }
}

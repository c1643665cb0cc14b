/// The peers of an interface, addressed by `PeerID`. Ids are handed out in
/// order from 1 and index an array directly, so the per-packet lookups on
/// the data path are an array access rather than a hash; removed peers
/// leave a hole.
///
/// The subscript uses addressors (a pointer into the array) rather than
/// `_read`/`_modify` coroutines: a coroutine whose frame outgrows the
/// caller's inline buffer is heap-allocated, and yielding `slots[i]` copied
/// the whole `Peer`; these run several times per packet. Slot 0 never holds
/// a peer, so an id out of range reads it as nil.
package struct PeerTable: Sendable {
    private var slots: [Peer?] = [nil]
    package init() {}

    package subscript(id: PeerID) -> Peer? {
        unsafeAddress {
            let i = Int(id.rawValue)
            return slots.withUnsafeBufferPointer { UnsafePointer($0.baseAddress! + (i < $0.count ? i : 0)) }
        }
        // Only ids this table issued reach here (public entry points check
        // with the read accessor first), so the index is always in range.
        unsafeMutableAddress {
            let i = Int(id.rawValue)
            precondition(i > 0 && i < slots.count, "PeerTable: id \(i) was never issued")
            return slots.withUnsafeMutableBufferPointer { $0.baseAddress! + i }
        }
    }

    /// Stores a new peer under `id`, growing the table as needed.
    package mutating func insert(_ peer: Peer, as id: PeerID) {
        let i = Int(id.rawValue)
        if i >= slots.count { slots.append(contentsOf: repeatElement(nil, count: i - slots.count + 1)) }
        slots[i] = peer
    }

    package var count: Int { slots.reduce(0) { $0 + ($1 == nil ? 0 : 1) } }

    /// Ids in ascending order.
    package var keys: [PeerID] {
        slots.indices.compactMap { slots[$0] == nil ? nil : PeerID(rawValue: UInt32($0)) }
    }

    package var values: [Peer] { slots.compactMap { $0 } }
}

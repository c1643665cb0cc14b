/// The peers of an interface, addressed by `PeerID`. Ids are handed out in
/// order and index an array directly, so the per-packet lookups on the data
/// path are an array access rather than a hash; removed peers leave a hole.
///
/// The accessors are kept trivial on purpose: a yield-once coroutine whose
/// frame outgrows the caller's inline buffer is heap-allocated, and these
/// run several times per packet.
package struct PeerTable: Sendable {
    private var slots: [Peer?] = []
    package init() {}

    package subscript(id: PeerID) -> Peer? {
        _read {
            let i = Int(id.rawValue)
            if i < slots.count { yield slots[i] } else { yield nil }
        }
        // Only ids this table issued reach here (public entry points check
        // with the read accessor first), so the index is always in range.
        _modify { yield &slots[Int(id.rawValue)] }
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

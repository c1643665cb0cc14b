/// The peers of an interface, addressed by `PeerID`. Ids are handed out in
/// order and index an array directly, so the per-packet lookups on the data
/// path are an array access rather than a hash; removed peers leave a hole.
package struct PeerTable: Sendable {
    private var slots: [Peer?] = []
    package private(set) var count = 0

    package init() {}

    package subscript(id: PeerID) -> Peer? {
        _read {
            let i = Int(id.rawValue)
            if i < slots.count { yield slots[i] } else { yield nil }
        }
        _modify {
            let i = Int(id.rawValue)
            if i >= slots.count { slots.append(contentsOf: repeatElement(nil, count: i - slots.count + 1)) }
            let before = slots[i] != nil
            yield &slots[i]
            let after = slots[i] != nil
            count += (after ? 1 : 0) - (before ? 1 : 0)
        }
    }

    /// Ids in ascending order.
    package var keys: [PeerID] {
        slots.indices.compactMap { slots[$0] == nil ? nil : PeerID(rawValue: UInt32($0)) }
    }

    package var values: [Peer] { slots.compactMap { $0 } }
}

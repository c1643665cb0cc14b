/// Cryptokey routing (whitepaper §2): a table from address prefixes to
/// peers, consulted on send (which peer gets a packet for this destination)
/// and on receive (may this peer send from this source). Longest prefix
/// wins; one prefix belongs to at most one peer, and adding it for another
/// peer moves it, as `wg set … allowed-ips` does.
///
/// Per family, one hash table per prefix length in use; a lookup probes the
/// lengths in use from longest to shortest, so its cost is the number of
/// distinct lengths configured (a handful in practice), not the table size.
public struct AllowedIPs<Value: Hashable & Sendable>: Sendable {
    private struct Family: Sendable {
        /// One table per prefix length in use, longest first: masked
        /// address → value.
        var tables: [(length: Int, map: [UInt128: Value])] = []

        func lookup(_ address: UInt128, width: Int) -> Value? {
            for table in tables {
                let masked = table.length == 0 ? 0 : address & (UInt128.max << UInt128(width - table.length))
                if let value = table.map[masked] { return value }
            }
            return nil
        }

        mutating func insert(_ key: UInt128, length: Int, _ value: Value) {
            if let i = tables.firstIndex(where: { $0.length == length }) {
                tables[i].map[key] = value
            } else {
                tables.append((length, [key: value]))
                tables.sort { $0.length > $1.length }
            }
        }

        mutating func remove(_ key: UInt128, length: Int) -> Value? {
            guard let i = tables.firstIndex(where: { $0.length == length }),
                let removed = tables[i].map.removeValue(forKey: key)
            else { return nil }
            if tables[i].map.isEmpty { tables.remove(at: i) }
            return removed
        }

        var lengths: [Int] { tables.map(\.length) }
    }

    private var v4 = Family()
    private var v6 = Family()

    public init() {}

    private static func key(_ address: IPAddress) -> UInt128 {
        switch address {
        case .v4(let a): UInt128(a)
        case .v6(let a): a
        }
    }

    /// Maps `prefix` to `value`, replacing any previous owner.
    public mutating func insert(_ prefix: IPPrefix, _ value: Value) {
        if prefix.address.isIPv4 {
            v4.insert(Self.key(prefix.address), length: prefix.length, value)
        } else {
            v6.insert(Self.key(prefix.address), length: prefix.length, value)
        }
    }

    @discardableResult
    public mutating func remove(_ prefix: IPPrefix) -> Value? {
        prefix.address.isIPv4
            ? v4.remove(Self.key(prefix.address), length: prefix.length)
            : v6.remove(Self.key(prefix.address), length: prefix.length)
    }

    /// Removes every prefix that maps to `value`.
    public mutating func removeAll(for value: Value) {
        for prefix in prefixes(for: value) { remove(prefix) }
    }

    /// The value of the longest prefix containing `address`.
    public func lookup(_ address: IPAddress) -> Value? {
        switch address {
        case .v4(let a): v4.lookup(UInt128(a), width: 32)
        case .v6(let a): v6.lookup(a, width: 128)
        }
    }

    /// Every prefix mapped to `value` (for `wg show`), IPv4 first, longest first.
    public func prefixes(for value: Value) -> [IPPrefix] {
        var out: [IPPrefix] = []
        for (family, isV4) in [(v4, true), (v6, false)] {
            for table in family.tables {
                for (key, v) in table.map where v == value {
                    let address: IPAddress = isV4 ? .v4(UInt32(truncatingIfNeeded: key)) : .v6(key)
                    out.append(IPPrefix(address: address, length: table.length)!)
                }
            }
        }
        return out
    }

    public var isEmpty: Bool { v4.lengths.isEmpty && v6.lengths.isEmpty }
}

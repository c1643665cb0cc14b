import NIOCore

/// What the server writes to one client: a relayed packet, or a ready
/// control frame (PeerGone, PeerPresent, Health, …).
enum Outbound {
    case packet(source: NodeKey, packet: ByteBuffer)
    case frame(ByteBuffer)
}

/// A FIFO with a fixed capacity that, when full, drops its oldest element
/// to make room: a relay prefers fresh packets (Tailscale's `queue_head`
/// drop). Storage grows on first use only, so an idle client costs nothing.
struct DropOldestQueue<Element> {
    private var items: [Element] = []
    private var head = 0
    let capacity: Int

    init(capacity: Int) { self.capacity = max(1, capacity) }

    var count: Int { items.count - head }
    var isEmpty: Bool { head == items.count }

    /// Appends; returns true when the oldest element was dropped for it.
    mutating func append(_ element: Element) -> Bool {
        var dropped = false
        if count == capacity {
            head += 1
            dropped = true
        }
        items.append(element)
        if head >= 32 && head * 2 >= items.count {
            items.removeFirst(head)
            head = 0
        }
        return dropped
    }

    mutating func popFirst() -> Element? {
        guard head < items.count else { return nil }
        let element = items[head]
        head += 1
        if head == items.count {
            items.removeAll(keepingCapacity: items.capacity <= 64)
            head = 0
        }
        return element
    }

    /// Removes everything; returns how many there were.
    mutating func removeAll() -> Int {
        let n = count
        items = []
        head = 0
        return n
    }
}

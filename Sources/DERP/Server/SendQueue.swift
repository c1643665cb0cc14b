import NIOCore

/// What the server writes to one client: a relayed packet, or a ready
/// control frame (PeerGone, PeerPresent, Health, …).
enum Outbound {
    case packet(source: NodeKey, packet: ByteBuffer)
    case frame(ByteBuffer)
}

extension Outbound {
    /// Bytes this item takes on the wire (a packet as a RecvPacket frame).
    var encodedLength: Int {
        switch self {
        case .packet(_, let packet): DERPWire.frameHeaderLength + DERPWire.keyLength + packet.readableBytes
        case .frame(let frame): frame.readableBytes
        }
    }

    var isDisco: Bool {
        if case .packet(_, let packet) = self { return isDiscoPacket(packet) }
        return false
    }
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

    /// Moves every element, oldest first, to the end of `out`. When `out`
    /// is empty the storages are swapped instead of copied, so a queue and
    /// its drainer pass two arrays back and forth without allocating.
    mutating func moveAll(into out: inout [Element]) {
        if out.isEmpty && head == 0 {
            swap(&items, &out)
        } else {
            out.append(contentsOf: items[head...])
            items.removeAll(keepingCapacity: true)
        }
        head = 0
    }

    /// Appends all of `elements` (at most `capacity`, to an empty queue),
    /// taking their storage when it can, and leaves `elements` empty.
    mutating func moveAll(from elements: inout [Element]) {
        precondition(isEmpty && elements.count <= capacity)
        items.removeAll(keepingCapacity: true)
        if items.capacity < elements.capacity { swap(&items, &elements) } else { items.append(contentsOf: elements) }
        head = 0
        elements.removeAll(keepingCapacity: true)
    }

    /// Removes everything; returns how many there were.
    mutating func removeAll() -> Int {
        let n = count
        items = []
        head = 0
        return n
    }
}

/// A min-heap of (deadline, key) with lazy deletion: the owner keeps the
/// authoritative deadline per key and skips heap entries that no longer
/// match it. Lets 10,000 connections share one timer without a scan.
struct DeadlineQueue<Key: Hashable> {
    private var heap: [(NetInstant, Key)] = []
    private var current: [Key: NetInstant] = [:]

    var isEmpty: Bool { current.isEmpty }

    /// Sets (or clears, with nil) the deadline of `key`.
    mutating func schedule(_ key: Key, at deadline: NetInstant?) {
        guard current[key] != deadline else { return }
        current[key] = deadline
        if let d = deadline { push((d, key)) }
        if heap.count > 4 * current.count + 64 { compact() }
    }

    /// The earliest live deadline.
    mutating func earliest() -> NetInstant? {
        while let top = heap.first {
            if current[top.1] == top.0 { return top.0 }
            pop()
        }
        return nil
    }

    /// Removes and returns every key due at or before `now`.
    mutating func popDue(now: NetInstant) -> [Key] {
        var due: [Key] = []
        while let top = heap.first, top.0 <= now {
            pop()
            if current[top.1] == top.0 {
                current[top.1] = nil
                due.append(top.1)
            }
        }
        return due
    }

    private mutating func compact() {
        heap = current.map { ($0.value, $0.key) }
        heap.sort { $0.0 < $1.0 }  // a sorted array is a valid heap
    }

    private mutating func push(_ e: (NetInstant, Key)) {
        heap.append(e)
        var i = heap.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard heap[i].0 < heap[parent].0 else { break }
            heap.swapAt(i, parent)
            i = parent
        }
    }

    private mutating func pop() {
        let last = heap.removeLast()
        guard !heap.isEmpty else { return }
        heap[0] = last
        var i = 0
        while true {
            let l = 2 * i + 1
            let r = l + 1
            var m = i
            if l < heap.count && heap[l].0 < heap[m].0 { m = l }
            if r < heap.count && heap[r].0 < heap[m].0 { m = r }
            if m == i { break }
            heap.swapAt(i, m)
            i = m
        }
    }
}

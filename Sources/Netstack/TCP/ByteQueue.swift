/// A FIFO of bytes in a ring, for the send and receive buffers.
///
/// Storage is allocated on first use and released whenever the queue drains,
/// so an idle connection holds no buffer memory. Capacity grows in powers
/// of two as data arrives; the connection enforces the byte limits.
package struct ByteQueue {
    private var storage: [UInt8] = []
    private var head = 0
    package private(set) var count = 0

    package init() {}

    package var isEmpty: Bool { count == 0 }
    package var capacity: Int { storage.count }

    private mutating func reserve(_ needed: Int) {
        guard needed > storage.count else { return }
        var newCapacity = Swift.max(storage.count, 4096)
        while newCapacity < needed { newCapacity *= 2 }
        var fresh = [UInt8](repeating: 0, count: newCapacity)
        if count > 0 {
            fresh.withUnsafeMutableBytes { dst in
                copyOut(offset: 0, count: count, into: dst)
            }
        }
        storage = fresh
        head = 0
    }

    /// Appends all of `bytes`.
    package mutating func append(_ bytes: UnsafeRawBufferPointer) {
        let n = bytes.count
        guard n > 0 else { return }
        reserve(count + n)
        let cap = storage.count
        let tail = (head + count) & (cap - 1)
        let first = Swift.min(n, cap - tail)
        storage.withUnsafeMutableBytes { s in
            s.baseAddress!.advanced(by: tail).copyMemory(from: bytes.baseAddress!, byteCount: first)
            if first < n {
                s.baseAddress!.copyMemory(from: bytes.baseAddress!.advanced(by: first), byteCount: n - first)
            }
        }
        count += n
    }

    package mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    /// Copies `count` bytes starting `offset` bytes into the queue to `dst`.
    package func copyOut(offset: Int, count n: Int, into dst: UnsafeMutableRawBufferPointer) {
        precondition(offset >= 0 && n >= 0 && offset + n <= count && n <= dst.count)
        guard n > 0 else { return }
        let cap = storage.count
        let start = (head + offset) & (cap - 1)
        let first = Swift.min(n, cap - start)
        storage.withUnsafeBytes { s in
            dst.baseAddress!.copyMemory(from: s.baseAddress!.advanced(by: start), byteCount: first)
            if first < n {
                dst.baseAddress!.advanced(by: first).copyMemory(from: s.baseAddress!, byteCount: n - first)
            }
        }
    }

    package mutating func removeFirst(_ n: Int) {
        precondition(n >= 0 && n <= count)
        count -= n
        if count == 0 {
            storage = []
            head = 0
        } else {
            head = (head + n) & (storage.count - 1)
        }
    }

    /// Moves up to `dst.count` bytes out of the front; returns how many.
    package mutating func read(into dst: UnsafeMutableRawBufferPointer) -> Int {
        let n = Swift.min(dst.count, count)
        copyOut(offset: 0, count: n, into: dst)
        removeFirst(n)
        return n
    }
}

/// A FIFO of bytes in a ring, for the send and receive buffers.
///
/// Storage is allocated on first use and kept while the queue is in use:
/// a bulk flow drains and refills it constantly, and freeing it on every
/// drain would cost an allocation per read. `releaseIfIdle`, called
/// periodically, frees it once the queue stayed empty for a whole period,
/// so an idle connection holds no buffer memory. Capacity grows in powers
/// of two as data arrives; the connection enforces the byte limits.
package struct ByteQueue {
    private var storage: [UInt8] = []
    private var head = 0
    package private(set) var count = 0
    /// Data was appended since the last `releaseIfIdle`.
    private var recentlyUsed = false

    package init() {}

    package var isEmpty: Bool { count == 0 }
    package var capacity: Int { storage.count }

    private mutating func reserve(_ needed: Int) {
        guard needed > storage.count else { return }
        var newCapacity = Swift.max(storage.count, 1024)
        while newCapacity < needed { newCapacity *= 2 }
        // Uninitialized: every byte is written by `append` before it is read.
        let fresh = [UInt8](unsafeUninitializedCapacity: newCapacity) { buf, initialized in
            if count > 0 { copyOut(offset: 0, count: count, into: UnsafeMutableRawBufferPointer(buf)) }
            initialized = newCapacity
        }
        storage = fresh
        head = 0
    }

    /// Appends all of `bytes`.
    package mutating func append(_ bytes: UnsafeRawBufferPointer) {
        let n = bytes.count
        guard n > 0 else { return }
        recentlyUsed = true
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
            head = 0
        } else {
            head = (head + n) & (storage.count - 1)
        }
    }

    /// Frees the storage if the queue is empty and nothing was appended since
    /// the previous call. Returns whether storage is still held.
    package mutating func releaseIfIdle() -> Bool {
        if count == 0 && !recentlyUsed && !storage.isEmpty {
            storage = []
            head = 0
        }
        recentlyUsed = false
        return !storage.isEmpty
    }

    /// Moves up to `dst.count` bytes out of the front; returns how many.
    package mutating func read(into dst: UnsafeMutableRawBufferPointer) -> Int {
        let n = Swift.min(dst.count, count)
        copyOut(offset: 0, count: n, into: dst)
        removeFirst(n)
        return n
    }
}

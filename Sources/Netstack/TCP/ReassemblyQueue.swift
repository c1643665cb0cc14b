/// Out-of-order data held until the gap before it fills (RFC 9293 §3.10.7.4,
/// "segment text"), and the source of the SACK blocks we send (RFC 2018 §4).
///
/// Data is kept as disjoint runs of contiguous chunks, so the common case of
/// segments arriving in order behind one hole is an O(1) append. The queue is
/// bounded in bytes (by the receive window, checked by the caller) and in
/// runs; a segment that would need a run beyond the limit is dropped.
package struct ReassemblyQueue {
    package struct Run {
        var start: SeqNumber
        var chunks: [[UInt8]]
        var length: Int
        var end: SeqNumber { start + length }
    }

    package static let maximumRuns = 64

    package private(set) var runs: [Run] = []
    package private(set) var byteCount = 0
    /// Index of the run that most recently received data (first SACK block, RFC 2018 §4).
    private var recentRun: Int?
    /// A FIN seen out of order: its sequence number.
    package var finSequence: SeqNumber?

    package init() {}

    package var isEmpty: Bool { runs.isEmpty }

    /// Stores the parts of [seq, seq + bytes.count) not already held.
    package mutating func insert(_ seq: SeqNumber, _ bytes: UnsafeRawBufferPointer) {
        var pieces: [(SeqNumber, Int, Int)] = []  // (start seq, offset in bytes, length)
        var cursor = seq
        let end = seq + bytes.count
        for run in runs {
            if run.end <= cursor { continue }
            if run.start >= end { break }
            if run.start > cursor {
                pieces.append((cursor, cursor - seq, run.start - cursor))
            }
            cursor = SeqNumber.max(cursor, run.end)
            if cursor >= end { break }
        }
        if cursor < end { pieces.append((cursor, cursor - seq, end - cursor)) }
        for (s, offset, length) in pieces {
            let chunk = [UInt8](UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + length)]))
            place(s, chunk)
        }
    }

    /// Places a chunk that lies entirely in a gap.
    private mutating func place(_ seq: SeqNumber, _ chunk: [UInt8]) {
        let end = seq + chunk.count
        // Runs are sorted; new data usually lands at or near the end.
        var i = runs.count
        while i > 0 && runs[i - 1].start > seq { i -= 1 }
        let joinsPrevious = i > 0 && runs[i - 1].end == seq
        let joinsNext = i < runs.count && runs[i].start == end
        switch (joinsPrevious, joinsNext) {
        case (true, true):
            let next = runs.remove(at: i)
            runs[i - 1].chunks.append(chunk)
            runs[i - 1].chunks.append(contentsOf: next.chunks)
            runs[i - 1].length += chunk.count + next.length
            recentRun = i - 1
        case (true, false):
            runs[i - 1].chunks.append(chunk)
            runs[i - 1].length += chunk.count
            recentRun = i - 1
        case (false, true):
            runs[i].chunks.insert(chunk, at: 0)
            runs[i].start = seq
            runs[i].length += chunk.count
            recentRun = i
        case (false, false):
            guard runs.count < Self.maximumRuns else { return }
            runs.insert(Run(start: seq, chunks: [chunk], length: chunk.count), at: i)
            recentRun = i
        }
        byteCount += chunk.count
    }

    /// Hands over, in order, the data now contiguous with `rcvNxt`, dropping
    /// anything at or below it. Returns the new `rcvNxt`.
    package mutating func drain(rcvNxt: SeqNumber, into deliver: (UnsafeRawBufferPointer) -> Void) -> SeqNumber {
        var next = rcvNxt
        while let first = runs.first, first.start <= next {
            runs.removeFirst()
            byteCount -= first.length
            if let r = recentRun { recentRun = r == 0 ? nil : r - 1 }
            guard first.end > next else { continue }
            var skip = next - first.start
            for chunk in first.chunks {
                if skip >= chunk.count {
                    skip -= chunk.count
                    continue
                }
                chunk.withUnsafeBytes { deliver(UnsafeRawBufferPointer(rebasing: $0[skip...])) }
                skip = 0
            }
            next = first.end
        }
        return next
    }

    /// SACK blocks to report: the most recently changed run first, then the
    /// others from the highest sequence down (RFC 2018 §4).
    package func sackBlocks() -> SACKBlocks {
        var blocks = SACKBlocks()
        if let r = recentRun, r < runs.count {
            blocks.append(SACKBlock(left: runs[r].start, right: runs[r].end))
        }
        for i in runs.indices.reversed() where i != recentRun {
            blocks.append(SACKBlock(left: runs[i].start, right: runs[i].end))
        }
        return blocks
    }

    package mutating func removeAll() {
        runs = []
        byteCount = 0
        recentRun = nil
        finSequence = nil
    }
}

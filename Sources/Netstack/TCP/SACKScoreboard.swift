/// The sender's record of what the peer has SACKed (RFC 6675 §3), as sorted,
/// disjoint ranges above SND.UNA.
package struct SACKScoreboard {
    package struct Range {
        var start: SeqNumber
        var end: SeqNumber
        var length: Int { end - start }
    }

    package private(set) var ranges: [Range] = []
    /// Bounds memory against a peer sending pathological SACK patterns.
    static let maximumRanges = 128

    package init() {}

    package var isEmpty: Bool { ranges.isEmpty }

    /// Records one SACK block, clipped to (sndUna, sndMax]. Returns true if it added information.
    @discardableResult
    package mutating func add(_ block: SACKBlock, sndUna: SeqNumber, sndMax: SeqNumber) -> Bool {
        let start = SeqNumber.max(block.left, sndUna)
        let end = SeqNumber.min(block.right, sndMax)
        guard start < end, block.left < block.right else { return false }
        // Find the insertion point; ranges are few and sorted.
        var i = 0
        while i < ranges.count && ranges[i].end < start { i += 1 }
        var merged = Range(start: start, end: end)
        var j = i
        while j < ranges.count && ranges[j].start <= end {
            merged.start = SeqNumber.min(merged.start, ranges[j].start)
            merged.end = SeqNumber.max(merged.end, ranges[j].end)
            j += 1
        }
        if j == i + 1 && ranges[i].start == merged.start && ranges[i].end == merged.end { return false }
        if j == i && ranges.count >= Self.maximumRanges { return false }
        ranges.replaceSubrange(i..<j, with: [merged])
        return true
    }

    /// Forgets everything below the new cumulative ACK.
    package mutating func acknowledge(upTo sndUna: SeqNumber) {
        var drop = 0
        while drop < ranges.count && ranges[drop].end <= sndUna { drop += 1 }
        if drop > 0 { ranges.removeFirst(drop) }
        if let first = ranges.first, first.start < sndUna { ranges[0].start = sndUna }
    }

    package mutating func removeAll() { ranges.removeAll() }

    package var highestSacked: SeqNumber? { ranges.last?.end }

    /// Bytes SACKed at or above `seq`.
    package func sackedBytes(above seq: SeqNumber) -> Int {
        var total = 0
        for r in ranges.reversed() {
            if r.end <= seq { break }
            total += r.end - SeqNumber.max(r.start, seq)
        }
        return total
    }

    /// RFC 6675 §4 IsLost, for all sequence numbers at once: every unSACKed
    /// byte below the returned point has more than (DupThresh − 1) · SMSS
    /// bytes, or DupThresh discontiguous ranges, SACKed above it.
    package func lossBoundary(mss: Int) -> SeqNumber? {
        var bytes = 0
        var count = 0
        for r in ranges.reversed() {
            bytes += r.length
            count += 1
            if bytes > (TCPConstants.duplicateThreshold - 1) * mss || count >= TCPConstants.duplicateThreshold {
                return r.start
            }
        }
        return nil
    }

    /// Bytes in [from, to) not covered by any SACKed range.
    package func unsackedBytes(from: SeqNumber, to: SeqNumber) -> Int {
        guard from < to else { return 0 }
        var total = to - from
        for r in ranges {
            if r.end <= from { continue }
            if r.start >= to { break }
            total -= SeqNumber.min(r.end, to) - SeqNumber.max(r.start, from)
        }
        return total
    }

    /// The first unSACKed hole at or after `from` and below `limit`, as [start, end).
    package func nextHole(from: SeqNumber, limit: SeqNumber) -> (SeqNumber, SeqNumber)? {
        var cursor = from
        for r in ranges {
            if r.end <= cursor { continue }
            if r.start > cursor {
                let end = SeqNumber.min(r.start, limit)
                return cursor < end ? (cursor, end) : nil
            }
            cursor = r.end
        }
        return cursor < limit ? (cursor, limit) : nil
    }
}

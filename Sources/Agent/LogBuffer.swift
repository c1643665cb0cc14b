
/// The agent's log lines from birth to acknowledgement: assigns each line
/// its `seq`, keeps it until the control plane's `logs_ack` covers it, and
/// hands out batches from a send cursor. Pure and bounded; the connection
/// owns the cursor, so a reconnect resends from `resume_log_seq + 1`
/// without losing or repeating a line (docs/control-protocol.md, "Logs").
public struct LogBuffer: Sendable {
    public let session: String
    /// Unacknowledged entries, ascending consecutive seqs.
    private var entries: [LogEntry] = []
    private var head = 0
    private var nextSeq: UInt64 = 1
    private var pendingBytes = 0
    /// Lines refused since the memory cap was hit, reported by one marker.
    private var dropped = 0
    public let maxPendingBytes: Int

    public init(session: String, maxPendingBytes: Int = ControlLimits.maxPendingLogBytes) {
        self.session = session
        self.maxPendingBytes = maxPendingBytes
    }

    /// Highest seq handed out so far (0 before the first line).
    public var lastSeq: UInt64 { nextSeq - 1 }
    /// Lowest seq still held, or `lastSeq + 1` when none.
    public var firstUnackedSeq: UInt64 { head < entries.count ? entries[head].seq : nextSeq }
    public var unackedCount: Int { entries.count - head }
    public var unackedBytes: Int { pendingBytes }

    /// Adds one line (already cut to `maxLogLineBytes` by the producer).
    /// Over the memory cap the line is dropped and counted; the first line
    /// accepted after that is preceded by a marker saying how many went.
    public mutating func append(source: String, level: LogLevel, at: UnixMillis, output: String) {
        let size = output.utf8.count
        if pendingBytes + size > maxPendingBytes {
            dropped += 1
            return
        }
        if dropped > 0 {
            let marker = "[tether] \(dropped) log lines dropped: the control plane was unreachable and \(maxPendingBytes) bytes were waiting"
            push(LogEntry(seq: 0, source: "agent", level: .warn, at: at, output: marker))
            dropped = 0
        }
        push(LogEntry(seq: 0, source: source, level: level, at: at, output: output))
    }

    private mutating func push(_ entry: LogEntry) {
        var e = entry
        e.seq = nextSeq
        nextSeq += 1
        pendingBytes += e.output.utf8.count
        entries.append(e)
    }

    /// Forgets every entry with seq ≤ `seq` (a `logs_ack`, or a `welcome`'s
    /// `resume_log_seq`).
    public mutating func acknowledge(through seq: UInt64) {
        while head < entries.count, entries[head].seq <= seq {
            pendingBytes -= entries[head].output.utf8.count
            head += 1
        }
        if head > 1024, head * 2 > entries.count {
            entries.removeFirst(head)
            head = 0
        }
    }

    /// Up to one batch of entries with seq ≥ `from`, within the per-message
    /// bounds; empty when there is nothing to send.
    public func batch(from: UInt64) -> [LogEntry] {
        guard head < entries.count else { return [] }
        let first = entries[head].seq
        var i = head + Int(from > first ? from - first : 0)
        var out: [LogEntry] = []
        var bytes = 0
        while i < entries.count, out.count < ControlLimits.maxLogEntriesPerBatch {
            let size = entries[i].output.utf8.count + entries[i].source.utf8.count + 64
            if !out.isEmpty, bytes + size > ControlLimits.maxLogBytesPerBatch { break }
            out.append(entries[i])
            bytes += size
            i += 1
        }
        return out
    }
}

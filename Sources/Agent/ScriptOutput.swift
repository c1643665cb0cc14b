
/// Turns a script's output bytes into log lines, and enforces the per-run
/// bound: after `limit` bytes it yields one marker line and then only
/// counts what it discards, so a script printing gigabytes costs memory
/// for one line, not for its output. Pure; the pipe reader feeds it.
public struct ScriptOutput: Sendable {
    public let source: String
    public let limit: Int
    private var partial: [UInt8] = []
    private var partialCut = false
    private var accepted = 0
    private var truncated = false
    public private(set) var discarded = 0

    public init(source: String, limit: Int = ControlLimits.maxLogBytesPerScriptRun) {
        self.source = source
        self.limit = limit
    }

    /// Feeds a chunk; calls `emit` once per complete line (without its
    /// newline) and at most once with the truncation marker.
    public mutating func feed(_ chunk: UnsafeRawBufferPointer, emit: (LogLevel, String) -> Void) {
        var start = 0
        let n = chunk.count
        while start < n {
            if accepted >= limit {
                if !truncated {
                    truncated = true
                    if !partial.isEmpty { emitPartial(emit) }
                    emit(.warn, "[tether] output of \"\(source)\" truncated after \(limit) bytes")
                }
                discarded += n - start
                return
            }
            let stop = min(n, start + (limit - accepted))
            var end = start
            while end < stop, chunk[end] != UInt8(ascii: "\n") { end += 1 }
            appendPartial(chunk, start, end)
            accepted += end - start
            if end < stop {  // a newline within the allowance ends the line
                accepted += 1
                emitPartial(emit)
                start = end + 1
            } else {
                start = end
            }
        }
    }

    /// At end of output: the last unterminated line, and a closing note if
    /// anything was discarded.
    public mutating func finish(emit: (LogLevel, String) -> Void) {
        if !partial.isEmpty || partialCut { emitPartial(emit) }
        if discarded > 0 {
            emit(.warn, "[tether] \(discarded) further bytes of \"\(source)\" output discarded")
        }
    }

    private mutating func appendPartial(_ chunk: UnsafeRawBufferPointer, _ from: Int, _ to: Int) {
        let room = ControlLimits.maxLogLineBytes - partial.count
        let take = min(room, to - from)
        if take > 0 { partial.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[from..<(from + take)])) }
        if take < to - from { partialCut = true }
    }

    private mutating func emitPartial(_ emit: (LogLevel, String) -> Void) {
        var bytes = partial
        if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
        var line = String(decoding: bytes, as: UTF8.self)
        if partialCut { line += " [tether: line cut at \(ControlLimits.maxLogLineBytes) bytes]" }
        emit(.info, line)
        partial.removeAll(keepingCapacity: true)
        partialCut = false
    }
}

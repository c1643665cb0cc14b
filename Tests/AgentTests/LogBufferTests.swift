import Agent
import Testing

@Suite struct LogBufferTests {
    @Test func seqsAreConsecutiveAndBatchesResumeFromCursor() {
        var b = LogBuffer(session: "s")
        for i in 1...10 { b.append(source: "x", level: .info, at: 0, output: "line \(i)") }
        #expect(b.lastSeq == 10)
        #expect(b.batch(from: 1).map(\.seq) == Array(1...10))
        #expect(b.batch(from: 7).map(\.seq) == [7, 8, 9, 10])
        b.acknowledge(through: 4)
        #expect(b.firstUnackedSeq == 5)
        #expect(b.batch(from: 1).map(\.seq) == Array(5...10))
        b.acknowledge(through: 10)
        #expect(b.batch(from: 11).isEmpty)
        #expect(b.unackedBytes == 0)
    }

    @Test func batchesAreBounded() {
        var b = LogBuffer(session: "s")
        for _ in 0..<3_000 { b.append(source: "x", level: .info, at: 0, output: "y") }
        #expect(b.batch(from: 1).count == ControlLimits.maxLogEntriesPerBatch)
        var big = LogBuffer(session: "s")
        let line = String(repeating: "z", count: ControlLimits.maxLogLineBytes)
        for _ in 0..<100 { big.append(source: "x", level: .info, at: 0, output: line) }
        let total = big.batch(from: 1).reduce(0) { $0 + $1.output.utf8.count }
        #expect(total <= ControlLimits.maxLogBytesPerBatch)
        #expect(total > 0)
    }

    @Test func memoryCapDropsWithOneMarker() {
        var b = LogBuffer(session: "s", maxPendingBytes: 100)
        for _ in 0..<50 { b.append(source: "x", level: .info, at: 0, output: "0123456789") }
        #expect(b.unackedCount == 10)
        b.acknowledge(through: 10)
        b.append(source: "x", level: .info, at: 0, output: "after")
        let entries = b.batch(from: 11)
        #expect(entries.count == 2)
        #expect(entries[0].output.contains("40 log lines dropped"))
        #expect(entries[0].level == .warn)
        #expect(entries[1].output == "after")
        #expect(entries.map(\.seq) == [11, 12])
    }

    /// A lossy reconnect, simulated: whatever the control plane acknowledged
    /// before the break, resuming from its `resume_log_seq` yields each line
    /// exactly once.
    @Test func resumeNeverLosesOrDuplicates() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let reporter = Reporter(session: "s")
            var stored: [UInt64] = []
            var next = 1
            var cursor = reporter.resume(at: 0)
            for _ in 0..<20 {
                for _ in 0..<Int.random(in: 0..<30, using: &rng) {
                    reporter.log(source: "x", level: .info, "l\(next)", at: 0)
                    next += 1
                }
                for message in reporter.drain(&cursor) {
                    guard case .logs(let batch) = message else { continue }
                    // The control plane may crash before storing a batch.
                    if Bool.random(using: &rng) {
                        stored += batch.entries.map(\.seq).filter { $0 > (stored.last ?? 0) }
                        if Bool.random(using: &rng) { reporter.acknowledgeLogs(through: stored.last ?? 0) }
                    } else {
                        // connection lost: reconnect and resume from what was stored
                        cursor = reporter.resume(at: stored.last ?? 0)
                        break
                    }
                }
            }
            cursor = reporter.resume(at: stored.last ?? 0)
            for message in reporter.drain(&cursor, maxLogBatches: 1000) {
                if case .logs(let batch) = message { stored += batch.entries.map(\.seq) }
            }
            #expect(stored == (0..<(next - 1)).map { UInt64($0 + 1) })
        }
    }

    @Test func lifecycleIsResentFirstAfterReconnect() {
        let r = Reporter(session: "s")
        #expect(r.setLifecycle(.starting))
        #expect(!r.setLifecycle(.off))
        r.log(source: "x", level: .info, "hi")
        var c = r.resume(at: 0)
        let first = r.drain(&c)
        guard case .lifecycle(let u) = first.first else {
            Issue.record("lifecycle not first")
            return
        }
        #expect(u.state == .created)
        var again = r.resume(at: 1)
        let resent = r.drain(&again)
        #expect(resent.filter { if case .lifecycle = $0 { true } else { false } }.count == 2)
        #expect(!resent.contains { if case .logs = $0 { true } else { false } })
    }

    /// The connection skips its log-batching pause while a lifecycle change
    /// waits, and only then.
    @Test func unsentLifecycleIsVisibleUntilDrained() {
        let r = Reporter(session: "s")
        var c = r.resume(at: 0)
        #expect(!r.hasUnsentLifecycle(c))
        #expect(r.setLifecycle(.created))
        #expect(r.hasUnsentLifecycle(c))
        _ = r.drain(&c)
        #expect(!r.hasUnsentLifecycle(c))
        r.log(source: "x", level: .info, "line")
        #expect(!r.hasUnsentLifecycle(c))
        #expect(r.setLifecycle(.starting))
        #expect(r.hasUnsentLifecycle(c))
        _ = r.drain(&c)
        #expect(!r.hasUnsentLifecycle(c))
    }
}

@Suite struct ScriptOutputTests {
    func run(_ chunks: [String], limit: Int) -> [String] {
        var out = ScriptOutput(source: "s", limit: limit)
        var lines: [String] = []
        for c in chunks {
            Array(c.utf8).withUnsafeBytes { out.feed($0) { _, l in lines.append(l) } }
        }
        out.finish { _, l in lines.append(l) }
        return lines
    }

    @Test func splitsLinesAcrossChunks() {
        #expect(run(["a\nb", "c\r\n", "d"], limit: 1000) == ["a", "bc", "d"])
    }

    @Test func truncatesWithOneMarkerAndCountsTheRest() {
        let lines = run(["1234\n5678\n", "abcdefgh\n", String(repeating: "x", count: 1000)], limit: 12)
        #expect(lines[0] == "1234")
        #expect(lines[1] == "5678")
        #expect(lines[2] == "ab")
        #expect(lines[3].contains("truncated after 12 bytes"))
        #expect(lines[4].contains("1007 further bytes"))
        #expect(lines.count == 5)
    }

    @Test func markerWhenLimitEndsExactlyAtChunkEnd() {
        let lines = run(["abcd", "efgh"], limit: 4)
        #expect(lines == ["abcd", "[tether] output of \"s\" truncated after 4 bytes", "[tether] 4 further bytes of \"s\" output discarded"])
    }

    @Test func longLinesAreCut() {
        let lines = run([String(repeating: "q", count: ControlLimits.maxLogLineBytes + 10) + "\n"], limit: 1 << 20)
        #expect(lines.count == 1)
        #expect(lines[0].hasSuffix("[tether: line cut at \(ControlLimits.maxLogLineBytes) bytes]"))
    }
}

@Suite struct BackoffTests {
    @Test func growsFrom100msTo10sWithJitter() {
        var b = Backoff()
        #expect(b.next(unit: 0) == .milliseconds(50))
        #expect(b.next(unit: 1) == .milliseconds(200))
        var last = Duration.zero
        for _ in 0..<20 { last = b.next(unit: 0.999_999) }
        #expect(last <= .seconds(10))
        #expect(last > .milliseconds(9_999))
        #expect(b.next(unit: 0) == .seconds(5))
        b.reset()
        #expect(b.next(unit: 1) == .milliseconds(100))
    }
}

@Suite struct ListeningPortsTests {
    @Test func parsesProcNetTcpAndTcp6() {
        let tcp = """
              sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
               0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1 0 100 0 0 10 0
               1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0
               2: 0100007F:9C40 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 3 1 0 20 4 30 10 -1
               garbage
            """
        #expect(ListeningPortsScanner.parse(tcp, network: "tcp") == [
            ListeningPort(network: "tcp", address: "127.0.0.1", port: 8080),
            ListeningPort(network: "tcp", address: "0.0.0.0", port: 22),
        ])
        let tcp6 = """
              sl  local_address                         remote_address                        st
               0: 00000000000000000000000001000000:0CEA 00000000000000000000000000000000:0000 0A 00000000:00000000
               1: 00000000000000000000000000000000:01BB 00000000000000000000000000000000:0000 0A 00000000:00000000
            """
        #expect(ListeningPortsScanner.parse(tcp6, network: "tcp6") == [
            ListeningPort(network: "tcp6", address: "::1", port: 3306),
            ListeningPort(network: "tcp6", address: "::", port: 443),
        ])
    }

    @Test func scanFindsARealListener() throws {
        #if canImport(Glibc)
            let ports = ListeningPortsScanner.scan()
            // Whatever listens here, the scan must not crash and must be sorted.
            #expect(ports == ports.sorted())
        #endif
    }
}

import Agent
import Testing

/// `ControlCodec.encode(_: AgentMessage)` writes JSON by hand; these hold it
/// byte for byte to what `JSONEncoder` (`.sortedKeys`,
/// `.withoutEscapingSlashes`) writes for the same message, and to what the
/// control plane decodes.
@Suite struct AgentMessageEncodingTests {
    static let awkward = [
        "", "plain", "quote \" backslash \\ slash /", "lines\nand\r\ttabs", "\u{08}\u{0C}\u{00}\u{01}\u{1F}\u{7F}",
        "héllo wörld", "日本語", "emoji 🧪👩‍💻", "\u{2028}\u{2029}", "{\"type\":\"x\"}",
    ]

    static func messages(text s: String) -> [AgentMessage] {
        let node = NodeInfo(nodeKey: s, discoKey: "d", addresses: [s, "fd74::1/128"], endpoints: [], homeDERP: nil)
        return [
            .hello(
                Hello(
                    agentVersion: s, session: "0123abcd", startedAt: 1_733_000_000_000, hostname: s, os: "linux",
                    arch: "x86_64")),
            .lifecycle(LifecycleUpdate(state: .startTimeout, changedAt: -1)),
            .logs(LogBatch(session: s, entries: [])),
            .logs(
                LogBatch(
                    session: "s",
                    entries: [
                        LogEntry(seq: 1, source: s, level: .info, at: 3, output: s),
                        LogEntry(seq: UInt64(Int64.max), source: "agent", level: .error, at: Int64.min, output: "x"),
                    ])),
            .metadata(MetadataBatch(results: [MetadataResult(key: s, value: s, error: "", collectedAt: 4)])),
            .metadata(MetadataBatch(results: [])),
            .appHealth(
                AppHealthReport(apps: [.init(slug: s, health: .unhealthy), .init(slug: "b", health: .disabled)])),
            .stats(
                Stats(
                    collectedAt: 5, uptimeSeconds: 0, residentBytes: Int64.max, load1: 0.53, scriptsRunning: 1,
                    txBytes: 8, rxBytes: 9)),
            .listeningPorts(ListeningPorts(ports: [ListeningPort(network: "tcp6", address: s, port: 65535)])),
            .listeningPorts(ListeningPorts(ports: [])),
            .node(NodeUpdate(node: node)),
            .node(
                NodeUpdate(
                    node: NodeInfo(
                        nodeKey: "k", discoKey: s, addresses: [], endpoints: ["[::1]:41641", "10.0.0.1:1"], homeDERP: 7)
                )),
            .readyForHandshake(ReadyForHandshake(nodeKey: s)),
            .unknown(type: "future_thing"),
        ]
    }

    @Test(arguments: awkward) func sameBytesAsJSONEncoder(text: String) throws {
        for m in Self.messages(text: text) {
            let ours = ControlCodec.encode(m)
            let reference = ControlCodec.encodeWithFoundation(m)
            let same = ours == reference
            #expect(same, "\(String(decoding: ours, as: UTF8.self)) ≠ \(String(decoding: reference, as: UTF8.self))")
            #expect(try ControlCodec.decodeAgentMessage(ours) == m)
        }
    }

    @Test func numbersAsJSONEncoderWritesThem() throws {
        let loads: [Double] = [0, 0.5, 1, 2.25, 0.01, 1234.5678, 1e-7, -2.5, 1e20, 123_456_789.125, .nan, .infinity]
        for load in loads {
            let m = AgentMessage.stats(
                Stats(
                    collectedAt: 0, uptimeSeconds: 1, residentBytes: 2, load1: load, scriptsRunning: 3, txBytes: 4,
                    rxBytes: 5))
            let ours = String(decoding: ControlCodec.encode(m), as: UTF8.self)
            if load.isFinite {
                let reference = String(decoding: ControlCodec.encodeWithFoundation(m), as: UTF8.self)
                #expect(ours == reference)
            } else {
                // JSON has no NaN or infinity; JSONEncoder would throw.
                #expect(ours.contains(#""load1":0,"#))
            }
        }
    }

    @Test func randomStringsMatchJSONEncoder() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            var s = ""
            for _ in 0..<Int.random(in: 0..<24, using: &rng) {
                let pick = Int.random(in: 0..<4, using: &rng)
                let value: UInt32 =
                    switch pick {
                    case 0: UInt32.random(in: 0..<0x80, using: &rng)
                    case 1: UInt32.random(in: 0x80..<0x800, using: &rng)
                    case 2: UInt32.random(in: 0x800..<0xD800, using: &rng)
                    default: UInt32.random(in: 0x10000..<0x110000, using: &rng)
                    }
                s.unicodeScalars.append(Unicode.Scalar(value)!)
            }
            let m = AgentMessage.logs(
                LogBatch(session: "s", entries: [LogEntry(seq: 1, source: s, level: .warn, at: 2, output: s)]))
            let same = ControlCodec.encode(m) == ControlCodec.encodeWithFoundation(m)
            #expect(same, "\(s.unicodeScalars.map { String($0.value, radix: 16) })")
        }
    }

    @Test func loadAverageParsedWithoutStrtod() {
        func load(_ text: String) -> Double? { ProcessStats.load(loadavgText: Array(text.utf8)) }
        #expect(load("0.53 1.06 0.95 2/345 6789\n") == 0.53)
        #expect(load("0.00 0.00 0.00 1/1 1\n") == 0)
        #expect(load("12.5 1 1") == 12.5)
        #expect(load("300 1 1") == 300)
        #expect(load("1.999 1 1") == 1.99)
        for bad in ["", " 1.0", "x", "1..2 1", ".5 1", "-1.0 2", "99999999999999999999 1"] {
            #expect(load(bad) == nil, "\(bad)")
        }
        #expect(ProcessStats.load1() >= 0)
    }
}

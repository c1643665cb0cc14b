import Foundation
import Netstack
import Testing

/// Opens a connection from A to B's listener on `port` and returns both ends.
func connectPair(
    _ sim: inout LinkSimulator, port: UInt16 = 80, v6: Bool = false
) throws -> (StackCore.ConnectionID, StackCore.ConnectionID) {
    if !sim.b.isListening(port: port) { try sim.b.listen(port: port) }
    let target = SocketAddress(v6 ? LinkSimulator.addressB6 : LinkSimulator.addressB4, port)
    let client = try sim.a.connect(to: target, now: sim.now)
    var server: StackCore.ConnectionID?
    let ok = sim.run(for: .seconds(30)) { s in
        if server == nil { server = s.b.accept(port: port) }
        return server != nil && s.a.connection(client)?.isEstablished == true
    }
    guard ok, let server else { throw TestFailure("handshake did not complete") }
    return (client, server)
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// Moves `bytes` each way at once and closes; checks every byte and the clean close.
func bulkBothWays(_ sim: inout LinkSimulator, bytes: Int, v6: Bool = false, limit: Duration = .seconds(3600)) throws {
    let (client, server) = try connectPair(&sim, v6: v6)
    let start = sim.now
    var ea = BulkEndpoint(tag: 1, peerTag: 2, total: bytes)
    var eb = BulkEndpoint(tag: 2, peerTag: 1, total: bytes)
    let ok = sim.run(for: limit) { s in
        ea.pump(&s.a, client, now: s.now)
        eb.pump(&s.b, server, now: s.now)
        return ea.sawEnd && eb.sawEnd && ea.received == bytes && eb.received == bytes
    }
    #expect(ok, "transfer incomplete: A got \(ea.received), B got \(eb.received) of \(bytes)")
    if !ok {
        print("now \(sim.now)")
        print("A: \(sim.a.connection(client)?.debugSummary ?? "gone")")
        print("B: \(sim.b.connection(server)?.debugSummary ?? "gone")")
    }
    #expect(ea.mismatches == 0 && eb.mismatches == 0)
    let seconds = Double((sim.now - start).components.seconds) + Double((sim.now - start).components.attoseconds) / 1e18
    let sa = sim.a.connection(client)?.stats
    let sb = sim.b.connection(server)?.stats
    print(
        "bulk \(bytes >> 20) MiB each way: \(String(format: "%.1f", seconds)) s fake time, "
            + "\(sim.delivered) packets delivered, \(sim.dropped) dropped; A \(String(describing: sa)); B \(String(describing: sb))"
    )
    sim.a.close(client, now: sim.now)
    sim.b.close(server, now: sim.now)
    // Both ends close; after TIME_WAIT (2 MSL) both tables are empty.
    let closed = sim.run(for: .seconds(300)) { s in s.a.connectionCount == 0 && s.b.connectionCount == 0 }
    #expect(closed, "connections left: A \(sim.a.connectionCount), B \(sim.b.connectionCount)")
}

@Suite struct TCPTransferTests {
    @Test(arguments: [false, true])
    func lossless(v6: Bool) throws {
        var sim = LinkSimulator()
        try bulkBothWays(&sim, bytes: 4 << 20, v6: v6)
    }

    /// The issue's lossy link: 5 % loss, duplicates, reordering, delay.
    /// Release builds (the project's test command) move 100 MiB each way.
    @Test func lossyReorderingDuplicatingLink() throws {
        var sim = LinkSimulator(
            impairments: .init(loss: 0.05, duplicate: 0.02, delay: .milliseconds(10), jitter: .milliseconds(4)),
            seed: 42)
        try bulkBothWays(&sim, bytes: TestSizes.lossyBulk)
        #expect(sim.dropped > 0)
    }

    @Test func lossyWithoutSACK() throws {
        var o = TCPConnection.Options()
        o.selectiveAcknowledgments = false
        var sim = LinkSimulator(
            impairments: .init(loss: 0.03, duplicate: 0.01, delay: .milliseconds(5), jitter: .milliseconds(2)),
            seed: 7, optionsA: o, optionsB: o)
        try bulkBothWays(&sim, bytes: TestSizes.lossyBulk / 8)
    }

    @Test func lossyWithoutTimestampsOrWindowScaling() throws {
        var o = TCPConnection.Options()
        o.timestamps = false
        o.windowScaling = false
        var sim = LinkSimulator(
            impairments: .init(loss: 0.03, delay: .milliseconds(5), jitter: .milliseconds(2)),
            seed: 9, optionsA: o, optionsB: o)
        try bulkBothWays(&sim, bytes: TestSizes.lossyBulk / 8, v6: true)
    }

    /// Sequence numbers start just below 2^32 so the transfer wraps them.
    @Test func sequenceNumbersWrap() throws {
        var sim = LinkSimulator(
            impairments: .init(loss: 0.02, delay: .milliseconds(2), jitter: .milliseconds(1)),
            isnA: SeqNumber(UInt32.max - 100_000), isnB: SeqNumber(UInt32.max - 5))
        try bulkBothWays(&sim, bytes: 2 << 20)
    }

    @Test func smallMTUClampsSegments() throws {
        var sim = LinkSimulator(mtu: 1280)
        try bulkBothWays(&sim, bytes: 1 << 20, v6: true)
    }
}

enum TestSizes {
    #if DEBUG
        static let lossyBulk = 4 << 20
    #else
        static let lossyBulk = 100 << 20
    #endif
}

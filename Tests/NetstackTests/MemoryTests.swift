import Netstack
import Testing

@Suite struct MemoryTests {
    /// An idle connection owns no heap of its own: its queues free their
    /// storage when they drain, so it costs its inline state in the stack's
    /// table. Issue 4's goal is ≤ 4 KiB plus buffers in use.
    @Test func idleConnectionHoldsNoBuffers() throws {
        var sim = LinkSimulator()
        let (client, server) = try connectPair(&sim)
        var a = BulkEndpoint(tag: 1, peerTag: 2, total: 300_000)
        var b = BulkEndpoint(tag: 2, peerTag: 1, total: 0)
        _ = sim.run(for: .seconds(10)) { s in
            a.pump(&s.a, client, now: s.now)
            b.pump(&s.b, server, now: s.now)
            return b.received == 300_000 && s.a.connection(client)?.unacknowledgedBytes == 0
        }
        sim.advance(.seconds(1))
        for c in [sim.a.connection(client)!, sim.b.connection(server)!] {
            #expect(c.bufferCapacity == 0)
        }
        let inline = MemoryLayout<TCPConnection>.stride
        print("idle connection: \(inline) bytes inline, 0 bytes of buffers")
        #expect(inline < 2048)
    }
}

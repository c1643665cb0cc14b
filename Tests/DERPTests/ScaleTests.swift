import CryptoPrimitives
import DERP
import NIOCore
import Synchronization
import Testing

@Suite struct ScaleTests {
    /// 1,000 clients on one server; each sends to random others at a
    /// moderate rate; every packet arrives, from the right source, intact.
    @Test func thousandClientsRelayWithoutLoss() async throws {
        let server = try await startServer()
        let count = 1000
        let perClient = 20
        final class Tally: Sendable {
            let received = Atomic<Int>(0)
            let wrong = Atomic<Int>(0)
        }
        let tally = Tally()
        var clients: [DERPClient] = []
        for _ in 0..<count {
            var options = DERPClient.Options()
            options.transport = .upgrade
            let key = X25519.PrivateKey()
            let me = key.publicKey
            // Each packet carries its source and destination keys.
            let client = DERPClient(url: url(server), privateKey: key, options: options) { source, packet in
                let bytes = Array(buffer: packet)
                if bytes.count == 64 && bytes[0..<32].elementsEqual(source.raw.bytes) && bytes[32..<64].elementsEqual(me.raw.bytes) {
                    tally.received.add(1, ordering: .relaxed)
                } else {
                    tally.wrong.add(1, ordering: .relaxed)
                }
            }
            clients.append(client)
        }
        // Connect in waves of 100.
        for wave in stride(from: 0, to: count, by: 100) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for client in clients[wave..<(wave + 100)] { group.addTask { try await client.connect() } }
                try await group.waitForAll()
            }
        }
        #expect(server.server.clientCount == count)
        var rng = SplitMix64(seed: 1000)
        var plan: [(Int, Int)] = []
        for i in 0..<count {
            for _ in 0..<perClient {
                var j = Int(rng.next() % UInt64(count))
                if j == i { j = (j + 1) % count }
                plan.append((i, j))
            }
        }
        plan.shuffle(using: &rng)
        // Moderate rate: batches of 500 packets, then a pause.
        for batch in stride(from: 0, to: plan.count, by: 500) {
            for (i, j) in plan[batch..<min(batch + 500, plan.count)] {
                let packet = clients[i].publicKey.raw.bytes + clients[j].publicKey.raw.bytes
                try await clients[i].send(to: clients[j].publicKey, packet: packet)
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(await eventually(timeout: .seconds(30)) { tally.received.load(ordering: .relaxed) == plan.count })
        #expect(tally.received.load(ordering: .relaxed) == plan.count)
        #expect(tally.wrong.load(ordering: .relaxed) == 0)
        let metrics = server.server.metrics
        #expect(metrics.dropped(.queueHead) == 0)
        #expect(metrics.dropped(.unknownDestination) == 0)
        #expect(metrics.snapshot["packets_sent"] == plan.count)
        await withTaskGroup(of: Void.self) { group in
            for client in clients { group.addTask { await client.close() } }
        }
        #expect(await eventually(timeout: .seconds(10)) { server.server.clientCount == 0 })
        try await server.close()
    }
}

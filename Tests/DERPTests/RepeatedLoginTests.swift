import CryptoPrimitives
import DERP
import NIOCore
import Testing

/// Logins back to back, in one process: the release build of the Health /
/// Restarting change corrupted the heap on almost every client login (an
/// async frame holding a `NodeKey` beside references overran its task
/// allocation; see `LoginResult`). glibc then aborted the whole test
/// process, so a recurrence fails this test (and its target) outright.
/// Each new client is also sent to as soon as its `connect` returns: the
/// server registers a client before its ServerInfo leaves.
@Suite struct RepeatedLoginTests {
    @Test func manyLoginsInARowLeaveTheHeapIntact() async throws {
        let server = try await startServer()
        let receiver = makeClient(server)
        try await receiver.connect()
        for round in 0..<40 {
            let client = makeClient(server, transport: round.isMultiple(of: 2) ? .upgrade : .webSocket)
            try await client.connect()
            #expect(client.serverKey == server.server.publicKey)
            _ = try await client.ping()
            try await client.send(to: receiver.publicKey, packet: [UInt8(round)])
            #expect(await nextEvent(receiver, where: isPacket) == .packet(source: client.publicKey, packet: ByteBuffer(bytes: [UInt8(round)])))
            // A client that has its ServerInfo is reachable at once.
            try await receiver.send(to: client.publicKey, packet: [UInt8(round), 1])
            #expect(await nextEvent(client, where: isPacket) == .packet(source: receiver.publicKey, packet: ByteBuffer(bytes: [UInt8(round), 1])))
            await client.close()
        }
        await receiver.close()
        try await server.close()
    }

    @Test func manyAdmittedLoginsInARow() async throws {
        let server = try await startServer { $0.admission = { _, _ in true } }
        for _ in 0..<40 {
            let client = makeClient(server)
            try await client.connect()
            #expect(client.serverKey == server.server.publicKey)
            await client.close()
        }
        try await server.close()
    }
}

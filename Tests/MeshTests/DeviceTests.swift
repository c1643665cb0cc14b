import CryptoPrimitives
import Foundation
import Mesh
import Testing
import WireGuardCore

/// Two of our devices in one process, over real UDP on loopback, with
/// packet-queue ends (no TUN, no privileges).
@Suite struct DeviceTests {
    @Test func twoDevicesOverLoopbackWithPacketQueues() throws {
        let qa = PacketQueue()
        let qb = PacketQueue()
        let ka = X25519.PrivateKey()
        let kb = X25519.PrivateKey()
        let pa = ka.publicKey
        let pb = kb.publicKey
        let a = try WireGuardDevice(end: qa, privateKey: ka)
        let b = try WireGuardDevice(end: qb, privateKey: kb)
        let portA = a.listenPort
        let portB = b.listenPort
        a.withInterface { i in
            let id = try! i.addPeer(publicKey: pb)
            i.setEndpoint(id, WireGuardCore.Endpoint("127.0.0.1:\(portB)")!)
            i.addAllowedIP(id, IPPrefix("10.9.0.2/32")!)
        }
        b.withInterface { i in
            let id = try! i.addPeer(publicKey: pa)
            i.addAllowedIP(id, IPPrefix("10.9.0.1/32")!)
        }
        a.start()
        b.start()
        defer {
            a.stop()
            b.stop()
        }
        // 2000 packets A → B; every one arrives, in order.
        var received: [[UInt8]] = []
        for n in 0..<2000 {
            var payload = [UInt8](repeating: UInt8(n % 251), count: 100 + n % 1200)
            payload[0] = UInt8(n >> 8)
            payload[1] = UInt8(n & 0xff)
            let total = 20 + payload.count
            let packet: [UInt8] =
                [0x45, 0, UInt8(total >> 8), UInt8(total & 0xff), 0, 0, 0, 0, 64, 253, 0, 0, 10, 9, 0, 1, 10, 9, 0, 2]
                + payload
            while !qa.send(packet) { usleep(1000) }
            if n == 0 {
                // The first packet waits for the handshake.
                let first = qb.receive(timeoutMilliseconds: 5000)
                received += first
            }
        }
        let deadline = Date().addingTimeInterval(10)
        while received.count < 2000, Date() < deadline {
            received += qb.receive(timeoutMilliseconds: 200)
        }
        #expect(received.count == 2000)
        let order = received.map { Int($0[20]) << 8 | Int($0[21]) }
        #expect(order == Array(0..<2000), "per-peer order kept")
        // And back: B learned A's endpoint from the handshake.
        let reply: [UInt8] = [0x45, 0, 0, 21, 0, 0, 0, 0, 64, 253, 0, 0, 10, 9, 0, 2, 10, 9, 0, 1, 0x77]
        qb.send(reply)
        let back = qa.receive(timeoutMilliseconds: 3000)
        #expect(back == [reply])
        let shown = b.handleUAPI("get=1\n")
        #expect(shown.contains("endpoint=127.0.0.1:\(portA)\n"))
        #expect(a.drops.total == 0 && b.drops.total == 0)
    }
}

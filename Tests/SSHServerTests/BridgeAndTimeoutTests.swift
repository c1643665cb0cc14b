import CryptoPrimitives
import Foundation
import SSHServer
import Testing

/// The tunnel-side shape of the server: no user authentication, connections
/// handed over as the far end of a socketpair (as Netstack will), and the
/// idle and maximum session timeouts.
@Suite(.serialized) struct BridgeAndTimeoutTests {
    /// A loopback TCP port whose connections are copied byte for byte into
    /// `serveBridged` sockets: a stand-in for any other byte stream.
    final class Bridge: @unchecked Sendable {
        let port: UInt16
        let log = LogBox()
        let server: SSHServer

        init(idleTimeout: Double, maxSessionDuration: Double = 0) {
            var configuration = SSHServerConfiguration(hostKeySeed: Bytes32(), authentication: .none)
            configuration.idleTimeout = idleTimeout
            configuration.maxSessionDuration = maxSessionDuration
            let box = log
            configuration.log = { line in box.lines.withLock { $0.append(line) } }
            server = SSHServer(configuration: configuration)
            port = freePort()
            let listenFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var one: Int32 = 1
            setsockopt(listenFD, SOL_SOCKET, SO_REUSEADDR, &one, 4)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(listenFD, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            listen(listenFD, 16)
            let server = self.server
            Thread.detachNewThread {
                while true {
                    let client = accept(listenFD, nil, nil)
                    if client < 0 { return }
                    let endpoints = SSHConnectionEndpoints(
                        clientAddress: "fd7a::2", clientPort: 4242, serverAddress: "fd7a::1", serverPort: 22)
                    guard let bridged = try? server.serveBridged(endpoints: endpoints) else { return }
                    Self.copy(from: client, to: bridged)
                    Self.copy(from: bridged, to: client)
                }
            }
        }

        static func copy(from: Int32, to: Int32) {
            Thread.detachNewThread {
                var buffer = [UInt8](repeating: 0, count: 65536)
                while true {
                    let n = read(from, &buffer, buffer.count)
                    if n <= 0 { break }
                    var done = 0
                    while done < n {
                        let w = buffer.withUnsafeBytes { write(to, $0.baseAddress! + done, n - done) }
                        if w <= 0 { return }
                        done += w
                    }
                }
                shutdown(to, Int32(SHUT_WR))
            }
        }

        var sshArgs: [String] {
            [
                "ssh", "-F", "/dev/null", "-p", String(port), "-o", "StrictHostKeyChecking=no", "-o",
                "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-o",
                "PubkeyAuthentication=no", "anyone@127.0.0.1",
            ]
        }
    }

    @Test func noAuthenticationOverABridgedStream() throws {
        let bridge = Bridge(idleTimeout: 0)
        let result = try run(bridge.sshArgs + ["echo $SSH_CONNECTION; head -c 3000000 /dev/zero | wc -c"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.text == "fd7a::2 4242 fd7a::1 22\n3000000\n")
    }

    @Test func idleConnectionsAreClosed() throws {
        let bridge = Bridge(idleTimeout: 1)
        let started = Date()
        let result = try run(bridge.sshArgs + ["sleep 20"], timeout: 30)
        #expect(result.status == 255)
        #expect(Date().timeIntervalSince(started) < 10)
        #expect(eventually(5) { bridge.log.lines.withLock { $0.contains { $0.contains("idle for 1 s") } } })
    }

    /// A connection older than the maximum is closed with a logged reason
    /// even while it is busy (output keeps the idle timer from firing);
    /// connections that started later, and new ones, keep working.
    @Test func sessionsOverTheMaximumAreClosed() throws {
        let bridge = Bridge(idleTimeout: 0, maxSessionDuration: 3)
        let started = Date()
        let busy = try BackgroundProcess(bridge.sshArgs + ["while :; do echo tick; sleep 0.2; done"])
        defer { busy.stop() }
        usleep(1_500_000)
        // Started while the busy one runs; ends by itself in time.
        let other = try run(bridge.sshArgs + ["sleep 1; echo still-here"], timeout: 30)
        #expect(other.status == 0)
        #expect(other.text == "still-here\n")
        #expect(eventually(10) { bridge.log.lines.withLock { $0.contains { $0.contains("reached the maximum session time of 3 s") } } })
        #expect(Date().timeIntervalSince(started) < 10)
        let after = try run(bridge.sshArgs + ["echo after"], timeout: 30)
        #expect(after.text == "after\n")
        // Exactly one connection hit the limit: the busy one.
        #expect(bridge.log.lines.withLock { $0.filter { $0.contains("maximum session time") }.count } == 1)
    }
}

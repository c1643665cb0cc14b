import Foundation
import Testing

/// Hostile or broken clients end only their own connection, with a logged
/// reason; the server goes on serving everyone else.
@Suite(.serialized) struct RobustnessTests {
    let server = TestServer.shared

    private func stillServes() throws -> Bool {
        try server.ssh("echo alive").text == "alive\n"
    }

    private func logged(_ fragment: String) -> Bool {
        eventually(15) { server.log.contains { $0.contains(fragment) } }
    }

    @Test func malformedPacketsEndTheConnection() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = server.port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(rc == 0)
        var garbage = Array("SSH-2.0-garbage\r\n".utf8)
        // A packet length far beyond any limit, then noise.
        garbage += [0x7f, 0xff, 0xff, 0xff, 0x06, 0x14] + (0..<4000).map { UInt8(truncatingIfNeeded: $0 &* 37) }
        _ = garbage.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](repeating: 0, count: 65536)
        var closed = false
        for _ in 0..<100 {
            let n = read(fd, &buffer, buffer.count)
            if n <= 0 {
                closed = n == 0 || errno == ECONNRESET
                break
            }
        }
        #expect(closed)
        #expect(try stillServes())
    }

    @Test func tenThousandChannels() throws {
        let script = """
            import sys, paramiko
            port, key = int(sys.argv[1]), sys.argv[2]
            c = paramiko.SSHClient(); c.set_missing_host_key_policy(paramiko.AutoAddPolicy())
            c.connect("127.0.0.1", port=port, username="t", key_filename=key, look_for_keys=False, allow_agent=False)
            opened, chans = 0, []
            try:
                for i in range(10000):
                    chans.append(c.get_transport().open_session(timeout=10)); opened += 1
            except Exception as e:
                print("stopped after", opened); sys.exit(0)
            print("opened all", opened)
            """
        let result = try python("many_channels", script, [String(server.port), server.directory + "/id_ed25519"])
        #expect(result.text.hasPrefix("stopped after"), "\(result.text) \(result.stderr)")
        #expect(logged("more than 1024 channels"))
        #expect(try stillServes())
    }

    @Test func oneMebibyteEnvironmentValue() throws {
        let script = """
            import sys, paramiko
            port, key = int(sys.argv[1]), sys.argv[2]
            c = paramiko.SSHClient(); c.set_missing_host_key_policy(paramiko.AutoAddPolicy())
            c.connect("127.0.0.1", port=port, username="t", key_filename=key, look_for_keys=False, allow_agent=False)
            ch = c.get_transport().open_session()
            try:
                ch.set_environment_variable("BIG", "x" * (1 << 20))
                ch.exec_command("echo ${#BIG}")
                print("answered", ch.makefile().read())
            except Exception as e:
                print("ended", type(e).__name__)
            """
        let result = try python("big_env", script, [String(server.port), server.directory + "/id_ed25519"])
        #expect(result.text.hasPrefix("ended") || result.text.contains("answered b''"), "\(result.text) \(result.stderr)")
        #expect(logged("connection error"))
        #expect(try stillServes())
    }

    /// A client that stops reading (its process is stopped mid-transfer):
    /// keepalives go unanswered and the server drops it; others carry on.
    @Test func clientThatNeverReads() throws {
        let before = server.log.filter { $0.contains("keepalives") }.count
        let stuck = try BackgroundProcess(["ssh", "-F", server.config, "tether-test", "cat /dev/zero"])
        defer { stuck.stop() }
        usleep(1_500_000)
        kill(stuck.pid, SIGSTOP)
        #expect(try stillServes())
        #expect(eventually(20) { server.log.filter { $0.contains("no answer to") }.count > before })
        #expect(try stillServes())
    }
}

import Benchmark
import CryptoPrimitives
import Foundation
import SSHServer

/// The embedded server beside OpenSSH's sshd on the same loopback in the
/// same run, both driven by the OpenSSH client with its default cipher:
/// 1 GiB down (`ssh host 'head -c 1G /dev/zero' > /dev/null`), 1 GiB up
/// (`head -c 1G /dev/zero | ssh host 'cat > /dev/null'`), and the time of
/// `ssh host true`. Names pair as "<work> · ours" / "<work> · sshd". The
/// figure is wall-clock time per run (a 1 GiB run takes seconds, below the
/// integer resolution of the throughput metric), so lower is better and a
/// ratio ≤ 1.0 meets the goals (issue 6: throughput ≥ 1.0× sshd, `ssh host
/// true` no slower than sshd).
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock],
        warmupIterations: 0,
        scalingFactor: .one,
        maxDuration: .seconds(60),
        maxIterations: 5
    )
    guard let peers = try? Peers() else {
        print("SSHBenchmarks: cannot start the servers (needs ssh, ssh-keygen and /usr/sbin/sshd)")
        return
    }

    let gib = 1 << 30
    for (who, alias) in [("ours", "ours"), ("sshd", "sshd")] {
        Benchmark("SSH download 1 GiB, ns per run (lower is better) · \(who)", configuration: .init(warmupIterations: 0, maxIterations: 2)) { benchmark in
            for _ in benchmark.scaledIterations {
                peers.shell("ssh -F \(peers.config) \(alias) 'head -c \(gib) /dev/zero' > /dev/null")
            }
        }
        Benchmark("SSH upload 1 GiB, ns per run (lower is better) · \(who)", configuration: .init(warmupIterations: 0, maxIterations: 2)) { benchmark in
            for _ in benchmark.scaledIterations {
                peers.shell("head -c \(gib) /dev/zero | ssh -F \(peers.config) \(alias) 'cat > /dev/null'")
            }
        }
        Benchmark("ssh host true, ns per run (lower is better) · \(who)", configuration: .init(warmupIterations: 1, maxIterations: 10)) { benchmark in
            for _ in benchmark.scaledIterations {
                peers.shell("ssh -F \(peers.config) \(alias) true")
            }
        }
    }
}

/// Both servers and a client configuration naming them `ours` and `sshd`.
final class Peers: Sendable {
    let directory: String
    let config: String
    private let server: SSHServer
    private let listener: SSHListener

    init() throws {
        directory = NSTemporaryDirectory() + "tether-ssh-bench-\(getpid())"
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        config = directory + "/ssh_config"
        let key = directory + "/id_ed25519"
        Self.run("ssh-keygen -q -t ed25519 -N '' -f \(key) && ssh-keygen -q -t ed25519 -N '' -f \(directory)/hostkey")
        try FileManager.default.copyItem(atPath: key + ".pub", toPath: directory + "/authorized_keys")

        var configuration = SSHServerConfiguration(
            hostKeySeed: SecureRandom.bytes32(), authentication: .authorizedKeys(path: directory + "/authorized_keys"))
        configuration.keepaliveInterval = 0
        server = SSHServer(configuration: configuration)
        listener = try server.listen(host: "127.0.0.1", port: 0)

        // sshd wants an absolute path and its privilege-separation directory.
        let sshdPort = Self.freePort()
        try """
        Port \(sshdPort)
        ListenAddress 127.0.0.1
        HostKey \(directory)/hostkey
        AuthorizedKeysFile \(directory)/authorized_keys
        PidFile \(directory)/sshd.pid
        UsePAM no
        StrictModes no
        PermitRootLogin yes
        Subsystem sftp internal-sftp
        """.write(toFile: directory + "/sshd_config", atomically: true, encoding: .utf8)
        Self.run("mkdir -p /run/sshd && /usr/sbin/sshd -f \(directory)/sshd_config -E \(directory)/sshd.log")

        try """
        Host ours sshd
          HostName 127.0.0.1
          IdentityFile \(key)
          IdentitiesOnly yes
          StrictHostKeyChecking no
          UserKnownHostsFile /dev/null
          LogLevel ERROR
          BatchMode yes
        Host ours
          Port \(listener.port)
        Host sshd
          Port \(sshdPort)
        """.write(toFile: config, atomically: true, encoding: .utf8)
        for _ in 0..<50 where Self.run("ssh -F \(config) sshd true") != 0 { usleep(100_000) }
    }

    deinit {
        Self.run("kill $(cat \(directory)/sshd.pid) 2>/dev/null")
        listener.close()
    }

    func shell(_ command: String) { Self.run(command) }

    @discardableResult
    static func run(_ command: String) -> Int32 {
        var pid: pid_t = 0
        let words: [String] = ["/bin/sh", "-c", command]
        let argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
        guard posix_spawn(&pid, "/bin/sh", nil, &attributes, argv, environ) == 0 else { return -1 }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return status
    }

    static func freePort() -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p -> Int32 in
                _ = bind(fd, p, length)
                return getsockname(fd, p, &length)
            }
        }
        return UInt16(bigEndian: address.sin_port)
    }
}

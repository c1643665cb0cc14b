import CryptoPrimitives
import Foundation
import SSHServer
import Synchronization

/// What a finished command left behind.
struct Outcome {
    let status: Int32
    let stdout: Data
    let stderr: String
    var text: String { String(decoding: stdout, as: UTF8.self) }
}

/// Starts `argv` (looked up in PATH) with the given stdio descriptors,
/// default signal dispositions and an empty signal mask. Our own spawn, not
/// Foundation's Process: test threads block signals, which Process would
/// pass on (ssh would never see SIGWINCH), and its exit monitoring hung
/// here under parallel tests.
func spawn(_ argv: [String], environment: [String: String]?, stdin: Int32, stdout: Int32, stderr: Int32) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, stdin, 0)
    posix_spawn_file_actions_adddup2(&actions, stdout, 1)
    posix_spawn_file_actions_adddup2(&actions, stderr, 2)
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var all = sigset_t()
    sigfillset(&all)
    var none = sigset_t()
    sigemptyset(&none)
    posix_spawnattr_setsigdefault(&attributes, &all)
    posix_spawnattr_setsigmask(&attributes, &none)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
    var env = ProcessInfo.processInfo.environment
    for (k, v) in environment ?? [:] { env[k] = v }
    let cArgv = argv.map { strdup($0) } + [nil]
    let cEnv = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
        for p in cArgv { free(p) }
        for p in cEnv { free(p) }
    }
    var pid: pid_t = 0
    let rc = posix_spawnp(&pid, argv[0], &actions, &attributes, cArgv, cEnv)
    guard rc == 0 else { throw POSIXError(POSIXErrorCode(rawValue: rc) ?? .EINVAL) }
    return pid
}

func makePipe() -> (read: Int32, write: Int32) {
    var fds: [Int32] = [-1, -1]
    _ = pipe(&fds)
    _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
    _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
    return (fds[0], fds[1])
}

func waitExit(_ pid: pid_t) -> Int32 {
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    return status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
}

/// Runs a program to completion (stdin from `input`, or /dev/null); kills
/// it after `timeout` seconds.
@discardableResult
func run(_ argv: [String], input: Data? = nil, environment: [String: String]? = nil, timeout: Double = 120) throws
    -> Outcome
{
    let stdinPipe = makePipe()
    let out = makePipe()
    let err = makePipe()
    let pid = try spawn(argv, environment: environment, stdin: stdinPipe.read, stdout: out.write, stderr: err.write)
    close(stdinPipe.read)
    close(out.write)
    close(err.write)
    let writer = stdinPipe.write
    if let input {
        Thread.detachNewThread {
            input.withUnsafeBytes { raw in
                var done = 0
                while done < raw.count {
                    let n = write(writer, raw.baseAddress! + done, raw.count - done)
                    if n <= 0 { break }
                    done += n
                }
            }
            close(writer)
        }
    } else {
        close(writer)
    }
    var stdout = Data()
    var stderr = Data()
    var polls = [pollfd(fd: out.read, events: Int16(POLLIN), revents: 0), pollfd(fd: err.read, events: Int16(POLLIN), revents: 0)]
    let deadline = Date().addingTimeInterval(timeout)
    var buffer = [UInt8](repeating: 0, count: 65536)
    var open = 2
    while open > 0 {
        let left = deadline.timeIntervalSinceNow
        if left <= 0 {
            kill(pid, SIGKILL)
            break
        }
        if poll(&polls, 2, Int32(min(left, 1) * 1000)) <= 0 { continue }
        for i in 0..<2 where polls[i].revents != 0 && polls[i].fd >= 0 {
            let n = read(polls[i].fd, &buffer, buffer.count)
            if n <= 0 {
                close(polls[i].fd)
                polls[i].fd = -1
                open -= 1
            } else if i == 0 {
                stdout.append(contentsOf: buffer[0..<n])
            } else {
                stderr.append(contentsOf: buffer[0..<n])
            }
        }
    }
    for p in polls where p.fd >= 0 { close(p.fd) }
    let status = waitExit(pid)
    return Outcome(status: status, stdout: stdout, stderr: String(decoding: stderr, as: UTF8.self))
}

/// Runs a shell pipeline (for redirections and `sha256sum`).
@discardableResult
func shell(_ script: String, timeout: Double = 300) throws -> Outcome {
    try run(["sh", "-c", script], timeout: timeout)
}

/// One server for the whole suite, on a loopback port, with public-key
/// authentication, plus a client directory with a key, `known_hosts`
/// holding the server's derived host key, and an ssh config naming it.
final class TestServer: Sendable {
    static let shared = try! TestServer()

    let server: SSHServer
    let listener: SSHListener
    let directory: String
    private let logBox = LogBox()
    /// The seed the host key comes from: fixed, so the key is too.
    static let seed = try! Bytes32(hex: "6b6579207365656420666f72207465746865722773207373682074657374732e")

    var port: UInt16 { listener.port }
    var config: String { directory + "/ssh_config" }
    var sshArgs: [String] { ["ssh", "-F", config, "tether-test"] }

    init() throws {
        directory = NSTemporaryDirectory() + "tether-ssh-tests-\(getpid())"
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let key = directory + "/id_ed25519"
        try run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "tether-test-key", "-f", key])
        try FileManager.default.copyItem(atPath: key + ".pub", toPath: directory + "/authorized_keys")
        try "tether test motd\n".write(toFile: directory + "/motd", atomically: true, encoding: .utf8)

        var configuration = SSHServerConfiguration(
            hostKeySeed: Self.seed, authentication: .authorizedKeys(path: directory + "/authorized_keys"),
            motdPath: directory + "/motd")
        configuration.keepaliveInterval = 1
        configuration.keepaliveCountMax = 3
        let box = logBox
        configuration.log = { line in box.lines.withLock { $0.append(line) } }
        server = SSHServer(configuration: configuration)
        listener = try server.listen(host: "127.0.0.1", port: 0)
        try "[127.0.0.1]:\(listener.port) \(server.hostPublicKey)\n".write(
            toFile: directory + "/known_hosts", atomically: true, encoding: .utf8)
        let config = """
            Host tether-test
              HostName 127.0.0.1
              Port \(listener.port)
              User tester
              IdentityFile \(key)
              IdentitiesOnly yes
              UserKnownHostsFile \(directory)/known_hosts
              StrictHostKeyChecking yes
              BatchMode yes
              LogLevel ERROR
              ServerAliveInterval 0
            """
        try config.write(toFile: directory + "/ssh_config", atomically: true, encoding: .utf8)
    }

    /// Log lines the server wrote so far.
    var log: [String] { logBox.lines.withLock { $0 } }

    func ssh(_ command: String, options: [String] = [], input: Data? = nil, timeout: Double = 120) throws -> Outcome {
        try run(["ssh", "-F", config] + options + ["tether-test", command], input: input, timeout: timeout)
    }
}

final class LogBox: Sendable {
    let lines = Mutex<[String]>([])
}

final class TextBox: Sendable {
    let text = Mutex<String>("")
}

/// A one-shot HTTP server on a loopback port: the "app" that forwarding
/// tests reach through the tunnel.
final class TinyHTTPServer: @unchecked Sendable {
    let port: UInt16
    private let fd: Int32
    static let body = "hello through the tunnel\n"

    init() {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, 4)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        listen(fd, 64)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        port = UInt16(bigEndian: address.sin_port)
        let listenFD = fd
        Thread.detachNewThread {
            while true {
                let client = accept(listenFD, nil, nil)
                if client < 0 { return }
                var buffer = [UInt8](repeating: 0, count: 4096)
                _ = read(client, &buffer, buffer.count)
                let response =
                    "HTTP/1.0 200 OK\r\nContent-Length: \(Self.body.utf8.count)\r\nConnection: close\r\n\r\n\(Self.body)"
                _ = response.withCString { write(client, $0, strlen($0)) }
                close(client)
            }
        }
    }
}

/// A TCP port that was free a moment ago.
func freePort() -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    _ = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return UInt16(bigEndian: address.sin_port)
}

/// Polls `condition` until it holds or `seconds` pass.
func eventually(_ seconds: Double = 10, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try condition() { return true }
        usleep(100_000)
    }
    return try condition()
}

/// A program left running (`ssh -N -L …`), its stderr collected as it comes.
final class BackgroundProcess: @unchecked Sendable {
    let pid: pid_t
    private let errors = TextBox()
    private let exited = Mutex<Bool>(false)

    init(_ argv: [String], environment: [String: String]? = nil) throws {
        let err = makePipe()
        let null = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { close(null) }
        pid = try spawn(argv, environment: environment, stdin: null, stdout: null, stderr: err.write)
        close(err.write)
        let reader = err.read
        Thread.detachNewThread { [errors] in
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = read(reader, &buffer, buffer.count)
                if n <= 0 { break }
                errors.text.withLock { $0 += String(decoding: buffer[0..<n], as: UTF8.self) }
            }
            close(reader)
        }
    }

    var stderr: String { errors.text.withLock { $0 } }

    func stop() {
        let first = exited.withLock { done in
            defer { done = true }
            return !done
        }
        guard first else { return }
        kill(pid, SIGKILL)
        _ = waitExit(pid)
    }

    deinit { stop() }
}

/// Writes a Python helper next to the test server's files and runs it with
/// Debian's python3 (which has python3-paramiko).
func python(_ name: String, _ source: String, _ arguments: [String], timeout: Double = 180) throws -> Outcome {
    let path = TestServer.shared.directory + "/\(name).py"
    try source.write(toFile: path, atomically: true, encoding: .utf8)
    return try run(["/usr/bin/python3", path] + arguments, timeout: timeout)
}

import Foundation
import Netstack
import Testing

/// Our stack on one end of a TUN device whose other end is a network
/// namespace made for this run: the Linux kernel's own TCP/IP stack is the
/// peer. Needs root (CAP_NET_ADMIN); otherwise each test prints why it
/// skipped and passes.
final class KernelPeer: @unchecked Sendable {
    static let kernel4 = "10.200.0.1"
    static let ours4 = "10.200.0.2"
    static let kernel6 = "fd00:200::1"
    static let ours6 = "fd00:200::2"

    let namespace: String
    let directory: String
    let tun: TUNLink
    let stack: NetStack

    /// Why namespace tests cannot run here, or nil if they can.
    static var unavailableReason: String? {
        if getuid() != 0 { return "not root" }
        if access("/dev/net/tun", R_OK | W_OK) != 0 { return "no /dev/net/tun" }
        for tool in ["ip", "curl", "socat", "ping", "python3", "sha256sum"] where which(tool) == nil {
            return "\(tool) not installed (scripts/bootstrap.sh installs it)"
        }
        return nil
    }

    static func which(_ tool: String) -> String? {
        for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/bin"] {
            let p = "\(dir)/\(tool)"
            if access(p, X_OK) == 0 { return p }
        }
        return nil
    }

    init(offload: Bool = true) throws {
        let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        namespace = "nsk\(suffix)"
        let tunName = "tnk\(suffix)"
        directory = NSTemporaryDirectory() + "netstack-\(suffix)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        tun = try TUNLink(name: tunName, mtu: 1500, offload: offload)
        stack = NetStack(.init(addresses: [IPAddress(Self.ours4)!, IPAddress(Self.ours6)!]), link: tun)
        do {
            try Self.run("ip netns add \(namespace)")
            try Self.run("ip link set \(tunName) netns \(namespace)")
            try Self.run(
                """
                ip netns exec \(namespace) sh -c 'ip link set lo up && \
                ip addr add \(Self.kernel4)/24 dev \(tunName) && \
                ip -6 addr add \(Self.kernel6)/64 dev \(tunName) nodad && \
                ip link set \(tunName) up'
                """)
        } catch {
            close()
            throw error
        }
        tun.start(delivering: stack)
    }

    func close() {
        tun.stop()
        stack.stop()
        _ = try? Self.run("ip netns del \(namespace)")
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Runs a shell command inside the namespace.
    @discardableResult
    func exec(_ command: String) async throws -> String {
        try await Self.runAsync("ip netns exec \(namespace) bash -c \(Self.quote(command))")
    }

    /// Starts a shell command inside the namespace and returns at once.
    func spawn(_ command: String) throws -> Process {
        let p = Self.process("ip netns exec \(namespace) bash -c \(Self.quote(command))")
        try p.run()
        return p
    }

    static func quote(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    static func process(_ command: String) -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-c", command]
        var env = ProcessInfo.processInfo.environment
        env["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin:" + (env["PATH"] ?? "")
        p.environment = env
        return p
    }

    @discardableResult
    static func run(_ command: String) throws -> String {
        let p = process(command)
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        p.waitUntilExit()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        guard p.terminationStatus == 0 else { throw TestFailure("\(command) → \(p.terminationStatus): \(text)") }
        return text
    }

    /// Runs a command without blocking a cooperative thread; output must be small.
    static func runAsync(_ command: String) async throws -> String {
        let p = process(command)
        let file = NSTemporaryDirectory() + "netstack-out-\(UInt64.random(in: 0...UInt64.max))"
        FileManager.default.createFile(atPath: file, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: file))
        p.standardOutput = handle
        p.standardError = handle
        let status: Int32 = try await withCheckedThrowingContinuation { cont in
            p.terminationHandler = { cont.resume(returning: $0.terminationStatus) }
            do { try p.run() } catch { cont.resume(throwing: error) }
        }
        try? handle.close()
        let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
        guard status == 0 else { throw TestFailure("\(command) → \(status): \(text)") }
        return text
    }

    static func waitAsync(_ p: Process) async {
        while p.isRunning { try? await Task.sleep(for: .milliseconds(20)) }
    }
}

/// Runs `body` against a fresh namespace; `offload` opens the TUN device
/// with its virtio-net header (TSO and checksum offload both ways), which
/// this kernel must grant, else the test fails rather than quietly testing
/// the plain device twice.
func withKernelPeer(offload: Bool = true, _ body: (KernelPeer) async throws -> Void) async throws {
    if let reason = KernelPeer.unavailableReason {
        print("skipping namespace test: \(reason)")
        return
    }
    let peer = try KernelPeer(offload: offload)
    defer { peer.close() }
    #expect(peer.tun.offload == offload, "TUN offload \(peer.tun.offload), wanted \(offload)")
    try await body(peer)
    let counters = peer.stack.counters
    #expect(counters.badChecksum == 0 && counters.malformed == 0, "dropped: \(counters)")
}

enum KernelSizes {
    #if DEBUG
        static let bulk = 32 << 20
    #else
        static let bulk = 1 << 30
    #endif
}

/// A deterministic body: fills `buffer` with bytes `offset ..< offset + count` of the stream.
func fillPattern(_ buffer: inout [UInt8], offset: Int) {
    for i in 0..<buffer.count { buffer[i] = streamByte(offset + i, tag: 5) }
}

@Suite(.serialized) struct KernelNamespaceTests {
    @Test(arguments: [true, false]) func kernelCurlFetchesFromOurHTTPServer(offload: Bool) async throws {
        try await withKernelPeer(offload: offload) { peer in
            let bodySize = 8 << 20
            var body = [UInt8](repeating: 0, count: bodySize)
            fillPattern(&body, offset: 0)
            var sha = SHA256()
            sha.update(body)
            let expected = sha.finalizeHex()
            let listener = try peer.stack.listen(port: 8080)
            let server = Task {
                while let s = try? await listener.accept() {
                    var request: [UInt8] = []
                    while !request.ends(with: Array("\r\n\r\n".utf8)) {
                        let d = try await s.read()
                        if d.isEmpty { break }
                        request += d
                    }
                    try await s.write(
                        Array("HTTP/1.1 200 OK\r\nContent-Length: \(bodySize)\r\nConnection: close\r\n\r\n".utf8))
                    try await s.write(body)
                    s.shutdownWrite()
                    _ = try? await s.read()
                    s.close()
                }
            }
            for url in ["http://\(KernelPeer.ours4):8080/", "http://[\(KernelPeer.ours6)]:8080/"] {
                let out = try await peer.exec("curl -sS --max-time 60 \(url) | sha256sum")
                #expect(out.hasPrefix(expected), "curl \(url): \(out)")
            }
            listener.close()
            server.cancel()
        }
    }

    @Test(arguments: [true, false]) func oursDialsKernelSocatOneGiBEachWay(offload: Bool) async throws {
        try await withKernelPeer(offload: offload) { peer in
            let size = KernelSizes.bulk
            // Upload: our stack → kernel socat, digest on the kernel side.
            let upSink = try peer.spawn(
                "socat -u TCP-LISTEN:9001,reuseaddr STDOUT | sha256sum > \(peer.directory)/up.sha")
            try await Task.sleep(for: .milliseconds(300))
            let up = try await peer.stack.dial(SocketAddress(IPAddress(KernelPeer.kernel4)!, 9001))
            var sha = SHA256()
            var chunk = [UInt8](repeating: 0, count: 1 << 20)
            var sent = 0
            while sent < size {
                fillPattern(&chunk, offset: sent)
                sha.update(chunk)
                try await up.write(chunk)
                sent += chunk.count
            }
            up.shutdownWrite()
            try await up.flush()
            await KernelPeer.waitAsync(upSink)
            let upExpected = sha.finalizeHex()
            let upGot = try String(contentsOfFile: "\(peer.directory)/up.sha", encoding: .utf8)
            #expect(upGot.hasPrefix(upExpected), "upload digest \(upGot) vs \(upExpected)")
            up.close()

            // Download: kernel socat → our stack, over IPv6, digest on both sides.
            let source = try peer.spawn(
                "head -c \(size) /dev/urandom | tee >(sha256sum > \(peer.directory)/down.sha) | socat -u STDIN TCP6-LISTEN:9002,reuseaddr"
            )
            try await Task.sleep(for: .milliseconds(300))
            let down = try await peer.stack.dial(SocketAddress(IPAddress(KernelPeer.kernel6)!, 9002))
            var dsha = SHA256()
            var received = 0
            while true {
                let d = try await down.read(maximumCount: 1 << 20)
                if d.isEmpty { break }
                dsha.update(d)
                received += d.count
            }
            down.close()
            await KernelPeer.waitAsync(source)
            try await Task.sleep(for: .milliseconds(200))
            #expect(received == size)
            let downExpected = try String(contentsOfFile: "\(peer.directory)/down.sha", encoding: .utf8)
            #expect(downExpected.hasPrefix(dsha.finalizeHex()))
        }
    }

    @Test func kernelPingsUs() async throws {
        try await withKernelPeer { peer in
            let out4 = try await peer.exec("ping -c 3 -i 0.2 -W 2 \(KernelPeer.ours4)")
            #expect(out4.contains("3 received"), "\(out4)")
            let out6 = try await peer.exec("ping -6 -c 3 -i 0.2 -W 2 \(KernelPeer.ours6)")
            #expect(out6.contains("3 received"), "\(out6)")
        }
    }

    /// A kernel client that stops reading: our sender meets a zero window,
    /// probes it, and finishes once the client reads again.
    @Test func kernelClientStopsReadingAndResumes() async throws {
        try await withKernelPeer { peer in
            let size = 24 << 20
            var body = [UInt8](repeating: 0, count: size)
            fillPattern(&body, offset: 0)
            var sha = SHA256()
            sha.update(body)
            let expected = sha.finalizeHex()
            let listener = try peer.stack.listen(port: 9100)
            let server = Task {
                let s = try await listener.accept()
                try await s.write(body)
                s.shutdownWrite()
                try await s.flush()
                s.close()
            }
            let script = """
                import hashlib, socket, sys, time
                s = socket.create_connection(("\(KernelPeer.ours4)", 9100))
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
                h = hashlib.sha256(); n = 0
                d = s.recv(65536); h.update(d); n += len(d)
                time.sleep(4)
                while True:
                    d = s.recv(1 << 20)
                    if not d: break
                    h.update(d); n += len(d)
                print(n, h.hexdigest())
                """
            let out = try await peer.exec("python3 -c \(KernelPeer.quote(script))")
            #expect(out.contains("\(size) \(expected)"), "\(out)")
            try await server.value
            listener.close()
        }
    }
}

extension Array where Element == UInt8 {
    fileprivate func ends(with suffix: [UInt8]) -> Bool {
        count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix
    }
}

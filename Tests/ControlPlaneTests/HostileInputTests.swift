import Agent
import Foundation
import HTTPTypes
import Logging
import Synchronization
import Testing
import WSClient

/// Wrong tokens and hostile agents: refused or disconnected alone.
@Suite(.serialized) struct HostileInputTests {
    @Test func badTokensGet401AndNothingElse() async throws {
        let cp = try await TestControlPlane(name: "auth")
        defer { cp.shutdown() }
        let tokens = try await cp.create(WorkspaceSpec(name: "ws", agents: [AgentSpec(name: "main")]))
        let agentToken = tokens["main"]!
        let wrongSecret = String(agentToken.dropLast(4)) + (agentToken.hasSuffix("0000") ? "1111" : "0000")
        let ws = cp.url + ControlProtocolVersion.agentPath
        let upgrade = ["-H", "Connection: Upgrade", "-H", "Upgrade: websocket", "-H", "Sec-WebSocket-Version: 13", "-H", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="]
        for auth in [nil, "Bearer ", "Bearer nonsense", "Bearer \(wrongSecret)", "Bearer \(cp.userToken)", "Basic \(agentToken)"] {
            let header = auth.map { ["-H", "Authorization: \($0)"] } ?? []
            // A plain request to the agent endpoint: 401.
            let (status, body) = try await cp.curl(header + [ws])
            #expect(status == 401, "agent endpoint with \(auth ?? "no header") gave \(status)")
            #expect(!String(decoding: body, as: UTF8.self).contains("tth"))
            // A WebSocket upgrade: refused with 401 before any upgrade.
            let (upgraded, upgradeBody) = try await cp.curl(upgrade + header + [ws])
            #expect(upgraded == 401, "upgrade with \(auth ?? "no header") gave \(upgraded)")
            #expect(upgradeBody.isEmpty)
            // The same upgrade as raw bytes: the whole answer is one 401
            // head with an empty body, then the connection closes.
            let answer = try await offload {
                try rawExchange(port: cp.port, ControlProtocolVersion.agentPath, headers: auth.map { ["Authorization: \($0)"] } ?? [])
            }
            let text = String(decoding: answer, as: UTF8.self)
            #expect(text.hasPrefix("HTTP/1.1 401 "), "raw upgrade with \(auth ?? "no header") answered \(text)")
            #expect(text.lowercased().contains("\r\ncontent-length: 0\r\n"))
            #expect(text.hasSuffix("\r\n\r\n"), "bytes after the 401 head: \(text)")
            #expect(!text.lowercased().contains("upgrade"))
        }
        for path in ["/api/v1/workspaces", "/api/v1/users/me", "/api/v1/events"] {
            #expect(try await cp.get(path, token: "tthu_000000000000_" + String(repeating: "0", count: 64)).0 == 401)
            #expect(try await cp.get(path, token: agentToken).0 == 401)
            #expect(try await cp.curl([cp.url + path]).0 == 401)
        }
        // The first-user bootstrap works once only.
        #expect(try await cp.curl(["-X", "POST", "-d", #"{"name":"eve"}"#, cp.url + "/api/v1/users/first"]).0 == 409)
        // A valid agent token still upgrades (101 is reported as 101 by curl).
        let (ok, _) = try await cp.curl(upgrade + ["-H", "Authorization: Bearer \(agentToken)", "--max-time", "2", ws])
        #expect(ok == 101)
        let accepted = try await offload {
            try rawExchange(port: cp.port, ControlProtocolVersion.agentPath, headers: ["Authorization: Bearer \(agentToken)"], untilHeadEnds: true)
        }
        #expect(String(decoding: accepted, as: UTF8.self).hasPrefix("HTTP/1.1 101 "))
        #expect(try await cp.metrics().contains("tether_auth_failures_total"))
    }

    /// Malformed and oversized messages close the offending connection with
    /// an error; a well-behaved agent on the same server is untouched.
    @Test func hostileMessagesCloseOnlyThatConnection() async throws {
        let cp = try await TestControlPlane(name: "hostile")
        defer { cp.shutdown() }
        let tokens = try await cp.create(
            WorkspaceSpec(
                name: "h",
                agents: [
                    AgentSpec(name: "good", metadata: [MetadataSpec(key: "clock", script: "date +%s%N", intervalSeconds: 1, timeoutSeconds: 1)]),
                    AgentSpec(name: "evil"),
                ]))
        _ = try cp.startAgent(token: tokens["good"]!, name: "good")
        _ = try await cp.waitLifecycle("h", "good", ["ready"])

        let hello = String(decoding: ControlCodec.encode(.hello(Hello(agentVersion: "evil", session: "e", startedAt: 0, hostname: "x", os: "linux", arch: "x"))), as: UTF8.self)
        let cases: [(String, [String])] = [
            ("garbage", [hello, "this is not json"]),
            ("bad fields", [hello, #"{"type":"logs","session":"e","entries":[{"seq":"one"}]}"#]),
            ("no hello", [#"{"type":"lifecycle","state":"ready","changed_at":1}"#]),
            ("wrong version", [#"{"type":"hello","protocol_version":99,"agent_version":"x","session":"e","started_at":0,"hostname":"x","os":"x","arch":"x"}"#]),
            ("oversized", [hello, String(repeating: "x", count: ControlLimits.maxMessageBytes + 10)]),
        ]
        for (name, frames) in cases {
            let result = try await rawAgent(url: cp.url, token: tokens["evil"]!, frames: frames)
            #expect(result.closed, "\(name): connection not closed")
            if name != "oversized" {
                #expect(result.errorCode != nil, "\(name): no error message before close")
            }
        }
        #expect(try await cp.metrics().contains("tether_control_protocol_errors_total 5"))
        // The good agent stayed connected and keeps reporting.
        let before = try await cp.agent("h", "good")!.metadata.first { $0.key == "clock" }!
        try await Harness.until("good agent still reporting", timeout: .seconds(5)) {
            let v = try await cp.agent("h", "good")!
            return v.connected && v.metadata.first { $0.key == "clock" }!.collectedAt > before.collectedAt
        }
        #expect(cp.server!.output.contains("closing agent connection"))
    }

    struct RawResult {
        var closed = false
        var errorCode: String?
    }

    /// Sends `frames` as a hand-rolled agent and reports how the control
    /// plane answered.
    func rawAgent(url: String, token: String, frames: [String]) async throws -> RawResult {
        let headers: HTTPFields = [.authorization: "Bearer \(token)"]
        let result = ResultBox()
        let socketURL = url.replacingOccurrences(of: "http://", with: "ws://") + ControlProtocolVersion.agentPath
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                let client = WebSocketClient(
                    url: socketURL, configuration: .init(maxFrameSize: 4 << 20, additionalHeaders: headers),
                    logger: Logger(label: "evil")
                ) { inbound, outbound, _ in
                    for f in frames { try? await outbound.write(.text(f)) }
                    do {
                        for try await message in inbound.messages(maxSize: 1 << 20) {
                            if case .text(let t) = message, case .error(let e)? = try? ControlCodec.decodeServerMessage(Array(t.utf8)) {
                                result.withLock { $0.errorCode = e.code }
                            }
                        }
                    } catch {}
                    result.withLock { $0.closed = true }
                }
                _ = try? await client.run()
            }
            group.addTask { try await Task.sleep(for: .seconds(10)) }
            try await group.next()
            group.cancelAll()
        }
        return result.withLock { $0 }
    }

    final class ResultBox: Sendable {
        let mutex = Mutex(RawResult())
        func withLock<R: Sendable>(_ body: (inout RawResult) -> R) -> R { mutex.withLock { body(&$0) } }
    }
}

/// Sends a WebSocket upgrade request for `path` as raw bytes on a fresh TCP
/// connection to 127.0.0.1 and returns every byte of the answer until the
/// server closes (or, with `untilHeadEnds`, until the response head ends).
/// A 5 s receive timeout keeps a silent server from hanging the test.
func rawExchange(port: Int, _ path: String, headers: [String], untilHeadEnds: Bool = false) throws -> [UInt8] {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw HarnessError("socket: errno \(errno)") }
    defer { close(fd) }
    var timeout = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = UInt16(port).bigEndian
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { throw HarnessError("connect: errno \(errno)") }
    let lines =
        ["GET \(path) HTTP/1.1", "Host: 127.0.0.1:\(port)", "Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="]
        + headers
    let request = Array((lines.joined(separator: "\r\n") + "\r\n\r\n").utf8)
    guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, 0) }) == request.count else {
        throw HarnessError("send: errno \(errno)")
    }
    var answer: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n < 0 { throw HarnessError("recv: errno \(errno) after \(answer.count) bytes (no close)") }
        if n == 0 { return answer }
        answer += chunk[..<n]
        if untilHeadEnds, String(decoding: answer, as: UTF8.self).contains("\r\n\r\n") { return answer }
    }
}

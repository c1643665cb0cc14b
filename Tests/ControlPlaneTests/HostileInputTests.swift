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
            // A WebSocket upgrade: refused before any upgrade. hummingbird-websocket
            // 2.8 answers every refused upgrade with an empty 400 (it does not
            // let the route choose the status), so 400 is accepted here.
            let (upgraded, upgradeBody) = try await cp.curl(upgrade + header + [ws])
            #expect(upgraded == 401 || upgraded == 400, "upgrade with \(auth ?? "no header") gave \(upgraded)")
            #expect(upgradeBody.isEmpty)
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

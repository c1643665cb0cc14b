import Agent
import Foundation
import Testing

/// The app proxy end to end: a real `tether server` and `tether agent`, an
/// HTTP server (python) on the workspace's loopback as the app, and curl
/// at `/apps/WORKSPACE/AGENT/SLUG/…` on the control plane, which reaches
/// the app through its own tailnet node, WireGuard and the agent's
/// loopback forwarder.
@Suite(.serialized) struct AppProxyTests {
    /// The app: /blob (2 MiB, Content-Length), /chunked (a chunked body),
    /// /echo (the request it got, as text), POST /echo (the body it got).
    static let app = """
        import sys, http.server
        blob = open(sys.argv[2], 'rb').read()
        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'
            def log_message(self, *a): pass
            def send_body(self, body, ctype='application/octet-stream'):
                self.send_response(200)
                self.send_header('Content-Type', ctype)
                self.send_header('Content-Length', str(len(body)))
                self.send_header('X-App', 'yes')
                self.end_headers()
                self.wfile.write(body)
            def do_GET(self):
                if self.path == '/app/blob': return self.send_body(blob)
                if self.path == '/app/chunked':
                    self.send_response(200)
                    self.send_header('Transfer-Encoding', 'chunked')
                    self.end_headers()
                    for i in range(50):
                        piece = (b'%d,' % i) * 1000
                        self.wfile.write(b'%x\\r\\n%s\\r\\n' % (len(piece), piece))
                    self.wfile.write(b'0\\r\\n\\r\\n')
                    return
                if self.path.startswith('/app/echo'):
                    text = self.requestline + '\\n' + str(self.headers)
                    return self.send_body(text.encode(), 'text/plain')
                self.send_response(404); self.send_header('Content-Length', '0'); self.end_headers()
            def do_POST(self):
                n = int(self.headers.get('Content-Length', '0'))
                self.send_body(self.rfile.read(n)[::-1])
        http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()
        """

    /// Workspace `web` with one agent `main` that has `apps`, its agent
    /// running (keep the returned process) and `ready`.
    static func startWorkspace(_ cp: TestControlPlane, apps: [AppSpec]) async throws -> Child {
        let tokens = try await cp.create(WorkspaceSpec(name: "web", agents: [AgentSpec(name: "main", apps: apps)]))
        let agent = try cp.startAgent(token: tokens["main"]!, name: "web")
        _ = try await cp.waitLifecycle("web", "main", ["ready"])
        return agent
    }

    @Test func proxiesAppsThroughTheTunnel() async throws {
        let cp = try await TestControlPlane(name: "apps")
        defer { cp.shutdown() }
        let port = Harness.freePort()
        let closedPort = Harness.freePort()
        let agent = try await Self.startWorkspace(
            cp,
            apps: [
                AppSpec(slug: "site", url: "http://127.0.0.1:\(port)/app"),
                AppSpec(slug: "down", url: "http://127.0.0.1:\(closedPort)/"),
                AppSpec(slug: "far", url: "http://example.com/"),
            ])
        _ = agent

        let blob = Data((0..<(2 << 20)).map { _ in UInt8.random(in: 0...255) })
        try blob.write(to: URL(fileURLWithPath: cp.dir + "/blob"))
        try Self.app.write(toFile: cp.dir + "/app.py", atomically: true, encoding: .utf8)
        let server = try Child("/usr/bin/python3", [cp.dir + "/app.py", "\(port)", cp.dir + "/blob"], logPath: cp.dir + "/app.log")
        cp.children.append(server)
        try await Harness.until("the app to listen") {
            (try? await cp.curl(["http://127.0.0.1:\(port)/app/echo"]))?.0 == 200
        }
        let base = cp.url + "/apps/web/main/site"
        let auth = ["-H", "Authorization: Bearer \(cp.userToken)"]

        // 2 MiB byte-exact, with the app's own header.
        let (status, body) = try await cp.curl(auth + ["--max-time", "30", base + "/blob"])
        #expect(status == 200, "app proxy said: \(String(decoding: body.prefix(300), as: UTF8.self))")
        // A Bool, not `body == blob` inside #expect: on a mismatch Swift
        // Testing would diff two 2 MiB values for minutes.
        let same = body == blob
        #expect(same, "\(body.count) bytes came back for \(blob.count)")
        let (_, headers) = try await cp.curl(auth + ["-D", "-", "-o", "/dev/null", base + "/blob"])
        #expect(String(decoding: headers, as: UTF8.self).lowercased().contains("x-app: yes"))

        // A chunked body arrives whole.
        let (chunkedStatus, chunked) = try await cp.curl(auth + [base + "/chunked"])
        #expect(chunkedStatus == 200)
        #expect(String(decoding: chunked, as: UTF8.self) == (0..<50).map { String(repeating: "\($0),", count: 1000) }.joined())

        // The app sees its own path and query, and none of the user's
        // control-plane credentials; its own cookies pass.
        let (_, echo) = try await cp.curl(
            auth + ["-H", "Cookie: theme=dark; tether_session=\(cp.userToken)", base + "/echo?x=1"])
        let seen = String(decoding: echo, as: UTF8.self)
        #expect(seen.hasPrefix("GET /app/echo?x=1 HTTP/1.1"), "app saw: \(seen)")
        #expect(!seen.contains(cp.userToken), "the app saw the user's token: \(seen)")
        #expect(seen.contains("Cookie: theme=dark"), "app saw: \(seen)")
        #expect(seen.contains("X-Forwarded-Prefix: /apps/web/main/site"), "app saw: \(seen)")

        // A request body goes up.
        let (postStatus, posted) = try await cp.curl(auth + ["--data-binary", "hello app", base + "/echo"])
        #expect(postStatus == 200)
        #expect(String(decoding: posted, as: UTF8.self) == "ppa olleh")

        // The bare prefix redirects to the app's root.
        let (redirect, _) = try await cp.curl(auth + [base])
        #expect(redirect == 308)

        // Errors: no token, an unknown app, nothing listening, an app off the loopback.
        #expect(try await cp.curl([base + "/blob"]).0 == 401)
        let (unknown, unknownBody) = try await cp.curl(auth + [cp.url + "/apps/web/main/nope/"])
        #expect(unknown == 404)
        #expect(String(decoding: unknownBody, as: UTF8.self).contains("site, down, far"))
        let (down, downBody) = try await cp.curl(auth + ["--max-time", "20", cp.url + "/apps/web/main/down/"])
        #expect(down == 502, "closed port: \(String(decoding: downBody, as: UTF8.self))")
        let (far, farBody) = try await cp.curl(auth + [cp.url + "/apps/web/main/far/"])
        #expect(far == 502)
        #expect(String(decoding: farBody, as: UTF8.self).contains("not on the workspace's loopback"))

        // After those, the proxy still serves.
        #expect(try await cp.curl(auth + [base + "/echo"]).0 == 200)
    }

    /// The WebSocket app (python3-websockets, an independent implementation
    /// of RFC 6455): greets with what its handshake carried, echoes, pings
    /// the client on "ping-me" and closes with 4001 on "close-me".
    static let webSocketApp = """
        import asyncio, json, sys, websockets
        async def handler(ws, path):
            h = ws.request_headers
            await ws.send(json.dumps({"path": path, "auth": "Authorization" in h, "cookie": h.get("Cookie", ""), "protocol": ws.subprotocol}))
            async for message in ws:
                if message == "close-me":
                    await ws.close(4001, "bye")
                    return
                if message == "ping-me":
                    await asyncio.wait_for(await ws.ping(b"app-ping"), 5)
                    await ws.send("pong-received")
                    continue
                await ws.send(message)
        async def main():
            async with websockets.serve(handler, "127.0.0.1", int(sys.argv[1]), subprotocols=["chat.v2", "chat.v1"], max_size=None, ping_interval=None):
                await asyncio.Future()
        asyncio.run(main())
        """

    /// WebSockets through the proxy, with python3-websockets at both ends:
    /// text and a 1 MiB binary message both ways, the subprotocol, a ping
    /// from the app, the app's close code; refusals as close codes.
    @Test func proxiesWebSockets() async throws {
        let cp = try await TestControlPlane(name: "appws")
        defer { cp.shutdown() }
        let port = Harness.freePort()
        let closedPort = Harness.freePort()
        let agent = try await Self.startWorkspace(
            cp,
            apps: [
                AppSpec(slug: "chat", url: "http://127.0.0.1:\(port)/app"),
                AppSpec(slug: "down", url: "http://127.0.0.1:\(closedPort)/"),
            ])
        _ = agent
        try Self.webSocketApp.write(toFile: cp.dir + "/ws_app.py", atomically: true, encoding: .utf8)
        let server = try Child("/usr/bin/python3", [cp.dir + "/ws_app.py", "\(port)"], logPath: cp.dir + "/ws_app.log")
        cp.children.append(server)
        try await Harness.until("the WebSocket app to listen") {
            // It answers a plain GET with 426 Upgrade Required.
            (try? await cp.curl(["http://127.0.0.1:\(port)/"]))?.0 == 426
        }
        let base = cp.url.replacingOccurrences(of: "http://", with: "ws://") + "/apps/web/main"
        let token = cp.userToken
        let client = """
            import asyncio, json, os, websockets
            token = "\(token)"
            async def refused(url, headers):
                async with websockets.connect(url, extra_headers=headers) as ws:
                    try:
                        await ws.recv()
                        raise AssertionError("not closed")
                    except websockets.ConnectionClosed as e:
                        return e.code, e.reason
            async def main():
                headers = {"Authorization": "Bearer " + token, "Cookie": "theme=dark; tether_session=" + token}
                async with websockets.connect("\(base)/chat/ws?x=1", extra_headers=headers, subprotocols=["chat.v1"], max_size=None) as ws:
                    hello = json.loads(await ws.recv())
                    assert hello == {"path": "/app/ws?x=1", "auth": False, "cookie": "theme=dark", "protocol": "chat.v1"}, hello
                    assert ws.subprotocol == "chat.v1", ws.subprotocol
                    await ws.send("héllo")
                    assert await ws.recv() == "héllo"
                    blob = os.urandom(1 << 20)
                    await ws.send(blob)
                    assert await ws.recv() == blob
                    await ws.send("ping-me")
                    assert await ws.recv() == "pong-received"
                    await ws.send("close-me")
                    try:
                        await ws.recv()
                        raise AssertionError("the app's close did not arrive")
                    except websockets.ConnectionClosed as e:
                        assert (e.code, e.reason) == (4001, "bye"), (e.code, e.reason)
                code, reason = await refused("\(base)/chat/ws", {})
                assert code == 1008 and reason.startswith("401"), (code, reason)
                code, reason = await refused("\(base)/nope/", {"Authorization": "Bearer " + token})
                assert code == 1008 and reason.startswith("404"), (code, reason)
                code, reason = await refused("\(base)/down/", {"Authorization": "Bearer " + token})
                assert code == 1014 and reason.startswith("502") and "app down" in reason, (code, reason)
                print("ok")
            asyncio.run(main())
            """
        let output = try await offload { try TestControlPlane.runPython(client) }
        #expect(output == "ok\n", "\(output)")
    }

    /// `--disable-app-proxy`: the routes are gone, the rest of the API stays.
    @Test func appProxyCanBeTurnedOff() async throws {
        let cp = try await TestControlPlane(name: "noapps", serverArguments: ["--disable-app-proxy"])
        defer { cp.shutdown() }
        _ = try await cp.create(WorkspaceSpec(name: "web", agents: [AgentSpec(name: "main", apps: [AppSpec(slug: "site", url: "http://127.0.0.1:1/")])]))
        let auth = ["-H", "Authorization: Bearer \(cp.userToken)"]
        // With the proxy on, this app of an agent that never connected is a 502.
        #expect(try await cp.curl(auth + [cp.url + "/apps/web/main/site/"]).0 == 404)
        #expect(try await cp.curl(auth + [cp.url + "/api/v1/workspaces"]).0 == 200)
    }
}

import Agent
import Foundation
import HTTPTypes
import Logging
import Synchronization
import Testing
import WSClient

/// The dashboard in a real browser: headless Chromium (Debian's package)
/// driven over the DevTools protocol. It signs in by a one-time link,
/// shows the workspace, its lifecycle and startup logs, and a metadata
/// value changes while the test watches without a reload. A screenshot is
/// written to `$TETHER_SCREENSHOT_DIR` (default: the test's temp dir).
@Suite(.serialized) struct DashboardTests {
    static let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }

    @Test(.enabled(if: chromium != nil, "chromium is not installed (scripts/bootstrap.sh installs it)"))
    func dashboardShowsLiveWorkspace() async throws {
        let cp = try await TestControlPlane(name: "dashboard")
        defer { cp.shutdown() }
        let tokens = try await cp.create(
            WorkspaceSpec(
                name: "demo",
                agents: [
                    AgentSpec(
                        name: "main",
                        scripts: [ScriptSpec(displayName: "setup", script: "echo installing toolchain; echo warming caches; echo workspace ready", runOnStart: true)],
                        apps: [AppSpec(slug: "web", displayName: "Web app", url: "http://127.0.0.1:1/", healthcheck: HealthcheckSpec(url: "http://127.0.0.1:1/", intervalSeconds: 1, threshold: 1))],
                        metadata: [
                            MetadataSpec(key: "tick", displayName: "Tick", script: "date +%s%N", intervalSeconds: 1, timeoutSeconds: 1),
                            MetadataSpec(key: "kernel", displayName: "Kernel", script: "uname -sr", intervalSeconds: 10, timeoutSeconds: 2),
                        ])
                ]))
        _ = try cp.startAgent(token: tokens["main"]!, name: "main")
        _ = try await cp.waitLifecycle("demo", "main", ["ready"])
        let link = try await cp.cli(["dashboard"]).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(link.hasPrefix(cp.url + "/login?code="))

        let port = Harness.freePort()
        let browser = try Child(
            DashboardTests.chromium!,
            ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
             "--remote-debugging-port=\(port)", "--remote-allow-origins=*", "--user-data-dir=\(cp.dir)/chromium", "--window-size=1280,900", "about:blank"],
            logPath: cp.dir + "/chromium.log")
        defer { browser.stop() }
        var pageSocket = ""
        try await Harness.until("chromium DevTools", timeout: .seconds(30)) {
            let (status, data) = try await cp.curl(["http://127.0.0.1:\(port)/json/list"])
            guard status == 200, let targets = try JSONSerialization.jsonObject(with: data) as? [[String: Any]],
                let page = targets.first(where: { $0["type"] as? String == "page" }), let ws = page["webSocketDebuggerUrl"] as? String
            else { return false }
            pageSocket = ws
            return true
        }

        let screenshotDir = ProcessInfo.processInfo.environment["TETHER_SCREENSHOT_DIR"] ?? cp.dir
        let screenshot = screenshotDir + "/dashboard.png"
        let findings = try await DevTools.session(pageSocket) { cdp in
            _ = try await cdp.call("Page.navigate", ["url": link])
            let probe = """
                (() => { const q = s => document.querySelector(s);
                  const tick = q('[data-key="tick"]');
                  return JSON.stringify({
                    title: document.title, url: location.pathname,
                    workspace: q('[data-workspace]') ? q('[data-workspace]').dataset.workspace : null,
                    lifecycle: q('[data-testid="lifecycle"]') ? q('[data-testid="lifecycle"]').textContent : null,
                    logs: q('[data-testid="logs"]') ? q('[data-testid="logs"]').textContent : "",
                    tick: tick ? tick.textContent : null,
                    apps: q('[data-testid="apps"]') ? q('[data-testid="apps"]').textContent : "",
                    appLink: q('[data-slug="web"]') ? q('[data-slug="web"]').getAttribute("href") : "",
                    events: window.tetherEventsSeen ? window.tetherEventsSeen() : -1,
                    loadId: window.__loadId || (window.__loadId = Math.random()) }); })()
                """
            var first = Probe()
            try await Harness.until("dashboard to render the workspace", timeout: .seconds(20)) {
                first = Probe(try await cdp.evaluateJSON(probe))
                return first.lifecycle == "ready" && first.tick != nil && first.logs.contains("workspace ready")
            }
            var later = Probe()
            try await Harness.until("metadata to change live", timeout: .seconds(10)) {
                later = Probe(try await cdp.evaluateJSON(probe))
                return later.tick != first.tick
            }
            try await Harness.until("app health to show", timeout: .seconds(10)) {
                Probe(try await cdp.evaluateJSON(probe)).apps.contains("unhealthy")
            }
            let shot = try await cdp.call("Page.captureScreenshot", ["format": "png"])
            if let data = (shot["data"] as? String).flatMap({ Data(base64Encoded: $0) }) {
                try data.write(to: URL(fileURLWithPath: screenshot))
            }
            return (first, later)
        }
        let (first, later) = findings
        #expect(first.url == "/")
        #expect(first.workspace == "demo")
        #expect(first.logs.contains("[setup] installing toolchain"))
        #expect(first.appLink == "/apps/demo/main/web/", "the app's link goes through the app proxy")
        #expect(later.loadID == first.loadID, "the page reloaded instead of updating live")
        #expect(later.events > first.events)
        let png = try Data(contentsOf: URL(fileURLWithPath: screenshot))
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]))
        print("dashboard screenshot: \(screenshot) (\(png.count) bytes)")
    }
}

/// What the test reads off the page.
struct Probe: Sendable {
    var url = "", workspace = "", lifecycle = "", logs = "", apps = "", appLink = ""
    var tick: String?
    var events = 0
    var loadID = 0.0

    init() {}
    init(_ d: [String: Any]) {
        url = d["url"] as? String ?? ""
        workspace = d["workspace"] as? String ?? ""
        lifecycle = d["lifecycle"] as? String ?? ""
        logs = d["logs"] as? String ?? ""
        apps = d["apps"] as? String ?? ""
        appLink = d["appLink"] as? String ?? ""
        tick = d["tick"] as? String
        events = (d["events"] as? NSNumber)?.intValue ?? 0
        loadID = (d["loadId"] as? NSNumber)?.doubleValue ?? 0
    }
}

/// A minimal Chrome DevTools Protocol client over one WebSocket.
final class DevTools: @unchecked Sendable {
    let outbound: WebSocketOutboundWriter
    var inbound: WebSocketInboundMessageStream.AsyncIterator
    var nextID = 0

    init(outbound: WebSocketOutboundWriter, inbound: WebSocketInboundMessageStream.AsyncIterator) {
        self.outbound = outbound
        self.inbound = inbound
    }

    static func session<T: Sendable>(_ url: String, _ body: @escaping @Sendable (DevTools) async throws -> T) async throws -> T {
        let result = Mutex<Result<T, any Error>?>(nil)
        let client = WebSocketClient(url: url, configuration: .init(maxFrameSize: 64 << 20), logger: Logger(label: "cdp")) { inbound, outbound, _ in
            let cdp = DevTools(outbound: outbound, inbound: inbound.messages(maxSize: 64 << 20).makeAsyncIterator())
            do {
                let value = try await body(cdp)
                result.withLock { $0 = .success(value) }
            } catch {
                result.withLock { $0 = .failure(error) }
            }
            try await outbound.close(.normalClosure, reason: nil)
        }
        try await client.run()
        guard let r = result.withLock({ $0 }) else { throw HarnessError("DevTools session produced nothing") }
        return try r.get()
    }

    func call(_ method: String, _ params: [String: Any] = [:]) async throws -> [String: Any] {
        nextID += 1
        let id = nextID
        let request = try JSONSerialization.data(withJSONObject: ["id": id, "method": method, "params": params])
        try await outbound.write(.text(String(decoding: request, as: UTF8.self)))
        while let message = try await inbound.next() {
            guard case .text(let text) = message,
                let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
                object["id"] as? Int == id
            else { continue }
            if let error = object["error"] { throw HarnessError("\(method): \(error)") }
            return object["result"] as? [String: Any] ?? [:]
        }
        throw HarnessError("DevTools connection closed during \(method)")
    }

    /// Evaluates an expression that returns a JSON string, parsed.
    func evaluateJSON(_ expression: String) async throws -> [String: Any] {
        let r = try await call("Runtime.evaluate", ["expression": expression, "returnByValue": true])
        guard let value = (r["result"] as? [String: Any])?["value"] as? String,
            let object = try JSONSerialization.jsonObject(with: Data(value.utf8)) as? [String: Any]
        else { return [:] }
        return object
    }
}

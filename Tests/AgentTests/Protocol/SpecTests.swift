import Agent
import Testing

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

@Suite struct SpecTests {
    @Test func documentedExampleParsesAndValidates() throws {
        let json = #"""
            { "name": "dev",
              "agents": [ { "name": "main", "directory": "/work", "env": {"A": "1"}, "motd_path": "/etc/motd",
                "scripts": [ { "display_name": "setup", "script": "make deps", "run_on_start": true,
                               "timeout_seconds": 300, "start_blocks_login": true },
                             { "display_name": "tick", "script": "date", "cron": "*/10 * * * * *" } ],
                "apps": [ { "slug": "web", "url": "http://127.0.0.1:8080",
                            "healthcheck": { "url": "http://127.0.0.1:8080/healthz", "interval_seconds": 5, "threshold": 3 } } ],
                "metadata": [ { "key": "load", "script": "cut -d' ' -f1 /proc/loadavg", "interval_seconds": 1, "timeout_seconds": 1 } ] } ] }
            """#
        let spec = try JSONDecoder().decode(WorkspaceSpec.self, from: Data(json.utf8))
        try spec.validate()
        #expect(spec.agents[0].scripts?[0].startBlocksLogin == true)
        #expect(spec.agents[0].scripts?[1].timeoutSeconds == 0)
        #expect(spec.agents[0].apps?[0].healthcheck?.threshold == 3)
    }

    @Test func errorsNameTheField() {
        func message(_ spec: WorkspaceSpec) -> String? {
            do { try spec.validate() } catch { return error.message }
            return nil
        }
        #expect(message(WorkspaceSpec(name: "Dev", agents: [AgentSpec(name: "a")]))?.hasPrefix("name:") == true)
        #expect(message(WorkspaceSpec(name: "dev", agents: []))?.hasPrefix("agents:") == true)
        let neverRuns = AgentSpec(name: "a", scripts: [ScriptSpec(displayName: "x", script: "true")])
        #expect(message(WorkspaceSpec(name: "dev", agents: [neverRuns]))?.hasPrefix("agents[0].scripts[0]:") == true)
        let badCron = AgentSpec(name: "a", scripts: [ScriptSpec(displayName: "x", script: "true", cron: "61 * * * *")])
        #expect(message(WorkspaceSpec(name: "dev", agents: [badCron]))?.hasPrefix("agents[0].scripts[0].cron:") == true)
        let badURL = AgentSpec(name: "a", apps: [AppSpec(slug: "w", url: "ftp://x")])
        #expect(message(WorkspaceSpec(name: "dev", agents: [badURL]))?.hasPrefix("agents[0].apps[0].url:") == true)
        let dupKey = AgentSpec(name: "a", metadata: [MetadataSpec(key: "k", script: "x"), MetadataSpec(key: "k", script: "y")])
        #expect(message(WorkspaceSpec(name: "dev", agents: [dupKey]))?.contains("used twice") == true)
    }

    @Test func httpURLParts() {
        #expect(HTTPURL("http://127.0.0.1:8080/h?x=1") == HTTPURL(host: "127.0.0.1", port: 8080, target: "/h?x=1"))
        #expect(HTTPURL("http://[::1]:9/") == HTTPURL(host: "::1", port: 9, target: "/"))
        #expect(HTTPURL("http://localhost") == HTTPURL(host: "localhost", port: 80, target: "/"))
        #expect(HTTPURL("https://x") == nil)
        #expect(HTTPURL("http://x:0/") == nil)
        #expect(HTTPURL("http://u@x/") == nil)
    }
}

extension HTTPURL {
    init?(host: String, port: Int, target: String) {
        self.init("http://\(host.contains(":") ? "[\(host)]" : host):\(port)\(target)")
    }
}

@Suite struct CronTests {
    // 2024-02-28 23:59:59 UTC
    let t0: Int64 = 1_709_164_799

    @Test func everyTenSeconds() throws {
        let c = try CronSchedule(parsing: "*/10 * * * * *")
        #expect(c.next(after: 1_700_000_000) == 1_700_000_010)
        #expect(c.next(after: 1_700_000_005) == 1_700_000_010)
    }

    @Test func fiveFieldsMeanSecondZero() throws {
        let c = try CronSchedule(parsing: "30 2 * * *")
        // next 02:30:00 after 2024-02-28 23:59:59 is 2024-02-29 02:30:00 (leap day)
        #expect(c.next(after: t0) == 1_709_173_800)
    }

    @Test func dayOfWeekAndMonth() throws {
        // Sundays (0 or 7) at midnight; 2024-03-03 was a Sunday.
        #expect(try CronSchedule(parsing: "0 0 * * 7").next(after: t0) == 1_709_424_000)
        #expect(try CronSchedule(parsing: "0 0 * * 0").next(after: t0) == 1_709_424_000)
        // 1st of a month OR a Monday: 2024-03-01 (Friday) comes first.
        #expect(try CronSchedule(parsing: "0 0 1 * 1").next(after: t0) == 1_709_251_200)
        #expect(try CronSchedule(parsing: "0 0 31 2 *").next(after: t0) == nil)
    }

    @Test func rejectsNonsense() {
        for bad in ["* * * *", "60 * * * *", "* 24 * * *", "*/0 * * * *", "5-1 * * * *", "@daily", "a * * * *", "1,,2 * * * *"] {
            #expect(throws: SpecError.self) { try CronSchedule(parsing: bad) }
        }
    }
}

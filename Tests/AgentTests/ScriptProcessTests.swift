import Agent
import Synchronization
import Testing

/// Real `sh` processes: exit codes, timeouts that kill the whole process
/// group, output delivery and zombie-free reaping.
@Suite struct ScriptProcessTests {
    func run(_ script: String, timeout: Duration? = nil) async -> (ScriptOutcome, String) {
        let output = Mutex<[UInt8]>([])
        let outcome = await ScriptProcess.run(script: script, directory: "/tmp", environment: ["PATH=/usr/bin:/bin", "X=1"], timeout: timeout) {
            chunk in output.withLock { $0.append(contentsOf: chunk) }
        }
        return (outcome, String(decoding: output.withLock { $0 }, as: UTF8.self))
    }

    @Test func exitCodeAndOutput() async {
        let (ok, text) = await run("echo out; echo err >&2; echo $X; pwd")
        #expect(ok.succeeded)
        #expect(text == "out\nerr\n1\n/tmp\n")
        let (fail, _) = await run("exit 3")
        #expect(fail.exitCode == 3)
        #expect(!fail.succeeded)
    }

    @Test func timeoutKillsTheGroup() async {
        let start = ContinuousClock.now
        let (outcome, _) = await run("sleep 30 & sleep 30; echo never", timeout: .milliseconds(300))
        #expect(outcome.timedOut)
        #expect(ContinuousClock.now - start < .seconds(5))
    }

    @Test func cancellationKills() async {
        let task = Task { await run("sleep 30") }
        try? await Task.sleep(for: .milliseconds(200))
        task.cancel()
        let (outcome, _) = await task.value
        #expect(outcome.signal == 9)
    }

    @Test func manyInParallel() async {
        await withTaskGroup(of: Bool.self) { group in
            for i in 0..<40 { group.addTask { await run("echo \(i)").1 == "\(i)\n" } }
            for await ok in group { #expect(ok) }
        }
    }
}

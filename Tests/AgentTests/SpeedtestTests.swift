import Agent
import Testing

/// The speedtest's pure part: the config and answer lines of Tailscale's
/// `net/speedtest` version 2, and the one-second meter, on a fake clock.
struct SpeedtestTests {
    @Test func configLineIsTailscales() throws {
        let config = Speedtest.Config(duration: .seconds(5), direction: .upload)
        #expect(String(decoding: config.encoded(), as: UTF8.self) == #"{"direction":1,"time":5000000000,"version":2}"# + "\n")
        // Go's encoder writes the fields in struct order; the order is not significant.
        let go = Array(#"{"version":2,"time":5000000000,"direction":0}"#.utf8) + [10] + Array("data".utf8)
        let parsed = try #require(try Speedtest.parseConfig(go))
        #expect(parsed.config == Speedtest.Config(duration: .seconds(5), direction: .download))
        #expect(parsed.consumed == go.count - 4)
        #expect(parsed.config.direction.reversed == .upload)
    }

    @Test func incompleteConfigWaitsForMore() throws {
        #expect(try Speedtest.parseConfig(Array(#"{"version":2,"ti"#.utf8)) == nil)
        #expect(try Speedtest.parseConfig([]) == nil)
    }

    @Test func badConfigsSayWhy() {
        func error(_ text: String) -> Speedtest.ConfigError? {
            do {
                _ = try Speedtest.parseConfig(Array(text.utf8))
                return nil
            } catch { return error }
        }
        #expect(error(#"{"version":1,"time":5000000000,"direction":0}"# + "\n") == .version(1))
        #expect(error(#"{"version":2,"time":60000000000,"direction":0}"# + "\n") == .duration(60_000_000_000))
        #expect(error(#"{"version":2,"time":0,"direction":0}"# + "\n") == .duration(0))
        #expect(error(#"{"version":2,"time":5000000000,"direction":7}"# + "\n") == .malformed)
        #expect(error("not json\n") == .malformed)
        #expect(error(String(repeating: " ", count: 2000)) == .tooLong)
        #expect(Speedtest.ConfigError.version(1).description.contains("version mismatch"))
    }

    @Test func answers() throws {
        #expect(String(decoding: Speedtest.Answer().encoded(), as: UTF8.self) == "{}\n")
        let refused = Speedtest.Answer(error: "no").encoded()
        #expect(Speedtest.parseAnswer(refused)?.answer == Speedtest.Answer(error: "no"))
        #expect(Speedtest.parseAnswer(Array("{}".utf8)) == nil)
        let garbage = try #require(Speedtest.parseAnswer(Array("[1,2\n".utf8)))
        #expect(garbage.answer == nil)
    }

    @Test func parsersNeverTrap() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<5000 {
            let count = Int.random(in: 0...300, using: &generator)
            var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if Bool.random(using: &generator) { bytes.append(10) }
            _ = try? Speedtest.parseConfig(bytes)
            _ = Speedtest.parseAnswer(bytes)
        }
    }

    @Test func meterCutsOneSecondIntervals() {
        let s: Int64 = 1_000_000_000
        var meter = Speedtest.Meter(start: 7 * s)
        // 1 MB every 250 ms for 2.6 s.
        var closed: [Speedtest.Result] = []
        for i in 1...10 {
            if let r = meter.record(1_000_000, at: 7 * s + Int64(i) * s / 4) { closed.append(r) }
        }
        #expect(closed == [
            Speedtest.Result(bytes: 4_000_000, start: 0, end: s, total: false),
            Speedtest.Result(bytes: 4_000_000, start: s, end: 2 * s, total: false),
        ])
        #expect(closed[0].megabitsPerSecond == 32)
        let end = meter.finish(at: 7 * s + 26 * s / 10)
        #expect(end == [
            Speedtest.Result(bytes: 2_000_000, start: 2 * s, end: 26 * s / 10, total: false),
            Speedtest.Result(bytes: 10_000_000, start: 0, end: 26 * s / 10, total: true),
        ])
        #expect(meter.totalBytes == 10_000_000)
        // A last interval of 10 ms or less is left out; the total stays.
        #expect(meter.finish(at: 7 * s + 2 * s + 5_000_000).map(\.total) == [true])
    }
}

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The speedtest on tunnel port 3 (DESIGN.md, "Addresses and ports inside
/// the tunnel"), on the wire as Tailscale's `net/speedtest` version 2, which
/// Coder's agent serves on the same port:
///
/// 1. the client sends its config, one JSON object and a newline:
///    `{"version":2,"time":<nanoseconds>,"direction":0|1}`, the direction
///    being the client's own (0 = download: the agent sends; 1 = upload);
/// 2. the agent answers `{}` or `{"error":"…"}`, and a newline;
/// 3. the sending side sends for `time`, then closes its half; the other
///    reads to the end and closes.
///
/// Each side measures what it moved itself, in intervals of one second.
/// This file is the pure part: the config and answer, and the meter.
public enum Speedtest {
    public static let version = 2
    /// Tunnel port of the agent's speedtest server.
    public static let port: UInt16 = 3
    /// The longest test the agent runs (Tailscale's client allows 5–30 s).
    public static let maximumDuration: Duration = .seconds(30)
    /// A config line longer than this is refused.
    public static let maximumConfigBytes = 1024

    public enum Direction: Int, Codable, Sendable, CustomStringConvertible {
        case download = 0
        case upload = 1

        public var reversed: Direction { self == .download ? .upload : .download }
        public var description: String { self == .download ? "download" : "upload" }
    }

    public struct Config: Codable, Equatable, Sendable {
        public var version: Int
        /// Test duration in nanoseconds (Go's `time.Duration`).
        public var time: Int64
        /// The client's direction.
        public var direction: Direction

        public init(duration: Duration, direction: Direction) {
            version = Speedtest.version
            time = duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
            self.direction = direction
        }

        public var duration: Duration { .nanoseconds(time) }

        /// The config line, newline included.
        public func encoded() -> [UInt8] { Speedtest.line(self) }
    }

    /// The agent's answer to a config.
    public struct Answer: Codable, Equatable, Sendable {
        public var error: String?
        public init(error: String? = nil) { self.error = error }
        public func encoded() -> [UInt8] { Speedtest.line(self) }
    }

    public enum ConfigError: Error, Equatable, CustomStringConvertible {
        case tooLong
        case malformed
        case version(Int)
        case duration(Int64)

        public var description: String {
            switch self {
            case .tooLong: "speedtest config longer than \(Speedtest.maximumConfigBytes) bytes"
            case .malformed: "speedtest config is not a JSON object with version, time and direction"
            case .version(let v): "version mismatch! Server is version \(Speedtest.version), client is version \(v)"
            case .duration(let ns): "test time \(ns) ns is not between 1 ms and 30 s"
            }
        }
    }

    /// The first line of `bytes`, if it is complete: the config and how many
    /// bytes it took with its newline; nil while more bytes are needed.
    /// Never traps, whatever the bytes.
    public static func parseConfig(_ bytes: [UInt8]) throws(ConfigError) -> (config: Config, consumed: Int)? {
        guard let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) else {
            if bytes.count > maximumConfigBytes { throw .tooLong }
            return nil
        }
        guard newline <= maximumConfigBytes else { throw .tooLong }
        let config: Config
        do { config = try JSONDecoder().decode(Config.self, from: Data(bytes[..<newline])) } catch { throw .malformed }
        guard config.version == version else { throw .version(config.version) }
        guard config.time >= 1_000_000, config.duration <= maximumDuration else { throw .duration(config.time) }
        return (config, newline + 1)
    }

    /// The answer line from the start of `bytes`, as `parseConfig`.
    public static func parseAnswer(_ bytes: [UInt8]) -> (answer: Answer?, consumed: Int)? {
        guard let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        return (try? JSONDecoder().decode(Answer.self, from: Data(bytes[..<newline])), newline + 1)
    }

    private static func line(_ value: some Encodable) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array((try? encoder.encode(value)) ?? Data("{}".utf8)) + [UInt8(ascii: "\n")]
    }

    /// Bytes moved in one interval of a test, times in nanoseconds since
    /// its start; `total` marks the whole test.
    public struct Result: Equatable, Sendable {
        public var bytes: Int
        public var start: Int64
        public var end: Int64
        public var total: Bool

        public init(bytes: Int, start: Int64, end: Int64, total: Bool) {
            self.bytes = bytes
            self.start = start
            self.end = end
            self.total = total
        }

        public var seconds: Double { Double(end - start) / 1e9 }
        public var megabits: Double { Double(bytes) * 8 / 1e6 }
        public var megabitsPerSecond: Double { seconds > 0 ? megabits / seconds : 0 }
    }

    /// Cuts a transfer into one-second intervals as Tailscale's does: an
    /// interval closes at the first record at least a second after the last
    /// one closed; at the end, a last partial interval (if over 10 ms) and
    /// the total.
    public struct Meter: Sendable {
        public static let increment: Int64 = 1_000_000_000
        public static let minimumInterval: Int64 = 10_000_000

        let start: Int64
        var lastClosed: Int64
        var intervalBytes = 0
        public private(set) var totalBytes = 0

        public init(start: Int64) {
            self.start = start
            lastClosed = start
        }

        /// Counts `bytes` moved at `now`; returns the interval this closed.
        public mutating func record(_ bytes: Int, at now: Int64) -> Result? {
            intervalBytes += bytes
            totalBytes += bytes
            guard now - lastClosed >= Self.increment else { return nil }
            defer {
                lastClosed = now
                intervalBytes = 0
            }
            return Result(bytes: intervalBytes, start: lastClosed - start, end: now - start, total: false)
        }

        /// The last partial interval and the total, at `now`.
        public func finish(at now: Int64) -> [Result] {
            var out: [Result] = []
            if now - lastClosed > Self.minimumInterval {
                out.append(Result(bytes: intervalBytes, start: lastClosed - start, end: now - start, total: false))
            }
            if now - start > Self.minimumInterval {
                out.append(Result(bytes: totalBytes, start: 0, end: now - start, total: true))
            }
            return out
        }
    }
}

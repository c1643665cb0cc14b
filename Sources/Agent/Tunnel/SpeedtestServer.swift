import Logging
import Netstack
import Synchronization

/// The agent's speedtest server on tunnel port 3 (`Speedtest` has the wire
/// format). Each connection runs on its own task; a bad config gets its
/// error line and the connection closes, and a client that stalls is cut
/// off a few seconds after its test should have ended, so nothing it does
/// holds a task for long.
public enum SpeedtestServer {
    /// How long a client may take to send its config.
    static let configTimeout: Duration = .seconds(10)
    /// Slack after the test's own time before a transfer that has not ended
    /// is cut off (Tailscale's server allows an upload the same 5 s).
    static let grace: Duration = .seconds(5)
    /// Size of each write when the agent sends.
    static let blockSize = 256 << 10

    static func serve(_ listener: TCPListener, logger: Logger) async {
        while true {
            let stream: TCPStream
            do { stream = try await listener.accept() } catch { return }
            Task {
                do {
                    try await run(stream)
                    stream.close()
                } catch {
                    logger.info("speedtest from \(stream.remoteAddress) ended: \(error)")
                    stream.abort()
                }
            }
        }
    }

    /// Random bytes, made per test (an idle agent keeps no buffer):
    /// compression anywhere on the path must not flatter the figure.
    public static func randomBlock() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return [UInt8](unsafeUninitializedCapacity: blockSize) { buffer, initialized in
            let raw = UnsafeMutableRawBufferPointer(buffer)
            for i in stride(from: 0, to: blockSize, by: 8) { raw.storeBytes(of: generator.next() as UInt64, toByteOffset: i, as: UInt64.self) }
            initialized = blockSize
        }
    }

    enum Failure: Error, CustomStringConvertible {
        case config(Speedtest.ConfigError)
        case closedEarly
        case timedOut(String)

        var description: String {
            switch self {
            case .config(let e): "\(e)"
            case .closedEarly: "the client closed before sending its config"
            case .timedOut(let what): "\(what) timed out"
            }
        }
    }

    static func run(_ stream: TCPStream) async throws {
        let config = try await within(configTimeout, "config", stream) { () async throws -> Speedtest.Config in
            var received: [UInt8] = []
            while true {
                let chunk = try await stream.read(maximumCount: Speedtest.maximumConfigBytes + 1)
                if chunk.isEmpty { throw Failure.closedEarly }
                received += chunk
                do throws(Speedtest.ConfigError) {
                    if let (config, _) = try Speedtest.parseConfig(received) { return config }
                } catch {
                    try? await stream.write(Speedtest.Answer(error: error.description).encoded())
                    throw Failure.config(error)
                }
            }
        }
        try await stream.write(Speedtest.Answer().encoded())
        switch config.direction.reversed {
        case .upload:
            // The client downloads: send for the test's time, then close.
            let block = randomBlock()
            let end = ContinuousClock.now + config.duration
            try await within(config.duration + grace, "download", stream) {
                while ContinuousClock.now < end { try await stream.write(block) }
            }
        case .download:
            // The client uploads: read to its end.
            try await within(config.duration + grace, "upload", stream) {
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 16)
                defer { buffer.deallocate() }
                while try await stream.read(into: buffer) > 0 {}
            }
        }
    }

    /// `body`, or `Failure.timedOut` after `limit`, when `stream` is reset
    /// (a Netstack read does not end on task cancellation, a reset ends it).
    static func within<T: Sendable>(
        _ limit: Duration, _ what: String, _ stream: TCPStream, _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let expired = Flag()
        let timer = Task {
            try await Task.sleep(for: limit)
            expired.value.store(true, ordering: .releasing)
            stream.abort()
        }
        defer { timer.cancel() }
        do {
            return try await body()
        } catch {
            throw expired.value.load(ordering: .acquiring) ? Failure.timedOut(what) : error
        }
    }

    final class Flag: Sendable {
        let value = Atomic<Bool>(false)
    }
}

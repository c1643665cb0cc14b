import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A swift-log handler that appends to `<directory>/<name>.log` and rotates
/// it at `maxBytes` into `.1` … `.keep` (oldest dropped), so a long-lived
/// agent's own log never fills a workspace's disk.
public struct RotatingFileLogHandler: LogHandler {
    final class Sink: Sendable {
        struct File {
            var fd: Int32
            var size: Int
        }
        let path: String
        let maxBytes: Int
        let keep: Int
        let file: Mutex<File>

        init(path: String, maxBytes: Int, keep: Int) {
            self.path = path
            self.maxBytes = maxBytes
            self.keep = keep
            let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            var st = stat()
            let size = fd >= 0 && fstat(fd, &st) == 0 ? Int(st.st_size) : 0
            file = Mutex(File(fd: fd, size: size))
        }

        func write(_ line: String) {
            file.withLock { f in
                guard f.fd >= 0 else { return }
                var bytes = Array(line.utf8)
                bytes.append(UInt8(ascii: "\n"))
                if f.size + bytes.count > maxBytes { rotate(&f) }
                let n = bytes.withUnsafeBytes { Glibc.write(f.fd, $0.baseAddress, $0.count) }
                if n > 0 { f.size += n }
            }
        }

        private func rotate(_ f: inout File) {
            close(f.fd)
            for i in stride(from: keep - 1, through: 1, by: -1) { rename("\(path).\(i)", "\(path).\(i + 1)") }
            rename(path, "\(path).1")
            f.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0o644)
            f.size = 0
        }
    }

    let sink: Sink
    let label: String
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]

    public init(label: String, path: String, maxBytes: Int = 5 << 20, keep: Int = 3) {
        self.init(label: label, sink: Sink(path: path, maxBytes: maxBytes, keep: keep))
    }

    init(label: String, sink: Sink) {
        self.label = label
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(
        level: Logger.Level, message: Logger.Message, metadata extra: Logger.Metadata?, source: String,
        file: String, function: String, line: UInt
    ) {
        var all = metadata
        if let extra { all.merge(extra) { $1 } }
        let meta = all.isEmpty ? "" : " " + all.sorted { $0.key < $1.key }.map { "\($0)=\($1)" }.joined(separator: " ")
        sink.write("\(timestamp()) \(level) \(label): \(message)\(meta)")
    }

    /// `2026-11-23T16:05:09.123Z`.
    static func timestamp(_ millis: Int64 = nowMillis()) -> String {
        let c = (millis / 1000, millis % 1000)
        var t = time_t(c.0)
        var tm = tm()
        gmtime_r(&t, &tm)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let ms = c.1 < 10 ? "00\(c.1)" : c.1 < 100 ? "0\(c.1)" : "\(c.1)"
        return "\(tm.tm_year + 1900)-\(two(tm.tm_mon + 1))-\(two(tm.tm_mday))T\(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec)).\(ms)Z"
    }
    func timestamp() -> String { Self.timestamp() }
}

public enum AgentLogging {
    /// Agent logs go to standard error and to a rotating file in
    /// `directory` (created if needed). Call once per process.
    public static func bootstrap(directory: String, level: Logger.Level) {
        makeDirectories(directory)
        let sink = RotatingFileLogHandler.Sink(path: directory + "/tether-agent.log", maxBytes: 5 << 20, keep: 3)
        LoggingSystem.bootstrap { label in
            var file = RotatingFileLogHandler(label: label, sink: sink)
            file.logLevel = level
            var err = StreamLogHandler.standardError(label: label)
            err.logLevel = level
            return MultiplexLogHandler([file, err])
        }
    }
}

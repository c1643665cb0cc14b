import CZlib
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// The agent binary as workspaces download it: this very executable, also
/// gzip-compressed (RFC 1952) for `GET /api/v1/bin/tether.gz`, which the
/// init script prefers when the workspace has `gzip` (a third of the bytes
/// on the wire). The compressed copy is made once, on the first request,
/// into the data directory, named after the executable's size and
/// modification time so a new binary gets a new copy.
actor AgentDownload {
    let directory: String
    let logger: Logger
    private var ready: String?

    init(dataDirectory: String, logger: Logger) {
        directory = dataDirectory + "/agent-download"
        self.logger = logger
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Path of the gzip file, made now if it does not exist yet.
    func gzipPath() throws -> String {
        if let ready, access(ready, R_OK) == 0 { return ready }
        var st = stat()
        guard stat("/proc/self/exe", &st) == 0 else { throw Failure(description: "cannot stat own executable") }
        let path = "\(directory)/tether-\(st.st_size)-\(st.st_mtim.tv_sec).gz"
        if access(path, R_OK) != 0 {
            mkdir(directory, 0o700)
            let started = ContinuousClock.now
            let partial = path + ".part.\(getpid())"
            defer { unlink(partial) }
            try Self.compress("/proc/self/exe", to: partial)
            guard rename(partial, path) == 0 else { throw Failure(description: "rename \(partial): errno \(errno)") }
            logger.info("agent download compressed in \(ContinuousClock.now - started): \(path)")
        }
        ready = path
        return path
    }

    /// gzip of `source` into `destination`, streaming 1 MiB at a time.
    static func compress(_ source: String, to destination: String) throws {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw Failure(description: "open \(source): errno \(errno)") }
        defer { close(input) }
        let output = open(destination, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard output >= 0 else { throw Failure(description: "create \(destination): errno \(errno)") }
        defer { close(output) }

        var stream = z_stream()
        guard czlib_deflate_init_gzip(&stream, 6) == Z_OK else { throw Failure(description: "deflateInit2 failed") }
        defer { deflateEnd(&stream) }
        let chunk = 1 << 20
        let inBuffer = UnsafeMutablePointer<UInt8>.allocate(capacity: chunk)
        let outBuffer = UnsafeMutablePointer<UInt8>.allocate(capacity: chunk)
        defer {
            inBuffer.deallocate()
            outBuffer.deallocate()
        }
        var finished = false
        while !finished {
            let n = read(input, inBuffer, chunk)
            guard n >= 0 else { throw Failure(description: "read \(source): errno \(errno)") }
            stream.next_in = inBuffer
            stream.avail_in = UInt32(n)
            let flush = n == 0 ? Z_FINISH : Z_NO_FLUSH
            repeat {
                stream.next_out = outBuffer
                stream.avail_out = UInt32(chunk)
                let rc = deflate(&stream, flush)
                guard rc != Z_STREAM_ERROR else { throw Failure(description: "deflate failed") }
                let produced = chunk - Int(stream.avail_out)
                var written = 0
                while written < produced {
                    let w = write(output, outBuffer + written, produced - written)
                    guard w > 0 else { throw Failure(description: "write \(destination): errno \(errno)") }
                    written += w
                }
                if rc == Z_STREAM_END { finished = true }
            } while stream.avail_out == 0 && !finished
        }
    }
}

@preconcurrency import Dispatch
import Netstack
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Moves bytes both ways between a Netstack TCP stream and file
/// descriptors (a socketpair end for the SSH server, or a CLI's stdin and
/// stdout), until both directions have ended.
///
/// Each direction runs on a thread of its own because the descriptor side
/// blocks: a reader that stops reading must stall only its own stream (the
/// stream's window closes, TCP backpressure reaches the peer), never the
/// few cooperative threads of Swift concurrency. End of input on one side
/// becomes a half-close on the other, so EOF passes through independently
/// in each direction (RFC 9293 §3.6).
public enum StreamBridge {
    /// Bridges `stream` with `readFD` (bytes to send) and `writeFD` (bytes
    /// received); they may be the same descriptor. Calls `done` once both
    /// directions finished; the stream is closed then, and the descriptors
    /// are closed when `closeDescriptors` is set.
    public static func run(
        _ stream: TCPStream, readFD: Int32, writeFD: Int32, closeDescriptors: Bool,
        done: @escaping @Sendable () -> Void = {}
    ) {
        let remaining = Atomic<Int>(2)
        let finish: @Sendable () -> Void = {
            guard remaining.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 else { return }
            stream.close()
            if closeDescriptors {
                close(readFD)
                if writeFD != readFD { close(writeFD) }
            }
            done()
        }
        startThread(name: "bridge-out") {
            var buffer = [UInt8](repeating: 0, count: 64 << 10)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(readFD, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { break }
                let chunk = Array(buffer[0..<n])
                guard waitFor({ try await stream.write(chunk) }) != nil else { break }
            }
            stream.shutdownWrite()
            finish()
        }
        startThread(name: "bridge-in") {
            while true {
                guard let chunk = waitFor({ try await stream.read() }), !chunk.isEmpty else { break }
                guard writeAll(writeFD, chunk) else { break }
            }
            if writeFD == readFD { shutdown(writeFD, Int32(SHUT_WR)) } else if !closeDescriptors { close(writeFD) }
            finish()
        }
    }

    /// Writes every byte, retrying short writes; false when the reader is gone.
    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, bytes.count - done) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }
            done += n
        }
        return true
    }

    /// Runs `body` as a task and blocks this (non-cooperative) thread until
    /// it finishes; nil if it threw.
    static func waitFor<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) -> T? {
        let result = Mutex<T?>(nil)
        let finished = DispatchSemaphore(value: 0)
        Task {
            let value = try? await body()
            result.withLock { $0 = value }
            finished.signal()
        }
        finished.wait()
        return result.withLock { $0 }
    }
}

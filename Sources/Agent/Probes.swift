
#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// One HTTP health check: `GET target HTTP/1.1` to an app on the
/// workspace's loopback; success is a 2xx or 3xx status line within
/// `timeout` (RFC 9110 §15). Blocking sockets on a thread of its own: a
/// probe is a handful of system calls every few seconds.
enum HTTPProbe {
    static func check(_ url: HTTPURL, timeout: Duration) async -> Bool {
        await onThread { checkBlocking(url, timeoutMillis: Int32(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)) }
    }

    static func checkBlocking(_ url: HTTPURL, timeoutMillis: Int32) -> Bool {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(url.host, String(url.port), &hints, &result) == 0, let first = result else { return false }
        defer { freeaddrinfo(result) }
        let deadline = monotonicNanos() + Int64(timeoutMillis) * 1_000_000
        func remaining() -> Int32 { Int32(max(0, (deadline - monotonicNanos()) / 1_000_000)) }

        let fd = socket(first.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        if connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) != 0 {
            guard errno == EINPROGRESS, waitFor(fd, Int16(POLLOUT), remaining()) else { return false }
            var err: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
            guard err == 0 else { return false }
        }
        let hostHeader = url.host.contains(":") ? "[\(url.host)]:\(url.port)" : "\(url.host):\(url.port)"
        let request = Array("GET \(url.target) HTTP/1.1\r\nHost: \(hostHeader)\r\nUser-Agent: tether-agent\r\nConnection: close\r\n\r\n".utf8)
        var sent = 0
        while sent < request.count {
            guard waitFor(fd, Int16(POLLOUT), remaining()) else { return false }
            let n = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { return false }
            sent += n
        }
        var head = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 256)
        while head.count < 12 {
            guard waitFor(fd, Int16(POLLIN), remaining()) else { return false }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { break }
            head += buffer[0..<n]
        }
        return statusIsHealthy(head)
    }

    /// `HTTP/1.x 2xx` or `3xx`.
    static func statusIsHealthy(_ head: [UInt8]) -> Bool {
        guard head.count >= 12, head.starts(with: Array("HTTP/1.".utf8)), head[8] == UInt8(ascii: " ") else { return false }
        return head[9] == UInt8(ascii: "2") || head[9] == UInt8(ascii: "3")
    }

    private static func waitFor(_ fd: Int32, _ events: Int16, _ millis: Int32) -> Bool {
        guard millis > 0 else { return false }
        var p = pollfd(fd: fd, events: events, revents: 0)
        while true {
            let r = poll(&p, 1, millis)
            if r < 0, errno == EINTR { continue }
            return r > 0 && p.revents & events != 0
        }
    }
}

/// The agent's own figures for `stats`.
package enum ProcessStats {
    static let pageSize = Int64(sysconf(Int32(_SC_PAGESIZE)))

    /// Resident set size from /proc/self/statm (second field, in pages).
    static func residentBytes() -> Int64 {
        guard let text = readSmallFile("/proc/self/statm") else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int64(fields[1]) else { return 0 }
        return pages * pageSize
    }

    /// One-minute load average from /proc/loadavg (`0.53 1.06 0.95 …`).
    package static func load1() -> Double {
        guard let text = readSmallFile("/proc/loadavg") else { return 0 }
        return load(loadavgText: text.utf8) ?? 0
    }

    /// The first field of /proc/loadavg, which the kernel prints as
    /// integer and two decimals (`LOAD_INT`, `LOAD_FRAC`). Read digit by
    /// digit: `Double(Substring)` would bring `strtod` and its tables back
    /// into an idle agent's resident set every stats report. Nil when the
    /// text is not that shape.
    package static func load(loadavgText text: some Collection<UInt8>) -> Double? {
        var hundredths = 0
        var fractionDigits: Int? = nil
        var sawDigit = false
        for byte in text {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                if let f = fractionDigits {
                    guard f < 2 else { continue }
                    fractionDigits = f + 1
                }
                guard hundredths < 1 << 40 else { return nil }
                hundredths = hundredths * 10 + Int(byte - UInt8(ascii: "0"))
                sawDigit = true
            case UInt8(ascii: "."):
                guard fractionDigits == nil, sawDigit else { return nil }
                fractionDigits = 0
            case UInt8(ascii: " "), UInt8(ascii: "\n"):
                guard sawDigit else { return nil }
                return finish(hundredths, fractionDigits ?? 0)
            default:
                return nil
            }
        }
        return sawDigit ? finish(hundredths, fractionDigits ?? 0) : nil
    }

    private static func finish(_ value: Int, _ fractionDigits: Int) -> Double {
        Double(value * (fractionDigits == 0 ? 100 : fractionDigits == 1 ? 10 : 1)) / 100
    }
}

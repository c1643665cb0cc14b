import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// A small blocking HTTP/1.1 client for the CLI's few API calls to the
/// control plane (plain `http://`, `Connection: close`, bodies by
/// Content-Length or to EOF, chunked decoded).
struct APIClient {
    let baseURL: String
    let token: String?

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    func request(_ method: String, _ path: String, json body: Data? = nil) throws -> (status: Int, body: Data) {
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        guard base.hasPrefix("http://") else { throw Failure(description: "control plane URL must start with http:// (got \(baseURL))") }
        let authority = base.dropFirst(7).prefix { $0 != "/" }
        var host = String(authority)
        var port = "80"
        if let colon = authority.lastIndex(of: ":"), !authority.hasSuffix("]") {
            host = String(authority[..<colon])
            port = String(authority[authority.index(after: colon)...])
        }
        host = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, port, &hints, &result) == 0, let ai = result else {
            throw Failure(description: "cannot resolve \(host)")
        }
        defer { freeaddrinfo(result) }
        let fd = socket(ai.pointee.ai_family, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(errno)") }
        defer { close(fd) }
        guard connect(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) == 0 else {
            throw Failure(description: "cannot connect to \(baseURL): \(String(cString: strerror(errno)))")
        }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: \(authority)\r\nConnection: close\r\nUser-Agent: tether-cli\r\n"
        if let token { head += "Authorization: Bearer \(token)\r\n" }
        if let body { head += "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n" }
        var out = Array((head + "\r\n").utf8)
        if let body { out += body }
        var sent = 0
        while sent < out.count {
            let n = out[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw Failure(description: "connection lost while sending") }
            sent += n
        }
        var response = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            response += buffer[0..<n]
        }
        return try Self.parse(response)
    }

    static func parse(_ raw: [UInt8]) throws -> (status: Int, body: Data) {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let end = raw.indices.first(where: { raw[$0...].starts(with: separator) }) else {
            throw Failure(description: "incomplete HTTP response")
        }
        let headText = String(decoding: raw[..<end], as: UTF8.self)
        let lines = headText.components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ")
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else { throw Failure(description: "bad status line") }
        var body = Array(raw[(end + 4)...])
        let chunked = lines.dropFirst().contains { $0.lowercased().hasPrefix("transfer-encoding:") && $0.lowercased().contains("chunked") }
        if chunked {
            var decoded = [UInt8]()
            var i = 0
            while i < body.count {
                guard let lineEnd = body[i...].indices.first(where: { body[$0...].starts(with: [13, 10]) }),
                    let size = Int(String(decoding: body[i..<lineEnd], as: UTF8.self).split(separator: ";")[0], radix: 16)
                else { break }
                if size == 0 { break }
                let start = lineEnd + 2
                guard start + size <= body.count else { break }
                decoded += body[start..<(start + size)]
                i = start + size + 2
            }
            body = decoded
        }
        return (status, Data(body))
    }
}

/// Where `tether login` keeps the control plane URL and the user token:
/// `$TETHER_CONFIG_DIR` or `~/.config/tether`, file `session.json`, mode 0600.
struct CLISession: Codable {
    var url: String
    var token: String

    static var directory: String {
        if let d = ProcessInfo.processInfo.environment["TETHER_CONFIG_DIR"], !d.isEmpty { return d }
        let home = ProcessInfo.processInfo.environment["HOME"] ?? "/root"
        return home + "/.config/tether"
    }

    static func load() throws -> CLISession {
        let env = ProcessInfo.processInfo.environment
        if let url = env["TETHER_URL"], let token = env["TETHER_TOKEN"] { return CLISession(url: url, token: token) }
        guard let data = FileManager.default.contents(atPath: directory + "/session.json") else {
            throw APIClient.Failure(description: "not signed in: run `tether login URL --first-user NAME` or `tether login URL --token TOKEN`")
        }
        return try JSONDecoder().decode(CLISession.self, from: data)
    }

    func save() throws {
        try FileManager.default.createDirectory(atPath: Self.directory, withIntermediateDirectories: true)
        let path = Self.directory + "/session.json"
        try JSONEncoder().encode(self).write(to: URL(fileURLWithPath: path))
        chmod(path, 0o600)
    }
}

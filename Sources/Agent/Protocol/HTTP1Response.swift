/// What the app proxy needs of an HTTP/1.1 response from an app (RFC 9112):
/// the status line and header fields, how the body is framed, and the
/// chunked transfer coding. Pure; never traps on any bytes.
public struct HTTP1ResponseHead: Equatable, Sendable {
    public var status: Int
    public var reason: String
    public var fields: [(name: String, value: String)]

    public static func == (a: Self, b: Self) -> Bool {
        a.status == b.status && a.reason == b.reason && a.fields.map(\.name) == b.fields.map(\.name)
            && a.fields.map(\.value) == b.fields.map(\.value)
    }

    /// A response head larger than this is refused.
    public static let maximumBytes = 64 << 10

    public struct Malformed: Error, Equatable, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    /// The head at the start of `bytes` and how many bytes it took (its
    /// blank line included); nil while it is incomplete.
    public static func parse(_ bytes: [UInt8]) throws(Malformed) -> (head: HTTP1ResponseHead, consumed: Int)? {
        guard let end = headEnd(bytes) else {
            if bytes.count > maximumBytes { throw Malformed(description: "response head over \(maximumBytes) bytes") }
            return nil
        }
        guard end <= maximumBytes else { throw Malformed(description: "response head over \(maximumBytes) bytes") }
        var lines = bytes[..<end].split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map {
            $0.last == UInt8(ascii: "\r") ? $0.dropLast() : $0
        }
        while lines.last?.isEmpty == true { lines.removeLast() }
        guard !lines.isEmpty else { throw Malformed(description: "empty response head") }
        let statusLine = lines.removeFirst()
        // "HTTP/1.1 200 OK": version, space, three digits, space, reason.
        guard statusLine.count >= 12, statusLine.starts(with: Array("HTTP/1.".utf8)),
            statusLine[statusLine.startIndex + 8] == UInt8(ascii: " ")
        else { throw Malformed(description: "not an HTTP/1.x status line") }
        let digits = statusLine.dropFirst(9).prefix(3)
        guard digits.count == 3, digits.allSatisfy({ (48...57).contains($0) }) else {
            throw Malformed(description: "status code is not three digits")
        }
        let status = digits.reduce(0) { $0 * 10 + Int($1 - 48) }
        guard status >= 100 else { throw Malformed(description: "status code \(status)") }
        let reason = String(decoding: statusLine.dropFirst(13), as: UTF8.self)
        var fields: [(name: String, value: String)] = []
        for line in lines {
            // No obsolete line folding (RFC 9112 §5.2), no empty names.
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex,
                line.first != UInt8(ascii: " "), line.first != UInt8(ascii: "\t"),
                !line[..<colon].contains(where: { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") })
            else { throw Malformed(description: "malformed header line") }
            var value = line[(colon + 1)...]
            while let f = value.first, f == UInt8(ascii: " ") || f == UInt8(ascii: "\t") { value = value.dropFirst() }
            while let l = value.last, l == UInt8(ascii: " ") || l == UInt8(ascii: "\t") { value = value.dropLast() }
            fields.append((String(decoding: line[..<colon], as: UTF8.self), String(decoding: value, as: UTF8.self)))
        }
        return (HTTP1ResponseHead(status: status, reason: reason, fields: fields), end)
    }

    /// Index just past "\r\n\r\n" (or "\n\n").
    static func headEnd(_ bytes: [UInt8]) -> Int? {
        var i = 0
        while i + 1 < bytes.count {
            if bytes[i] == 10 {
                if bytes[i + 1] == 10 { return i + 2 }
                if i + 2 < bytes.count, bytes[i + 1] == 13, bytes[i + 2] == 10 { return i + 3 }
            }
            i += 1
        }
        return nil
    }

    public func field(_ name: String) -> String? {
        fields.first { $0.name.lowercased() == name }?.value
    }

    public enum Framing: Equatable, Sendable {
        case none
        case length(Int)
        case chunked
        case untilClose
    }

    /// How the body is delimited (RFC 9112 §6.3).
    public func framing(requestWasHead: Bool) throws(Malformed) -> Framing {
        if requestWasHead || status < 200 || status == 204 || status == 304 { return .none }
        if let te = field("transfer-encoding") {
            guard te.lowercased().split(separator: ",").last.map({ $0.trimmingBlanks() == "chunked" }) == true else {
                return .untilClose
            }
            return .chunked
        }
        if let cl = field("content-length") {
            guard let n = Int(cl), n >= 0 else { throw Malformed(description: "Content-Length \(cl)") }
            return .length(n)
        }
        return .untilClose
    }
}

/// The chunked transfer coding (RFC 9112 §7.1), decoded as bytes arrive.
public struct ChunkedDecoder: Sendable {
    enum State: Sendable {
        case size
        case data(Int)
        case dataEnd
        case trailer
        case done
    }

    var state = State.size
    var line: [UInt8] = []
    public var isDone: Bool {
        if case .done = state { return true }
        return false
    }

    public init() {}

    /// The body bytes in `input`; bytes after the last chunk's trailer
    /// are ignored.
    public mutating func decode(_ input: [UInt8]) throws(HTTP1ResponseHead.Malformed) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while i < input.count {
            switch state {
            case .done:
                return out
            case .data(let remaining):
                let n = min(remaining, input.count - i)
                out += input[i..<(i + n)]
                i += n
                state = remaining - n == 0 ? .dataEnd : .data(remaining - n)
            case .size, .dataEnd, .trailer:
                let byte = input[i]
                i += 1
                guard byte == 10 else {
                    line.append(byte)
                    guard line.count <= 4096 else { throw .init(description: "chunk line over 4096 bytes") }
                    continue
                }
                if line.last == 13 { line.removeLast() }
                defer { line.removeAll(keepingCapacity: true) }
                switch state {
                case .size:
                    let hex = line.prefix { $0 != UInt8(ascii: ";") }.filter { $0 != 32 && $0 != 9 }
                    guard !hex.isEmpty, hex.count <= 15, let size = Int(String(decoding: hex, as: UTF8.self), radix: 16), size >= 0
                    else { throw .init(description: "bad chunk size") }
                    state = size == 0 ? .trailer : .data(size)
                case .dataEnd:
                    guard line.isEmpty else { throw .init(description: "chunk data not followed by CRLF") }
                    state = .size
                default:
                    if line.isEmpty { state = .done }
                }
            }
        }
        return out
    }
}

extension Substring {
    fileprivate func trimmingBlanks() -> Substring {
        var s = self
        while s.first == " " || s.first == "\t" { s = s.dropFirst() }
        while s.last == " " || s.last == "\t" { s = s.dropLast() }
        return s
    }
}

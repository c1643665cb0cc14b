/// IP addresses, prefixes and UDP endpoints as plain values, with parsers
/// for the text forms `wg` and the UAPI use ("10.0.0.1", "fd00::1",
/// "10.0.0.0/24", "192.0.2.1:51820", "[2001:db8::1]:51820").
public enum IPAddress: Hashable, Sendable, CustomStringConvertible {
    case v4(UInt32)
    case v6(UInt128)

    /// The address in network byte order (4 or 16 bytes).
    public var bytes: [UInt8] {
        switch self {
        case .v4(let a): return (0..<4).map { UInt8(truncatingIfNeeded: a >> (24 - 8 * UInt32($0))) }
        case .v6(let a): return (0..<16).map { UInt8(truncatingIfNeeded: a >> (120 - 8 * UInt128($0))) }
        }
    }

    public init?(bytes: some Collection<UInt8>) {
        switch bytes.count {
        case 4: self = .v4(bytes.reduce(0) { $0 << 8 | UInt32($1) })
        case 16: self = .v6(bytes.reduce(0) { $0 << 8 | UInt128($1) })
        default: return nil
        }
    }

    public var isIPv4: Bool { if case .v4 = self { true } else { false } }

    /// The bit width of this address family.
    public var bitWidth: Int { isIPv4 ? 32 : 128 }

    public init?(_ text: some StringProtocol) {
        if let v4 = Self.parseIPv4(Substring(text)) {
            self = .v4(v4)
        } else if let v6 = Self.parseIPv6(Substring(text)) {
            self = .v6(v6)
        } else {
            return nil
        }
    }

    static func parseIPv4(_ text: Substring) -> UInt32? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard (1...3).contains(part.count), part.allSatisfy({ $0.isASCII && $0.isNumber }),
                let octet = UInt32(part), octet <= 255
            else { return nil }
            value = value << 8 | octet
        }
        return value
    }

    static func parseIPv6(_ text: Substring) -> UInt128? {
        guard text.contains(":"), text.count <= 45 else { return nil }
        let halves = text.split(separator: "::", maxSplits: 1, omittingEmptySubsequences: false)
        func groups(_ s: Substring) -> [UInt16]? {
            if s.isEmpty { return [] }
            var out: [UInt16] = []
            let parts = s.split(separator: ":", omittingEmptySubsequences: false)
            for (i, part) in parts.enumerated() {
                if i == parts.count - 1, part.contains(".") {
                    guard let v4 = parseIPv4(part) else { return nil }
                    out.append(UInt16(v4 >> 16))
                    out.append(UInt16(v4 & 0xffff))
                } else {
                    guard (1...4).contains(part.count), let g = UInt16(part, radix: 16),
                        part.allSatisfy({ $0.isHexDigit })
                    else { return nil }
                    out.append(g)
                }
            }
            return out
        }
        let all: [UInt16]
        if halves.count == 2 {
            guard let head = groups(halves[0]), let tail = groups(halves[1]), head.count + tail.count <= 7 else {
                return nil
            }
            all = head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        } else {
            guard let g = groups(halves[0]), g.count == 8 else { return nil }
            all = g
        }
        return all.reduce(UInt128(0)) { $0 << 16 | UInt128($1) }
    }

    public var description: String {
        switch self {
        case .v4(let a):
            return (0..<4).map { String((a >> (24 - 8 * UInt32($0))) & 0xff) }.joined(separator: ".")
        case .v6(let a):
            let groups = (0..<8).map { UInt16(truncatingIfNeeded: a >> (112 - 16 * UInt128($0))) }
            // RFC 5952: compress the longest run (≥ 2) of zero groups.
            var bestStart = -1
            var bestLength = 1
            var i = 0
            while i < 8 {
                if groups[i] == 0 {
                    var j = i
                    while j < 8, groups[j] == 0 { j += 1 }
                    if j - i > bestLength {
                        bestStart = i
                        bestLength = j - i
                    }
                    i = j
                } else {
                    i += 1
                }
            }
            let hex = groups.map { String($0, radix: 16) }
            if bestStart < 0 { return hex.joined(separator: ":") }
            let head = hex[0..<bestStart].joined(separator: ":")
            let tail = hex[(bestStart + bestLength)...].joined(separator: ":")
            return head + "::" + tail
        }
    }
}

/// An address prefix such as 10.0.0.0/8 or fd00::/48. Host bits beyond the
/// length are cleared on construction, as `wg` does.
public struct IPPrefix: Hashable, Sendable, CustomStringConvertible {
    public let address: IPAddress
    public let length: Int

    public init?(address: IPAddress, length: Int) {
        guard length >= 0, length <= address.bitWidth else { return nil }
        self.address = IPPrefix.mask(address, length)
        self.length = length
    }

    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(parts[0]) else { return nil }
        let length: Int
        if parts.count == 2 {
            guard parts[1].count <= 3, parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), let l = Int(parts[1]) else {
                return nil
            }
            length = l
        } else {
            length = address.bitWidth
        }
        self.init(address: address, length: length)
    }

    static func mask(_ address: IPAddress, _ length: Int) -> IPAddress {
        switch address {
        case .v4(let a): return .v4(length == 0 ? 0 : a & (UInt32.max << UInt32(32 - length)))
        case .v6(let a): return .v6(length == 0 ? 0 : a & (UInt128.max << UInt128(128 - length)))
        }
    }

    public func contains(_ other: IPAddress) -> Bool {
        other.isIPv4 == address.isIPv4 && IPPrefix.mask(other, length) == address
    }

    public var description: String { "\(address)/\(length)" }
}

/// A UDP endpoint: where a peer's datagrams come from and go to.
public struct Endpoint: Hashable, Sendable, CustomStringConvertible {
    public var address: IPAddress
    public var port: UInt16

    public init(address: IPAddress, port: UInt16) {
        self.address = address
        self.port = port
    }

    /// "192.0.2.1:51820" or "[2001:db8::1]:51820".
    public init?(_ text: some StringProtocol) {
        let s = Substring(text)
        let host: Substring
        let portText: Substring
        if s.first == "[" {
            guard let close = s.firstIndex(of: "]"), s.index(after: close) < s.endIndex,
                s[s.index(after: close)] == ":"
            else { return nil }
            host = s[s.index(after: s.startIndex)..<close]
            portText = s[s.index(close, offsetBy: 2)...]
            guard IPAddress.parseIPv6(host) != nil else { return nil }
        } else {
            guard let colon = s.lastIndex(of: ":") else { return nil }
            host = s[..<colon]
            portText = s[s.index(after: colon)...]
            guard IPAddress.parseIPv4(host) != nil else { return nil }
        }
        guard let address = IPAddress(host), portText.count <= 5, portText.allSatisfy({ $0.isASCII && $0.isNumber }),
            let port = UInt16(portText)
        else { return nil }
        self.init(address: address, port: port)
    }

    /// The bytes a responder's cookie is bound to: address then port, both
    /// in network order (whitepaper §5.4.7: "IP address and UDP port").
    var cookieBytes: [UInt8] { address.bytes + [UInt8(port >> 8), UInt8(port & 0xff)] }

    public var description: String {
        switch address {
        case .v4: return "\(address):\(port)"
        case .v6: return "[\(address)]:\(port)"
        }
    }
}

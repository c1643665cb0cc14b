
/// Listening TCP sockets from `/proc/net/tcp` and `/proc/net/tcp6`
/// (proc(5)). Each data line reads
///
/// ```
///   sl  local_address rem_address   st tx_queue rx_queue ...
///    0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 ...
/// ```
///
/// The address is the kernel's in-memory bytes printed as 32-bit words in
/// host order (little-endian here: 0100007F is 127.0.0.1); the port is
/// big-endian hex; state 0A is TCP_LISTEN (include/net/tcp_states.h).
public enum ListeningPortsScanner {
    static let listenState = "0A"

    /// Parses one file's text; malformed lines are skipped.
    public static func parse(_ text: String, network: String) -> [ListeningPort] {
        var out: [ListeningPort] = []
        for line in text.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count > 3, fields[3] == listenState else { continue }
            let local = fields[1].split(separator: ":")
            guard local.count == 2, let port = Int(local[1], radix: 16), let address = decodeAddress(local[0]) else { continue }
            out.append(ListeningPort(network: network, address: address, port: port))
        }
        return out
    }

    static func decodeAddress(_ hex: Substring) -> String? {
        guard hex.count == 8 || hex.count == 32 else { return nil }
        var bytes: [UInt8] = []
        var i = hex.startIndex
        while i < hex.endIndex {
            let j = hex.index(i, offsetBy: 8)
            guard let word = UInt32(hex[i..<j], radix: 16) else { return nil }
            let le = word.littleEndian
            bytes += [UInt8(le & 0xff), UInt8(le >> 8 & 0xff), UInt8(le >> 16 & 0xff), UInt8(le >> 24)]
            i = j
        }
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        var groups: [String] = []
        for k in stride(from: 0, to: 16, by: 2) {
            groups.append(String(UInt16(bytes[k]) << 8 | UInt16(bytes[k + 1]), radix: 16))
        }
        return compressIPv6(groups)
    }

    /// RFC 5952 §4.2: the longest run of two or more zero groups becomes `::`.
    static func compressIPv6(_ groups: [String]) -> String {
        var bestStart = -1, bestLen = 0, i = 0
        while i < groups.count {
            if groups[i] == "0" {
                var j = i
                while j < groups.count, groups[j] == "0" { j += 1 }
                if j - i > bestLen { (bestStart, bestLen) = (i, j - i) }
                i = j
            } else {
                i += 1
            }
        }
        guard bestLen >= 2 else { return groups.joined(separator: ":") }
        let left = groups[..<bestStart].joined(separator: ":")
        let right = groups[(bestStart + bestLen)...].joined(separator: ":")
        return left + "::" + right
    }

    /// Reads both files; a missing file (no IPv6) contributes nothing.
    public static func scan(root: String = "/proc/net") -> [ListeningPort] {
        var ports = Set<ListeningPort>()
        for network in ["tcp", "tcp6"] {
            if let text = readSmallFile("\(root)/\(network)") { ports.formUnion(parse(text, network: network)) }
        }
        return ports.sorted()
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Keeps the agent's resident set to the pages it actually uses.
///
/// Almost all of an idle agent's resident memory is clean, read-only pages
/// of code and constants mapped from its executable and shared libraries,
/// and most of those were touched once at start-up, or never: on a fault
/// the kernel maps the cached pages around the faulting one too
/// ("fault-around", 64 KiB by default), so sparse use of a large binary
/// shows up as most of it. This drops those mappings' page-table entries
/// (`MADV_DONTNEED`; the pages stay in the page cache and come back on the
/// next touch, as after the kernel's own reclaim), so what comes back is
/// what the agent touches, in 64 KiB windows. Nothing per mapping turns
/// fault-around off: `should_fault_around` (mm/memory.c) ignores
/// `MADV_RANDOM`, which only stops readahead, so it is not used.
///
/// Only mappings that are safe to drop are touched: file-backed, not
/// writable, and without a single anonymous (copied-on-write) page, which
/// is where relocated pointers (RELRO) and any written data live; dropping
/// those would lose the writes. The decision is `candidates(smaps:)`, pure
/// and tested; `apply()` is the I/O.
public enum ResidentSetTrim {
    /// One mapping to drop: [start, end).
    public struct Range: Equatable, Sendable {
        public var start: UInt
        public var end: UInt
        public var path: String
    }

    /// The mappings of `/proc/self/smaps` text that are file-backed,
    /// private, non-writable and hold no anonymous page (their
    /// `Anonymous: 0 kB` line must be there: nothing unreadable is trusted).
    public static func candidates(smaps: String) -> [Range] {
        var result: [Range] = []
        // Eligible by its header, and its "Anonymous: 0 kB" line seen.
        var current: (range: Range, eligible: Bool)?
        var anonymousZero = false
        func flush() {
            if let c = current, c.eligible, anonymousZero { result.append(c.range) }
            current = nil
            anonymousZero = false
        }
        for line in smaps.split(separator: "\n", omittingEmptySubsequences: true) {
            if let header = parseHeader(line) {
                flush()
                current = header
                continue
            }
            // "Anonymous:        12 kB"
            if line.hasPrefix("Anonymous:"), current != nil {
                let value = line.dropFirst("Anonymous:".count).split(separator: " ").first.flatMap { Int($0) }
                if value == 0 { anonymousZero = true } else { current?.eligible = false }
            }
        }
        flush()
        return result
    }

    /// "start-end perms offset dev inode [path]", or nil for a field line.
    static func parseHeader(_ line: Substring) -> (range: Range, eligible: Bool)? {
        let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
        guard fields.count >= 5, let dash = fields[0].firstIndex(of: "-"),
            let start = UInt(fields[0][..<dash], radix: 16),
            let end = UInt(fields[0][fields[0].index(after: dash)...], radix: 16),
            fields[1].count == 4, let inode = UInt(fields[4])
        else { return nil }
        let perms = fields[1]
        let path = fields.count > 5 ? String(fields[5].drop(while: { $0 == " " })) : ""
        let eligible =
            end > start && inode != 0 && perms.hasPrefix("r") && !perms.contains("w") && perms.hasSuffix("p")
            && path.hasPrefix("/")
        return (Range(start: start, end: end, path: path), eligible)
    }

    /// Drops the candidate mappings of this process; returns how many
    /// mappings and bytes of address space were trimmed.
    @discardableResult
    public static func apply() -> (mappings: Int, bytes: UInt) {
        guard let text = readSmaps() else { return (0, 0) }
        var count = 0
        var bytes: UInt = 0
        for r in candidates(smaps: text) {
            guard let address = UnsafeMutableRawPointer(bitPattern: r.start) else { continue }
            let length = Int(r.end - r.start)
            if madvise(address, length, MADV_DONTNEED) == 0 {
                count += 1
                bytes += r.end - r.start
            }
        }
        return (count, bytes)
    }

    private static func readSmaps() -> String? {
        let fd = open("/proc/self/smaps", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            data += chunk[0..<n]
        }
        return String(decoding: data, as: UTF8.self)
    }
}

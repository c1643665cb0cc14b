import Agent
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct ResidentSetTrimTests {
    /// An excerpt of a real agent's /proc/PID/smaps (fields trimmed).
    static let sample = """
        55d4c5a00000-55d4c6400000 r--p 00000000 fe:01 1311 /usr/local/bin/tether
        Size:              10240 kB
        Rss:                2048 kB
        Anonymous:             0 kB
        55d4c6400000-55d4c9000000 r-xp 00a00000 fe:01 1311 /usr/local/bin/tether
        Rss:               11264 kB
        Anonymous:             0 kB
        55d4c9000000-55d4c9400000 r--p 03600000 fe:01 1311 /usr/local/bin/tether
        Rss:                4096 kB
        Anonymous:          4096 kB
        55d4c9400000-55d4c9410000 rw-p 03a00000 fe:01 1311 /usr/local/bin/tether
        Anonymous:            64 kB
        55d4ca000000-55d4ca100000 rw-p 00000000 00:00 0 [heap]
        Anonymous:          1024 kB
        7f1e2c000000-7f1e2c021000 rw-p 00000000 00:00 0
        Anonymous:             4 kB
        7f1e30000000-7f1e30001000 ---p 00000000 00:00 0
        Anonymous:             0 kB
        7f1e31000000-7f1e31400000 r-xp 00028000 fe:01 2001 /usr/lib/x86_64-linux-gnu/libc.so.6
        Anonymous:             0 kB
        7f1e32000000-7f1e32001000 r--s 00000000 fe:01 2002 /var/cache/some-shared-file
        Anonymous:             0 kB
        7ffd1c7f0000-7ffd1c7f2000 r-xp 00000000 00:00 0 [vdso]
        Anonymous:             0 kB
        """

    /// Only file-backed, private, non-writable mappings without a single
    /// copied-on-write page: never RELRO with relocations, data, heap,
    /// anonymous memory, shared mappings or the vDSO.
    @Test func candidatesAreCleanReadOnlyFileMappingsOnly() {
        let ranges = ResidentSetTrim.candidates(smaps: Self.sample)
        #expect(ranges.map(\.start) == [0x55d4_c5a0_0000, 0x55d4_c640_0000, 0x7f1e_3100_0000])
        #expect(ranges.map(\.path) == ["/usr/local/bin/tether", "/usr/local/bin/tether", "/usr/lib/x86_64-linux-gnu/libc.so.6"])
        #expect(ranges[0].end == 0x55d4_c640_0000)
    }

    /// A mapping whose Anonymous line is missing or malformed is not trusted.
    @Test func garbageIsNeverACandidate() {
        #expect(ResidentSetTrim.candidates(smaps: "") == [])
        #expect(ResidentSetTrim.candidates(smaps: "not smaps at all\nAnonymous: 0 kB") == [])
        let noAnonymousLine = "1000-2000 r-xp 00000000 fe:01 5 /bin/x\nRss: 4 kB\n"
        #expect(ResidentSetTrim.candidates(smaps: noAnonymousLine) == [])
        let good = "1000-2000 r-xp 00000000 fe:01 5 /bin/x\nAnonymous: 0 kB\n"
        #expect(ResidentSetTrim.candidates(smaps: good).count == 1)
        let badAnonymous = "1000-2000 r-xp 00000000 fe:01 5 /bin/x\nAnonymous: lots kB\n"
        #expect(ResidentSetTrim.candidates(smaps: badAnonymous) == [])
        let reversed = "2000-1000 r-xp 00000000 fe:01 5 /bin/x\nAnonymous: 0 kB\n"
        #expect(ResidentSetTrim.candidates(smaps: reversed) == [])
    }

    /// Applied to this very test process (many threads, running other
    /// tests): it keeps working, and code runs again from the page cache.
    @Test func applyingToARunningProcessIsSafe() {
        let (mappings, bytes) = ResidentSetTrim.apply()
        #expect(mappings > 0 && bytes > 0)
        // Code and constants come back on use.
        #expect(ResidentSetTrim.candidates(smaps: Self.sample).count == 3)
        #expect(String(describing: [1, 2, 3].map { $0 * 2 }) == "[2, 4, 6]")
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Reads a small file (a /proc entry) whole; nil if it cannot be opened.
/// /proc files report size 0, so this reads until EOF, up to `limit`.
func readSmallFile(_ path: String, limit: Int = 4 << 20) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 16 << 10)
    while out.count < limit {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0, errno == EINTR { continue }
        guard n > 0 else { break }
        out.append(contentsOf: buffer[0..<n])
    }
    return String(decoding: out, as: UTF8.self)
}

/// The current time as Unix milliseconds, from CLOCK_REALTIME.
public func nowMillis() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}

/// The user's home directory: $HOME, else the password database, else /.
func homeDirectory() -> String {
    if let h = getenv("HOME"), h.pointee != 0 { return String(cString: h) }
    if let pw = getpwuid(getuid()), let dir = pw.pointee.pw_dir { return String(cString: dir) }
    return "/"
}

/// `~` and `~/…` expanded against the home directory.
func expandTilde(_ path: String) -> String {
    if path == "~" { return homeDirectory() }
    if path.hasPrefix("~/") { return homeDirectory() + path.dropFirst(1) }
    return path
}

/// `mkdir -p`.
func makeDirectories(_ path: String) {
    var current = path.hasPrefix("/") ? "" : "."
    for part in path.split(separator: "/") {
        current += "/" + part
        mkdir(current, 0o755)
    }
}

func isDirectory(_ path: String) -> Bool {
    var st = stat()
    return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
}

func hostName() -> String {
    var buf = [CChar](repeating: 0, count: 256)
    gethostname(&buf, buf.count - 1)
    return String(cString: buf)
}

func machineArchitecture() -> String {
    var u = utsname()
    uname(&u)
    return withUnsafeBytes(of: &u.machine) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
}

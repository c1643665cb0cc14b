import CLibSSH
import Glibc

/// An SFTP server in process (see `SFTP` for the wire format): packets in,
/// replies out, file system calls in between. It needs no `sftp-server`
/// binary in the workspace. Paths are bytes (Linux file names need not be
/// UTF-8); relative ones are taken from the user's home directory, where
/// sshd starts its sftp-server.
package final class SFTPSession {
    /// Replies held back before the session stops reading requests.
    package static let outputLimit = 4 << 20

    private enum Handle {
        case file(Int32)
        case directory(OpaquePointer, path: [UInt8])
    }

    private let home: [UInt8]
    private var input: [UInt8] = []
    private var inputStart = 0
    private var output: [UInt8] = []
    private var outputStart = 0
    private var handles: [UInt32: Handle] = [:]
    private var nextHandle: UInt32 = 1
    private var initialized = false
    private var names = AccountNames()

    package init(home: String) {
        self.home = Array(home.utf8)
    }

    package var pendingOutput: Int { output.count - outputStart }

    /// Hands up to `limit` bytes of pending replies to `write`, which returns
    /// how many it took (or a negative error). Returns that count.
    package func withPendingOutput(upTo limit: Int, _ write: (UnsafeRawBufferPointer) -> Int32) -> Int {
        let count = min(limit, pendingOutput)
        let written = output.withUnsafeBytes { all in
            Int(write(UnsafeRawBufferPointer(rebasing: all[outputStart..<(outputStart + count)])))
        }
        guard written > 0 else { return written }
        outputStart += written
        if outputStart == output.count {
            output.removeAll(keepingCapacity: true)
            outputStart = 0
        } else if outputStart > 1 << 20 {
            output.removeFirst(outputStart)
            outputStart = 0
        }
        return written
    }

    /// Takes channel data and answers every complete request in it. Returns
    /// false on a framing error (a length beyond the maximum), after which
    /// the channel must close: the stream can no longer be parsed.
    package func feed(_ data: UnsafeRawBufferPointer) -> Bool {
        input.append(contentsOf: data)
        while input.count - inputStart >= 4 {
            let s = inputStart
            let length = Int(input[s]) << 24 | Int(input[s + 1]) << 16 | Int(input[s + 2]) << 8 | Int(input[s + 3])
            guard length >= 1, length <= SFTP.maxPacketLength else { return false }
            guard input.count - s - 4 >= length else { break }
            handle(packet: input[(s + 4)..<(s + 4 + length)])
            inputStart += 4 + length
        }
        if inputStart == input.count {
            input.removeAll(keepingCapacity: true)
            inputStart = 0
        } else if inputStart > 1 << 20 {
            input.removeFirst(inputStart)
            inputStart = 0
        }
        return true
    }

    func closeAll() {
        for handle in handles.values {
            switch handle {
            case .file(let fd): close(fd)
            case .directory(let dir, _): closedir(dir)
            }
        }
        handles.removeAll()
    }

    // MARK: replies

    private func reply(_ type: SFTP.PacketType, id: UInt32?, _ body: (inout WireWriter) -> Void) {
        var w = WireWriter()
        w.uint32(0)
        w.byte(type.rawValue)
        if let id { w.uint32(id) }
        body(&w)
        w.patchUInt32(at: 0, UInt32(w.bytes.count - 4))
        output.append(contentsOf: w.bytes)
    }

    private func status(_ id: UInt32, _ code: SFTP.Status, _ message: String? = nil) {
        reply(.status, id: id) { w in
            w.uint32(code.rawValue)
            w.string(message ?? Self.text(code))
            w.string("en")
        }
    }

    private func status(_ id: UInt32, errno code: Int32) {
        status(id, SFTP.Status.from(errno: code), String(cString: strerror(code)))
    }

    private static func text(_ code: SFTP.Status) -> String {
        switch code {
        case .ok: return "Success"
        case .eof: return "End of file"
        case .noSuchFile: return "No such file"
        case .permissionDenied: return "Permission denied"
        case .failure: return "Failure"
        case .badMessage: return "Bad message"
        case .noConnection: return "No connection"
        case .connectionLost: return "Connection lost"
        case .opUnsupported: return "Operation unsupported"
        }
    }

    private func attrs(_ id: UInt32, _ st: stat) {
        reply(.attrs, id: id) { SFTP.Attributes(st).encode(into: &$0) }
    }

    // MARK: dispatch

    private func handle(packet: ArraySlice<UInt8>) {
        var r = WireReader(packet)
        guard let rawType = r.byte() else { return }
        if rawType == SFTP.PacketType.initialize.rawValue {
            initialized = true
            reply(.version, id: nil) { w in
                w.uint32(SFTP.version)
                for (name, version) in Self.extensions {
                    w.string(name)
                    w.string(version)
                }
            }
            return
        }
        guard let id = r.uint32() else { return }  // too short to answer
        guard initialized, let type = SFTP.PacketType(rawValue: rawType) else {
            status(id, .opUnsupported)
            return
        }
        if !dispatch(type, id: id, &r) { status(id, .badMessage) }
    }

    /// Extensions announced in VERSION (OpenSSH PROTOCOL, §4).
    private static let extensions: [(String, String)] = [
        ("posix-rename@openssh.com", "1"), ("statvfs@openssh.com", "2"), ("fstatvfs@openssh.com", "2"),
        ("hardlink@openssh.com", "1"), ("fsync@openssh.com", "1"), ("lsetstat@openssh.com", "1"),
        ("limits@openssh.com", "1"), ("expand-path@openssh.com", "1"),
    ]

    /// Returns false when the request's fields do not parse.
    private func dispatch(_ type: SFTP.PacketType, id: UInt32, _ r: inout WireReader) -> Bool {
        switch type {
        case .open:
            guard let path = r.string(), let flags = r.uint32(), let a = SFTP.Attributes(from: &r) else { return false }
            open(id, path, SFTP.OpenFlags(rawValue: flags), a)
        case .close:
            guard let h = r.string() else { return false }
            closeHandle(id, h)
        case .read:
            guard let h = r.string(), let offset = r.uint64(), let length = r.uint32() else { return false }
            read(id, h, offset, length)
        case .write:
            guard let h = r.string(), let offset = r.uint64(), let data = r.string() else { return false }
            write(id, h, offset, data)
        case .lstat, .stat:
            guard let path = r.string() else { return false }
            statPath(id, path, follow: type == .stat)
        case .fstat:
            guard let h = r.string() else { return false }
            guard case .file(let fd)? = lookup(h) else { return invalidHandle(id) }
            var st = stat()
            if fstat(fd, &st) == 0 { attrs(id, st) } else { status(id, errno: errno) }
        case .setstat:
            guard let path = r.string(), let a = SFTP.Attributes(from: &r) else { return false }
            setAttributes(id, a, path: path, fd: nil, follow: true)
        case .fsetstat:
            guard let h = r.string(), let a = SFTP.Attributes(from: &r) else { return false }
            guard case .file(let fd)? = lookup(h) else { return invalidHandle(id) }
            setAttributes(id, a, path: nil, fd: fd, follow: true)
        case .opendir:
            guard let path = r.string() else { return false }
            openDirectory(id, path)
        case .readdir:
            guard let h = r.string() else { return false }
            readDirectory(id, h)
        case .remove:
            guard let path = r.string() else { return false }
            simple(id, path) { unlink($0) }
        case .mkdir:
            guard let path = r.string(), let a = SFTP.Attributes(from: &r) else { return false }
            let mode = mode_t(a.permissions.map { $0 & 0o7777 } ?? 0o777)
            simple(id, path) { mkdir($0, mode) }
        case .rmdir:
            guard let path = r.string() else { return false }
            simple(id, path) { rmdir($0) }
        case .realpath:
            guard let path = r.string() else { return false }
            realpath(id, path)
        case .rename:
            guard let from = r.string(), let to = r.string() else { return false }
            // §6.5: SSH_FXP_RENAME fails if the target exists (as OpenSSH's
            // sftp-server does, with link + unlink semantics); posix-rename
            // is the overwriting one.
            twoPaths(id, from, to) { a, b in
                var st = stat()
                if lstat(b, &st) == 0 {
                    errno = EEXIST
                    return -1
                }
                return Glibc.rename(a, b)
            }
        case .readlink:
            guard let path = r.string() else { return false }
            readLink(id, path)
        case .symlink:
            // OpenSSH sends (targetpath, linkpath) in the reverse order of
            // the draft; every client follows OpenSSH.
            guard let target = r.string(), let link = r.string() else { return false }
            guard let linkPath = resolve(link), !target.contains(0) else { return invalidPath(id) }
            let targetPath = Array(target) + [0]
            let rc = targetPath.withUnsafeBufferPointer { t in
                linkPath.withUnsafeBufferPointer { symlink(cString(t), cString($0)) }
            }
            if rc == 0 { status(id, .ok) } else { status(id, errno: errno) }
        case .extended:
            guard let name = r.text() else { return false }
            return extended(id, name, &r)
        default:
            status(id, .opUnsupported)
        }
        return true
    }

    private func extended(_ id: UInt32, _ name: String, _ r: inout WireReader) -> Bool {
        switch name {
        case "posix-rename@openssh.com":
            guard let from = r.string(), let to = r.string() else { return false }
            twoPaths(id, from, to) { Glibc.rename($0, $1) }
        case "hardlink@openssh.com":
            guard let from = r.string(), let to = r.string() else { return false }
            twoPaths(id, from, to) { link($0, $1) }
        case "fsync@openssh.com":
            guard let h = r.string() else { return false }
            guard case .file(let fd)? = lookup(h) else { return invalidHandle(id) }
            if fsync(fd) == 0 { status(id, .ok) } else { status(id, errno: errno) }
        case "lsetstat@openssh.com":
            guard let path = r.string(), let a = SFTP.Attributes(from: &r) else { return false }
            setAttributes(id, a, path: path, fd: nil, follow: false)
        case "statvfs@openssh.com", "fstatvfs@openssh.com":
            var st = statvfs()
            let rc: Int32
            if name.hasPrefix("f") {
                guard let h = r.string() else { return false }
                guard case .file(let fd)? = lookup(h) else { return invalidHandle(id) }
                rc = fstatvfs(fd, &st)
            } else {
                guard let path = r.string() else { return false }
                guard let p = resolve(path) else { return invalidPath(id) }
                rc = p.withUnsafeBufferPointer { statvfs(cString($0), &st) }
            }
            guard rc == 0 else {
                status(id, errno: errno)
                return true
            }
            reply(.extendedReply, id: id) { w in
                for v in [
                    UInt64(st.f_bsize), UInt64(st.f_frsize), UInt64(st.f_blocks), UInt64(st.f_bfree),
                    UInt64(st.f_bavail), UInt64(st.f_files), UInt64(st.f_ffree), UInt64(st.f_favail),
                    UInt64(st.f_fsid),
                ] { w.uint64(v) }
                // PROTOCOL §4.4: flag bits ST_RDONLY = 1, ST_NOSUID = 2.
                w.uint64(UInt64(st.f_flag & 1) | UInt64(st.f_flag & 2))
                w.uint64(UInt64(st.f_namemax))
            }
        case "limits@openssh.com":
            reply(.extendedReply, id: id) { w in
                w.uint64(UInt64(SFTP.maxPacketLength))
                w.uint64(UInt64(SFTP.maxReadLength))
                w.uint64(UInt64(SFTP.maxReadLength))
                w.uint64(UInt64(SFTP.maxHandles))
            }
        case "expand-path@openssh.com":
            guard var path = r.string().map(Array.init) else { return false }
            // "~" and "~/x" name the home directory (sftp ≥ 8.7 sends these).
            if path == Array("~".utf8) {
                path = home
            } else if path.starts(with: Array("~/".utf8)) {
                path = home + path.dropFirst(1)
            }
            realpath(id, path[...])
        default:
            status(id, .opUnsupported)
        }
        return true
    }

    // MARK: paths

    /// The absolute, NUL-terminated form of a client path; nil when it
    /// holds a NUL byte (which no file name can).
    private func resolve(_ path: ArraySlice<UInt8>) -> [UInt8]? {
        guard !path.contains(0) else { return nil }
        var absolute: [UInt8]
        if path.first == UInt8(ascii: "/") {
            absolute = Array(path)
        } else if path.isEmpty || path == [UInt8(ascii: ".")] {
            absolute = home
        } else {
            absolute = home + [UInt8(ascii: "/")] + path
        }
        absolute.append(0)
        return absolute
    }

    private func invalidPath(_ id: UInt32) -> Bool {
        status(id, .noSuchFile)
        return true
    }

    private func invalidHandle(_ id: UInt32) -> Bool {
        status(id, .failure, "Invalid handle")
        return true
    }

    private func simple(_ id: UInt32, _ path: ArraySlice<UInt8>, _ call: (UnsafePointer<CChar>) -> Int32) {
        guard let p = resolve(path) else {
            _ = invalidPath(id)
            return
        }
        let rc = p.withUnsafeBufferPointer { call(cString($0)) }
        if rc == 0 { status(id, .ok) } else { status(id, errno: errno) }
    }

    private func twoPaths(
        _ id: UInt32, _ a: ArraySlice<UInt8>, _ b: ArraySlice<UInt8>,
        _ call: (UnsafePointer<CChar>, UnsafePointer<CChar>) -> Int32
    ) {
        guard let pa = resolve(a), let pb = resolve(b) else {
            _ = invalidPath(id)
            return
        }
        let rc = pa.withUnsafeBufferPointer { x in pb.withUnsafeBufferPointer { y in call(cString(x), cString(y)) } }
        if rc == 0 { status(id, .ok) } else { status(id, errno: errno) }
    }

    private func statPath(_ id: UInt32, _ path: ArraySlice<UInt8>, follow: Bool) {
        guard let p = resolve(path) else {
            _ = invalidPath(id)
            return
        }
        var st = stat()
        let rc = p.withUnsafeBufferPointer { follow ? stat(cString($0), &st) : lstat(cString($0), &st) }
        if rc == 0 { attrs(id, st) } else { status(id, errno: errno) }
    }

    private func realpath(_ id: UInt32, _ path: ArraySlice<UInt8>) {
        guard let p = resolve(path) else {
            _ = invalidPath(id)
            return
        }
        // Canonical when it exists; otherwise folded lexically (sftp asks
        // for the real path of names it is about to create).
        var resolved: [UInt8]
        if let real = p.withUnsafeBufferPointer({ Glibc.realpath(cString($0), nil) }) {
            resolved = Array(UnsafeBufferPointer(start: UnsafeRawPointer(real).assumingMemoryBound(to: UInt8.self), count: strlen(real)))
            free(real)
        } else {
            resolved = Self.normalize(p.dropLast())
        }
        reply(.name, id: id) { w in
            w.uint32(1)
            w.string(resolved)
            w.string(resolved)
            SFTP.Attributes().encode(into: &w)
        }
    }

    /// Removes ".", "..", and repeated slashes from an absolute path.
    static func normalize(_ path: ArraySlice<UInt8>) -> [UInt8] {
        var parts: [ArraySlice<UInt8>] = []
        for part in path.split(separator: UInt8(ascii: "/")) {
            if part == [UInt8(ascii: ".")][...] { continue }
            if part == [UInt8(ascii: "."), UInt8(ascii: ".")][...] {
                _ = parts.popLast()
                continue
            }
            parts.append(part)
        }
        var out: [UInt8] = []
        for part in parts {
            out.append(UInt8(ascii: "/"))
            out.append(contentsOf: part)
        }
        return out.isEmpty ? [UInt8(ascii: "/")] : out
    }

    private func readLink(_ id: UInt32, _ path: ArraySlice<UInt8>) {
        guard let p = resolve(path) else {
            _ = invalidPath(id)
            return
        }
        var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = p.withUnsafeBufferPointer { pp in
            buffer.withUnsafeMutableBufferPointer {
                readlink(cString(pp), UnsafeMutableRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), $0.count - 1)
            }
        }
        guard n >= 0 else {
            status(id, errno: errno)
            return
        }
        let target = Array(buffer[0..<n])
        reply(.name, id: id) { w in
            w.uint32(1)
            w.string(target)
            w.string(target)
            SFTP.Attributes().encode(into: &w)
        }
    }

    // MARK: handles

    private func register(_ handle: Handle) -> [UInt8]? {
        guard handles.count < SFTP.maxHandles else { return nil }
        while handles[nextHandle] != nil { nextHandle &+= 1 }
        let number = nextHandle
        nextHandle &+= 1
        handles[number] = handle
        var w = WireWriter()
        w.uint32(number)
        return w.bytes
    }

    private func lookup(_ bytes: ArraySlice<UInt8>) -> Handle? {
        guard bytes.count == 4 else { return nil }
        var r = WireReader(bytes)
        return r.uint32().flatMap { handles[$0] }
    }

    private func sendHandle(_ id: UInt32, _ handle: Handle) {
        guard let bytes = register(handle) else {
            switch handle {
            case .file(let fd): close(fd)
            case .directory(let dir, _): closedir(dir)
            }
            status(id, .failure, "Too many open handles")
            return
        }
        reply(.handle, id: id) { $0.string(bytes) }
    }

    private func open(_ id: UInt32, _ path: ArraySlice<UInt8>, _ flags: SFTP.OpenFlags, _ a: SFTP.Attributes) {
        guard let p = resolve(path) else {
            _ = invalidPath(id)
            return
        }
        let mode = mode_t(a.permissions.map { $0 & 0o7777 } ?? 0o666)
        let fd = p.withUnsafeBufferPointer { Glibc.open(cString($0), flags.posix, mode) }
        guard fd >= 0 else {
            status(id, errno: errno)
            return
        }
        sendHandle(id, .file(fd))
    }

    private func openDirectory(_ id: UInt32, _ path: ArraySlice<UInt8>) {
        guard let p = resolve(path) else {
            _ = invalidPath(id)
            return
        }
        guard let dir = p.withUnsafeBufferPointer({ opendir(cString($0)) }) else {
            status(id, errno: errno)
            return
        }
        sendHandle(id, .directory(dir, path: Array(p.dropLast())))
    }

    private func closeHandle(_ id: UInt32, _ h: ArraySlice<UInt8>) {
        guard h.count == 4, let number = { var r = WireReader(h); return r.uint32() }(),
            let handle = handles.removeValue(forKey: number)
        else {
            _ = invalidHandle(id)
            return
        }
        let rc: Int32
        switch handle {
        case .file(let fd): rc = close(fd)
        case .directory(let dir, _): rc = closedir(dir)
        }
        if rc == 0 { status(id, .ok) } else { status(id, errno: errno) }
    }

    private func read(_ id: UInt32, _ h: ArraySlice<UInt8>, _ offset: UInt64, _ length: UInt32) {
        guard case .file(let fd)? = lookup(h) else {
            _ = invalidHandle(id)
            return
        }
        let want = min(Int(length), SFTP.maxReadLength)
        // Build the DATA reply in place: header, then pread straight into
        // the output buffer, then fix the lengths.
        let start = output.count
        output.append(contentsOf: repeatElement(0, count: 13 + want))
        let n = output.withUnsafeMutableBytes { buffer in
            pread(fd, buffer.baseAddress! + start + 13, want, off_t(truncatingIfNeeded: offset))
        }
        guard n > 0 else {
            let code = errno
            output.removeLast(13 + want)
            if n == 0 { status(id, .eof) } else { status(id, errno: code) }
            return
        }
        output.removeLast(want - n)
        var header = WireWriter(capacity: 13)
        header.uint32(UInt32(9 + n))
        header.byte(SFTP.PacketType.data.rawValue)
        header.uint32(id)
        header.uint32(UInt32(n))
        output.replaceSubrange(start..<(start + 13), with: header.bytes)
    }

    private func write(_ id: UInt32, _ h: ArraySlice<UInt8>, _ offset: UInt64, _ data: ArraySlice<UInt8>) {
        guard case .file(let fd)? = lookup(h) else {
            _ = invalidHandle(id)
            return
        }
        var done = 0
        while done < data.count {
            let n = data.withUnsafeBytes { raw in
                pwrite(fd, raw.baseAddress! + done, raw.count - done, off_t(truncatingIfNeeded: offset) + off_t(done))
            }
            if n < 0 {
                if errno == EINTR { continue }
                status(id, errno: errno)
                return
            }
            done += n
        }
        status(id, .ok)
    }

    private func setAttributes(
        _ id: UInt32, _ a: SFTP.Attributes, path: ArraySlice<UInt8>?, fd: Int32?, follow: Bool
    ) {
        var p: [UInt8] = []
        if let path {
            guard let resolved = resolve(path) else {
                _ = invalidPath(id)
                return
            }
            p = resolved
        }
        func check(_ rc: Int32) -> Bool {
            if rc != 0 { status(id, errno: errno) }
            return rc == 0
        }
        let nofollow = follow ? 0 : AT_SYMLINK_NOFOLLOW
        let ok = p.withUnsafeBufferPointer { pp -> Bool in
            let cpath = pp.isEmpty ? nil : cString(pp)
            if let size = a.size {
                let rc = fd.map { ftruncate($0, off_t(truncatingIfNeeded: size)) } ?? truncate(cpath!, off_t(truncatingIfNeeded: size))
                guard check(rc) else { return false }
            }
            if let permissions = a.permissions {
                let mode = mode_t(permissions & 0o7777)
                // Linux has no lchmod; permissions of a link itself never matter.
                let rc = fd.map { fchmod($0, mode) } ?? (follow ? chmod(cpath!, mode) : 0)
                guard check(rc) else { return false }
            }
            if let atime = a.atime, let mtime = a.mtime {
                var times = [
                    timespec(tv_sec: Int(atime), tv_nsec: 0), timespec(tv_sec: Int(mtime), tv_nsec: 0),
                ]
                let rc = fd.map { futimens($0, &times) } ?? utimensat(AT_FDCWD, cpath!, &times, nofollow)
                guard check(rc) else { return false }
            }
            if let uid = a.uid, let gid = a.gid {
                let rc = fd.map { fchown($0, uid, gid) } ?? fchownat(AT_FDCWD, cpath!, uid, gid, nofollow)
                guard check(rc) else { return false }
            }
            return true
        }
        if ok { status(id, .ok) }
    }

    /// Up to 100 entries per NAME reply, each with an `ls -l` line (§7:
    /// longname), which `sftp ls -l` prints as is.
    private func readDirectory(_ id: UInt32, _ h: ArraySlice<UInt8>) {
        guard case .directory(let dir, let path)? = lookup(h) else {
            _ = invalidHandle(id)
            return
        }
        var entries: [([UInt8], stat)] = []
        while entries.count < 100 {
            errno = 0
            guard let entry = readdir(dir) else { break }
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                Array(raw.prefix(while: { $0 != 0 }))
            }
            var full = path
            if full.last != UInt8(ascii: "/") { full.append(UInt8(ascii: "/")) }
            full += name
            full.append(0)
            var st = stat()
            if full.withUnsafeBufferPointer({ lstat(cString($0), &st) }) != 0 { continue }
            entries.append((name, st))
        }
        guard !entries.isEmpty else {
            status(id, .eof)
            return
        }
        let now = time(nil)
        reply(.name, id: id) { w in
            w.uint32(UInt32(entries.count))
            for (name, st) in entries {
                w.string(name)
                w.string(LongName.format(name: name, st, now: now, names: &names))
                SFTP.Attributes(st).encode(into: &w)
            }
        }
    }
}

/// A NUL-terminated byte buffer as a C string pointer.
@inline(__always)
func cString(_ p: UnsafeBufferPointer<UInt8>) -> UnsafePointer<CChar> {
    UnsafeRawPointer(p.baseAddress!).assumingMemoryBound(to: CChar.self)
}

/// User and group names by id, cached: `readdir` of a large directory would
/// otherwise look each up thousands of times.
struct AccountNames {
    private var users: [uid_t: String] = [:]
    private var groups: [gid_t: String] = [:]

    mutating func user(_ uid: uid_t) -> String {
        if let name = users[uid] { return name }
        var name = String(uid)
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 1024)
        if getpwuid_r(uid, &entry, &buffer, buffer.count, &result) == 0, result != nil {
            name = String(cString: entry.pw_name)
        }
        users[uid] = name
        return name
    }

    mutating func group(_ gid: gid_t) -> String {
        if let name = groups[gid] { return name }
        var name = String(gid)
        var entry = Glibc.group()
        var result: UnsafeMutablePointer<Glibc.group>?
        var buffer = [CChar](repeating: 0, count: 1024)
        if getgrgid_r(gid, &entry, &buffer, buffer.count, &result) == 0, result != nil {
            name = String(cString: entry.gr_name)
        }
        groups[gid] = name
        return name
    }
}

/// `ls -l`-style lines, laid out as OpenSSH's sftp-server does.
enum LongName {
    static func format(name: [UInt8], _ st: stat, now: time_t, names: inout AccountNames) -> [UInt8] {
        var line = Array(modeString(st.st_mode).utf8)
        func pad(_ s: String, _ width: Int, left: Bool = false) -> String {
            let fill = String(repeating: " ", count: max(0, width - s.count))
            return left ? s + fill : fill + s
        }
        line += Array(" \(pad(String(st.st_nlink), 4)) ".utf8)
        line += Array("\(pad(names.user(st.st_uid), 8, left: true)) \(pad(names.group(st.st_gid), 8, left: true)) ".utf8)
        line += Array("\(pad(String(st.st_size), 8)) ".utf8)
        var seconds = st.st_mtim.tv_sec
        var tm = tm()
        localtime_r(&seconds, &tm)
        let recent = abs(now - seconds) < 365 * 86400 / 2
        var buffer = [CChar](repeating: 0, count: 32)
        let count = strftime(&buffer, buffer.count, recent ? "%b %e %H:%M" : "%b %e  %Y", &tm)
        line += buffer[0..<count].map { UInt8(bitPattern: $0) }
        line.append(UInt8(ascii: " "))
        line += name
        return line
    }

    static func modeString(_ mode: mode_t) -> String {
        let type: Character
        switch mode & S_IFMT {
        case S_IFDIR: type = "d"
        case S_IFLNK: type = "l"
        case S_IFCHR: type = "c"
        case S_IFBLK: type = "b"
        case S_IFIFO: type = "p"
        case S_IFSOCK: type = "s"
        default: type = "-"
        }
        var s = String(type)
        let bits: [(mode_t, Character)] = [
            (S_IRUSR, "r"), (S_IWUSR, "w"), (S_IXUSR, "x"), (S_IRGRP, "r"), (S_IWGRP, "w"), (S_IXGRP, "x"),
            (S_IROTH, "r"), (S_IWOTH, "w"), (S_IXOTH, "x"),
        ]
        for (bit, ch) in bits { s.append(mode & bit != 0 ? ch : "-") }
        return s
    }
}

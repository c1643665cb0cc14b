import CLibSSH
import Glibc

/// SFTP version 3 (draft-ietf-secsh-filexfer-02, the version OpenSSH
/// speaks), carried as the data of a session channel after
/// `subsystem "sftp"`. Every packet, both ways:
///
///     uint32 length        (of what follows)
///     byte   type
///     uint32 request-id    (absent in INIT and VERSION)
///     ...    type-specific fields
///
/// Requests are answered in any order (§6: "the server may reorder"), each
/// with STATUS, HANDLE, DATA, NAME, ATTRS or EXTENDED_REPLY carrying the
/// same request id. File attributes (§5):
///
///     uint32 flags
///     uint64 size              if flags & SIZE
///     uint32 uid, gid          if flags & UIDGID
///     uint32 permissions       if flags & PERMISSIONS
///     uint32 atime, mtime      if flags & ACMODTIME
///     uint32 count; count × (string type, string data)   if flags & EXTENDED
enum SFTP {
    static let version: UInt32 = 3
    /// Largest packet accepted or sent (OpenSSH's sftp-server uses the same
    /// 256 KiB, and announces it in limits@openssh.com).
    static let maxPacketLength = 256 * 1024
    static let maxReadLength = maxPacketLength - 1024
    static let maxHandles = 512

    enum PacketType: UInt8 {
        case initialize = 1, version = 2, open = 3, close = 4, read = 5, write = 6, lstat = 7, fstat = 8
        case setstat = 9, fsetstat = 10, opendir = 11, readdir = 12, remove = 13, mkdir = 14, rmdir = 15
        case realpath = 16, stat = 17, rename = 18, readlink = 19, symlink = 20
        case status = 101, handle = 102, data = 103, name = 104, attrs = 105
        case extended = 200, extendedReply = 201
    }

    /// §7 status codes.
    enum Status: UInt32 {
        case ok = 0, eof = 1, noSuchFile = 2, permissionDenied = 3, failure = 4, badMessage = 5
        case noConnection = 6, connectionLost = 7, opUnsupported = 8

        /// The code a client should see for a failed system call, with the
        /// text sftp prints (OpenSSH's sftp-server maps errno the same way).
        static func from(errno code: Int32) -> Status {
            switch code {
            case 0: return .ok
            case ENOENT, ENOTDIR, EBADF, ELOOP: return .noSuchFile
            case EPERM, EACCES, EFAULT: return .permissionDenied
            case ENAMETOOLONG, EINVAL: return .badMessage
            case ENOSYS: return .opUnsupported
            default: return .failure
            }
        }
    }

    /// §6.3 pflags.
    struct OpenFlags: OptionSet {
        let rawValue: UInt32
        static let read = OpenFlags(rawValue: 0x01)
        static let write = OpenFlags(rawValue: 0x02)
        static let append = OpenFlags(rawValue: 0x04)
        static let create = OpenFlags(rawValue: 0x08)
        static let truncate = OpenFlags(rawValue: 0x10)
        static let exclusive = OpenFlags(rawValue: 0x20)

        var posix: Int32 {
            var flags: Int32 =
                contains(.read) && contains(.write) ? O_RDWR : contains(.write) || contains(.append) ? O_WRONLY : O_RDONLY
            if contains(.append) { flags |= O_APPEND }
            if contains(.create) { flags |= O_CREAT }
            if contains(.truncate) { flags |= O_TRUNC }
            if contains(.exclusive) { flags |= O_EXCL }
            return flags | O_CLOEXEC
        }
    }

    struct Attributes {
        static let sizeFlag: UInt32 = 0x01
        static let uidGidFlag: UInt32 = 0x02
        static let permissionsFlag: UInt32 = 0x04
        static let timesFlag: UInt32 = 0x08
        static let extendedFlag: UInt32 = 0x8000_0000

        var size: UInt64?
        var uid: UInt32?
        var gid: UInt32?
        var permissions: UInt32?
        var atime: UInt32?
        var mtime: UInt32?

        init() {}

        init(_ st: stat) {
            size = UInt64(st.st_size)
            uid = st.st_uid
            gid = st.st_gid
            permissions = st.st_mode
            atime = UInt32(truncatingIfNeeded: st.st_atim.tv_sec)
            mtime = UInt32(truncatingIfNeeded: st.st_mtim.tv_sec)
        }

        /// Parses §5 attributes; nil when truncated.
        init?(from reader: inout WireReader) {
            guard let flags = reader.uint32() else { return nil }
            if flags & Self.sizeFlag != 0 {
                guard let v = reader.uint64() else { return nil }
                size = v
            }
            if flags & Self.uidGidFlag != 0 {
                guard let u = reader.uint32(), let g = reader.uint32() else { return nil }
                uid = u
                gid = g
            }
            if flags & Self.permissionsFlag != 0 {
                guard let p = reader.uint32() else { return nil }
                permissions = p
            }
            if flags & Self.timesFlag != 0 {
                guard let a = reader.uint32(), let m = reader.uint32() else { return nil }
                atime = a
                mtime = m
            }
            if flags & Self.extendedFlag != 0 {
                guard let count = reader.uint32() else { return nil }
                for _ in 0..<count {
                    guard reader.string() != nil, reader.string() != nil else { return nil }
                }
            }
        }

        func encode(into w: inout WireWriter) {
            var flags: UInt32 = 0
            if size != nil { flags |= Self.sizeFlag }
            if uid != nil && gid != nil { flags |= Self.uidGidFlag }
            if permissions != nil { flags |= Self.permissionsFlag }
            if atime != nil && mtime != nil { flags |= Self.timesFlag }
            w.uint32(flags)
            if let size { w.uint64(size) }
            if let uid, let gid {
                w.uint32(uid)
                w.uint32(gid)
            }
            if let permissions { w.uint32(permissions) }
            if let atime, let mtime {
                w.uint32(atime)
                w.uint32(mtime)
            }
        }
    }
}

/// SSH's data type encodings (RFC 4251 §5), shared by the host key file
/// format and SFTP (draft-ietf-secsh-filexfer-02 §3 uses the same ones):
///
///     byte      1 byte
///     uint32    4 bytes, big-endian
///     uint64    8 bytes, big-endian
///     string    uint32 length ‖ bytes
///
/// `WireWriter` appends; `WireReader` reads with bounds checks and returns
/// `nil` on short input, so a parser built on it never traps on any bytes.
struct WireWriter {
    var bytes: [UInt8] = []

    init(capacity: Int = 64) { bytes.reserveCapacity(capacity) }

    mutating func byte(_ value: UInt8) { bytes.append(value) }

    mutating func uint32(_ value: UInt32) {
        bytes.append(UInt8(truncatingIfNeeded: value >> 24))
        bytes.append(UInt8(truncatingIfNeeded: value >> 16))
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
        bytes.append(UInt8(truncatingIfNeeded: value))
    }

    mutating func uint64(_ value: UInt64) {
        uint32(UInt32(truncatingIfNeeded: value >> 32))
        uint32(UInt32(truncatingIfNeeded: value))
    }

    mutating func string(_ value: some Collection<UInt8>) {
        uint32(UInt32(value.count))
        bytes.append(contentsOf: value)
    }

    mutating func string(_ value: String) { string(Array(value.utf8)) }

    mutating func raw(_ value: some Collection<UInt8>) { bytes.append(contentsOf: value) }

    /// Overwrites a uint32 written earlier (a length prefix filled in last).
    mutating func patchUInt32(at offset: Int, _ value: UInt32) {
        bytes[offset] = UInt8(truncatingIfNeeded: value >> 24)
        bytes[offset + 1] = UInt8(truncatingIfNeeded: value >> 16)
        bytes[offset + 2] = UInt8(truncatingIfNeeded: value >> 8)
        bytes[offset + 3] = UInt8(truncatingIfNeeded: value)
    }
}

struct WireReader {
    private let bytes: ArraySlice<UInt8>
    private(set) var offset: Int

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        self.offset = bytes.startIndex
    }

    var remaining: Int { bytes.endIndex - offset }

    mutating func byte() -> UInt8? {
        guard remaining >= 1 else { return nil }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func uint32() -> UInt32? {
        guard remaining >= 4 else { return nil }
        defer { offset += 4 }
        return UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8
            | UInt32(bytes[offset + 3])
    }

    mutating func uint64() -> UInt64? {
        guard let high = uint32(), let low = uint32() else { return nil }
        return UInt64(high) << 32 | UInt64(low)
    }

    mutating func string() -> ArraySlice<UInt8>? {
        let start = offset
        guard let length = uint32(), Int(length) <= remaining else {
            offset = start
            return nil
        }
        defer { offset += Int(length) }
        return bytes[offset..<(offset + Int(length))]
    }

    /// A string field decoded as UTF-8 (invalid sequences are repaired, as
    /// file names on Linux are bytes, not text).
    mutating func text() -> String? {
        string().map { String(decoding: $0, as: UTF8.self) }
    }
}

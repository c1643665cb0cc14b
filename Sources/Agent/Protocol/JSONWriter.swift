/// Writes JSON text (RFC 8259) into a byte array, value by value, with no
/// intermediate tree.
///
/// Why not `JSONEncoder`: the agent sends a message every few seconds while
/// idle (`stats`), and `JSONEncoder` runs through Foundation's encoder
/// boxes, a dictionary per object and a key sort: some twenty 64 KiB windows
/// of code that the kernel maps back in after `ResidentSetTrim` has let them
/// go (about 1 MiB of an idle agent's resident set, measured with
/// `perf record -e page-faults`). This writer is a few hundred bytes of code.
///
/// The caller writes an object's keys in ascending byte order, as
/// `JSONEncoder` with `.sortedKeys` does; `AgentMessageEncodingTests` checks
/// every message byte for byte against `JSONEncoder`, so the wire stays
/// exactly what docs/control-protocol.md shows.
struct JSONWriter {
    private(set) var bytes: [UInt8] = []
    /// Whether the next value in the open object or array needs a comma.
    private var needsComma = false

    init(capacity: Int = 256) { bytes.reserveCapacity(capacity) }

    // MARK: structure

    mutating func beginObject() {
        separate()
        bytes.append(UInt8(ascii: "{"))
        needsComma = false
    }

    mutating func endObject() {
        bytes.append(UInt8(ascii: "}"))
        needsComma = true
    }

    mutating func beginArray() {
        separate()
        bytes.append(UInt8(ascii: "["))
        needsComma = false
    }

    mutating func endArray() {
        bytes.append(UInt8(ascii: "]"))
        needsComma = true
    }

    /// `"name":`; the value written next belongs to it.
    mutating func key(_ name: StaticString) {
        separate()
        bytes.append(UInt8(ascii: "\""))
        name.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":")])
        needsComma = false
    }

    // MARK: fields: a key and its value

    mutating func field(_ name: StaticString, _ value: String) {
        key(name)
        string(value)
    }

    mutating func field(_ name: StaticString, _ value: some BinaryInteger) {
        key(name)
        integer(value)
    }

    mutating func field(_ name: StaticString, _ value: Double) {
        key(name)
        number(value)
    }

    // MARK: values

    mutating func string(_ value: String) {
        separate()
        bytes.append(UInt8(ascii: "\""))
        var copy = value
        copy.withUTF8 { utf8 in
            for byte in utf8 { escape(byte) }
        }
        bytes.append(UInt8(ascii: "\""))
        needsComma = true
    }

    /// A string known at compile time to need no escaping (a message type,
    /// an enum's raw value).
    mutating func string(_ value: StaticString) {
        separate()
        bytes.append(UInt8(ascii: "\""))
        value.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(UInt8(ascii: "\""))
        needsComma = true
    }

    mutating func integer(_ value: some BinaryInteger) {
        separate()
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        var magnitude = UInt64(value.magnitude)
        // Digits come out least significant first: into a scratch buffer
        // from its end, then appended in order.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var start = digits.count
            repeat {
                start -= 1
                digits[start] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            } while magnitude != 0
            bytes.append(contentsOf: digits[start...])
        }
        needsComma = true
    }

    /// A finite number as `JSONEncoder` writes it: Swift's shortest
    /// round-trip form, without a trailing `.0`. JSON has no NaN or
    /// infinity (RFC 8259 §6); those are written as 0.
    mutating func number(_ value: Double) {
        guard value.isFinite else { return integer(0) }
        separate()
        var text = value.description
        if text.hasSuffix(".0") { text.removeLast(2) }
        bytes.append(contentsOf: text.utf8)
        needsComma = true
    }

    // MARK: internals

    private mutating func separate() {
        if needsComma { bytes.append(UInt8(ascii: ",")) }
    }

    /// RFC 8259 §7: `"` and `\` and the control characters must be escaped;
    /// the short forms are used where they exist, as `JSONEncoder` does.
    /// `/` is left as is (`.withoutEscapingSlashes`). Bytes of multi-byte
    /// UTF-8 sequences pass through.
    private mutating func escape(_ byte: UInt8) {
        switch byte {
        case UInt8(ascii: "\""): bytes.append(contentsOf: [0x5C, UInt8(ascii: "\"")])
        case 0x5C: bytes.append(contentsOf: [0x5C, 0x5C])
        case 0x0A: bytes.append(contentsOf: [0x5C, UInt8(ascii: "n")])
        case 0x0D: bytes.append(contentsOf: [0x5C, UInt8(ascii: "r")])
        case 0x09: bytes.append(contentsOf: [0x5C, UInt8(ascii: "t")])
        case 0x08: bytes.append(contentsOf: [0x5C, UInt8(ascii: "b")])
        case 0x0C: bytes.append(contentsOf: [0x5C, UInt8(ascii: "f")])
        case 0x00..<0x20:
            func hex(_ d: UInt8) -> UInt8 { d < 10 ? UInt8(ascii: "0") + d : UInt8(ascii: "a") + d - 10 }
            bytes.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex(byte >> 4), hex(byte & 0xF)])
        default: bytes.append(byte)
        }
    }
}

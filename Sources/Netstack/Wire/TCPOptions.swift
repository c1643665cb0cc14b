/// TCP options this stack reads and writes:
///
///     Kind  Length  Meaning                          Where
///     0     –       End of Option List               RFC 9293 §3.2
///     1     –       No-Operation (padding)           RFC 9293 §3.2
///     2     4       Maximum Segment Size (u16)       RFC 9293 §3.7.1, SYN only
///     3     3       Window Scale shift (u8)          RFC 7323 §2, SYN only
///     4     2       SACK-Permitted                   RFC 2018 §2, SYN only
///     5     2+8n    SACK blocks (left u32, right u32) RFC 2018 §3, n ≤ 4
///     8     10      Timestamps (TSval u32, TSecr u32) RFC 7323 §3
///
/// Unknown kinds are skipped by their length. A length that is < 2 or runs
/// past the header makes the whole segment `.malformed`.
public struct TCPOptions: Hashable, Sendable {
    public var maximumSegmentSize: UInt16?
    /// Shift count; values above 14 are read as 14 (RFC 7323 §2.3).
    public var windowScale: UInt8?
    public var sackPermitted: Bool
    public var sackBlocks: SACKBlocks
    public var timestamp: TCPTimestamp?

    public init(
        maximumSegmentSize: UInt16? = nil, windowScale: UInt8? = nil, sackPermitted: Bool = false,
        sackBlocks: SACKBlocks = SACKBlocks(), timestamp: TCPTimestamp? = nil
    ) {
        self.maximumSegmentSize = maximumSegmentSize
        self.windowScale = windowScale
        self.sackPermitted = sackPermitted
        self.sackBlocks = sackBlocks
        self.timestamp = timestamp
    }

    enum Kind {
        static let end: UInt8 = 0
        static let noOperation: UInt8 = 1
        static let maximumSegmentSize: UInt8 = 2
        static let windowScale: UInt8 = 3
        static let sackPermitted: UInt8 = 4
        static let sack: UInt8 = 5
        static let timestamps: UInt8 = 8
    }
    public static let maximumLength = 40
    public static let maximumWindowScale: UInt8 = 14

    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(WireError) -> TCPOptions {
        var o = TCPOptions()
        var i = 0
        let n = bytes.count
        while i < n {
            let kind = bytes.u8(i)
            if kind == Kind.end { break }
            if kind == Kind.noOperation {
                i += 1
                continue
            }
            guard i + 1 < n else { throw .malformed }
            let length = Int(bytes.u8(i + 1))
            guard length >= 2, i + length <= n else { throw .malformed }
            switch (kind, length) {
            case (Kind.maximumSegmentSize, 4):
                o.maximumSegmentSize = bytes.be16(i + 2)
            case (Kind.windowScale, 3):
                o.windowScale = min(bytes.u8(i + 2), Self.maximumWindowScale)
            case (Kind.sackPermitted, 2):
                o.sackPermitted = true
            case (Kind.sack, _):
                guard (length - 2) % 8 == 0, length > 2 else { throw .malformed }
                var j = i + 2
                while j + 8 <= i + length {
                    o.sackBlocks.append(SACKBlock(left: SeqNumber(bytes.be32(j)), right: SeqNumber(bytes.be32(j + 4))))
                    j += 8
                }
            case (Kind.timestamps, 10):
                o.timestamp = TCPTimestamp(value: bytes.be32(i + 2), echoReply: bytes.be32(i + 6))
            case (Kind.maximumSegmentSize, _), (Kind.windowScale, _), (Kind.sackPermitted, _),
                (Kind.timestamps, _):
                throw .malformed
            default:
                break  // unknown option: skipped
            }
            i += length
        }
        return o
    }

    /// How many SACK blocks fit beside the other options in 40 bytes.
    var sackBlocksThatFit: Int {
        let others = encodedLengthWithoutSACK
        return max(0, min(sackBlocks.count, (Self.maximumLength - others - 4) / 8))
    }

    private var encodedLengthWithoutSACK: Int {
        var n = 0
        if maximumSegmentSize != nil { n += 4 }
        if timestamp != nil || sackPermitted { n += 12 }  // [SACK-perm | NOP NOP] + TS, or NOP NOP SACK-perm
        if windowScale != nil { n += 4 }
        return n
    }

    /// Bytes the options occupy, padded to a multiple of 4.
    public var encodedLength: Int {
        var n = encodedLengthWithoutSACK
        if timestamp == nil && sackPermitted { n -= 8 }
        let blocks = sackBlocksThatFit
        if blocks > 0 { n += 4 + 8 * blocks }
        return n
    }

    /// Writes options in the order Linux uses, NOP-padded to 32-bit alignment.
    func emit(into buffer: UnsafeMutableRawBufferPointer) {
        var i = 0
        func put(_ b: UInt8) {
            buffer.setU8(i, b)
            i += 1
        }
        if let mss = maximumSegmentSize {
            put(Kind.maximumSegmentSize)
            put(4)
            buffer.setBE16(i, mss)
            i += 2
        }
        if let ts = timestamp {
            if sackPermitted {
                put(Kind.sackPermitted)
                put(2)
            } else {
                put(Kind.noOperation)
                put(Kind.noOperation)
            }
            put(Kind.timestamps)
            put(10)
            buffer.setBE32(i, ts.value)
            buffer.setBE32(i + 4, ts.echoReply)
            i += 8
        } else if sackPermitted {
            put(Kind.noOperation)
            put(Kind.noOperation)
            put(Kind.sackPermitted)
            put(2)
        }
        if let ws = windowScale {
            put(Kind.noOperation)
            put(Kind.windowScale)
            put(3)
            put(ws)
        }
        let blocks = sackBlocksThatFit
        if blocks > 0 {
            put(Kind.noOperation)
            put(Kind.noOperation)
            put(Kind.sack)
            put(UInt8(2 + 8 * blocks))
            for b in 0..<blocks {
                let block = sackBlocks[b]
                buffer.setBE32(i, block.left.rawValue)
                buffer.setBE32(i + 4, block.right.rawValue)
                i += 8
            }
        }
        assert(i == encodedLength)
    }
}

/// RFC 7323 §3.2 timestamp option values.
public struct TCPTimestamp: Hashable, Sendable {
    public var value: UInt32
    public var echoReply: UInt32

    public init(value: UInt32, echoReply: UInt32) {
        self.value = value
        self.echoReply = echoReply
    }
}

/// One SACK block: the received range [left, right) (RFC 2018 §3).
public struct SACKBlock: Hashable, Sendable {
    public var left: SeqNumber
    public var right: SeqNumber

    public init(left: SeqNumber, right: SeqNumber) {
        self.left = left
        self.right = right
    }
}

/// Up to four SACK blocks stored inline, so a parsed segment never allocates.
public struct SACKBlocks: Hashable, Sendable, RandomAccessCollection {
    public static let capacity = 4
    private var storage: (SACKBlock, SACKBlock, SACKBlock, SACKBlock)
    public private(set) var count: Int

    public init() {
        let zero = SACKBlock(left: SeqNumber(0), right: SeqNumber(0))
        storage = (zero, zero, zero, zero)
        count = 0
    }

    public init(_ blocks: some Sequence<SACKBlock>) {
        self.init()
        for b in blocks { append(b) }
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { count }

    public subscript(i: Int) -> SACKBlock {
        precondition(i >= 0 && i < count)
        switch i {
        case 0: return storage.0
        case 1: return storage.1
        case 2: return storage.2
        default: return storage.3
        }
    }

    /// Appends if there is room; a fifth block is dropped (a SACK option holds at most four).
    public mutating func append(_ b: SACKBlock) {
        switch count {
        case 0: storage.0 = b
        case 1: storage.1 = b
        case 2: storage.2 = b
        case 3: storage.3 = b
        default: return
        }
        count += 1
    }

    public static func == (a: SACKBlocks, b: SACKBlocks) -> Bool { a.elementsEqual(b) }

    public func hash(into h: inout Hasher) {
        h.combine(count)
        for b in self { h.combine(b) }
    }
}

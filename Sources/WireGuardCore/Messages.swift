import CryptoPrimitives

// WireGuard's four messages (whitepaper §5.4.2–§5.4.7). Every field is
// little-endian where it is an integer; indices are opaque 32-bit values.
// The first byte is the type and the next three are zero: receivers read
// the first four bytes as one little-endian word, as the kernel and
// wireguard-go do, so a nonzero reserved byte makes a message unknown.
//
// Handshake initiation, 148 bytes:
//
//     0       4       8                      40                     88               116      132      148
//     +-------+-------+----------------------+----------------------+----------------+--------+--------+
//     | 1 000 |sender | ephemeral (32)       | static (32) + tag    | TAI64N (12)+tag| mac1   | mac2   |
//     +-------+-------+----------------------+----------------------+----------------+--------+--------+
//
// Handshake response, 92 bytes:
//
//     0       4       8       12                     44       60       76       92
//     +-------+-------+-------+----------------------+--------+--------+--------+
//     | 2 000 |sender |receivr| ephemeral (32)       | ε + tag| mac1   | mac2   |
//     +-------+-------+-------+----------------------+--------+--------+--------+
//
// Cookie reply, 64 bytes:
//
//     0       4       8                        32                     64
//     +-------+-------+------------------------+----------------------+
//     | 3 000 |receivr| nonce (24)             | cookie (16) + tag    |
//     +-------+-------+------------------------+----------------------+
//
// Transport data, 16-byte header then at least a tag:
//
//     0       4       8               16
//     +-------+-------+---------------+-----------------------------------+
//     | 4 000 |receivr| counter (8)   | packet, zero-padded to 16n, + tag |
//     +-------+-------+---------------+-----------------------------------+

/// The type word at the start of every message.
public enum MessageType: UInt32, Sendable {
    case handshakeInitiation = 1
    case handshakeResponse = 2
    case cookieReply = 3
    case transportData = 4

    /// The type of `datagram` if its type word is known and its length is
    /// exactly right for that type (at least the minimum for transport);
    /// nil otherwise. Reads nothing past `datagram.count`.
    public static func classify(_ datagram: UnsafeRawBufferPointer) -> MessageType? {
        guard datagram.count >= 4 else { return nil }
        let word = UInt32(littleEndian: datagram.loadUnaligned(as: UInt32.self))
        switch MessageType(rawValue: word) {
        case .handshakeInitiation: return datagram.count == HandshakeInitiation.size ? .handshakeInitiation : nil
        case .handshakeResponse: return datagram.count == HandshakeResponse.size ? .handshakeResponse : nil
        case .cookieReply: return datagram.count == CookieReply.size ? .cookieReply : nil
        case .transportData: return datagram.count >= TransportHeader.minimumMessageSize ? .transportData : nil
        case nil: return nil
        }
    }
}

/// Offsets of the two MACs that end both handshake messages (§5.4.4).
struct MACOffsets {
    let mac1: Int
    var mac2: Int { mac1 + 16 }
}

/// Reading and writing the fixed-size fields. Callers check sizes first;
/// these helpers are only reached with in-bounds offsets.
extension UnsafeRawBufferPointer {
    @inline(__always) func le32(at offset: Int) -> UInt32 {
        UInt32(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }
    @inline(__always) func le64(at offset: Int) -> UInt64 {
        UInt64(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }
    func bytes32(at offset: Int) -> Bytes32 {
        try! Bytes32(UnsafeRawBufferPointer(rebasing: self[offset..<offset + 32]))
    }
    func bytes16(at offset: Int) -> Bytes16 {
        try! Bytes16(UnsafeRawBufferPointer(rebasing: self[offset..<offset + 16]))
    }
    func array(_ range: Range<Int>) -> [UInt8] { Array(self[range]) }
}

extension Array where Element == UInt8 {
    mutating func appendLE32(_ v: UInt32) { Swift.withUnsafeBytes(of: v.littleEndian) { append(contentsOf: $0) } }
    mutating func appendLE64(_ v: UInt64) { Swift.withUnsafeBytes(of: v.littleEndian) { append(contentsOf: $0) } }
    mutating func append(_ b: some RawBytes) { b.withUnsafeBytes { append(contentsOf: $0) } }
}

/// Message 1 (§5.4.2).
public struct HandshakeInitiation: Hashable, Sendable {
    public static let size = 148
    static let macs = MACOffsets(mac1: 116)
    public var senderIndex: UInt32
    public var ephemeral: Bytes32
    /// AEAD(static public key): 32 + 16 bytes.
    public var encryptedStatic: [UInt8]
    /// AEAD(TAI64N): 12 + 16 bytes.
    public var encryptedTimestamp: [UInt8]
    public var mac1: Bytes16
    public var mac2: Bytes16

    public init(
        senderIndex: UInt32, ephemeral: Bytes32, encryptedStatic: [UInt8], encryptedTimestamp: [UInt8],
        mac1: Bytes16 = .zero, mac2: Bytes16 = .zero
    ) {
        precondition(encryptedStatic.count == 48 && encryptedTimestamp.count == 28)
        self.senderIndex = senderIndex
        self.ephemeral = ephemeral
        self.encryptedStatic = encryptedStatic
        self.encryptedTimestamp = encryptedTimestamp
        self.mac1 = mac1
        self.mac2 = mac2
    }

    /// Parses exactly 148 bytes with the right type word; nil otherwise.
    public init?(_ b: UnsafeRawBufferPointer) {
        guard MessageType.classify(b) == .handshakeInitiation else { return nil }
        senderIndex = b.le32(at: 4)
        ephemeral = b.bytes32(at: 8)
        encryptedStatic = b.array(40..<88)
        encryptedTimestamp = b.array(88..<116)
        mac1 = b.bytes16(at: 116)
        mac2 = b.bytes16(at: 132)
    }

    public var bytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(Self.size)
        out.appendLE32(MessageType.handshakeInitiation.rawValue)
        out.appendLE32(senderIndex)
        out.append(ephemeral)
        out += encryptedStatic
        out += encryptedTimestamp
        out.append(mac1)
        out.append(mac2)
        return out
    }
}

/// Message 2 (§5.4.3).
public struct HandshakeResponse: Hashable, Sendable {
    public static let size = 92
    static let macs = MACOffsets(mac1: 60)
    public var senderIndex: UInt32
    public var receiverIndex: UInt32
    public var ephemeral: Bytes32
    /// AEAD of the empty string: its 16-byte tag.
    public var encryptedNothing: Bytes16
    public var mac1: Bytes16
    public var mac2: Bytes16

    public init(
        senderIndex: UInt32, receiverIndex: UInt32, ephemeral: Bytes32, encryptedNothing: Bytes16,
        mac1: Bytes16 = .zero, mac2: Bytes16 = .zero
    ) {
        self.senderIndex = senderIndex
        self.receiverIndex = receiverIndex
        self.ephemeral = ephemeral
        self.encryptedNothing = encryptedNothing
        self.mac1 = mac1
        self.mac2 = mac2
    }

    public init?(_ b: UnsafeRawBufferPointer) {
        guard MessageType.classify(b) == .handshakeResponse else { return nil }
        senderIndex = b.le32(at: 4)
        receiverIndex = b.le32(at: 8)
        ephemeral = b.bytes32(at: 12)
        encryptedNothing = b.bytes16(at: 44)
        mac1 = b.bytes16(at: 60)
        mac2 = b.bytes16(at: 76)
    }

    public var bytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(Self.size)
        out.appendLE32(MessageType.handshakeResponse.rawValue)
        out.appendLE32(senderIndex)
        out.appendLE32(receiverIndex)
        out.append(ephemeral)
        out.append(encryptedNothing)
        out.append(mac1)
        out.append(mac2)
        return out
    }
}

/// Message 3 (§5.4.7): the responder's answer, under load, to a handshake
/// message without a valid mac2.
public struct CookieReply: Hashable, Sendable {
    public static let size = 64
    public var receiverIndex: UInt32
    public var nonce: [UInt8]
    /// XAEAD(cookie): 16 + 16 bytes.
    public var encryptedCookie: [UInt8]

    public init(receiverIndex: UInt32, nonce: [UInt8], encryptedCookie: [UInt8]) {
        precondition(nonce.count == 24 && encryptedCookie.count == 32)
        self.receiverIndex = receiverIndex
        self.nonce = nonce
        self.encryptedCookie = encryptedCookie
    }

    public init?(_ b: UnsafeRawBufferPointer) {
        guard MessageType.classify(b) == .cookieReply else { return nil }
        receiverIndex = b.le32(at: 4)
        nonce = b.array(8..<32)
        encryptedCookie = b.array(32..<64)
    }

    public var bytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(Self.size)
        out.appendLE32(MessageType.cookieReply.rawValue)
        out.appendLE32(receiverIndex)
        out += nonce
        out += encryptedCookie
        return out
    }
}

/// The header of message 4 (§5.4.6), read and written in place.
public struct TransportHeader: Hashable, Sendable {
    public static let size = 16
    /// Header plus the tag of an empty (keepalive) payload.
    public static let minimumMessageSize = size + ChaChaPolyTag.size
    public var receiverIndex: UInt32
    public var counter: UInt64

    public init(receiverIndex: UInt32, counter: UInt64) {
        self.receiverIndex = receiverIndex
        self.counter = counter
    }

    /// Reads the header of a datagram already classified as transport data.
    public init?(_ b: UnsafeRawBufferPointer) {
        guard MessageType.classify(b) == .transportData else { return nil }
        receiverIndex = b.le32(at: 4)
        counter = b.le64(at: 8)
    }

    /// Writes the 16 header bytes at `offset`.
    public func write(to b: UnsafeMutableRawBufferPointer, at offset: Int) {
        precondition(offset >= 0 && offset + Self.size <= b.count)
        b.storeBytes(of: MessageType.transportData.rawValue.littleEndian, toByteOffset: offset, as: UInt32.self)
        b.storeBytes(of: receiverIndex.littleEndian, toByteOffset: offset + 4, as: UInt32.self)
        b.storeBytes(of: counter.littleEndian, toByteOffset: offset + 8, as: UInt64.self)
    }
}

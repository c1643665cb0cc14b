/// STUN messages (RFC 5389), just the subset a tailnet node needs: Binding
/// requests and responses carrying XOR-MAPPED-ADDRESS, with SOFTWARE and
/// FINGERPRINT.
///
/// Wire format (§6), all big-endian:
///
///      0                   1                   2                   3
///      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |0 0|     STUN Message Type     |         Message Length        |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |                         Magic Cookie = 0x2112A442             |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |                     Transaction ID (96 bits)                  |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     | attributes: Type (16) | Length (16) | Value, padded to 4 bytes |
///
/// The length counts the attributes only and is a multiple of 4. Because
/// the first two bits are zero and the cookie is fixed, STUN can share a UDP
/// socket with WireGuard (first byte 1–4) and disco (first bytes "TS").
public enum STUN {
    public static let magicCookie: UInt32 = 0x2112_A442
    public static let headerLength = 20
    /// RFC 5389 §15.5: the CRC is XORed with this so FINGERPRINT differs
    /// from CRCs other protocols put in packets.
    static let fingerprintXOR: UInt32 = 0x5354_554E
    /// §15.10: SOFTWARE is fewer than 128 characters (763 bytes).
    static let maximumSoftwareLength = 763

    /// Method and class packed as §6 describes (only Binding is used).
    public enum MessageType: UInt16, Sendable {
        case bindingRequest = 0x0001
        case bindingSuccess = 0x0101
        case bindingError = 0x0111
    }

    /// Attribute types (§18.2).
    public enum AttributeType {
        public static let mappedAddress: UInt16 = 0x0001
        public static let errorCode: UInt16 = 0x0009
        public static let unknownAttributes: UInt16 = 0x000A
        public static let xorMappedAddress: UInt16 = 0x0020
        public static let software: UInt16 = 0x8022
        public static let fingerprint: UInt16 = 0x8028

        /// §15: types below 0x8000 must be understood or the request fails.
        static func isComprehensionRequired(_ type: UInt16) -> Bool { type < 0x8000 }
    }

    public struct TransactionID: Hashable, Sendable {
        public var bytes: [UInt8]

        public init?(_ bytes: [UInt8]) {
            guard bytes.count == 12 else { return nil }
            self.bytes = bytes
        }

        public static func random<G: RandomNumberGenerator>(using rng: inout G) -> TransactionID {
            TransactionID((0..<12).map { _ in UInt8.random(in: 0...255, using: &rng) })!
        }
    }

    public struct Attribute: Hashable, Sendable {
        public var type: UInt16
        public var value: [UInt8]

        public init(type: UInt16, value: [UInt8]) {
            self.type = type
            self.value = value
        }
    }

    /// Why a datagram was not a usable STUN message.
    public enum ParseError: Error, Hashable, Sendable {
        case tooShort
        case notSTUN  // top bits or magic cookie wrong
        case badLength
        case truncatedAttribute
        case fingerprintNotLast
        case badFingerprint
    }

    /// A parsed message: only valid messages can be represented.
    public struct Message: Hashable, Sendable {
        public var type: UInt16
        public var transactionID: TransactionID
        /// Every attribute but FINGERPRINT, in wire order.
        public var attributes: [Attribute]
        /// Whether a FINGERPRINT was present (it was checked if so).
        public var hadFingerprint: Bool

        public init(type: MessageType, transactionID: TransactionID, attributes: [Attribute] = []) {
            self.type = type.rawValue
            self.transactionID = transactionID
            self.attributes = attributes
            self.hadFingerprint = false
        }

        public func attribute(_ type: UInt16) -> [UInt8]? {
            attributes.first(where: { $0.type == type })?.value
        }
    }

    /// Cheap test for the socket demultiplexer: STUN's zero bits, a
    /// consistent length and the magic cookie.
    public static func looksLikeSTUN(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count >= headerLength, bytes[0] & 0xC0 == 0 else { return false }
        let length = Int(readU16(bytes, 2))
        return length % 4 == 0 && length + headerLength == bytes.count && readU32(bytes, 4) == magicCookie
    }

    public static func parse(_ bytes: [UInt8]) throws(ParseError) -> Message {
        let result: Result<Message, ParseError> = bytes.withUnsafeBytes { raw in
            Result { () throws(ParseError) -> Message in try parse(raw) }
        }
        return try result.get()
    }

    /// Parses and checks a datagram. Never traps; every length is checked
    /// before it is used.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(ParseError) -> Message {
        guard bytes.count >= headerLength else { throw .tooShort }
        guard bytes[0] & 0xC0 == 0, readU32(bytes, 4) == magicCookie else { throw .notSTUN }
        let length = Int(readU16(bytes, 2))
        guard length % 4 == 0, length + headerLength == bytes.count else { throw .badLength }
        let type = readU16(bytes, 0)
        let txid = TransactionID(Array(bytes[8..<20]))!
        var attributes: [Attribute] = []
        var offset = headerLength
        var hadFingerprint = false
        while offset < bytes.count {
            guard !hadFingerprint else { throw .fingerprintNotLast }
            guard bytes.count - offset >= 4 else { throw .truncatedAttribute }
            let attrType = readU16(bytes, offset)
            let attrLength = Int(readU16(bytes, offset + 2))
            let padded = (attrLength + 3) & ~3
            guard bytes.count - offset - 4 >= padded else { throw .truncatedAttribute }
            let value = Array(bytes[(offset + 4)..<(offset + 4 + attrLength)])
            if attrType == AttributeType.fingerprint {
                guard attrLength == 4 else { throw .badFingerprint }
                // §15.5: CRC over everything before this attribute, with the
                // header length already covering it (it does: it is last).
                let expected = CRC32.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<offset])) ^ fingerprintXOR
                guard readU32(bytes, offset + 4) == expected else { throw .badFingerprint }
                hadFingerprint = true
            } else {
                attributes.append(Attribute(type: attrType, value: value))
            }
            offset += 4 + padded
        }
        var message = Message(type: .bindingRequest, transactionID: txid, attributes: attributes)
        message.type = type
        message.hadFingerprint = hadFingerprint
        return message
    }

    /// Emits a message, optionally ending with FINGERPRINT (§15.5).
    public static func emit(_ message: Message, fingerprint: Bool) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(headerLength + message.attributes.reduce(0) { $0 + 4 + ($1.value.count + 3) & ~3 } + 8)
        appendU16(&out, message.type)
        appendU16(&out, 0)  // length, patched below
        appendU32(&out, magicCookie)
        out.append(contentsOf: message.transactionID.bytes)
        for attribute in message.attributes {
            appendU16(&out, attribute.type)
            appendU16(&out, UInt16(attribute.value.count))
            out.append(contentsOf: attribute.value)
            out.append(contentsOf: repeatElement(0, count: (4 - attribute.value.count % 4) % 4))
        }
        if fingerprint {
            setLength(&out, out.count - headerLength + 8)
            let crc = CRC32.checksum(out) ^ fingerprintXOR
            appendU16(&out, AttributeType.fingerprint)
            appendU16(&out, 4)
            appendU32(&out, crc)
        } else {
            setLength(&out, out.count - headerLength)
        }
        return out
    }

    // MARK: - Addresses (§15.1 MAPPED-ADDRESS, §15.2 XOR-MAPPED-ADDRESS)

    static let familyIPv4: UInt8 = 0x01
    static let familyIPv6: UInt8 = 0x02

    /// Encodes XOR-MAPPED-ADDRESS: the port XORed with the cookie's top 16
    /// bits, the address with the cookie (IPv4) or cookie ‖ transaction ID.
    public static func xorMappedAddress(_ endpoint: Endpoint, transactionID: TransactionID) -> Attribute {
        let mask = xorMask(transactionID)
        var value: [UInt8] = [0]
        let port = endpoint.port ^ UInt16(magicCookie >> 16)
        if let v4 = endpoint.ipv4Bytes {
            value.append(familyIPv4)
            value.append(contentsOf: [UInt8(port >> 8), UInt8(port & 0xff)])
            value.append(contentsOf: (0..<4).map { v4[$0] ^ mask[$0] })
        } else {
            value.append(familyIPv6)
            value.append(contentsOf: [UInt8(port >> 8), UInt8(port & 0xff)])
            let address = endpoint.addressBytes
            value.append(contentsOf: (0..<16).map { address[$0] ^ mask[$0] })
        }
        return Attribute(type: AttributeType.xorMappedAddress, value: value)
    }

    /// Decodes XOR-MAPPED-ADDRESS (xored = true) or MAPPED-ADDRESS.
    public static func decodeAddress(_ value: [UInt8], xored: Bool, transactionID: TransactionID) -> Endpoint? {
        guard value.count >= 4 else { return nil }
        let mask = xored ? xorMask(transactionID) : [UInt8](repeating: 0, count: 16)
        var port = UInt16(value[2]) << 8 | UInt16(value[3])
        if xored { port ^= UInt16(magicCookie >> 16) }
        switch value[1] {
        case familyIPv4 where value.count == 8:
            let b = (0..<4).map { value[4 + $0] ^ mask[$0] }
            return Endpoint(ipv4: b[0], b[1], b[2], b[3], port: port)
        case familyIPv6 where value.count == 20:
            var address = SIMD16<UInt8>.zero
            for i in 0..<16 { address[i] = value[4 + i] ^ mask[i] }
            return Endpoint(address16: address, port: port)
        default:
            return nil
        }
    }

    private static func xorMask(_ transactionID: TransactionID) -> [UInt8] {
        [
            UInt8(magicCookie >> 24), UInt8((magicCookie >> 16) & 0xff), UInt8((magicCookie >> 8) & 0xff),
            UInt8(magicCookie & 0xff),
        ]
            + transactionID.bytes
    }

    // MARK: - Byte helpers (bounds are checked by callers)

    static func readU16(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt16 { UInt16(b[at]) << 8 | UInt16(b[at + 1]) }
    static func readU32(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt32 {
        UInt32(b[at]) << 24 | UInt32(b[at + 1]) << 16 | UInt32(b[at + 2]) << 8 | UInt32(b[at + 3])
    }
    static func appendU16(_ out: inout [UInt8], _ v: UInt16) { out.append(UInt8(v >> 8)); out.append(UInt8(v & 0xff)) }
    static func appendU32(_ out: inout [UInt8], _ v: UInt32) {
        appendU16(&out, UInt16(v >> 16))
        appendU16(&out, UInt16(v & 0xffff))
    }
    static func setLength(_ out: inout [UInt8], _ length: Int) {
        out[2] = UInt8(length >> 8)
        out[3] = UInt8(length & 0xff)
    }
}

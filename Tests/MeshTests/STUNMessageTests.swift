import Mesh
import Testing

/// RFC 5389 codec against RFC 5769's published test vectors, plus our own
/// request/response shapes and hostile input.
@Suite struct STUNMessageTests {
    /// RFC 5769 §2.1 Sample Request (USERNAME, PRIORITY, ICE-CONTROLLED,
    /// MESSAGE-INTEGRITY, FINGERPRINT; software "STUN test client").
    static let rfc5769Request: [UInt8] = [
        0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
        0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x10, 0x53, 0x54, 0x55, 0x4e, 0x20, 0x74, 0x65, 0x73,
        0x74, 0x20, 0x63, 0x6c, 0x69, 0x65, 0x6e, 0x74, 0x00, 0x24, 0x00, 0x04, 0x6e, 0x00, 0x01, 0xff,
        0x80, 0x29, 0x00, 0x08, 0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36, 0x00, 0x06, 0x00, 0x09,
        0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76, 0x59, 0x20, 0x20, 0x20, 0x00, 0x08, 0x00, 0x14,
        0x9a, 0xea, 0xa7, 0x0c, 0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e, 0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49,
        0xc1, 0xb5, 0x71, 0xa2, 0x80, 0x28, 0x00, 0x04, 0xe5, 0x7a, 0x3b, 0xcf,
    ]

    /// RFC 5769 §2.2 Sample IPv4 Response: mapped address 192.0.2.1:32853.
    static let rfc5769ResponseV4: [UInt8] = [
        0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
        0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63,
        0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43,
        0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3, 0x8c, 0x74, 0x89, 0xf9,
        0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7, 0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96,
    ]

    static let rfc5769TransactionID = STUN.TransactionID([
        0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
    ])!

    @Test func rfc5769RequestParsesWithValidFingerprint() throws {
        let message = try STUN.parse(Self.rfc5769Request)
        #expect(message.type == 0x0001)
        #expect(message.transactionID == Self.rfc5769TransactionID)
        #expect(message.hadFingerprint)
        #expect(message.attribute(STUN.AttributeType.software) == Array("STUN test client".utf8))
        #expect(message.attributes.map(\.type) == [0x8022, 0x0024, 0x8029, 0x0006, 0x0008])
    }

    @Test func rfc5769ResponseGivesMappedAddress() throws {
        let endpoint = try Self.rfc5769ResponseV4.withUnsafeBytes {
            try STUNBinding.mappedAddress(inResponse: $0, transactionID: Self.rfc5769TransactionID)
        }
        #expect(endpoint == Endpoint("192.0.2.1:32853"))
    }

    @Test func fingerprintIsChecked() {
        var bad = Self.rfc5769ResponseV4
        bad[bad.count - 1] ^= 1
        #expect(throws: STUN.ParseError.badFingerprint) { try STUN.parse(bad) }
        // A change anywhere before it is caught too (the SOFTWARE text here).
        var altered = Self.rfc5769ResponseV4
        altered[24] ^= 0x20
        #expect(throws: STUN.ParseError.badFingerprint) { try STUN.parse(altered) }
    }

    @Test(arguments: ["10.1.2.3:4567", "[2001:db8::1]:65535", "[::1]:1", "255.255.255.255:0"])
    func serverAnswerCarriesTheSourceAddress(_ text: String) throws {
        let source = try #require(Endpoint(text))
        var rng = SystemRandomNumberGenerator()
        let txid = STUN.TransactionID.random(using: &rng)
        let request = STUNBinding.request(transactionID: txid)
        #expect(request.withUnsafeBytes { STUN.looksLikeSTUN($0) })
        let parsed = try STUN.parse(request)
        #expect(parsed.hadFingerprint && parsed.attribute(STUN.AttributeType.software) == Array("tether".utf8))

        let action = request.withUnsafeBytes { STUNBinding.respond(to: $0, from: source) }
        guard case .reply(let reply) = action else {
            Issue.record("no reply: \(action)")
            return
        }
        let mapped = try reply.withUnsafeBytes { try STUNBinding.mappedAddress(inResponse: $0, transactionID: txid) }
        #expect(mapped == source)
        // Somebody else's transaction is not ours.
        let other = STUN.TransactionID.random(using: &rng)
        #expect(throws: STUNBinding.ResponseError.wrongTransaction) {
            try reply.withUnsafeBytes { try STUNBinding.mappedAddress(inResponse: $0, transactionID: other) }
        }
    }

    /// RFC 5389 §7.3.1: unknown comprehension-required attributes get 420.
    @Test func unknownRequiredAttributeGets420() throws {
        var rng = SystemRandomNumberGenerator()
        let txid = STUN.TransactionID.random(using: &rng)
        let request = STUN.emit(
            STUN.Message(
                type: .bindingRequest, transactionID: txid,
                attributes: [STUN.Attribute(type: 0x7777, value: [1, 2, 3])]),
            fingerprint: true)
        let action = request.withUnsafeBytes { STUNBinding.respond(to: $0, from: Endpoint("127.0.0.1:9")!) }
        guard case .reply(let reply) = action else {
            Issue.record("no reply")
            return
        }
        #expect(throws: STUNBinding.ResponseError.errorResponse(code: 420, reason: "Unknown Attribute")) {
            try reply.withUnsafeBytes { try STUNBinding.mappedAddress(inResponse: $0, transactionID: txid) }
        }
        let message = try STUN.parse(reply)
        #expect(message.attribute(STUN.AttributeType.unknownAttributes) == [0x77, 0x77])
    }

    @Test func otherTrafficIsNotSTUN() {
        // A WireGuard initiation starts 01 00 00 00; disco starts "TS💬".
        let wireguard: [UInt8] = [1, 0, 0, 0] + [UInt8](repeating: 0xab, count: 144)
        let disco: [UInt8] = Array("TS💬".utf8) + [UInt8](repeating: 0, count: 80)
        #expect(!wireguard.withUnsafeBytes { STUN.looksLikeSTUN($0) })
        #expect(!disco.withUnsafeBytes { STUN.looksLikeSTUN($0) })
        for bytes in [wireguard, disco] {
            let action = bytes.withUnsafeBytes { STUNBinding.respond(to: $0, from: Endpoint("127.0.0.1:9")!) }
            #expect(action == .drop(.malformed))
        }
    }

    /// No byte sequence traps the parser: every prefix of valid messages,
    /// and random and bit-flipped datagrams.
    @Test func hostileInputNeverTraps() {
        var rng = SystemRandomNumberGenerator()
        for valid in [Self.rfc5769Request, Self.rfc5769ResponseV4] {
            for length in 0..<valid.count {
                #expect(throws: STUN.ParseError.self) { try STUN.parse(Array(valid[0..<length])) }
            }
        }
        var accepted = 0
        for _ in 0..<100_000 {
            var bytes: [UInt8]
            if Bool.random(using: &rng) {
                bytes = (0..<Int.random(in: 0...120, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            } else {
                bytes = Self.rfc5769Request
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    bytes[Int.random(in: 0..<bytes.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
                }
                if Bool.random(using: &rng) { bytes.removeLast(Int.random(in: 0...8, using: &rng)) }
            }
            // A fingerprinted message that still parses must be the original
            // (an altered FINGERPRINT type leaves a legal unfingerprinted one).
            if let message = try? STUN.parse(bytes), message.hadFingerprint, bytes != Self.rfc5769Request {
                accepted += 1
            }
            _ = bytes.withUnsafeBytes { STUNBinding.respond(to: $0, from: Endpoint("127.0.0.1:9")!) }
        }
        #expect(accepted == 0)
    }

    @Test func endpointText() {
        #expect(Endpoint("1.2.3.4:80")?.description == "1.2.3.4:80")
        #expect(Endpoint("[fd7a:115c::1]:41641")?.description == "[fd7a:115c::1]:41641")
        #expect(Endpoint("::1")?.description == "[::1]:0")
        for bad in ["", "1.2.3", "1.2.3.4:99999", "[::1", "[::1]x", "host:80", "1.2.3.4:"] {
            #expect(Endpoint(bad) == nil, "\(bad) should not parse")
        }
    }
}

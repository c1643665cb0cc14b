import CryptoPrimitives
import DERP
import NIOCore
import Testing

/// Exact bytes of every frame type against the layouts in Tailscale's
/// `derp.go`, round trips, and hostile input.
@Suite struct CodecTests {
    static func key(_ byte: UInt8) -> NodeKey { NodeKey(try! Bytes32([UInt8](repeating: byte, count: 32))) }
    static let a = key(0xa1)
    static let b = key(0xb2)
    static let k32a = [UInt8](repeating: 0xa1, count: 32)
    static let k32b = [UInt8](repeating: 0xb2, count: 32)
    static let nonce = try! Nonce24(Array(0..<24) as [UInt8])

    static func header(_ type: UInt8, _ length: Int) -> [UInt8] {
        [type, UInt8(length >> 24), UInt8((length >> 16) & 0xff), UInt8((length >> 8) & 0xff), UInt8(length & 0xff)]
    }

    /// Encodes `frame`, checks the bytes, then decodes them back.
    func check(_ frame: Frame, _ expected: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let encoded = frame.encoded()
        #expect(Array(buffer: encoded) == expected, sourceLocation: sourceLocation)
        var buffer = ByteBuffer(bytes: expected)
        let decoded = try FrameDecoder().decode(&buffer)
        #expect(decoded == frame, sourceLocation: sourceLocation)
        #expect(buffer.readableBytes == 0, sourceLocation: sourceLocation)
    }

    @Test func magicIsDERPKey() {
        #expect(DERPWire.magic == [0x44, 0x45, 0x52, 0x50, 0xf0, 0x9f, 0x94, 0x91])
    }

    @Test func frameTypeNumbers() {
        let expected: [FrameType: UInt8] = [
            .serverKey: 1, .clientInfo: 2, .serverInfo: 3, .sendPacket: 4, .recvPacket: 5, .keepAlive: 6,
            .notePreferred: 7, .peerGone: 8, .peerPresent: 9, .forwardPacket: 0x0a, .watchConns: 0x10,
            .closePeer: 0x11, .ping: 0x12, .pong: 0x13, .health: 0x14, .restarting: 0x15,
        ]
        for type in FrameType.allCases { #expect(type.rawValue == expected[type]) }
    }

    @Test func serverKey() throws {
        try check(.serverKey(Self.a), Self.header(0x01, 40) + DERPWire.magic + Self.k32a)
        // Bytes after the key are for future use and ignored.
        var buffer = ByteBuffer(bytes: Self.header(0x01, 43) + DERPWire.magic + Self.k32a + [1, 2, 3])
        #expect(try FrameDecoder().decode(&buffer) == .serverKey(Self.a))
    }

    @Test func clientInfo() throws {
        let box: [UInt8] = [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6, 7]
        let frame = Frame.clientInfo(SealedClientInfo(clientKey: Self.a, nonce: Self.nonce, box: ByteBuffer(bytes: box)))
        try check(frame, Self.header(0x02, 32 + 24 + box.count) + Self.k32a + Array(0..<24) + box)
    }

    @Test func serverInfo() throws {
        let box: [UInt8] = Array(repeating: 0x5a, count: 20)
        try check(.serverInfo(SealedServerInfo(nonce: Self.nonce, box: ByteBuffer(bytes: box))), Self.header(0x03, 44) + Array(0..<24) + box)
    }

    @Test func sendPacket() throws {
        try check(.sendPacket(destination: Self.b, packet: ByteBuffer(bytes: [1, 2, 3])), Self.header(0x04, 35) + Self.k32b + [1, 2, 3])
        // The hot-path writer produces the same bytes.
        var out = ByteBuffer()
        Frame.writeSendPacket(destination: Self.b, packet: [1, 2, 3] as [UInt8], into: &out)
        #expect(Array(buffer: out) == Self.header(0x04, 35) + Self.k32b + [1, 2, 3])
    }

    @Test func recvPacket() throws {
        try check(.recvPacket(source: Self.a, packet: ByteBuffer(bytes: [0xff])), Self.header(0x05, 33) + Self.k32a + [0xff])
        var out = ByteBuffer()
        Frame.writeRecvPacket(source: Self.a, packet: ByteBuffer(bytes: [0xff]), into: &out)
        #expect(Array(buffer: out) == Self.header(0x05, 33) + Self.k32a + [0xff])
    }

    @Test func keepAliveAndWatchConns() throws {
        try check(.keepAlive, [0x06, 0, 0, 0, 0])
        try check(.watchConns, [0x10, 0, 0, 0, 0])
    }

    @Test func notePreferred() throws {
        try check(.notePreferred(true), [0x07, 0, 0, 0, 1, 0x01])
        try check(.notePreferred(false), [0x07, 0, 0, 0, 1, 0x00])
    }

    @Test func peerGone() throws {
        try check(.peerGone(Self.a, reason: .disconnected), Self.header(0x08, 33) + Self.k32a + [0x00])
        try check(.peerGone(Self.b, reason: .notHere), Self.header(0x08, 33) + Self.k32b + [0x01])
        // Old servers send no reason byte: that means "disconnected".
        var buffer = ByteBuffer(bytes: Self.header(0x08, 32) + Self.k32a)
        #expect(try FrameDecoder().decode(&buffer) == .peerGone(Self.a, reason: .disconnected))
    }

    @Test func peerPresent() throws {
        let endpoint = PeerEndpoint(ipv4: 192, 0, 2, 7, port: 0x1234)
        let present = PeerPresent(key: Self.a, endpoint: endpoint, flags: [.regular])
        try check(
            .peerPresent(present),
            Self.header(0x09, 51) + Self.k32a + [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 7] + [0x12, 0x34] + [0x01])
        // Key only (old servers): no endpoint, no flags.
        try check(.peerPresent(PeerPresent(key: Self.b)), Self.header(0x09, 32) + Self.k32b)
        // Key and endpoint without a flags byte.
        var buffer = ByteBuffer(bytes: Self.header(0x09, 50) + Self.k32a + [UInt8](repeating: 0, count: 16) + [0, 80])
        #expect(try FrameDecoder().decode(&buffer) == .peerPresent(PeerPresent(key: Self.a, endpoint: PeerEndpoint(address: .zero, port: 80))))
    }

    @Test func forwardPacket() throws {
        try check(
            .forwardPacket(source: Self.a, destination: Self.b, packet: ByteBuffer(bytes: [4, 5])),
            Self.header(0x0a, 66) + Self.k32a + Self.k32b + [4, 5])
    }

    @Test func closePeer() throws {
        try check(.closePeer(Self.b), Self.header(0x11, 32) + Self.k32b)
    }

    @Test func pingPong() throws {
        try check(.ping(PingData(0x0102_0304_0506_0708)), [0x12, 0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8])
        try check(.pong(PingData(0x0102_0304_0506_0708)), [0x13, 0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8])
    }

    @Test func health() throws {
        try check(.health("dup"), [0x14, 0, 0, 0, 3] + Array("dup".utf8))
        try check(.health(""), [0x14, 0, 0, 0, 0])
    }

    @Test func restarting() throws {
        try check(.restarting(reconnectInMilliseconds: 500, tryForMilliseconds: 70_000), [0x15, 0, 0, 0, 8, 0, 0, 0x01, 0xf4, 0, 0x01, 0x11, 0x70])
    }

    @Test func unknownTypesAreSkipped() throws {
        var buffer = ByteBuffer(bytes: [0x7f, 0, 0, 0, 3, 9, 9, 9] + [0x06, 0, 0, 0, 0])
        let decoder = FrameDecoder()
        #expect(try decoder.decode(&buffer) == .unknown(type: 0x7f, length: 3))
        #expect(try decoder.decode(&buffer) == .keepAlive)
        #expect(buffer.readableBytes == 0)
    }

    @Test func streamOfFramesSplitAnywhere() throws {
        var all = ByteBuffer()
        let frames: [Frame] = [
            .ping(PingData(7)), .sendPacket(destination: Self.b, packet: ByteBuffer(bytes: Array(repeating: 3, count: 1400))),
            .keepAlive, .peerGone(Self.a, reason: .notHere), .health("x"),
        ]
        for frame in frames { frame.encode(into: &all) }
        let bytes = Array(buffer: all)
        for split in stride(from: 0, through: bytes.count, by: 97) {
            var decoded: [Frame] = []
            var buffer = ByteBuffer(bytes: bytes[0..<split])
            while let frame = try FrameDecoder().decode(&buffer) { decoded.append(frame) }
            buffer.writeBytes(bytes[split...])
            while let frame = try FrameDecoder().decode(&buffer) { decoded.append(frame) }
            #expect(decoded == frames)
        }
    }

    @Test func frameStreamReassemblesChunks() throws {
        var all = ByteBuffer()
        let frames: [Frame] = (0..<50).map { i in
            .sendPacket(destination: Self.b, packet: ByteBuffer(bytes: [UInt8](repeating: UInt8(i), count: 10 + i * 37)))
        }
        for frame in frames { frame.encode(into: &all) }
        let bytes = Array(buffer: all)
        for chunk in [1, 7, 100, 1500, bytes.count] {
            var stream = FrameStream()
            var decoded: [Frame] = []
            for start in stride(from: 0, to: bytes.count, by: chunk) {
                var piece = ByteBuffer(bytes: bytes[start..<min(start + chunk, bytes.count)])
                stream.append(&piece)
                while let frame = try stream.next() { decoded.append(frame) }
                #expect(stream.bufferedBytes < 5 + 32 + 10 + 49 * 37, "holds at most one partial frame")
            }
            #expect(decoded == frames)
            #expect(stream.bufferedBytes == 0)
        }
    }

    /// Chunks appended while the caller is paused (not draining), and a
    /// frame straddling chunks: same frames, in order; what is held is the
    /// incomplete frame only, and its length is known from its header.
    @Test func frameStreamKeepsOrderAcrossUndrainedAppends() throws {
        let frames: [Frame] = (0..<6).map { i in
            .sendPacket(destination: Self.b, packet: ByteBuffer(bytes: [UInt8](repeating: UInt8(i), count: 100)))
        }
        var all = ByteBuffer()
        for frame in frames { frame.encode(into: &all) }
        let bytes = Array(buffer: all)  // 6 × 137 bytes
        var stream = FrameStream()
        var first = ByteBuffer(bytes: bytes[0..<200])  // one frame and 63 bytes
        stream.append(&first)
        #expect(try stream.next() == frames[0])
        #expect(try stream.next() == nil)
        #expect(stream.bufferedBytes == 63)
        #expect(stream.pendingFrameLength == 137)
        var second = ByteBuffer(bytes: bytes[200..<300])  // completes frame 1, 26 bytes into frame 2
        stream.append(&second)
        var third = ByteBuffer(bytes: bytes[300...])  // appended before draining
        stream.append(&third)
        var decoded: [Frame] = []
        while let frame = try stream.next() { decoded.append(frame) }
        #expect(decoded == Array(frames[1...]))
        #expect(stream.bufferedBytes == 0)
        #expect(stream.pendingFrameLength == nil)
    }

    @Test func frameStreamRefusesAnOversizedStraddlingFrame() throws {
        var stream = FrameStream()
        var head = ByteBuffer(bytes: [0x04, 0x00])
        stream.append(&head)
        #expect(try stream.next() == nil)
        var rest = ByteBuffer(bytes: [0x01, 0x00, 0x21] + [UInt8](repeating: 0, count: 1000))
        stream.append(&rest)
        #expect(throws: DERPError.self) { try stream.next() }
    }

    // MARK: - Hostile input

    @Test func truncatedFramesWaitForMoreBytes() throws {
        let full = Frame.sendPacket(destination: Self.b, packet: ByteBuffer(bytes: [1, 2, 3, 4])).encoded()
        for cut in 0..<full.readableBytes {
            var buffer = full.getSlice(at: 0, length: cut)!
            #expect(try FrameDecoder().decode(&buffer) == nil)
            #expect(buffer.readableBytes == cut, "an incomplete frame consumes nothing")
        }
    }

    @Test func oversizedFramesAreRefusedFromTheHeaderAlone() {
        let cases: [(UInt8, Int)] = [
            (0x04, 32 + 65_536 + 1),  // packet over 64 KiB
            (0x05, 32 + 65_536 + 1),
            (0x0a, 64 + 65_536 + 1),
            (0x02, 256 * 1024 + 1),  // ClientInfo over 256 KiB
            (0x14, (1 << 20) + 1),  // any frame over 1 MiB
            (0x7f, Int(UInt32.max)),
        ]
        for (type, length) in cases {
            var buffer = ByteBuffer(bytes: Self.header(type, length))
            #expect(throws: DERPError.self) { try FrameDecoder().decode(&buffer) }
            do {
                _ = try FrameDecoder().decode(&buffer)
            } catch let error as DERPError {
                #expect(error.kind == .frameTooLarge)
            } catch {
                Issue.record("unexpected error \(error)")
            }
        }
        // Exactly at the limits is fine.
        var ok = ByteBuffer(bytes: Self.header(0x04, 32 + 65_536))
        #expect(throws: Never.self) { try FrameDecoder().decode(&ok) }
    }

    @Test func shortPayloadsAreMalformed() {
        let cases: [[UInt8]] = [
            Self.header(0x01, 39) + DERPWire.magic + Array(Self.k32a[0..<31]),
            Self.header(0x01, 40) + Array("DERP🔒".utf8) + Self.k32a,  // wrong magic
            Self.header(0x02, 55) + [UInt8](repeating: 0, count: 55),
            Self.header(0x03, 23) + [UInt8](repeating: 0, count: 23),
            Self.header(0x04, 31) + [UInt8](repeating: 0, count: 31),
            Self.header(0x05, 10) + [UInt8](repeating: 0, count: 10),
            Self.header(0x07, 0),
            Self.header(0x08, 31) + [UInt8](repeating: 0, count: 31),
            Self.header(0x09, 1) + [0],
            Self.header(0x0a, 63) + [UInt8](repeating: 0, count: 63),
            Self.header(0x11, 0),
            Self.header(0x12, 7) + [UInt8](repeating: 0, count: 7),
            Self.header(0x13, 0),
            Self.header(0x15, 4) + [0, 0, 0, 1],
        ]
        for bytes in cases {
            var buffer = ByteBuffer(bytes: bytes)
            do {
                _ = try FrameDecoder().decode(&buffer)
                Issue.record("accepted \(bytes.prefix(8))")
            } catch let error as DERPError {
                #expect(error.kind == .malformedFrame)
            } catch {
                Issue.record("unexpected error \(error)")
            }
        }
    }

    /// Random bytes never trap the decoder: each input ends in frames, a
    /// request for more bytes, or an error.
    @Test func garbageNeverTraps() {
        var rng = SplitMix64(seed: 0xde4b)
        for _ in 0..<20_000 {
            let count = Int(rng.next() % 96)
            var bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            // Keep lengths small often, so payload parsers see the bytes.
            if bytes.count >= 5 && rng.next() % 2 == 0 {
                bytes[0] = UInt8(rng.next() % 0x18)
                bytes[1] = 0
                bytes[2] = 0
                bytes[3] = 0
                bytes[4] = UInt8(rng.next() % UInt64(max(1, bytes.count - 4)))
            }
            var buffer = ByteBuffer(bytes: bytes)
            while true {
                guard let frame = try? FrameDecoder().decode(&buffer) else { break }
                _ = frame.encoded()
            }
        }
    }
}

/// A small deterministic generator for the garbage test.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

import Agent
import Testing

/// RFC 6455 §5: frames as the app proxy writes them to an app (masked) and
/// reads them from it (unmasked), with the examples of §5.7 as fixed bytes.
@Suite struct WebSocketFrameTests {
    static let key: [UInt8] = [0x37, 0xFA, 0x21, 0x3D]

    func read(_ bytes: [UInt8], masked: Bool = false, max: Int = 1 << 20) throws(WebSocketProtocolError)
        -> [WebSocketFrame]
    {
        var reader = WebSocketReader(maxMessageBytes: max, expectMasked: masked)
        reader.append(bytes)
        var out: [WebSocketFrame] = []
        while let frame = try reader.next() { out.append(frame) }
        return out
    }

    @Test func examplesOfSection5_7() throws {
        let hello = Array("Hello".utf8)
        // A single-frame unmasked text message.
        let unmasked: [UInt8] = [0x81, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F]
        #expect(WebSocketFrame(opcode: .text, payload: hello).encoded(maskKey: nil) == unmasked)
        #expect(try read(unmasked) == [WebSocketFrame(opcode: .text, payload: hello)])
        // A single-frame masked text message.
        let masked: [UInt8] = [0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58]
        #expect(WebSocketFrame(opcode: .text, payload: hello).encoded(maskKey: Self.key) == masked)
        #expect(try read(masked, masked: true) == [WebSocketFrame(opcode: .text, payload: hello)])
        // A fragmented unmasked text message: one message comes out.
        let fragmented: [UInt8] = [0x01, 0x03, 0x48, 0x65, 0x6C, 0x80, 0x02, 0x6C, 0x6F]
        #expect(try read(fragmented) == [WebSocketFrame(opcode: .text, payload: hello)])
        // Unmasked ping, masked pong.
        #expect(try read([0x89, 0x05] + hello) == [WebSocketFrame(opcode: .ping, payload: hello)])
        #expect(
            WebSocketFrame(opcode: .pong, payload: hello).encoded(maskKey: Self.key)
                == [0x8A, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58])
        // 256 bytes and 64 KiB of binary: 16- and 64-bit lengths.
        let b256 = WebSocketFrame(opcode: .binary, payload: [UInt8](repeating: 7, count: 256)).encoded(maskKey: nil)
        #expect(Array(b256.prefix(4)) == [0x82, 0x7E, 0x01, 0x00])
        let b64k = WebSocketFrame(opcode: .binary, payload: [UInt8](repeating: 7, count: 65536)).encoded(maskKey: nil)
        #expect(Array(b64k.prefix(10)) == [0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0])
    }

    @Test(arguments: [0, 1, 125, 126, 65535, 65536, 200_000])
    func roundTripsInEverySplit(length: Int) throws {
        let payload = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let frame = WebSocketFrame(opcode: .binary, payload: payload)
        for masked in [false, true] {
            let bytes = frame.encoded(maskKey: masked ? Self.key : nil)
            // Fed in two pieces cut at many places, the frame comes out once, whole.
            for cut in Set([0, 1, 2, 3, 9, 13, bytes.count / 2, bytes.count - 1, bytes.count]) where cut <= bytes.count
            {
                var reader = WebSocketReader(maxMessageBytes: 1 << 20, expectMasked: masked)
                reader.append(Array(bytes[..<cut]))
                let early = try reader.next()
                reader.append(Array(bytes[cut...]))
                let frames = [early, try reader.next()].compactMap { $0 }
                #expect(frames == [frame], "cut \(cut) of \(bytes.count)")
                #expect(try reader.next() == nil)
            }
        }
    }

    @Test func controlFramesMayInterruptAFragmentedMessage() throws {
        let bytes =
            WebSocketFrame(fin: false, opcode: .binary, payload: [1, 2]).encoded(maskKey: nil)
            + WebSocketFrame(opcode: .ping, payload: [9]).encoded(maskKey: nil)
            + WebSocketFrame(fin: false, opcode: .continuation, payload: [3]).encoded(maskKey: nil)
            + WebSocketFrame(opcode: .continuation, payload: [4]).encoded(maskKey: nil)
            + WebSocketFrame(opcode: .close, payload: WebSocketFrame.closePayload(code: 4001, reason: "bye")).encoded(
                maskKey: nil)
        let frames = try read(bytes)
        #expect(frames.map(\.opcode) == [.ping, .binary, .close])
        #expect(frames[1].payload == [1, 2, 3, 4])
        #expect(WebSocketFrame.parseClose(frames[2].payload) == (4001, "bye"))
        #expect(WebSocketFrame.parseClose([]) == (1005, ""))
    }

    @Test func brokenStreamsAreProtocolErrors() {
        let cases: [(String, [UInt8], UInt16)] = [
            ("reserved bit", [0xC1, 0x00], 1002),
            ("reserved opcode", [0x83, 0x00], 1002),
            ("masked frame from a server", [0x81, 0x80, 1, 2, 3, 4], 1002),
            ("control frame over 125 bytes", [0x89, 0x7E, 0x00, 0x7E] + [UInt8](repeating: 0, count: 126), 1002),
            ("fragmented control frame", [0x09, 0x00], 1002),
            ("continuation with no message", [0x80, 0x00], 1002),
            ("new message inside a fragmented one", [0x01, 0x01, 0x61, 0x81, 0x01, 0x62], 1002),
            ("frame over the limit, from its header alone", [0x82, 0x7F, 0, 0, 0, 1, 0, 0, 0, 0], 1009),
            (
                "fragments over the limit",
                [0x02, 0x7E, 0x03, 0xE8] + [UInt8](repeating: 0, count: 1000) + [0x80, 0x7E, 0x03, 0xE8]
                    + [UInt8](repeating: 0, count: 1000), 1009
            ),
        ]
        for (name, bytes, code) in cases {
            #expect(throws: WebSocketProtocolError.self, "\(name)") { try read(bytes, max: 1500) }
            do { _ = try read(bytes, max: 1500) } catch { #expect(error.closeCode == code, "\(name)") }
        }
        // A client's frame must be masked.
        #expect(throws: WebSocketProtocolError.self) { try read([0x81, 0x00], masked: true) }
    }

    @Test func randomBytesNeverTrap() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<5_000 {
            let bytes = (0..<Int.random(in: 0..<40, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            var reader = WebSocketReader(maxMessageBytes: 64, expectMasked: Bool.random(using: &rng))
            reader.append(bytes)
            while let _ = try? reader.next() {}
        }
    }
}

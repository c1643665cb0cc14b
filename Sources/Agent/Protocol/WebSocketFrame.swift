/// WebSocket frames (RFC 6455 §5.2), for the app proxy's client side
/// toward an app in a workspace: frames are read from the app's bytes and
/// written, masked, to them. Pure; the I/O is `AppWebSocketRelay`.
///
/// ```
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-------+-+-------------+-------------------------------+
/// |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
/// |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
/// |N|V|V|V|       |S|             |   (if payload len==126/127)   |
/// | |1|2|3|       |K|             |                               |
/// +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
/// |     Extended payload length continued, if payload len == 127  |
/// + - - - - - - - - - - - - - - - +-------------------------------+
/// |                               |Masking-key, if MASK set to 1  |
/// +-------------------------------+-------------------------------+
/// | Masking-key (continued)       |          Payload Data         |
/// +-------------------------------- - - - - - - - - - - - - - - - +
/// ```
public struct WebSocketFrame: Equatable, Sendable {
    /// §5.2 and §11.8; the other values are reserved.
    public enum Opcode: UInt8, Sendable {
        case continuation = 0x0
        case text = 0x1
        case binary = 0x2
        case close = 0x8
        case ping = 0x9
        case pong = 0xA

        /// §5.5: close, ping and pong.
        public var isControl: Bool { rawValue & 0x8 != 0 }
    }

    public var fin: Bool
    public var opcode: Opcode
    public var payload: [UInt8]

    public init(fin: Bool = true, opcode: Opcode, payload: [UInt8]) {
        self.fin = fin
        self.opcode = opcode
        self.payload = payload
    }

    /// The frame's bytes. A client masks every frame it sends (§5.3) with
    /// a fresh key; a server sends them unmasked (`maskKey` nil).
    public func encoded(maskKey: [UInt8]?) -> [UInt8] {
        precondition(maskKey == nil || maskKey?.count == 4, "a masking key is 4 bytes (RFC 6455 §5.3)")
        var out: [UInt8] = []
        out.reserveCapacity(payload.count + 14)
        out.append((fin ? 0x80 : 0) | opcode.rawValue)
        let maskBit: UInt8 = maskKey == nil ? 0 : 0x80
        switch payload.count {
        case 0...125:
            out.append(maskBit | UInt8(payload.count))
        case 126...0xFFFF:
            out.append(maskBit | 126)
            out.append(UInt8(payload.count >> 8))
            out.append(UInt8(payload.count & 0xFF))
        default:
            out.append(maskBit | 127)
            for shift in stride(from: 56, through: 0, by: -8) {
                out.append(UInt8(truncatingIfNeeded: payload.count >> shift))
            }
        }
        if let key = maskKey {
            out += key
            for (i, byte) in payload.enumerated() { out.append(byte ^ key[i & 3]) }
        } else {
            out += payload
        }
        return out
    }

    /// A close frame's payload (§5.5.1): a 2-byte status code and a UTF-8
    /// reason, cut to fit the 125 bytes a control frame may carry.
    public static func closePayload(code: UInt16, reason: String) -> [UInt8] {
        [UInt8(code >> 8), UInt8(code & 0xFF)] + Array(reason.utf8.prefix(123))
    }

    /// The status code and reason of a close frame's payload; code 1005
    /// ("no status received", §7.4.1) when it has none.
    public static func parseClose(_ payload: [UInt8]) -> (code: UInt16, reason: String) {
        guard payload.count >= 2 else { return (1005, "") }
        return (UInt16(payload[0]) << 8 | UInt16(payload[1]), String(decoding: payload[2...], as: UTF8.self))
    }
}

/// Why the byte stream is not WebSocket frames; the connection is failed
/// with close code 1002 (protocol error) or 1009 (too big), §7.4.1.
public struct WebSocketProtocolError: Error, Equatable, CustomStringConvertible {
    public let closeCode: UInt16
    public let description: String
}

/// Cuts a byte stream into frames and frames into messages (§5.4:
/// a text or binary frame, then continuation frames until FIN; control
/// frames may come between them).
public struct WebSocketReader: Sendable {
    /// The largest message kept (all its frames together).
    public let maxMessageBytes: Int
    /// Whether frames must be masked: true when reading a client's frames,
    /// false when reading a server's (§5.1: each side fails the other's
    /// wrong choice).
    public let expectMasked: Bool
    private var buffer: [UInt8] = []
    private var start = 0
    /// The opcode and bytes of a fragmented message so far.
    private var partial: (opcode: WebSocketFrame.Opcode, bytes: [UInt8])?

    public init(maxMessageBytes: Int, expectMasked: Bool) {
        self.maxMessageBytes = maxMessageBytes
        self.expectMasked = expectMasked
    }

    public mutating func append(_ bytes: [UInt8]) {
        if start > 0 && (start == buffer.count || start >= 64 << 10) {
            buffer.removeFirst(start)
            start = 0
        }
        buffer += bytes
    }

    /// The next complete message or control frame (`fin` true; text and
    /// binary messages carry all their fragments' bytes), nil until more
    /// bytes arrive.
    public mutating func next() throws(WebSocketProtocolError) -> WebSocketFrame? {
        while let frame = try nextFrame() {
            if frame.opcode.isControl { return frame }
            switch (frame.opcode, partial) {
            case (.continuation, nil):
                throw WebSocketProtocolError(
                    closeCode: 1002, description: "continuation frame with no message to continue")
            case (.continuation, .some(var p)):
                guard p.bytes.count + frame.payload.count <= maxMessageBytes else { throw tooBig() }
                p.bytes += frame.payload
                if frame.fin {
                    partial = nil
                    return WebSocketFrame(opcode: p.opcode, payload: p.bytes)
                }
                partial = p
            case (_, .some):
                throw WebSocketProtocolError(
                    closeCode: 1002, description: "new message before the last one's final fragment")
            case (_, nil):
                if frame.fin { return frame }
                partial = (frame.opcode, frame.payload)
            }
        }
        return nil
    }

    private func tooBig() -> WebSocketProtocolError {
        WebSocketProtocolError(closeCode: 1009, description: "message larger than \(maxMessageBytes) bytes")
    }

    /// One frame off the buffer, unmasked.
    private mutating func nextFrame() throws(WebSocketProtocolError) -> WebSocketFrame? {
        let available = buffer.count - start
        guard available >= 2 else { return nil }
        let b0 = buffer[start]
        let b1 = buffer[start + 1]
        guard b0 & 0x70 == 0 else {
            throw WebSocketProtocolError(closeCode: 1002, description: "reserved bits set with no extension negotiated")
        }
        guard let opcode = WebSocketFrame.Opcode(rawValue: b0 & 0x0F) else {
            throw WebSocketProtocolError(closeCode: 1002, description: "reserved opcode \(b0 & 0x0F)")
        }
        let fin = b0 & 0x80 != 0
        let masked = b1 & 0x80 != 0
        guard masked == expectMasked else {
            throw WebSocketProtocolError(
                closeCode: 1002, description: masked ? "a server's frame is masked" : "a client's frame is not masked")
        }
        var headerLength = 2
        var length = UInt64(b1 & 0x7F)
        if length == 126 {
            guard available >= 4 else { return nil }
            length = UInt64(buffer[start + 2]) << 8 | UInt64(buffer[start + 3])
            headerLength = 4
        } else if length == 127 {
            guard available >= 10 else { return nil }
            length = 0
            for i in 2..<10 { length = length << 8 | UInt64(buffer[start + i]) }
            headerLength = 10
        }
        if opcode.isControl && (!fin || length > 125) {
            throw WebSocketProtocolError(closeCode: 1002, description: "control frame fragmented or over 125 bytes")
        }
        guard length <= UInt64(maxMessageBytes) else { throw tooBig() }
        let maskOffset = headerLength
        if masked { headerLength += 4 }
        let total = headerLength + Int(length)
        guard available >= total else { return nil }
        var payload = Array(buffer[(start + headerLength)..<(start + total)])
        if masked {
            let key = buffer[(start + maskOffset)..<(start + maskOffset + 4)].map { $0 }
            for i in payload.indices { payload[i] ^= key[i & 3] }
        }
        start += total
        return WebSocketFrame(fin: fin, opcode: opcode, payload: payload)
    }
}

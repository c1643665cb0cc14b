import CryptoPrimitives
import NIOCore

/// Cuts frames off the front of a byte stream and checks each payload
/// against its layout (`Frame`). Pure: bytes in, frames or an error out.
///
/// Limits are enforced as soon as the 5-byte header is seen, before any of
/// the payload is buffered, so a peer cannot make us hold a huge frame:
/// every frame ≤ `maxFrameLength` (1 MiB), ClientInfo ≤ 256 KiB, packets
/// ≤ 64 KiB. Any violation is an error, after which the stream is not
/// resynchronisable and the caller closes that one connection.
public struct FrameDecoder: Sendable {
    public var maxFrameLength: Int

    public init(maxFrameLength: Int = DERPWire.maxFrameLength) {
        self.maxFrameLength = maxFrameLength
    }

    /// Decodes one frame from the front of `buffer`, consuming it. Returns
    /// nil, consuming nothing, when the frame is not complete yet.
    public func decode(_ buffer: inout ByteBuffer) throws -> Frame? {
        guard let type: UInt8 = buffer.getInteger(at: buffer.readerIndex),
            let length32: UInt32 = buffer.getInteger(at: buffer.readerIndex + 1)
        else { return nil }
        let length = Int(length32)
        let limit = Self.limit(forType: type, maxFrameLength: maxFrameLength)
        guard length <= limit else { throw DERPError.frameTooLarge(type, length: length, limit: limit) }
        guard buffer.readableBytes >= DERPWire.frameHeaderLength + length else { return nil }
        buffer.moveReaderIndex(forwardBy: DERPWire.frameHeaderLength)
        var payload = buffer.readSlice(length: length)!
        return try Self.parse(type: type, payload: &payload)
    }

    /// The most bytes a payload of this type may have.
    static func limit(forType type: UInt8, maxFrameLength: Int) -> Int {
        switch FrameType(rawValue: type) {
        case .clientInfo: min(DERPWire.maxClientInfoLength, maxFrameLength)
        case .sendPacket, .recvPacket: min(DERPWire.keyLength + DERPWire.maxPacketSize, maxFrameLength)
        case .forwardPacket: min(2 * DERPWire.keyLength + DERPWire.maxPacketSize, maxFrameLength)
        default: maxFrameLength
        }
    }

    /// Parses one payload whose type and length the header gave.
    public static func parse(type: UInt8, payload p: inout ByteBuffer) throws -> Frame {
        guard let known = FrameType(rawValue: type) else {
            return .unknown(type: type, length: p.readableBytes)
        }
        func need(_ count: Int, _ what: String) throws {
            guard p.readableBytes >= count else {
                throw DERPError.malformed(type, "\(p.readableBytes) bytes, \(what) needs \(count)")
            }
        }
        switch known {
        case .serverKey:
            try need(DERPWire.magic.count + DERPWire.keyLength, "magic and key")
            guard p.readBytes(length: DERPWire.magic.count)! == DERPWire.magic else {
                throw DERPError.malformed(type, "bad magic")
            }
            return .serverKey(p.readNodeKey()!)
        case .clientInfo:
            try need(DERPWire.keyLength + DERPWire.nonceLength, "key and nonce")
            let key = p.readNodeKey()!
            let nonce = p.readNonce24()!
            return .clientInfo(SealedClientInfo(clientKey: key, nonce: nonce, box: p))
        case .serverInfo:
            try need(DERPWire.nonceLength, "nonce")
            let nonce = p.readNonce24()!
            return .serverInfo(SealedServerInfo(nonce: nonce, box: p))
        case .sendPacket:
            try need(DERPWire.keyLength, "destination key")
            return .sendPacket(destination: p.readNodeKey()!, packet: p)
        case .recvPacket:
            try need(DERPWire.keyLength, "source key")
            return .recvPacket(source: p.readNodeKey()!, packet: p)
        case .keepAlive:
            return .keepAlive
        case .notePreferred:
            try need(1, "preferred flag")
            return .notePreferred(p.readInteger(as: UInt8.self)! != 0)
        case .peerGone:
            try need(DERPWire.keyLength, "key")
            let key = p.readNodeKey()!
            let reason = p.readInteger(as: UInt8.self).map(PeerGoneReason.init(rawValue:)) ?? .disconnected
            return .peerGone(key, reason: reason)
        case .peerPresent:
            try need(DERPWire.keyLength, "key")
            var present = PeerPresent(key: p.readNodeKey()!)
            if p.readableBytes >= 18 {
                let address = p.readBytes16()!
                present.endpoint = PeerEndpoint(address: address, port: p.readInteger(as: UInt16.self)!)
                if let flags = p.readInteger(as: UInt8.self) { present.flags = PeerPresentFlags(rawValue: flags) }
            }
            return .peerPresent(present)
        case .forwardPacket:
            try need(2 * DERPWire.keyLength, "source and destination keys")
            let source = p.readNodeKey()!
            return .forwardPacket(source: source, destination: p.readNodeKey()!, packet: p)
        case .watchConns:
            return .watchConns
        case .closePeer:
            try need(DERPWire.keyLength, "key")
            return .closePeer(p.readNodeKey()!)
        case .ping:
            try need(DERPWire.pingDataLength, "ping data")
            return .ping(PingData(p.readInteger(as: UInt64.self)!))
        case .pong:
            try need(DERPWire.pingDataLength, "pong data")
            return .pong(PingData(p.readInteger(as: UInt64.self)!))
        case .health:
            return .health(p.readString(length: p.readableBytes) ?? "")
        case .restarting:
            try need(8, "two durations")
            let reconnectIn = p.readInteger(as: UInt32.self)!
            return .restarting(reconnectInMilliseconds: reconnectIn, tryForMilliseconds: p.readInteger(as: UInt32.self)!)
        }
    }
}

extension ByteBuffer {
    /// Reads a 32-byte key, or nil (consuming nothing) when fewer remain.
    mutating func readNodeKey() -> NodeKey? {
        guard readableBytes >= 32 else { return nil }
        let raw = withUnsafeReadableBytes { bytes in
            Bytes32(filling: { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[0..<32])) })
        }
        moveReaderIndex(forwardBy: 32)
        return NodeKey(raw)
    }

    mutating func readNonce24() -> Nonce24? {
        guard readableBytes >= 24 else { return nil }
        let nonce = withUnsafeReadableBytes { try! Nonce24(UnsafeRawBufferPointer(rebasing: $0[0..<24])) }
        moveReaderIndex(forwardBy: 24)
        return nonce
    }

    mutating func readBytes16() -> Bytes16? {
        guard readableBytes >= 16 else { return nil }
        let value = withUnsafeReadableBytes { try! Bytes16(UnsafeRawBufferPointer(rebasing: $0[0..<16])) }
        moveReaderIndex(forwardBy: 16)
        return value
    }

    @discardableResult
    mutating func writeRawBytes(_ value: some RawBytes) -> Int {
        value.withUnsafeBytes { writeBytes($0) }
    }
}

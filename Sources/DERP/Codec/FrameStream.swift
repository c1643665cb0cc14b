import NIOCore

/// A DERP byte stream as it arrives in arbitrary chunks: appends chunks and
/// cuts whole frames off the front. Shared by the server's and the
/// client's connection handlers. Pure: no I/O.
///
/// Frames refer to the received bytes (slices); the buffer keeps only an
/// incomplete frame between chunks, so it never grows past one frame.
public struct FrameStream: Sendable {
    private var buffer: ByteBuffer?
    public let decoder: FrameDecoder

    public init(decoder: FrameDecoder = FrameDecoder()) { self.decoder = decoder }

    /// Bytes held that do not yet make a whole frame.
    public var bufferedBytes: Int { buffer?.readableBytes ?? 0 }

    /// Header plus payload length of the incomplete frame held, once its
    /// 5-byte header has arrived.
    public var pendingFrameLength: Int? {
        guard let held = buffer, let length: UInt32 = held.getInteger(at: held.readerIndex + 1) else { return nil }
        return DERPWire.frameHeaderLength + Int(length)
    }

    public mutating func append(_ bytes: inout ByteBuffer) {
        if buffer == nil { buffer = bytes } else { buffer!.writeBuffer(&bytes) }
    }

    /// The next whole frame, or nil when more bytes are needed. After an
    /// error the stream is unusable (the caller closes the connection).
    public mutating func next() throws -> Frame? {
        guard var bytes = buffer else { return nil }
        buffer = nil  // `bytes` is now the only owner: no copy on write below
        if let frame = try decoder.decode(&bytes) {
            if bytes.readableBytes > 0 { buffer = bytes }
            return frame
        }
        if bytes.readerIndex > 0 { bytes.discardReadBytes() }
        buffer = bytes
        return nil
    }

    public mutating func reset() { buffer = nil }
}

import NIOCore

/// A DERP byte stream as it arrives in arbitrary chunks: takes chunks and
/// cuts whole frames off the front. Shared by the server's and the
/// client's connection handlers. Pure: no I/O.
///
/// Frames refer to the received chunk (slices), so a chunk is never copied
/// as a whole. Only a frame that straddles two chunks is copied: its first
/// bytes go to a buffer of their own (`partial`), which the next chunk
/// completes. That keeps the received chunks free of writers, so slices of
/// them queued for other clients never force a copy-on-write, and the
/// stream never holds more than one incomplete frame.
public struct FrameStream: Sendable {
    /// The chunk being cut into frames; nil once cut up to its last whole frame.
    private var chunk: ByteBuffer?
    /// The beginning of a frame that the previous chunk ended inside.
    private var partial: ByteBuffer?
    public let decoder: FrameDecoder

    public init(decoder: FrameDecoder = FrameDecoder()) { self.decoder = decoder }

    /// Bytes held that do not yet make a whole frame.
    public var bufferedBytes: Int { (partial?.readableBytes ?? 0) + (chunk?.readableBytes ?? 0) }

    /// Header plus payload length of the incomplete frame held, once its
    /// 5-byte header has arrived.
    public var pendingFrameLength: Int? {
        guard let held = partial ?? chunk, let length: UInt32 = held.getInteger(at: held.readerIndex + 1) else { return nil }
        return DERPWire.frameHeaderLength + Int(length)
    }

    public mutating func append(_ bytes: inout ByteBuffer) {
        if chunk != nil {
            // Appended without being drained (the caller paused): rare, so
            // the simple way.
            chunk!.writeBuffer(&bytes)
        } else if partial != nil {
            complete(from: &bytes)
            if bytes.readableBytes > 0 { chunk = bytes }
        } else {
            chunk = bytes
        }
    }

    /// Moves from `bytes` into `partial` what its frame still lacks (the
    /// header first, then the payload), and no more. A length over the
    /// limit stops the copy; `next()` then throws for it.
    private mutating func complete(from bytes: inout ByteBuffer) {
        while bytes.readableBytes > 0 {
            let have = partial!.readableBytes
            let need: Int
            if have < DERPWire.frameHeaderLength {
                need = DERPWire.frameHeaderLength - have
            } else {
                let type: UInt8 = partial!.getInteger(at: partial!.readerIndex)!
                let length = Int(partial!.getInteger(at: partial!.readerIndex + 1, as: UInt32.self)!)
                guard length <= FrameDecoder.limit(forType: type, maxFrameLength: decoder.maxFrameLength) else { return }
                need = DERPWire.frameHeaderLength + length - have
            }
            guard need > 0 else { return }
            var piece = bytes.readSlice(length: min(need, bytes.readableBytes))!
            partial!.writeBuffer(&piece)
        }
    }

    /// The next whole frame, or nil when more bytes are needed. After an
    /// error the stream is unusable (the caller closes the connection).
    public mutating func next() throws -> Frame? {
        if var held = partial {
            partial = nil  // `held` is now the only owner: no copy on write
            if let frame = try decoder.decode(&held) {
                if held.readableBytes > 0 {
                    // Only after appends into an undrained chunk: keep order.
                    if var rest = chunk { held.writeBuffer(&rest) }
                    chunk = held
                }
                return frame
            }
            partial = held
            return nil
        }
        guard var bytes = chunk else { return nil }
        chunk = nil
        if let frame = try decoder.decode(&bytes) {
            if bytes.readableBytes > 0 { chunk = bytes }
            return frame
        }
        // The chunk ends inside a frame: copy that frame's beginning out,
        // with room for the whole frame (its length passed the limit check).
        let capacity = pendingLength(of: bytes) ?? DERPWire.frameHeaderLength
        var start = ByteBufferAllocator().buffer(capacity: max(capacity, bytes.readableBytes))
        start.writeBuffer(&bytes)
        partial = start
        return nil
    }

    private func pendingLength(of bytes: ByteBuffer) -> Int? {
        bytes.getInteger(at: bytes.readerIndex + 1, as: UInt32.self).map { DERPWire.frameHeaderLength + Int($0) }
    }

    public mutating func reset() {
        chunk = nil
        partial = nil
    }
}

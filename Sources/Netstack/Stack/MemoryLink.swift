/// A link double: what one stack sends, the other receives, in order, on a
/// background task (never re-entering the sender). It can add a fixed
/// one-way delay and drop a fraction of packets, for tests and benchmarks of
/// code built on `NetStack` over slow or lossy paths.
public final class MemoryLink: NetLink {
    struct Target {
        weak var stack: NetStack?
    }

    public let mtu: Int
    private let target: Locked<Target>
    private let packets: AsyncStream<(NetInstant, [[UInt8]])>.Continuation
    private let loss: Double

    /// - Parameters:
    ///   - delay: one-way latency added to every packet.
    ///   - loss: fraction of packets dropped, independently at random.
    public init(mtu: Int = 1500, delay: Duration = .zero, loss: Double = 0) {
        self.mtu = mtu
        self.loss = loss
        let target = Locked(Target())
        self.target = target
        let (stream, continuation) = AsyncStream<(NetInstant, [[UInt8]])>.makeStream(bufferingPolicy: .unbounded)
        packets = continuation
        Task.detached {
            for await (sentAt, batch) in stream {
                if delay > .zero {
                    let wait = sentAt + delay - NetInstant.now()
                    if wait > .zero { try? await Task.sleep(for: wait) }
                }
                guard let stack = target.withLock({ $0.stack }) else { continue }
                for p in batch { stack.input(p) }
            }
        }
    }

    deinit { packets.finish() }

    /// Where this link's packets arrive.
    public func deliver(to stack: NetStack) {
        target.withLock { $0.stack = stack }
    }

    public func send(_ packets: [[UInt8]]) {
        var batch = packets
        if loss > 0 { batch.removeAll { _ in Double.random(in: 0..<1) < loss } }
        guard !batch.isEmpty else { return }
        self.packets.yield((NetInstant.now(), batch))
    }
}

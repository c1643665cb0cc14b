/// A link double: what one stack sends, the other receives, in order, on a
/// background task (never re-entering the sender). For tests of code built
/// on `NetStack`, and as the reference for in-memory benchmarks.
public final class MemoryLink: NetLink {
    struct Target {
        weak var stack: NetStack?
    }

    public let mtu: Int
    private let target: Locked<Target>
    private let packets: AsyncStream<[[UInt8]]>.Continuation

    public init(mtu: Int = 1500) {
        self.mtu = mtu
        let target = Locked(Target())
        self.target = target
        let (stream, continuation) = AsyncStream<[[UInt8]]>.makeStream(bufferingPolicy: .unbounded)
        packets = continuation
        Task.detached {
            for await batch in stream {
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
        self.packets.yield(packets)
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A link double: what one stack sends, the other receives, in order, on the
/// link's own thread (never re-entering the sender). It can add a fixed
/// one-way delay and drop a fraction of packets, for tests and benchmarks of
/// code built on `NetStack` over slow or lossy paths.
///
/// Delivery is batched the way a NIC's interrupt coalescing batches it:
/// whatever was sent while the receiving thread was busy is handed to the
/// stack in one `input` call, so one lock, one pass of ACK generation and one
/// wake-up serve many packets.
public final class MemoryLink: NetLink {
    public let mtu: Int
    private let queue: DeliveryQueue
    private let loss: Double

    /// - Parameters:
    ///   - delay: one-way latency added to every packet.
    ///   - loss: fraction of packets dropped, independently at random.
    public init(mtu: Int = 1500, delay: Duration = .zero, loss: Double = 0) {
        self.mtu = mtu
        self.loss = loss
        let queue = DeliveryQueue(delay: delay)
        self.queue = queue
        startThread { queue.run() }
    }

    deinit { queue.close() }

    /// Where this link's packets arrive.
    public func deliver(to stack: NetStack) {
        queue.setTarget(stack)
    }

    public func send(_ packets: [[UInt8]]) {
        var batch = packets
        if loss > 0 { batch.removeAll { _ in Double.random(in: 0..<1) < loss } }
        guard !batch.isEmpty else { return }
        queue.push(batch)
    }
}

/// The packets in flight on one `MemoryLink`, and the thread that delivers them.
private final class DeliveryQueue: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let delay: Duration
    // Guarded by `mutex`:
    private var pending: [(due: NetInstant, packets: [[UInt8]])] = []
    private var head = 0
    private var closed = false
    private weak var target: NetStack?

    init(delay: Duration) {
        self.delay = delay
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        // Deadlines are on the monotonic clock, as `NetInstant` is.
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    func setTarget(_ stack: NetStack) {
        pthread_mutex_lock(mutex)
        target = stack
        pthread_mutex_unlock(mutex)
    }

    func push(_ packets: [[UInt8]]) {
        let due = delay > .zero ? NetInstant.now() + delay : .zero
        pthread_mutex_lock(mutex)
        let wasEmpty = head == pending.count
        pending.append((due, packets))
        pthread_mutex_unlock(mutex)
        if wasEmpty { pthread_cond_signal(condition) }
    }

    func close() {
        pthread_mutex_lock(mutex)
        closed = true
        pthread_mutex_unlock(mutex)
        pthread_cond_signal(condition)
    }

    /// The delivery thread: takes every batch that is due, hands them to the
    /// stack in one call, and sleeps until the next is due or one arrives.
    func run() {
        var taken: [[UInt8]] = []
        while true {
            pthread_mutex_lock(mutex)
            var stack: NetStack?
            while true {
                if closed {
                    pthread_mutex_unlock(mutex)
                    return
                }
                if head < pending.count {
                    let now = delay > .zero ? NetInstant.now() : .zero
                    while head < pending.count && pending[head].due <= now {
                        taken.append(contentsOf: pending[head].packets)
                        head += 1
                    }
                    if head == pending.count {
                        pending.removeAll(keepingCapacity: true)
                        head = 0
                    }
                    if !taken.isEmpty { break }
                    var deadline = Self.monotonicTimespec(pending[head].due)
                    pthread_cond_timedwait(condition, mutex, &deadline)
                } else {
                    pthread_cond_wait(condition, mutex)
                }
            }
            stack = target
            pthread_mutex_unlock(mutex)
            stack?.input(taken)
            taken.removeAll(keepingCapacity: true)
        }
    }

    /// `NetInstant` runs on `ContinuousClock`; converts a point on it to a CLOCK_MONOTONIC timespec.
    private static func monotonicTimespec(_ instant: NetInstant) -> timespec {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let wait = Swift.max((instant - NetInstant.now()).nanoseconds, 0)
        var ns = Int64(now.tv_nsec) + wait
        var s = Int64(now.tv_sec) + ns / 1_000_000_000
        ns %= 1_000_000_000
        if ns < 0 {
            ns += 1_000_000_000
            s -= 1
        }
        return timespec(tv_sec: Int(s), tv_nsec: Int(ns))
    }
}

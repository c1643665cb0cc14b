import CMeshLinux
import CryptoPrimitives
import Dispatch
import Synchronization
import WireGuardCore

#if canImport(Glibc)
    import Glibc
#endif

/// The thin shell that runs a `WireGuardCore.Interface` on real I/O: one
/// UDP socket, one packet end (TUN or in-process queue), and four threads.
///
///     receive:   recvmmsg batch → [lock] prepare → open in parallel →
///                [lock] finish in arrival order → packet end
///     handshake: handshake messages queued by receive (bounded); the queue
///                length is the core's "under load" signal (§5.3)
///     send:      packet end batch → [lock] route + counters → seal in
///                parallel → sendmmsg in order
///     timers:    sleeps until the core's next deadline, fires it
///
/// The core's state sits behind one mutex, held only for the cheap steps;
/// the AEAD work (most of the cost per packet) runs outside it, spread over
/// the cores, and each batch keeps its order, so per-peer order is kept.
public final class WireGuardDevice: @unchecked Sendable {
    static let batchSize = 64

    let core: Mutex<Interface>
    let settings: Mutex<UAPI.DeviceSettings>
    let end: PacketEnd
    private let socket: Mutex<DeviceUDPSocket>
    private let running = Atomic<Bool>(true)
    private let handshakes = Mutex<[(bytes: [UInt8], source: WireGuardCore.Endpoint)]>([])
    private let handshakeReady = Condition()
    private let stoppedThreads = Atomic<Int>(0)
    private static let threadCount = 4
    private let workers: Int
    /// Mesh's datagram path (disco, STUN, DERP); nil: the plain socket.
    let datagramPath = Mutex<(any DatagramPath)?>(nil)

    /// Starts with a random private key ("no key" for the UAPI) unless one
    /// is given, like wireguard-go before `wg set … private-key`.
    public init(end: PacketEnd, listenPort: UInt16 = 0, privateKey: consuming X25519.PrivateKey? = nil) throws {
        let hasKey = privateKey != nil
        var interface = Interface(
            privateKey: privateKey ?? X25519.PrivateKey(), wallClockOffset: DeviceClock.wallClockOffset())
        interface.mtu = end.mtu
        core = Mutex(interface)
        let udp = try DeviceUDPSocket(port: listenPort)
        socket = Mutex(udp)
        settings = Mutex(UAPI.DeviceSettings(listenPort: udp.port, hasPrivateKey: hasKey))
        self.end = end
        workers = max(1, min(8, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))))
    }

    public var listenPort: UInt16 { settings.withLock { $0.listenPort } }

    /// Runs `body` on the core (for configuration in-process).
    public func withInterface<R>(_ body: (inout Interface) throws -> R) rethrows -> R {
        let result = try core.withLock { try body(&$0) }
        flushOutgoing()
        return result
    }

    public var drops: DropCounters { core.withLock { $0.drops } }

    // MARK: lifecycle

    public func start() {
        spawn("wg-receive") { $0.receiveLoop() }
        spawn("wg-handshake") { $0.handshakeLoop() }
        spawn("wg-send") { $0.sendLoop() }
        spawn("wg-timers") { $0.timerLoop() }
    }

    /// Stops the threads (each notices within ~100 ms) and waits for them.
    public func stop() {
        running.store(false, ordering: .releasing)
        handshakeReady.signal()
        while stoppedThreads.load(ordering: .acquiring) < Self.threadCount { usleepMilliseconds(5) }
    }

    private func spawn(_ name: String, _ body: @escaping @Sendable (WireGuardDevice) -> Void) {
        startThread { [self] in
            body(self)
            stoppedThreads.add(1, ordering: .releasing)
        }
    }

    private var isRunning: Bool { running.load(ordering: .acquiring) }

    // MARK: UAPI

    /// Serves one UAPI request (`get=1` or `set=1` with its lines).
    public func handleUAPI(_ request: String) -> String {
        let lines = request.split(separator: "\n", omittingEmptySubsequences: false)
        guard let first = lines.first else { return "errno=22\n\n" }
        switch first {
        case "get=1":
            return core.withLock { c in settings.withLock { UAPI.get(c, settings: $0) } }
        case "set=1":
            let now = DeviceClock.now()
            var newPort: UInt16?
            let result: Result<Void, UAPI.SetError> = core.withLock { c in
                settings.withLock { s in
                    let oldPort = s.listenPort
                    do throws(UAPI.SetError) {
                        try UAPI.set(Array(lines.dropFirst()), to: &c, settings: &s, now: now)
                    } catch {
                        return .failure(error)
                    }
                    if s.listenPort != oldPort { newPort = s.listenPort }
                    return .success(())
                }
            }
            if let newPort { rebind(port: newPort) }
            flushOutgoing()
            switch result {
            case .success: return "errno=0\n\n"
            case .failure(let e): return "errno=\(e.errno)\n\n"
            }
        default:
            return "errno=22\n\n"
        }
    }

    /// Moves to a new UDP port (`wg set … listen-port`); the receive thread
    /// picks up the new socket at its next batch.
    private func rebind(port: UInt16) {
        guard let fresh = try? DeviceUDPSocket(port: port) else { return }
        socket.withLock { $0 = fresh }
        settings.withLock { $0.listenPort = fresh.port }
    }

    var currentSocket: DeviceUDPSocket { socket.withLock { $0 } }

    func flushOutgoing() {
        let out = core.withLock { $0.takeOutgoing() }
        send(out, on: currentSocket)
    }

    // MARK: receive

    private func receiveLoop() {
        let batch = PacketBatch(count: Self.batchSize)
        var datagrams: [DeviceUDPSocket.Received] = []
        var jobs: [(datagram: Int, job: WireGuardCore.OpenJob)] = []
        var deliveries: [(slot: Int, range: Range<Int>)] = []
        // With UDP GRO one slot may hold up to 64 KiB of datagrams.
        let maxDatagrams = Self.batchSize * 64
        let plaintexts = UnsafeMutableBufferPointer<Range<Int>?>.allocate(capacity: maxDatagrams)
        defer { plaintexts.deallocate() }
        while isRunning {
            let udp = currentSocket
            udp.receive(into: batch, datagrams: &datagrams, timeoutMilliseconds: 100)
            filterReceived(&datagrams, in: batch)
            guard !datagrams.isEmpty else { continue }
            let now = DeviceClock.now()
            jobs.removeAll(keepingCapacity: true)
            var queuedHandshakes = false
            var refused = 0
            let outgoing: [OutgoingDatagram] = core.withLock { c in
                for (k, d) in datagrams.enumerated() {
                    let bytes = UnsafeRawBufferPointer(rebasing: batch.slot(d.slot)[d.range])
                    if let first = bytes.first, first != 4, bytes.count >= 4 {
                        // Handshake messages go to their own queue and thread.
                        let accepted = handshakes.withLock { q -> Bool in
                            guard q.count < Implementation.maxQueuedIncomingHandshakes else { return false }
                            q.append((Array(bytes), d.source))
                            return true
                        }
                        queuedHandshakes = queuedHandshakes || accepted
                        if !accepted { refused += 1 }
                        continue
                    }
                    switch c.prepareDecapsulation(bytes, source: d.source, now: now) {
                    case .open(let job): jobs.append((k, job))
                    case .done: break
                    }
                }
                if refused > 0 { c.countDrops(.handshakeQueueFull, refused) }
                return c.takeOutgoing()
            }
            if queuedHandshakes { handshakeReady.signal() }
            send(outgoing, on: udp)
            guard !jobs.isEmpty else { continue }

            // Decrypt in parallel, in place.
            let jobList = jobs
            let list = datagrams
            parallel(jobList.count) { k in
                let (index, job) = jobList[k]
                plaintexts[k] = job.open(batch.slot(list[index].slot), datagram: list[index].range)
            }

            // Finish in arrival order; deliver.
            deliveries.removeAll(keepingCapacity: true)
            let more: [OutgoingDatagram] = core.withLock { c in
                for (k, (index, job)) in jobList.enumerated() {
                    let d = list[index]
                    let result = c.finishDecapsulation(
                        job, buffer: UnsafeRawBufferPointer(batch.slot(d.slot)), plaintext: plaintexts[k],
                        datagramSize: d.range.count, source: d.source, now: now)
                    if case .tunnel(_, let range) = result { deliveries.append((d.slot, range)) }
                }
                return c.takeOutgoing()
            }
            let delivered = deliveries
            end.writePackets(count: delivered.count) { k in
                UnsafeRawBufferPointer(rebasing: batch.slot(delivered[k].slot)[delivered[k].range])
            }
            send(more, on: udp)
        }
    }

    private func handshakeLoop() {
        while isRunning {
            handshakeReady.wait(milliseconds: 100)
            let items = handshakes.withLock { q in
                let all = q
                q.removeAll(keepingCapacity: true)
                return all
            }
            guard !items.isEmpty else { continue }
            let now = DeviceClock.now()
            core.withLock { $0.reportHandshakeBacklog(items.count, now: now) }
            for var item in items {
                // One message per lock hold, so data never waits long.
                let out: [OutgoingDatagram] = core.withLock { c in
                    _ = item.bytes.withUnsafeMutableBytes {
                        c.decapsulate($0, datagram: 0..<$0.count, source: item.source, now: DeviceClock.now())
                    }
                    return c.takeOutgoing()
                }
                send(out, on: currentSocket)
                if !isRunning { break }
            }
        }
    }

    // MARK: send

    private func sendLoop() {
        let batch = PacketBatch(count: Self.batchSize)
        var jobs: [(slot: Int, job: WireGuardCore.SealJob)] = []
        let sealed = UnsafeMutableBufferPointer<Range<Int>?>.allocate(capacity: Self.batchSize)
        let coalesced = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_536, alignment: 64)
        defer {
            sealed.deallocate()
            coalesced.deallocate()
        }
        while isRunning {
            let lengths = end.readPackets(
                maximum: Self.batchSize, timeoutMilliseconds: 100, into: { batch.slot($0) },
                headroom: PacketBatch.headroom)
            guard !lengths.isEmpty else { continue }
            let now = DeviceClock.now()
            jobs.removeAll(keepingCapacity: true)
            let outgoing: [OutgoingDatagram] = core.withLock { c in
                for (i, length) in lengths.enumerated() {
                    batch.offsets[i] = PacketBatch.headroom
                    batch.lengths[i] = length
                    if case .seal(let job) = c.prepareEncapsulation(batch.contents(i), now: now) {
                        jobs.append((i, job))
                    }
                }
                return c.takeOutgoing()
            }
            let udp = currentSocket
            send(outgoing, on: udp)  // handshake initiations first
            guard !jobs.isEmpty else { continue }
            let jobList = jobs
            parallel(jobList.count) { k in
                let (slot, job) = jobList[k]
                let start = batch.offsets[slot]
                sealed[k] = job.seal(batch.slot(slot), packet: start..<(start + batch.lengths[slot]))
            }
            var datagrams: [(UnsafeRawBufferPointer, WireGuardCore.Endpoint)] = []
            datagrams.reserveCapacity(jobList.count)
            for (k, (slot, job)) in jobList.enumerated() {
                guard let range = sealed[k] else { continue }
                datagrams.append((UnsafeRawBufferPointer(rebasing: batch.slot(slot)[range]), job.endpoint))
            }
            send(datagrams, scratch: coalesced, on: udp)
        }
    }

    // MARK: timers

    private func timerLoop() {
        while isRunning {
            let now = DeviceClock.now()
            let deadline = core.withLock { $0.nextTimerDeadline }
            if let deadline, deadline <= now {
                let out: [OutgoingDatagram] = core.withLock { c in
                    c.updateTimers(now: now)
                    return c.takeOutgoing()
                }
                send(out, on: currentSocket)
                continue
            }
            let wait = deadline.map { min(100, max(1, Int(($0 - now).nanoseconds / 1_000_000))) } ?? 100
            usleepMilliseconds(wait)
        }
    }

    /// Runs `body(0..<count)` split over the worker cores; small batches
    /// stay on the calling thread (a handoff costs more than a few AEADs).
    private func parallel(_ count: Int, _ body: (Int) -> Void) {
        if workers == 1 || count < 8 {
            for k in 0..<count { body(k) }
            return
        }
        let chunks = min(workers, count)
        withoutActuallyEscaping(body) { body in
            let box = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                let lower = count * c / chunks
                let upper = count * (c + 1) / chunks
                for k in lower..<upper { box.value(k) }
            }
        }
    }
}

struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

import CryptoPrimitives

/// One session's transport keys (whitepaper §5.4.5), named by the index we
/// chose (`localIndex`, what the peer writes as receiver) and the peer's.
package struct Keypair: Sendable {
    package let localIndex: UInt32
    package let remoteIndex: UInt32
    package let sendingKey: Bytes32
    package let receivingKey: Bytes32
    package var sendingCounter: UInt64 = 0
    package var replay = ReplayWindow()
    package let birth: Instant
    /// Only the initiator of a session rekeys it on age (§6.2), so the two
    /// sides do not both start handshakes at the same moment.
    package let isInitiator: Bool

    package func canSend(now: Instant) -> Bool {
        sendingCounter < Protocol.rejectAfterMessages && !now.isAtLeast(Nanoseconds.rejectAfterTime, after: birth)
    }

    package func canReceive(now: Instant) -> Bool {
        !now.isAtLeast(Nanoseconds.rejectAfterTime, after: birth)
    }
}

/// The three keypair slots of §6.1 and the kernel's `noise_keypairs`.
///
/// The initiator uses a new keypair at once: it becomes `current` and the
/// old current is kept as `previous` for packets still in flight. The
/// responder may not send on a new keypair until the initiator has used it
/// (key confirmation), so it waits in `next` and moves to `current` on the
/// first packet that arrives on it.
package struct Keypairs: Sendable {
    package var previous: Keypair?
    package var current: Keypair?
    package var next: Keypair?

    /// Installs a new keypair; returns the local indices of keypairs dropped.
    package mutating func install(_ keypair: Keypair) -> [UInt32] {
        var dropped: [UInt32] = []
        if keypair.isInitiator {
            if let n = next {
                next = nil
                if let p = previous { dropped.append(p.localIndex) }
                if let c = current { dropped.append(c.localIndex) }
                previous = n
            } else {
                if let p = previous { dropped.append(p.localIndex) }
                previous = current
            }
            current = keypair
        } else {
            if let n = next { dropped.append(n.localIndex) }
            if let p = previous { dropped.append(p.localIndex) }
            next = keypair
            previous = nil
        }
        return dropped
    }

    /// A packet authenticated on `next`: confirm it. Returns the local index
    /// of the keypair pushed out, if any, and whether a rotation happened.
    package mutating func confirmNext(localIndex: UInt32) -> (rotated: Bool, dropped: UInt32?) {
        guard let n = next, n.localIndex == localIndex else { return (false, nil) }
        let dropped = previous?.localIndex
        previous = current
        current = n
        next = nil
        return (true, dropped)
    }

    /// Applies `body` to the keypair with this local index, if any.
    package mutating func withKeypair<R>(localIndex: UInt32, _ body: (inout Keypair) -> R) -> R? {
        if current?.localIndex == localIndex { return body(&current!) }
        if next?.localIndex == localIndex { return body(&next!) }
        if previous?.localIndex == localIndex { return body(&previous!) }
        return nil
    }

    package func keypair(localIndex: UInt32) -> Keypair? {
        if current?.localIndex == localIndex { return current }
        if next?.localIndex == localIndex { return next }
        if previous?.localIndex == localIndex { return previous }
        return nil
    }

    package var allIndices: [UInt32] { [previous, current, next].compactMap { $0?.localIndex } }

    package mutating func clear() -> [UInt32] {
        let all = allIndices
        previous = nil
        current = nil
        next = nil
        return all
    }
}

import Glibc

/// The descriptors one connection's loop waits on in `poll(2)`, kept from
/// turn to turn:
///
///     slot 0        the SSH session's socket (POLLIN, and POLLOUT while
///                   libssh holds output the socket did not take)
///     slots 1…n     channels' descriptors (a child's pipes or pty, a
///                   forwarded socket, a pidfd) and forwarding listeners,
///                   each with its owner: an index into the connection's
///                   handlers, or `PollSet.listener`
///
/// Each turn the loop describes what it wants now (`begin`, `add`) and
/// `commit` keeps the previous array when nothing changed, which is the
/// common case during a transfer. Both arrays keep their storage, so a
/// turn allocates nothing.
struct PollSet {
    /// The owner of a listener's slot.
    static let listener = -1

    private(set) var slots: [pollfd] = []
    private(set) var owners: [Int] = []
    private var next: [pollfd] = []
    private var nextOwners: [Int] = []
    /// Where the current owner's entries start in `next` (an owner's
    /// descriptors may coincide, e.g. a pty master is source and sink).
    private var ownerStart = 0

    var count: Int { slots.count }

    mutating func begin(session fd: Int32, events: Int16) {
        next.removeAll(keepingCapacity: true)
        nextOwners.removeAll(keepingCapacity: true)
        next.append(pollfd(fd: fd, events: events, revents: 0))
        nextOwners.append(Self.listener)
        ownerStart = 1
    }

    /// Adds `events` for `fd` on behalf of `owner`; the owner's calls come
    /// together.
    mutating func add(_ fd: Int32, _ events: Int16, owner: Int) {
        if nextOwners.last != owner { ownerStart = next.count }
        for i in ownerStart..<next.count where next[i].fd == fd {
            next[i].events |= events
            return
        }
        next.append(pollfd(fd: fd, events: events, revents: 0))
        nextOwners.append(owner)
    }

    /// Makes the described set current.
    mutating func commit() {
        var same = slots.count == next.count && owners == nextOwners
        if same {
            for i in 0..<slots.count where slots[i].fd != next[i].fd || slots[i].events != next[i].events {
                same = false
                break
            }
        }
        if same {
            for i in 0..<slots.count { slots[i].revents = 0 }
        } else {
            swap(&slots, &next)
            swap(&owners, &nextOwners)
        }
    }

    /// Waits up to `milliseconds`; returns how many slots have events.
    mutating func wait(milliseconds: Int32) -> Int32 {
        slots.withUnsafeMutableBufferPointer { poll($0.baseAddress, nfds_t($0.count), milliseconds) }
    }

    func revents(_ slot: Int) -> Int16 { slots[slot].revents }
    func fd(_ slot: Int) -> Int32 { slots[slot].fd }
}

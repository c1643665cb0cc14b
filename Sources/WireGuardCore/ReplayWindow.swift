/// The receive counter check of whitepaper §5.4.6, as the sliding bitmap of
/// RFC 6479: 8192 bits in 128 words used as a ring. A window of
/// 8192 − 64 = 8128 counters behind the highest one seen is accepted once
/// each; the spare word lets the window advance by clearing whole words
/// instead of shifting bits.
///
/// Counters are stored 1-based (`counter + 1`) so that a fresh window, whose
/// highest is 0, still accepts counter 0; this is the kernel's
/// `counter_validate` arithmetic, and its self-test runs in our tests.
public struct ReplayWindow: Sendable {
    static let bitsTotal = 8192
    static let wordBits = 64
    static let words = bitsTotal / wordBits
    /// Counters this far behind the highest are still accepted.
    public static let windowSize = bitsTotal - wordBits

    /// One past the highest counter accepted so far.
    private var highest: UInt64 = 0
    private var bitmap = [UInt64](repeating: 0, count: words)

    public init() {}

    /// Whether `counter` is new and in the window; if so, marks it seen.
    /// Call only after the packet has authenticated.
    public mutating func validate(_ counter: UInt64) -> Bool {
        guard highest < Protocol.rejectAfterMessages + 1, counter < Protocol.rejectAfterMessages else { return false }
        let theirs = counter + 1
        if UInt64(Self.windowSize) + theirs < highest { return false }
        let index = Int(truncatingIfNeeded: theirs >> 6)
        if theirs > highest {
            let currentIndex = Int(truncatingIfNeeded: highest >> 6)
            let top = min(index - currentIndex, Self.words)
            if top > 0 {
                for i in 1...top { bitmap[(i + currentIndex) & (Self.words - 1)] = 0 }
            }
            highest = theirs
        }
        let word = index & (Self.words - 1)
        let bit: UInt64 = 1 << (theirs & 63)
        if bitmap[word] & bit != 0 { return false }
        bitmap[word] |= bit
        return true
    }

    /// Whether `counter` would be accepted, without marking it (a cheap
    /// pre-check before spending a decryption on it).
    public func wouldAccept(_ counter: UInt64) -> Bool {
        guard counter < Protocol.rejectAfterMessages else { return false }
        let theirs = counter + 1
        if UInt64(Self.windowSize) + theirs < highest { return false }
        if theirs > highest { return true }
        let word = Int(truncatingIfNeeded: theirs >> 6) & (Self.words - 1)
        return bitmap[word] & (1 << (theirs & 63)) == 0
    }
}

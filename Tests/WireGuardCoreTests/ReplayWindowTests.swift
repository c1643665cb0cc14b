import Testing
import WireGuardCore

/// The Linux kernel's counter self-test (drivers/net/wireguard/selftest/
/// counter.c), step for step.
@Suite struct ReplayWindowTests {
    static let windowSize = UInt64(ReplayWindow.windowSize)
    static let limit = windowSize + 1  // T_LIM
    static let reject = Protocol.rejectAfterMessages

    @Test func windowIsAtLeast8128() {
        #expect(ReplayWindow.windowSize >= 8128)
    }

    @Test func kernelSequence() {
        let L = Self.limit
        let R = Self.reject
        let steps: [(UInt64, Bool)] = [
            (0, true), (1, true), (1, false), (9, true), (8, true), (7, true), (7, false),
            (L, true), (L - 1, true), (L - 1, false), (L - 2, true), (2, true), (2, false),
            (L + 16, true), (3, false), (L + 16, false), (L * 4, true), (L * 4 - (L - 1), true),
            (10, false), (L * 4 - L, false), (L * 4 - (L + 1), false), (L * 4 - (L - 2), true),
            (L * 4 + 1 - L, false), (0, false), (R, false), (R - 1, true), (R, false), (R - 1, false),
            (R - 2, true), (R + 1, false), (R + 2, false), (R - 2, false), (R - 3, true), (0, false),
        ]
        var window = ReplayWindow()
        for (n, (counter, expected)) in steps.enumerated() {
            do { let r = window.validate(counter); #expect(r == expected, "step \(n + 1): counter \(counter)") }
        }
    }

    @Test func bulkAscendingThenZero() {
        var w = ReplayWindow()
        for i in 1...Self.windowSize { do { let r = w.validate(i); #expect(r) } }
        do { let r = w.validate(0); #expect(r) }
        do { let r = w.validate(0); #expect(!r) }
    }

    @Test func bulkAscendingFromTwoThenOne() {
        var w = ReplayWindow()
        for i in 2...(Self.windowSize + 1) { do { let r = w.validate(i); #expect(r) } }
        do { let r = w.validate(1); #expect(r) }
        do { let r = w.validate(0); #expect(!r) }
    }

    @Test func bulkDescendingToZero() {
        var w = ReplayWindow()
        var ok = true
        for i in stride(from: Self.windowSize, through: 0, by: -1) { ok = ok && w.validate(i) }
        #expect(ok)
    }

    @Test func bulkDescendingToOneThenZeroFails() {
        var w = ReplayWindow()
        var ok = true
        for i in stride(from: Self.windowSize + 1, through: 1, by: -1) { ok = ok && w.validate(i) }
        #expect(ok)
        do { let r = w.validate(0); #expect(!r) }
    }

    @Test func bulkDescendingThenTop() {
        var w = ReplayWindow()
        var ok = true
        for i in stride(from: Self.windowSize, through: 1, by: -1) { ok = ok && w.validate(i) }
        #expect(ok)
        do { let r = w.validate(Self.windowSize + 1); #expect(r) }
        do { let r = w.validate(0); #expect(!r) }
    }

    @Test func bulkDescendingThenZeroThenTop() {
        var w = ReplayWindow()
        var ok = true
        for i in stride(from: Self.windowSize, through: 1, by: -1) { ok = ok && w.validate(i) }
        #expect(ok)
        do { let r = w.validate(0); #expect(r) }
        do { let r = w.validate(Self.windowSize + 1); #expect(r) }
    }

    /// `wouldAccept` agrees with `validate` and marks nothing.
    @Test func preCheckAgreesAndDoesNotMark() {
        var w = ReplayWindow()
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let c = UInt64.random(in: 0..<30_000, using: &rng)
            let predicted = w.wouldAccept(c)
            #expect(predicted == w.wouldAccept(c))
            do { let r = w.validate(c); #expect(r == predicted) }
        }
    }
}

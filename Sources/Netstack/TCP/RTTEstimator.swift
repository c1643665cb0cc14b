/// Retransmission timeout per RFC 6298, in nanoseconds.
///
/// §2: before any sample RTO is 1 s; the first sample R sets SRTT = R,
/// RTTVAR = R/2; later ones RTTVAR = 3/4 RTTVAR + 1/4 |SRTT − R|,
/// SRTT = 7/8 SRTT + 1/8 R; RTO = SRTT + max(G, 4 RTTVAR), clamped to
/// [minimum, maximum]. §5.5: each expiry doubles RTO (the backoff), and a new
/// sample after that resets it.
package struct RTTEstimator {
    package private(set) var smoothed: Int64?
    private var variance: Int64 = 0
    private var backoffShift = 0
    private let minimum: Int64
    private let maximum: Int64
    private static let granularity: Int64 = 1_000_000  // 1 ms clock granularity G

    package init(minimum: Duration, maximum: Duration) {
        self.minimum = minimum.nanoseconds
        self.maximum = maximum.nanoseconds
    }

    package mutating func sample(_ rtt: Int64) {
        let r = Swift.max(rtt, 0)
        if let s = smoothed {
            variance = (3 * variance + abs(s - r)) / 4
            smoothed = (7 * s + r) / 8
        } else {
            smoothed = r
            variance = r / 2
        }
        backoffShift = 0
    }

    /// The current timeout, including backoff.
    package var timeout: Duration {
        let base: Int64
        if let s = smoothed {
            base = s + Swift.max(Self.granularity, 4 * variance)
        } else {
            base = TCPConstants.initialRTO.nanoseconds
        }
        let clamped = Swift.min(Swift.max(base, minimum), maximum)
        let backedOff = clamped << Swift.min(backoffShift, 16)
        return .nanoseconds(Swift.min(backedOff, maximum))
    }

    package mutating func backOff() { backoffShift += 1 }
    package var backoffCount: Int { backoffShift }
}

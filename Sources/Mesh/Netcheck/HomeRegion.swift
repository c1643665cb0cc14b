/// Choosing the home DERP region from measured latencies: a pure function,
/// sticky unless another region is clearly better (Tailscale's netcheck
/// keeps the old home unless the new one is ⅔ its latency or less, so a
/// node does not flap between two similar regions and strand its peers).
public enum HomeRegion {
    /// - Parameters:
    ///   - current: the home now (nil at start).
    ///   - latencies: the latest measurement per region; regions that did not
    ///     answer are absent.
    /// - Returns: the region to use as home; `current` when nothing answered.
    public static func choose(current: Int?, latencies: [Int: Duration]) -> Int? {
        guard let (fastest, fastestLatency) = latencies.min(by: { ($0.value, $0.key) < ($1.value, $1.key) }) else {
            return current
        }
        guard let current, let currentLatency = latencies[current] else { return fastest }
        if fastest == current { return current }
        let clearlyFaster =
            fastestLatency.nanoseconds * PathConstants.homeSwitchDenominator
            < currentLatency.nanoseconds * PathConstants.homeSwitchNumerator
        let enoughGain = currentLatency - fastestLatency >= PathConstants.homeSwitchMinimumGain
        return clearlyFaster && enoughGain ? fastest : current
    }
}

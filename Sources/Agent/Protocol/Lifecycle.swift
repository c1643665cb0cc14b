/// The agent's lifecycle, as in Coder's agent API v2:
///
/// ```
/// created ──▶ starting ──┬──▶ ready ──────────┐
///                        ├──▶ start_error ────┤
///                        └──▶ start_timeout ──┤
///                                             ▼
///                                      shutting_down ──┬──▶ off
///                                                      ├──▶ shutdown_error
///                                                      └──▶ shutdown_timeout
/// ```
///
/// `shutting_down` may also follow `created` or `starting` (a stop signal
/// during startup). A new agent process (new `session`) starts again at
/// `created`.
public enum LifecycleState: String, Codable, Sendable, CaseIterable {
    case created
    case starting
    case ready
    case startError = "start_error"
    case startTimeout = "start_timeout"
    case shuttingDown = "shutting_down"
    case off
    case shutdownError = "shutdown_error"
    case shutdownTimeout = "shutdown_timeout"

    /// Whether `self → next` is an edge of the diagram above.
    public func canTransition(to next: LifecycleState) -> Bool {
        switch (self, next) {
        case (.created, .starting): true
        case (.starting, .ready), (.starting, .startError), (.starting, .startTimeout): true
        case (.created, .shuttingDown), (.starting, .shuttingDown), (.ready, .shuttingDown),
            (.startError, .shuttingDown), (.startTimeout, .shuttingDown):
            true
        case (.shuttingDown, .off), (.shuttingDown, .shutdownError), (.shuttingDown, .shutdownTimeout): true
        default: false
        }
    }

    /// Startup has finished, well or not.
    public var isStartupDone: Bool {
        switch self {
        case .ready, .startError, .startTimeout: true
        default: false
        }
    }

    /// No further transition is possible in this session.
    public var isTerminal: Bool {
        switch self {
        case .off, .shutdownError, .shutdownTimeout: true
        default: false
        }
    }
}

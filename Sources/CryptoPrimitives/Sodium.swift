import CSodium

/// libsodium must be initialised once before use (it picks the fastest
/// implementations for this CPU and seeds its random generator). A global
/// `let` runs its initialiser exactly once, thread-safely, on first access.
private let sodiumReady: Bool = sodium_init() >= 0

/// Call at the top of every entry point that reaches libsodium.
@usableFromInline
func ensureSodium() {
    precondition(sodiumReady, "libsodium failed to initialise (sodium_init < 0)")
}

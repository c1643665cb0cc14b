import Synchronization

/// Counters for `/metrics` (Prometheus text exposition format 0.0.4).
/// Atomics, so the agent sockets count without touching the hub.
public final class Metrics: Sendable {
    let messagesReceived = Atomic<Int>(0)
    let unknownMessages = Atomic<Int>(0)
    let protocolErrors = Atomic<Int>(0)
    let logLinesStored = Atomic<Int>(0)
    let logLinesDuplicate = Atomic<Int>(0)
    let metadataResults = Atomic<Int>(0)
    let authFailures = Atomic<Int>(0)
    let agentConnections = Atomic<Int>(0)
    let dashboardSubscribers = Atomic<Int>(0)
    /// Open client coordination sockets (`tether ssh` and friends).
    let clientConnections = Atomic<Int>(0)

    func render(connected: Int, lifecycle: [(String, Int)]) -> String {
        var out = ""
        func counter(_ name: String, _ help: String, _ value: Int) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) counter\n\(name) \(value)\n"
        }
        func gauge(_ name: String, _ help: String, _ value: Int) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) gauge\n\(name) \(value)\n"
        }
        counter("tether_control_messages_total", "Control protocol messages received from agents.", messagesReceived.load(ordering: .relaxed))
        counter("tether_control_unknown_messages_total", "Messages of an unknown type, skipped.", unknownMessages.load(ordering: .relaxed))
        counter("tether_control_protocol_errors_total", "Connections closed for a malformed, oversized or unexpected message.", protocolErrors.load(ordering: .relaxed))
        counter("tether_agent_log_lines_total", "Agent log lines stored.", logLinesStored.load(ordering: .relaxed))
        counter("tether_agent_log_lines_duplicate_total", "Resent agent log lines already stored, skipped.", logLinesDuplicate.load(ordering: .relaxed))
        counter("tether_agent_metadata_results_total", "Metadata results received.", metadataResults.load(ordering: .relaxed))
        counter("tether_auth_failures_total", "Requests refused for a missing or wrong token.", authFailures.load(ordering: .relaxed))
        counter("tether_agent_connections_total", "Agent WebSocket connections accepted.", agentConnections.load(ordering: .relaxed))
        gauge("tether_agents_connected", "Agents with a live connection.", connected)
        gauge("tether_coordination_clients", "Open client coordination sockets.", clientConnections.load(ordering: .relaxed))
        gauge("tether_dashboard_subscribers", "Open dashboard event streams.", dashboardSubscribers.load(ordering: .relaxed))
        out += "# HELP tether_agents_lifecycle Agents by lifecycle state.\n# TYPE tether_agents_lifecycle gauge\n"
        for (state, n) in lifecycle { out += "tether_agents_lifecycle{state=\"\(state)\"} \(n)\n" }
        return out
    }
}

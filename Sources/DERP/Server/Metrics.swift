import Synchronization

/// Why the server dropped a packet (Tailscale's `dropReason` names).
public enum DropReason: String, CaseIterable, Sendable {
    /// No client with the destination key here or in the mesh.
    case unknownDestination = "unknown_dest"
    /// A forwarded packet whose destination is not local (one hop only).
    case unknownDestinationOnForward = "unknown_dest_on_fwd"
    /// The destination's queue was full; the oldest packet was dropped.
    case queueHead = "queue_head"
    /// The destination disconnected with packets still queued.
    case gone = "gone_disconnected"
    /// The write to the destination or the mesh peer failed.
    case writeError = "write_error"
}

/// Prometheus-style counters of one server. Lock-free: every field is an
/// atomic, bumped on the relay path without a lock.
public final class DERPMetrics: Sendable {
    let packetsReceived = Atomic<Int>(0)
    let bytesReceived = Atomic<Int>(0)
    let packetsSent = Atomic<Int>(0)
    let bytesSent = Atomic<Int>(0)
    let packetsForwardedOut = Atomic<Int>(0)
    let packetsForwardedIn = Atomic<Int>(0)
    let discoPacketsReceived = Atomic<Int>(0)
    let dropsUnknownDestination = Atomic<Int>(0)
    let dropsUnknownDestinationOnForward = Atomic<Int>(0)
    let dropsQueueHead = Atomic<Int>(0)
    let dropsGone = Atomic<Int>(0)
    let dropsWriteError = Atomic<Int>(0)
    let clientsCurrent = Atomic<Int>(0)
    let clientsTotal = Atomic<Int>(0)
    let clientsMesh = Atomic<Int>(0)
    let handshakesFailed = Atomic<Int>(0)
    let connectionsClosedBadFrame = Atomic<Int>(0)
    let admissionRefused = Atomic<Int>(0)
    let pingsAnswered = Atomic<Int>(0)
    let unknownFrames = Atomic<Int>(0)
    let homeClients = Atomic<Int>(0)

    public init() {}

    func drop(_ reason: DropReason, count: Int = 1) {
        switch reason {
        case .unknownDestination: dropsUnknownDestination.add(count, ordering: .relaxed)
        case .unknownDestinationOnForward: dropsUnknownDestinationOnForward.add(count, ordering: .relaxed)
        case .queueHead: dropsQueueHead.add(count, ordering: .relaxed)
        case .gone: dropsGone.add(count, ordering: .relaxed)
        case .writeError: dropsWriteError.add(count, ordering: .relaxed)
        }
    }

    public func dropped(_ reason: DropReason) -> Int {
        switch reason {
        case .unknownDestination: dropsUnknownDestination.load(ordering: .relaxed)
        case .unknownDestinationOnForward: dropsUnknownDestinationOnForward.load(ordering: .relaxed)
        case .queueHead: dropsQueueHead.load(ordering: .relaxed)
        case .gone: dropsGone.load(ordering: .relaxed)
        case .writeError: dropsWriteError.load(ordering: .relaxed)
        }
    }

    /// A snapshot for tests and logs.
    public var snapshot: [String: Int] {
        var out: [String: Int] = [
            "packets_received": packetsReceived.load(ordering: .relaxed),
            "bytes_received": bytesReceived.load(ordering: .relaxed),
            "packets_sent": packetsSent.load(ordering: .relaxed),
            "bytes_sent": bytesSent.load(ordering: .relaxed),
            "packets_forwarded_out": packetsForwardedOut.load(ordering: .relaxed),
            "packets_forwarded_in": packetsForwardedIn.load(ordering: .relaxed),
            "disco_packets_received": discoPacketsReceived.load(ordering: .relaxed),
            "clients_current": clientsCurrent.load(ordering: .relaxed),
            "clients_total": clientsTotal.load(ordering: .relaxed),
            "clients_mesh": clientsMesh.load(ordering: .relaxed),
            "clients_home": homeClients.load(ordering: .relaxed),
            "handshakes_failed": handshakesFailed.load(ordering: .relaxed),
            "connections_closed_bad_frame": connectionsClosedBadFrame.load(ordering: .relaxed),
            "admission_refused": admissionRefused.load(ordering: .relaxed),
            "pings_answered": pingsAnswered.load(ordering: .relaxed),
            "unknown_frames": unknownFrames.load(ordering: .relaxed),
        ]
        for reason in DropReason.allCases { out["drops_\(reason.rawValue)"] = dropped(reason) }
        return out
    }

    /// The Prometheus text exposition format (version 0.0.4).
    public func prometheusText() -> String {
        var lines: [String] = []
        func counter(_ name: String, _ help: String, _ value: Int, type: String = "counter") {
            lines.append("# HELP derp_\(name) \(help)")
            lines.append("# TYPE derp_\(name) \(type)")
            lines.append("derp_\(name) \(value)")
        }
        counter("packets_received_total", "Packets received from clients for relaying.", packetsReceived.load(ordering: .relaxed))
        counter("bytes_received_total", "Packet bytes received from clients for relaying.", bytesReceived.load(ordering: .relaxed))
        counter("packets_sent_total", "Packets written to clients.", packetsSent.load(ordering: .relaxed))
        counter("bytes_sent_total", "Packet bytes written to clients.", bytesSent.load(ordering: .relaxed))
        counter("packets_forwarded_out_total", "Packets forwarded to a mesh peer.", packetsForwardedOut.load(ordering: .relaxed))
        counter("packets_forwarded_in_total", "Packets received from a mesh peer.", packetsForwardedIn.load(ordering: .relaxed))
        counter("disco_packets_received_total", "Disco packets received.", discoPacketsReceived.load(ordering: .relaxed))
        lines.append("# HELP derp_packets_dropped_total Packets dropped, by reason.")
        lines.append("# TYPE derp_packets_dropped_total counter")
        for reason in DropReason.allCases {
            lines.append("derp_packets_dropped_total{reason=\"\(reason.rawValue)\"} \(dropped(reason))")
        }
        counter("clients", "Clients connected now.", clientsCurrent.load(ordering: .relaxed), type: "gauge")
        counter("clients_mesh", "Mesh peers connected now.", clientsMesh.load(ordering: .relaxed), type: "gauge")
        counter("clients_home", "Clients that say this is their home server.", homeClients.load(ordering: .relaxed), type: "gauge")
        counter("clients_total", "Clients that ever logged in.", clientsTotal.load(ordering: .relaxed))
        counter("handshakes_failed_total", "Logins that failed or timed out.", handshakesFailed.load(ordering: .relaxed))
        counter("admission_refused_total", "Logins the admission hook refused.", admissionRefused.load(ordering: .relaxed))
        counter("connections_closed_bad_frame_total", "Connections closed for a malformed or oversized frame.", connectionsClosedBadFrame.load(ordering: .relaxed))
        counter("pings_answered_total", "Pings answered with a pong.", pingsAnswered.load(ordering: .relaxed))
        counter("unknown_frames_total", "Frames of unknown or unexpected type skipped.", unknownFrames.load(ordering: .relaxed))
        return lines.joined(separator: "\n") + "\n"
    }
}

/// The JSON of every agent → control plane message (docs/control-protocol.md),
/// written by hand with `JSONWriter` instead of `JSONEncoder` (its comment
/// says why: an idle agent's resident set).
///
/// Each message is one object: its fields and `type`, keys in ascending
/// byte order. Field names are the `CodingKeys` of the message types, which
/// the control plane decodes with; `AgentMessageEncodingTests` holds every
/// case byte for byte against `JSONEncoder` with `.sortedKeys`, so a field
/// added to a type and not here fails a test.
enum AgentMessageEncoding {
    static func encode(_ message: AgentMessage) -> [UInt8] {
        var w = JSONWriter()
        w.beginObject()
        switch message {
        case .hello(let m):
            w.field("agent_version", m.agentVersion)
            w.field("arch", m.arch)
            w.field("hostname", m.hostname)
            w.field("os", m.os)
            w.field("protocol_version", m.protocolVersion)
            w.field("session", m.session)
            w.field("started_at", m.startedAt)
            type("hello", &w)
        case .lifecycle(let m):
            w.field("changed_at", m.changedAt)
            w.field("state", m.state.rawValue)
            type("lifecycle", &w)
        case .logs(let m):
            w.key("entries")
            w.beginArray()
            for e in m.entries {
                w.beginObject()
                w.field("at", e.at)
                w.field("level", e.level.rawValue)
                w.field("output", e.output)
                w.field("seq", e.seq)
                w.field("source", e.source)
                w.endObject()
            }
            w.endArray()
            w.field("session", m.session)
            type("logs", &w)
        case .metadata(let m):
            w.key("results")
            w.beginArray()
            for r in m.results {
                w.beginObject()
                w.field("collected_at", r.collectedAt)
                w.field("error", r.error)
                w.field("key", r.key)
                w.field("value", r.value)
                w.endObject()
            }
            w.endArray()
            type("metadata", &w)
        case .appHealth(let m):
            w.key("apps")
            w.beginArray()
            for app in m.apps {
                w.beginObject()
                w.field("health", app.health.rawValue)
                w.field("slug", app.slug)
                w.endObject()
            }
            w.endArray()
            type("app_health", &w)
        case .stats(let m):
            w.field("collected_at", m.collectedAt)
            w.field("load1", m.load1)
            w.field("resident_bytes", m.residentBytes)
            w.field("rx_bytes", m.rxBytes)
            w.field("scripts_running", m.scriptsRunning)
            w.field("tx_bytes", m.txBytes)
            type("stats", &w)
            w.field("uptime_seconds", m.uptimeSeconds)
        case .listeningPorts(let m):
            w.key("ports")
            w.beginArray()
            for p in m.ports {
                w.beginObject()
                w.field("address", p.address)
                w.field("network", p.network)
                w.field("port", p.port)
                w.endObject()
            }
            w.endArray()
            type("listening_ports", &w)
        case .node(let m):
            w.key("node")
            w.beginObject()
            w.key("addresses")
            strings(m.node.addresses, &w)
            w.field("disco_key", m.node.discoKey)
            w.key("endpoints")
            strings(m.node.endpoints, &w)
            if let home = m.node.homeDERP {
                w.field("home_derp", home)
            }
            w.field("node_key", m.node.nodeKey)
            w.endObject()
            type("node", &w)
        case .readyForHandshake(let m):
            w.field("node_key", m.nodeKey)
            type("ready_for_handshake", &w)
        case .unknown(let name):
            w.field("type", name)
        }
        w.endObject()
        return w.bytes
    }

    private static func type(_ name: StaticString, _ w: inout JSONWriter) {
        w.key("type")
        w.string(name)
    }

    private static func strings(_ values: [String], _ w: inout JSONWriter) {
        w.beginArray()
        for v in values { w.string(v) }
        w.endArray()
    }
}

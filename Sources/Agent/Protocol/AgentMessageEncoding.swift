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
            w.key("agent_version")
            w.string(m.agentVersion)
            w.key("arch")
            w.string(m.arch)
            w.key("hostname")
            w.string(m.hostname)
            w.key("os")
            w.string(m.os)
            w.key("protocol_version")
            w.integer(m.protocolVersion)
            w.key("session")
            w.string(m.session)
            w.key("started_at")
            w.integer(m.startedAt)
            type("hello", &w)
        case .lifecycle(let m):
            w.key("changed_at")
            w.integer(m.changedAt)
            w.key("state")
            w.string(m.state.rawValue)
            type("lifecycle", &w)
        case .logs(let m):
            w.key("entries")
            w.beginArray()
            for e in m.entries {
                w.beginObject()
                w.key("at")
                w.integer(e.at)
                w.key("level")
                w.string(e.level.rawValue)
                w.key("output")
                w.string(e.output)
                w.key("seq")
                w.integer(e.seq)
                w.key("source")
                w.string(e.source)
                w.endObject()
            }
            w.endArray()
            w.key("session")
            w.string(m.session)
            type("logs", &w)
        case .metadata(let m):
            w.key("results")
            w.beginArray()
            for r in m.results {
                w.beginObject()
                w.key("collected_at")
                w.integer(r.collectedAt)
                w.key("error")
                w.string(r.error)
                w.key("key")
                w.string(r.key)
                w.key("value")
                w.string(r.value)
                w.endObject()
            }
            w.endArray()
            type("metadata", &w)
        case .appHealth(let m):
            w.key("apps")
            w.beginArray()
            for app in m.apps {
                w.beginObject()
                w.key("health")
                w.string(app.health.rawValue)
                w.key("slug")
                w.string(app.slug)
                w.endObject()
            }
            w.endArray()
            type("app_health", &w)
        case .stats(let m):
            w.key("collected_at")
            w.integer(m.collectedAt)
            w.key("load1")
            w.number(m.load1)
            w.key("resident_bytes")
            w.integer(m.residentBytes)
            w.key("rx_bytes")
            w.integer(m.rxBytes)
            w.key("scripts_running")
            w.integer(m.scriptsRunning)
            w.key("tx_bytes")
            w.integer(m.txBytes)
            type("stats", &w)
            w.key("uptime_seconds")
            w.integer(m.uptimeSeconds)
        case .listeningPorts(let m):
            w.key("ports")
            w.beginArray()
            for p in m.ports {
                w.beginObject()
                w.key("address")
                w.string(p.address)
                w.key("network")
                w.string(p.network)
                w.key("port")
                w.integer(p.port)
                w.endObject()
            }
            w.endArray()
            type("listening_ports", &w)
        case .node(let m):
            w.key("node")
            w.beginObject()
            w.key("addresses")
            strings(m.node.addresses, &w)
            w.key("disco_key")
            w.string(m.node.discoKey)
            w.key("endpoints")
            strings(m.node.endpoints, &w)
            if let home = m.node.homeDERP {
                w.key("home_derp")
                w.integer(home)
            }
            w.key("node_key")
            w.string(m.node.nodeKey)
            w.endObject()
            type("node", &w)
        case .readyForHandshake(let m):
            w.key("node_key")
            w.string(m.nodeKey)
            type("ready_for_handshake", &w)
        case .unknown(let name):
            w.key("type")
            w.string(name)
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

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Why a frame is not a message. Never a trap: any bytes decode to a
/// message or to one of these.
public enum CodecError: Error, Equatable, CustomStringConvertible {
    /// Longer than `ControlLimits.maxMessageBytes`.
    case tooLarge(Int)
    /// Not JSON, not an object with a string `type`, or a known type with
    /// missing or mistyped fields. The text is for logs.
    case malformed(String)

    public var description: String {
        switch self {
        case .tooLarge(let n): "message of \(n) bytes exceeds \(ControlLimits.maxMessageBytes)"
        case .malformed(let why): "malformed message: \(why)"
        }
    }

    /// The `ProtocolError` to send before closing.
    public var protocolError: ProtocolError {
        switch self {
        case .tooLarge: ProtocolError(code: "too_large", message: description)
        case .malformed: ProtocolError(code: "malformed", message: description)
        }
    }
}

/// JSON codec of both message directions. Stateless; encoders and decoders
/// are made per call because Foundation's are not `Sendable`.
public enum ControlCodec {
    /// Agent → control plane: written by `AgentMessageEncoding`, not
    /// `JSONEncoder` (see `JSONWriter` for why), to the same bytes.
    public static func encode(_ message: AgentMessage) -> [UInt8] {
        AgentMessageEncoding.encode(message)
    }

    /// What `encode(_: AgentMessage)` writes by hand, through `JSONEncoder`:
    /// the reference its tests compare against.
    package static func encodeWithFoundation(_ message: AgentMessage) -> [UInt8] {
        switch message {
        case .hello(let m): encode("hello", m)
        case .lifecycle(let m): encode("lifecycle", m)
        case .logs(let m): encode("logs", m)
        case .metadata(let m): encode("metadata", m)
        case .appHealth(let m): encode("app_health", m)
        case .stats(let m): encode("stats", m)
        case .listeningPorts(let m): encode("listening_ports", m)
        case .node(let m): encode("node", m)
        case .readyForHandshake(let m): encode("ready_for_handshake", m)
        case .unknown(let type): encode(type, Empty())
        }
    }

    public static func encode(_ message: ServerMessage) -> [UInt8] {
        switch message {
        case .welcome(let m): encode("welcome", m)
        case .logsAck(let m): encode("logs_ack", m)
        case .error(let m): encode("error", m)
        case .tunnel(let m): encode("tunnel", m)
        case .peerUpsert(let m): encode("peer_upsert", m)
        case .peerRemove(let m): encode("peer_remove", m)
        case .readyForHandshake(let m): encode("ready_for_handshake", m)
        case .unknown(let type): encode(type, Empty())
        }
    }

    public static func decodeAgentMessage(_ bytes: some Collection<UInt8>) throws(CodecError) -> AgentMessage {
        let (type, data) = try envelope(bytes)
        return try payload {
            switch type {
            case "hello": .hello(try decode(Hello.self, data))
            case "lifecycle": .lifecycle(try decode(LifecycleUpdate.self, data))
            case "logs": .logs(try decode(LogBatch.self, data))
            case "metadata": .metadata(try decode(MetadataBatch.self, data))
            case "app_health": .appHealth(try decode(AppHealthReport.self, data))
            case "stats": .stats(try decode(Stats.self, data))
            case "listening_ports": .listeningPorts(try decode(ListeningPorts.self, data))
            case "node": .node(try decode(NodeUpdate.self, data))
            case "ready_for_handshake": .readyForHandshake(try decode(ReadyForHandshake.self, data))
            default: .unknown(type: type)
            }
        }
    }

    public static func decodeServerMessage(_ bytes: some Collection<UInt8>) throws(CodecError) -> ServerMessage {
        let (type, data) = try envelope(bytes)
        return try payload {
            switch type {
            case "welcome": .welcome(try decode(Welcome.self, data))
            case "logs_ack": .logsAck(try decode(LogsAck.self, data))
            case "error": .error(try decode(ProtocolError.self, data))
            case "tunnel": .tunnel(try decode(TunnelConfig.self, data))
            case "peer_upsert": .peerUpsert(try decode(PeerUpsert.self, data))
            case "peer_remove": .peerRemove(try decode(PeerRemove.self, data))
            case "ready_for_handshake": .readyForHandshake(try decode(ReadyForHandshake.self, data))
            default: .unknown(type: type)
            }
        }
    }

    // MARK: Internals

    private struct Empty: Encodable {}
    private struct TypeOnly: Decodable { var type: String }
    private enum TypeKey: String, CodingKey { case type }

    /// Writes `{"type": T, ...fields of m}`: the payload's keyed container
    /// and the `type` key share one JSON object.
    private struct Envelope<M: Encodable>: Encodable {
        let type: String
        let message: M
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: TypeKey.self)
            try c.encode(type, forKey: .type)
            try message.encode(to: encoder)
        }
    }

    private static func encode(_ type: String, _ message: some Encodable) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding our own value types cannot fail: no floats that are NaN
        // reach here (Stats.load1 is sanitised by its producer).
        guard let data = try? encoder.encode(Envelope(type: type, message: message)) else {
            return Array(#"{"type":"\#(type)"}"#.utf8)
        }
        return Array(data)
    }

    private static func envelope(_ bytes: some Collection<UInt8>) throws(CodecError) -> (String, Data) {
        guard bytes.count <= ControlLimits.maxMessageBytes else { throw .tooLarge(bytes.count) }
        let data = Data(bytes)
        do {
            let head = try JSONDecoder().decode(TypeOnly.self, from: data)
            return (head.type, data)
        } catch {
            throw .malformed("not a JSON object with a string \"type\"")
        }
    }

    private static func decode<M: Decodable>(_: M.Type, _ data: Data) throws -> M {
        try JSONDecoder().decode(M.self, from: data)
    }

    private static func payload<M>(_ body: () throws -> M) throws(CodecError) -> M {
        do { return try body() } catch let error as DecodingError {
            throw .malformed(describe(error))
        } catch {
            throw .malformed("\(error)")
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ c: DecodingError.Context) -> String {
            let p = c.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return p.isEmpty ? "" : "at \(p.hasPrefix(".") ? String(p.dropFirst()) : p): "
        }
        switch error {
        case .keyNotFound(let key, let c): return "\(path(c))missing \"\(key.stringValue)\""
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c):
            return "\(path(c))\(c.debugDescription)"
        @unknown default: return "\(error)"
        }
    }
}

/// Milliseconds since the epoch, now.
public func unixMillisNow() -> UnixMillis {
    UnixMillis((Date().timeIntervalSince1970 * 1000).rounded())
}

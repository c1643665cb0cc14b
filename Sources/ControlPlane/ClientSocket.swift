import Agent
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOWebSocket

/// A client's coordination WebSocket (`GET /api/v1/coordinate?workspace=W
/// [&agent=A]`, user token): the CLI's `tether ssh` joins the tailnet
/// through it. The route checked the token and that the user owns the
/// workspace before upgrading; here the client gets its `tunnel`, sends
/// `node`, and hears `peer_upsert` for the agent until it leaves, when the
/// agent is told to forget it.
struct ClientSocket {
    static let path = "/api/v1/coordinate"

    let coordinator: Coordinator
    let metrics: Metrics

    func handle(
        _ inbound: WebSocketInboundStream, _ outbound: WebSocketOutboundWriter, target: Store.AgentTarget, logger: Logger
    ) async {
        var log = logger
        log[metadataKey: "client_of"] = "\(target.workspaceName).\(target.agentName)"
        let (pushes, push) = AsyncStream<ServerMessage>.makeStream()
        let pusher = Task { for await m in pushes { try? await send(m, outbound) } }
        let clientID = await coordinator.clientConnected(agentID: target.agentID) { push.yield($0) }
        metrics.clientConnections.add(1, ordering: .relaxed)
        log.info("client connected")
        do {
            for try await frame in inbound.messages(maxSize: ControlLimits.maxMessageBytes) {
                guard case .text(let text) = frame else {
                    throw ProtocolError(code: "malformed", message: "binary frames are not part of the protocol")
                }
                let message: AgentMessage
                do { message = try ControlCodec.decodeAgentMessage(text.utf8) } catch { throw error.protocolError }
                switch message {
                case .node(let update):
                    try await coordinator.clientNode(agentID: target.agentID, clientID: clientID, update.node)
                case .unknown:
                    metrics.unknownMessages.add(1, ordering: .relaxed)
                default:
                    throw ProtocolError(code: "unexpected", message: "a client sends only node messages")
                }
            }
            log.info("client disconnected")
        } catch let error as ProtocolError {
            metrics.protocolErrors.add(1, ordering: .relaxed)
            log.warning("closing client connection: \(error.code): \(error.message)")
            try? await send(.error(error), outbound)
            try? await outbound.close(.policyViolation, reason: error.code)
        } catch {
            metrics.protocolErrors.add(1, ordering: .relaxed)
            log.warning("closing client connection: \(error)")
            try? await outbound.close(.messageTooLarge, reason: "error")
        }
        await coordinator.clientDisconnected(agentID: target.agentID, clientID: clientID)
        metrics.clientConnections.subtract(1, ordering: .relaxed)
        push.finish()
        pusher.cancel()
    }

    private func send(_ message: ServerMessage, _ outbound: WebSocketOutboundWriter) async throws {
        try await outbound.write(.text(String(decoding: ControlCodec.encode(message), as: UTF8.self)))
    }
}

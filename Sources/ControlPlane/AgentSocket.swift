import Agent
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOWebSocket

/// One agent's WebSocket (docs/control-protocol.md): authenticates, reads
/// `hello`, answers `welcome`, then applies each message. Any broken rule
/// sends `error` and closes this connection only; the reason is logged
/// with the agent's ID and counted.
struct AgentSocket {
    let store: Store
    let hub: Hub
    let coordinator: Coordinator
    let metrics: Metrics

    func handle(_ inbound: WebSocketInboundStream, _ outbound: WebSocketOutboundWriter, token: String?, logger: Logger) async {
        guard let token, let agent = try? await store.authenticateAgent(token: token) else {
            // The upgrade checked the token; it was revoked in between.
            try? await outbound.close(.policyViolation, reason: "unauthorized")
            return
        }
        var log = logger
        log[metadataKey: "agent"] = "\(agent.workspaceName).\(agent.spec.name)"
        var connectionID: Int?
        // Coordination messages arrive from other sockets' tasks: one task
        // writes them, in order.
        let (pushes, push) = AsyncStream<ServerMessage>.makeStream()
        let pusher = Task { for await m in pushes { try? await send(m, outbound) } }
        defer {
            push.finish()
            pusher.cancel()
        }
        do {
            var messages = inbound.messages(maxSize: ControlLimits.maxMessageBytes).makeAsyncIterator()
            guard let first = try await messages.next() else { return }
            guard case .hello(let hello) = try decode(first) else {
                throw ProtocolError(code: "unexpected", message: "the first message must be hello")
            }
            guard ControlProtocolVersion.supported.contains(hello.protocolVersion) else {
                throw ProtocolError(
                    code: "unsupported_version",
                    message: "protocol version \(hello.protocolVersion) is not supported; this control plane speaks \(ControlProtocolVersion.supported)")
            }
            guard hello.session.utf8.count <= 64, !hello.session.isEmpty else {
                throw ProtocolError(code: "malformed", message: "session must be 1-64 characters")
            }
            let resume = try await store.startSession(agentID: agent.id, hello: hello, now: nowMS())
            connectionID = await hub.connect(agentID: agent.id, hello: hello) { error in
                Task {
                    try? await send(.error(error), outbound)
                    try? await outbound.close(.goingAway, reason: error.code)
                }
            }
            metrics.agentConnections.add(1, ordering: .relaxed)
            log.info("agent connected: version \(hello.agentVersion), session \(hello.session), resume after log seq \(resume)")
            let manifest = Manifest(agentID: agent.id, workspaceID: agent.workspaceID, workspaceName: agent.workspaceName, spec: agent.spec)
            try await send(.welcome(Welcome(manifest: manifest, resumeLogSeq: resume)), outbound)
            if let connectionID {
                await coordinator.agentConnected(agentID: agent.id, connectionID: connectionID) { push.yield($0) }
            }

            while let frame = try await messages.next() {
                let message = try decode(frame)
                metrics.messagesReceived.add(1, ordering: .relaxed)
                await hub.seen(agent.id)
                switch message {
                case .hello:
                    throw ProtocolError(code: "unexpected", message: "hello sent twice")
                case .lifecycle(let update):
                    if await hub.lifecycle(agentID: agent.id, update) {
                        try await store.setLifecycle(agentID: agent.id, session: hello.session, update)
                        log.info("lifecycle \(update.state.rawValue)")
                    }
                case .logs(let batch):
                    guard batch.session == hello.session else {
                        throw ProtocolError(code: "unexpected", message: "logs for another session")
                    }
                    guard batch.entries.count <= ControlLimits.maxLogEntriesPerBatch else {
                        throw ProtocolError(code: "too_large", message: "more than \(ControlLimits.maxLogEntriesPerBatch) entries in one batch")
                    }
                    let (high, stored) = try await store.appendLogs(agentID: agent.id, batch: batch)
                    metrics.logLinesStored.add(stored.count, ordering: .relaxed)
                    metrics.logLinesDuplicate.add(batch.entries.count - stored.count, ordering: .relaxed)
                    await hub.logs(agentID: agent.id, session: batch.session, stored)
                    try await send(.logsAck(LogsAck(session: batch.session, seq: high)), outbound)
                case .metadata(let batch):
                    metrics.metadataResults.add(batch.results.count, ordering: .relaxed)
                    await hub.metadata(agentID: agent.id, Array(batch.results.prefix(ControlLimits.maxItemsPerReport)))
                case .appHealth(let report):
                    await hub.appHealth(agentID: agent.id, report)
                case .stats(let stats):
                    await hub.stats(agentID: agent.id, stats)
                case .listeningPorts(let ports):
                    await hub.ports(agentID: agent.id, ports)
                case .node(let update):
                    try await coordinator.agentNode(agentID: agent.id, update.node)
                case .readyForHandshake(let ready):
                    await coordinator.agentReady(agentID: agent.id, nodeKey: ready.nodeKey)
                case .unknown(let type):
                    metrics.unknownMessages.add(1, ordering: .relaxed)
                    log.debug("skipped message of unknown type \(type)")
                }
            }
            log.info("agent disconnected")
        } catch let error as ProtocolError {
            metrics.protocolErrors.add(1, ordering: .relaxed)
            log.warning("closing agent connection: \(error.code): \(error.message)")
            try? await send(.error(error), outbound)
            try? await outbound.close(error.code == "too_large" ? .messageTooLarge : .policyViolation, reason: error.code)
        } catch {
            // A message over maxSize (the inbound stream throws), a broken
            // socket, a database failure.
            metrics.protocolErrors.add(1, ordering: .relaxed)
            log.warning("closing agent connection: \(error)")
            try? await send(.error(ProtocolError(code: "too_large", message: "\(error)")), outbound)
            try? await outbound.close(.messageTooLarge, reason: "error")
        }
        if let connectionID {
            await coordinator.agentDisconnected(agentID: agent.id, connectionID: connectionID)
            await hub.disconnect(agentID: agent.id, connectionID: connectionID)
            try? await store.setDisconnected(agentID: agent.id, at: nowMS())
        }
    }

    private func decode(_ message: WebSocketMessage) throws -> AgentMessage {
        switch message {
        case .text(let text):
            do { return try ControlCodec.decodeAgentMessage(text.utf8) } catch { throw error.protocolError }
        case .binary:
            throw ProtocolError(code: "malformed", message: "binary frames are not part of the protocol")
        }
    }

    private func send(_ message: ServerMessage, _ outbound: WebSocketOutboundWriter) async throws {
        try await outbound.write(.text(String(decoding: ControlCodec.encode(message), as: UTF8.self)))
    }
}

/// The Binding transaction (RFC 5389 §7, §10): what a client sends, what a
/// server answers, and how the client reads the answer. Pure functions; the
/// sockets live in `STUNServer` and the node's UDP loop.
public enum STUNBinding {
    /// The SOFTWARE attribute we send (RFC 5389 §15.10), so operators can
    /// tell our traffic apart in captures.
    public static let software = "tether"

    /// A Binding request with SOFTWARE and FINGERPRINT (§15.5 lets servers
    /// on shared sockets tell STUN from other traffic reliably).
    public static func request(transactionID: STUN.TransactionID) -> [UInt8] {
        let message = STUN.Message(
            type: .bindingRequest, transactionID: transactionID,
            attributes: [STUN.Attribute(type: STUN.AttributeType.software, value: Array(software.utf8))])
        return STUN.emit(message, fingerprint: true)
    }

    /// What a server does with one datagram.
    public enum ServerAction: Equatable, Sendable {
        case reply([UInt8])
        case drop(DropReason)
    }

    public enum DropReason: String, Sendable, CaseIterable {
        case malformed
        case notBindingRequest
        case badFingerprint
    }

    /// §10.1.2 / §7.3.1: answer a Binding request with the source address
    /// as seen (XOR-MAPPED-ADDRESS); a request with an unknown
    /// comprehension-required attribute gets a 420 error naming it (§7.3.1).
    public static func respond(to datagram: UnsafeRawBufferPointer, from source: Endpoint) -> ServerAction {
        let message: STUN.Message
        do {
            message = try STUN.parse(datagram)
        } catch .badFingerprint {
            return .drop(.badFingerprint)
        } catch {
            return .drop(.malformed)
        }
        guard message.type == STUN.MessageType.bindingRequest.rawValue else { return .drop(.notBindingRequest) }
        let known: Set<UInt16> = [STUN.AttributeType.software]
        let unknown = message.attributes.map(\.type).filter {
            STUN.AttributeType.isComprehensionRequired($0) && !known.contains($0)
        }
        let softwareAttribute = STUN.Attribute(type: STUN.AttributeType.software, value: Array(software.utf8))
        if !unknown.isEmpty {
            var list: [UInt8] = []
            for type in unknown.prefix(32) { STUN.appendU16(&list, type) }
            // ERROR-CODE (§15.6): reserved, class 4, number 20, reason.
            let reason = Array("Unknown Attribute".utf8)
            let errorCode = STUN.Attribute(type: STUN.AttributeType.errorCode, value: [0, 0, 4, 20] + reason)
            let reply = STUN.Message(
                type: .bindingError, transactionID: message.transactionID,
                attributes: [
                    errorCode, STUN.Attribute(type: STUN.AttributeType.unknownAttributes, value: list),
                    softwareAttribute,
                ])
            return .reply(STUN.emit(reply, fingerprint: true))
        }
        let reply = STUN.Message(
            type: .bindingSuccess, transactionID: message.transactionID,
            attributes: [STUN.xorMappedAddress(source, transactionID: message.transactionID), softwareAttribute])
        return .reply(STUN.emit(reply, fingerprint: true))
    }

    public enum ResponseError: Error, Equatable, Sendable {
        case malformed(STUN.ParseError)
        case wrongTransaction
        case errorResponse(code: Int, reason: String)
        case noMappedAddress
    }

    /// Reads a Binding response for our transaction: XOR-MAPPED-ADDRESS, or
    /// MAPPED-ADDRESS from servers that only send that (§15.1, RFC 3489).
    public static func mappedAddress(
        inResponse datagram: UnsafeRawBufferPointer, transactionID: STUN.TransactionID
    ) throws(ResponseError) -> Endpoint {
        let message: STUN.Message
        do { message = try STUN.parse(datagram) } catch { throw .malformed(error) }
        guard message.transactionID == transactionID else { throw .wrongTransaction }
        if message.type == STUN.MessageType.bindingError.rawValue {
            let value = message.attribute(STUN.AttributeType.errorCode) ?? []
            let code = value.count >= 4 ? Int(value[2] & 0x7) * 100 + Int(value[3]) : 0
            let reason = value.count > 4 ? String(decoding: value[4...], as: UTF8.self) : ""
            throw .errorResponse(code: code, reason: reason)
        }
        guard message.type == STUN.MessageType.bindingSuccess.rawValue else { throw .malformed(.notSTUN) }
        if let value = message.attribute(STUN.AttributeType.xorMappedAddress),
            let endpoint = STUN.decodeAddress(value, xored: true, transactionID: transactionID)
        {
            return endpoint
        }
        if let value = message.attribute(STUN.AttributeType.mappedAddress),
            let endpoint = STUN.decodeAddress(value, xored: false, transactionID: transactionID)
        {
            return endpoint
        }
        throw .noMappedAddress
    }
}

/// A one-shot STUN Binding query over a given socket: what `tether netcheck`
/// and tests use. The node's own discovery sends the same request on its
/// shared socket and matches answers in its receive loop.
public enum STUNClient {
    public enum QueryError: Error, CustomStringConvertible {
        case timedOut(server: Endpoint, attempts: Int)
        case response(STUNBinding.ResponseError)

        public var description: String {
            switch self {
            case .timedOut(let server, let attempts): "no STUN answer from \(server) after \(attempts) attempts"
            case .response(let error): "bad STUN answer: \(error)"
            }
        }
    }

    /// Sends a Binding request and waits for its answer, retransmitting
    /// with doubling intervals from 100 ms (a short form of RFC 5389 §7.2.1).
    public static func mappedAddress(via socket: UDPSocket, server: Endpoint, attempts: Int = 4) throws -> Endpoint {
        var rng = SystemRandomNumberGenerator()
        let txid = STUN.TransactionID.random(using: &rng)
        let request = STUNBinding.request(transactionID: txid)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 16)
        defer { buffer.deallocate() }
        var wait: Int32 = 100
        for _ in 0..<attempts {
            try socket.send(request, to: server)
            while let (count, from) = try socket.receive(into: buffer, timeoutMilliseconds: wait) {
                guard from == server else { continue }
                do {
                    return try STUNBinding.mappedAddress(
                        inResponse: UnsafeRawBufferPointer(rebasing: buffer[0..<count]), transactionID: txid)
                } catch .wrongTransaction {
                    continue
                } catch {
                    throw QueryError.response(error)
                }
            }
            wait *= 2
        }
        throw QueryError.timedOut(server: server, attempts: attempts)
    }
}

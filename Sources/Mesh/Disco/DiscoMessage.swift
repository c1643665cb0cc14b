import CryptoPrimitives

/// disco: the path-discovery messages of Tailscale's magicsock, byte for
/// byte (tailscale `disco/disco.go`).
///
/// A datagram on the node's UDP socket (or inside a DERP packet):
///
///     +--------+----------------------+------------+--------------------------+
///     | "TS💬" | sender disco key     | nonce      | NaCl box (tag ‖ payload) |
///     | 6 B    | 32 B (X25519 public) | 24 B       | 16 B + payload           |
///     +--------+----------------------+------------+--------------------------+
///
/// The magic is 54 53 f0 9f 92 ac. The box is sealed between the sender's
/// and receiver's *disco* keys (per process, separate from WireGuard keys).
/// Its plaintext payload is `type u8 ‖ version u8 ‖ body`:
///
///     Ping        0x01: TxID [12] ‖ sender's WireGuard node key [32]
///                       (older senders omit the key; extra bytes are padding)
///     Pong        0x02: TxID [12] ‖ source IP [16] ‖ source port u16 BE
///                       (the address the ping came from, IPv4 as ::ffff:a.b.c.d)
///     CallMeMaybe 0x03: endpoints, each IP [16] ‖ port u16 BE; sent over DERP
///                       only, asking the peer to ping those endpoints now
///
/// Parsing is lax about trailing bytes, as Tailscale's is, so later versions
/// can extend messages; unknown types are an error the caller counts.
public enum Disco {
    public static let magic: [UInt8] = [0x54, 0x53, 0xf0, 0x9f, 0x92, 0xac]
    public static let keyLength = 32
    public static let nonceLength = 24
    /// magic ‖ sender key ‖ nonce
    public static let headerLength = 6 + keyLength + nonceLength
    static let endpointLength = 16 + 2
    static let pongBodyLength = 12 + endpointLength
    static let version: UInt8 = 0

    public enum MessageType: UInt8, Sendable {
        case ping = 0x01
        case pong = 0x02
        case callMeMaybe = 0x03
    }

    /// A 96-bit transaction ID pairing a pong with its ping.
    public struct TxID: Hashable, Sendable, CustomStringConvertible {
        public var bytes: [UInt8]

        public init?(_ bytes: [UInt8]) {
            guard bytes.count == 12 else { return nil }
            self.bytes = bytes
        }

        public static func random() -> TxID { TxID(SecureRandom.bytes(12))! }

        public var description: String { Hex.encode(bytes.prefix(6)) }
    }

    public struct Ping: Hashable, Sendable {
        public var txID: TxID
        /// The sender's WireGuard public key; not to be trusted alone, but it
        /// ties a disco key to a node (Tailscale ≥ 1.16 sends it).
        public var nodeKey: X25519.PublicKey?
        /// Extra zero bytes, for path-MTU probes; ignored on receipt.
        public var padding: Int

        public init(txID: TxID, nodeKey: X25519.PublicKey?, padding: Int = 0) {
            self.txID = txID
            self.nodeKey = nodeKey
            self.padding = padding
        }
    }

    public struct Pong: Hashable, Sendable {
        public var txID: TxID
        /// Where the ping came from, as the pong's sender saw it.
        public var source: Endpoint

        public init(txID: TxID, source: Endpoint) {
            self.txID = txID
            self.source = source
        }
    }

    public struct CallMeMaybe: Hashable, Sendable {
        public var endpoints: [Endpoint]

        public init(endpoints: [Endpoint]) { self.endpoints = endpoints }
    }

    public enum Message: Hashable, Sendable {
        case ping(Ping)
        case pong(Pong)
        case callMeMaybe(CallMeMaybe)
    }

    public enum ParseError: Error, Hashable, Sendable {
        case notDisco
        case short
        case unknownType(UInt8)
        case cannotOpen
    }

    // MARK: - Framing

    /// True when the datagram has the magic and room for the header: the
    /// socket demultiplexer's test.
    public static func looksLikeDisco(_ datagram: UnsafeRawBufferPointer) -> Bool {
        guard datagram.count >= headerLength else { return false }
        for i in 0..<magic.count where datagram[i] != magic[i] { return false }
        return true
    }

    /// The sender's disco key, read before anything is decrypted so the
    /// receiver can find the shared key.
    public static func senderKey(_ datagram: UnsafeRawBufferPointer) -> X25519.PublicKey? {
        guard looksLikeDisco(datagram) else { return nil }
        return try? X25519.PublicKey(UnsafeRawBufferPointer(rebasing: datagram[6..<(6 + keyLength)]))
    }

    /// Seals `message` into a whole datagram from `sender`.
    public static func seal(
        _ message: Message, sender: X25519.PublicKey, key: NaClBox.SharedKey, nonce: Nonce24 = .random()
    ) -> [UInt8] {
        var datagram = magic
        sender.withUnsafeBytes { datagram.append(contentsOf: $0) }
        nonce.withUnsafeBytes { datagram.append(contentsOf: $0) }
        datagram.append(contentsOf: NaClBox.seal(key: key, nonce: nonce, message: encode(message)))
        return datagram
    }

    /// Opens a datagram whose sender's shared key the caller looked up
    /// (by `senderKey`), and parses the payload.
    public static func open(_ datagram: UnsafeRawBufferPointer, key: NaClBox.SharedKey) throws(ParseError) -> Message {
        guard looksLikeDisco(datagram) else { throw .notDisco }
        guard let nonce = try? Nonce24(UnsafeRawBufferPointer(rebasing: datagram[(6 + keyLength)..<headerLength]))
        else {
            throw .short
        }
        guard
            let payload = try? NaClBox.open(
                key: key, nonce: nonce, box: UnsafeRawBufferPointer(rebasing: datagram[headerLength...]))
        else { throw .cannotOpen }
        return try parse(payload)
    }

    // MARK: - Payload

    public static func encode(_ message: Message) -> [UInt8] {
        switch message {
        case .ping(let ping):
            var out: [UInt8] = [MessageType.ping.rawValue, version] + ping.txID.bytes
            if let key = ping.nodeKey { key.withUnsafeBytes { out.append(contentsOf: $0) } }
            out.append(contentsOf: repeatElement(0, count: max(0, ping.padding)))
            return out
        case .pong(let pong):
            var out: [UInt8] = [MessageType.pong.rawValue, version] + pong.txID.bytes
            appendEndpoint(&out, pong.source)
            return out
        case .callMeMaybe(let call):
            var out: [UInt8] = [MessageType.callMeMaybe.rawValue, version]
            for endpoint in call.endpoints { appendEndpoint(&out, endpoint) }
            return out
        }
    }

    public static func parse(_ payload: [UInt8]) throws(ParseError) -> Message {
        guard payload.count >= 2 else { throw .short }
        let type = payload[0]
        let messageVersion = payload[1]
        let body = Array(payload[2...])
        switch MessageType(rawValue: type) {
        case .ping:
            guard body.count >= 12 else { throw .short }
            let key = body.count >= 12 + keyLength ? try? X25519.PublicKey(Array(body[12..<(12 + keyLength)])) : nil
            let padding = max(0, body.count - 12 - (key == nil ? 0 : keyLength))
            return .ping(Ping(txID: TxID(Array(body[0..<12]))!, nodeKey: key, padding: padding))
        case .pong:
            guard body.count >= pongBodyLength else { throw .short }
            return .pong(Pong(txID: TxID(Array(body[0..<12]))!, source: readEndpoint(body, at: 12)))
        case .callMeMaybe:
            // As Tailscale does: a malformed list is an empty list, not an error.
            guard messageVersion == version, !body.isEmpty, body.count % endpointLength == 0 else {
                return .callMeMaybe(CallMeMaybe(endpoints: []))
            }
            let endpoints = stride(from: 0, to: body.count, by: endpointLength).map { readEndpoint(body, at: $0) }
            return .callMeMaybe(CallMeMaybe(endpoints: endpoints))
        case nil:
            throw .unknownType(type)
        }
    }

    static func appendEndpoint(_ out: inout [UInt8], _ endpoint: Endpoint) {
        out.append(contentsOf: endpoint.addressBytes)
        out.append(UInt8(endpoint.port >> 8))
        out.append(UInt8(endpoint.port & 0xff))
    }

    /// Reads IP[16] ‖ port; callers have checked there are 18 bytes.
    static func readEndpoint(_ bytes: [UInt8], at offset: Int) -> Endpoint {
        var address = SIMD16<UInt8>.zero
        for i in 0..<16 { address[i] = bytes[offset + i] }
        return Endpoint(address16: address, port: UInt16(bytes[offset + 16]) << 8 | UInt16(bytes[offset + 17]))
    }
}

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import CryptoPrimitives
import NIOCore

/// What a client tells the server at login, inside a NaCl box from the
/// client's key to the server's (so only the holder of the private key can
/// produce it). JSON field names are Tailscale's (`clientInfo` in
/// `derp_client.go`): `meshKey`, `version`, `CanAckPings`, `IsProber`.
public struct ClientInfo: Sendable, Equatable, Codable {
    /// Pre-shared key of a region's mesh; empty for ordinary clients.
    public var meshKey: String
    public var version: Int
    public var canAckPings: Bool
    public var isProber: Bool

    public init(meshKey: String = "", version: Int = DERPWire.protocolVersion, canAckPings: Bool = true, isProber: Bool = false) {
        self.meshKey = meshKey
        self.version = version
        self.canAckPings = canAckPings
        self.isProber = isProber
    }

    enum CodingKeys: String, CodingKey {
        case meshKey, version
        case canAckPings = "CanAckPings"
        case isProber = "IsProber"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        meshKey = try c.decodeIfPresent(String.self, forKey: .meshKey) ?? ""
        version = try c.decodeIfPresent(Int.self, forKey: .version) ?? 0
        canAckPings = try c.decodeIfPresent(Bool.self, forKey: .canAckPings) ?? false
        isProber = try c.decodeIfPresent(Bool.self, forKey: .isProber) ?? false
    }

    /// The JSON exactly as Go's `json.Marshal` writes the struct: fields in
    /// declaration order, `omitempty` ones left out when zero.
    public var json: [UInt8] {
        var fields: [String] = []
        if !meshKey.isEmpty { fields.append("\"meshKey\":\(jsonString(meshKey))") }
        if version != 0 { fields.append("\"version\":\(version)") }
        fields.append("\"CanAckPings\":\(canAckPings)")
        if isProber { fields.append("\"IsProber\":true") }
        return Array(("{" + fields.joined(separator: ",") + "}").utf8)
    }
}

/// What the server answers at login, boxed from the server's key to the
/// client's. Field names as Tailscale's `ServerInfo`: `version`,
/// `TokenBucketBytesPerSecond`, `TokenBucketBytesBurst` (0 = no limit).
public struct ServerInfo: Sendable, Equatable, Codable {
    public var version: Int
    public var tokenBucketBytesPerSecond: Int
    public var tokenBucketBytesBurst: Int

    public init(version: Int = DERPWire.protocolVersion, tokenBucketBytesPerSecond: Int = 0, tokenBucketBytesBurst: Int = 0) {
        self.version = version
        self.tokenBucketBytesPerSecond = tokenBucketBytesPerSecond
        self.tokenBucketBytesBurst = tokenBucketBytesBurst
    }

    enum CodingKeys: String, CodingKey {
        case version
        case tokenBucketBytesPerSecond = "TokenBucketBytesPerSecond"
        case tokenBucketBytesBurst = "TokenBucketBytesBurst"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        version = try c.decodeIfPresent(Int.self, forKey: .version) ?? 0
        tokenBucketBytesPerSecond = try c.decodeIfPresent(Int.self, forKey: .tokenBucketBytesPerSecond) ?? 0
        tokenBucketBytesBurst = try c.decodeIfPresent(Int.self, forKey: .tokenBucketBytesBurst) ?? 0
    }

    /// The JSON as Go's `json.Marshal` writes it (all fields `omitempty`).
    public var json: [UInt8] {
        var fields: [String] = []
        if version != 0 { fields.append("\"version\":\(version)") }
        if tokenBucketBytesPerSecond != 0 { fields.append("\"TokenBucketBytesPerSecond\":\(tokenBucketBytesPerSecond)") }
        if tokenBucketBytesBurst != 0 { fields.append("\"TokenBucketBytesBurst\":\(tokenBucketBytesBurst)") }
        return Array(("{" + fields.joined(separator: ",") + "}").utf8)
    }
}

/// Sealing and opening the two login boxes (NaCl `crypto_box`, Go's
/// `box.Seal` layout: tag ‖ ciphertext).
public enum Login {
    public static func sealClientInfo(
        _ info: ClientInfo, clientKey: borrowing X25519.PrivateKey, serverKey: NodeKey, nonce: Nonce24 = .random()
    ) throws -> SealedClientInfo {
        let shared = try NaClBox.SharedKey(privateKey: clientKey, peer: serverKey)
        let box = NaClBox.seal(key: shared, nonce: nonce, message: info.json)
        return SealedClientInfo(clientKey: clientKey.publicKey, nonce: nonce, box: ByteBuffer(bytes: box))
    }

    /// Opens a ClientInfo with the server's private key and the key the
    /// client claims. A client that does not hold that key's private half
    /// cannot make a box that opens, so this is the proof of identity.
    public static func openClientInfo(_ sealed: SealedClientInfo, serverKey: borrowing X25519.PrivateKey) throws -> ClientInfo {
        let shared: NaClBox.SharedKey
        do {
            shared = try NaClBox.SharedKey(privateKey: serverKey, peer: sealed.clientKey)
        } catch {
            throw DERPError(.loginFailed, "client key \(sealed.clientKey) is a low-order point")
        }
        let plain: [UInt8]
        do {
            plain = try NaClBox.open(key: shared, nonce: sealed.nonce, box: Array(buffer: sealed.box))
        } catch {
            throw DERPError(.loginFailed, "ClientInfo box of \(sealed.box.readableBytes) bytes does not open with client key \(sealed.clientKey)")
        }
        do {
            return try JSONDecoder().decode(ClientInfo.self, from: Data(plain))
        } catch {
            throw DERPError(.loginFailed, "ClientInfo JSON does not parse: \(error)")
        }
    }

    public static func sealServerInfo(
        _ info: ServerInfo, serverKey: borrowing X25519.PrivateKey, clientKey: NodeKey, nonce: Nonce24 = .random()
    ) throws -> SealedServerInfo {
        let shared = try NaClBox.SharedKey(privateKey: serverKey, peer: clientKey)
        let box = NaClBox.seal(key: shared, nonce: nonce, message: info.json)
        return SealedServerInfo(nonce: nonce, box: ByteBuffer(bytes: box))
    }

    public static func openServerInfo(_ sealed: SealedServerInfo, clientKey: borrowing X25519.PrivateKey, serverKey: NodeKey) throws -> ServerInfo {
        let plain: [UInt8]
        do {
            let shared = try NaClBox.SharedKey(privateKey: clientKey, peer: serverKey)
            plain = try NaClBox.open(key: shared, nonce: sealed.nonce, box: Array(buffer: sealed.box))
        } catch {
            throw DERPError(.loginFailed, "ServerInfo box does not open with server key \(serverKey)")
        }
        do {
            return try JSONDecoder().decode(ServerInfo.self, from: Data(plain))
        } catch {
            throw DERPError(.loginFailed, "ServerInfo JSON does not parse: \(error)")
        }
    }
}

/// A JSON string literal with the escapes Go's encoder uses for control
/// characters, quotes, backslashes and `<`, `>`, `&`.
func jsonString(_ s: String) -> String {
    var out = "\""
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case "<", ">", "&", "\u{2028}", "\u{2029}":
            out += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count) + String(scalar.value, radix: 16)
        default:
            if scalar.value < 0x20 {
                let h = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}

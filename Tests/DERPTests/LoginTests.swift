import CryptoPrimitives
import DERP
import NIOCore
import Testing

/// The login boxes against a second NaCl implementation: the expected
/// bytes below were made with PyNaCl (libsodium's `crypto_box`, the same
/// construction and layout as Go's `box.Seal`) from the private keys
/// 0x11…11 (client) and 0x22…22 (server) and the nonce 00 01 … 17.
@Suite struct LoginTests {
    static let clientPrivate: [UInt8] = Array(repeating: 0x11, count: 32)
    static let serverPrivate: [UInt8] = Array(repeating: 0x22, count: 32)
    static let nonce = try! Nonce24(Array(0..<24) as [UInt8])
    static let clientPublicHex = "7b4e909bbe7ffe44c465a220037d608ee35897d31ef972f07f74892cb0f73f13"
    static let serverPublicHex = "0faa684ed28867b97f4a6a2dee5df8ce974e76b7018e3f22a1c4cf2678570f20"
    /// box(`{"version":2,"CanAckPings":true}`), client → server.
    static let clientBoxHex =
        "a858a062bb55fbd0e565bf952225b5e220ae6ff32ce093a7548f0f9efd7331db8b94711fe4546f1ed0d738121d94abe3"
    /// box(`{"version":2}`), server → client.
    static let serverBoxHex = "a9f96672359ffb53a9a765041e0e895820ae6ff32ce093a7548f0f9eac"

    @Test func clientInfoJSONAsGoMarshalsIt() {
        #expect(String(decoding: ClientInfo().json, as: UTF8.self) == #"{"version":2,"CanAckPings":true}"#)
        let mesh = ClientInfo(meshKey: "abc", canAckPings: false, isProber: true)
        #expect(String(decoding: mesh.json, as: UTF8.self) == #"{"meshKey":"abc","version":2,"CanAckPings":false,"IsProber":true}"#)
        #expect(String(decoding: ServerInfo().json, as: UTF8.self) == #"{"version":2}"#)
        let limited = ServerInfo(tokenBucketBytesPerSecond: 1000, tokenBucketBytesBurst: 2000)
        #expect(String(decoding: limited.json, as: UTF8.self) == #"{"version":2,"TokenBucketBytesPerSecond":1000,"TokenBucketBytesBurst":2000}"#)
    }

    @Test func clientInfoBoxMatchesReference() throws {
        let client = try X25519.PrivateKey(Self.clientPrivate)
        let server = try X25519.PrivateKey(Self.serverPrivate)
        #expect(client.publicKey.raw.hex == Self.clientPublicHex)
        #expect(server.publicKey.raw.hex == Self.serverPublicHex)
        let sealed = try Login.sealClientInfo(ClientInfo(), clientKey: client, serverKey: server.publicKey, nonce: Self.nonce)
        #expect(Hex.encode(Array(buffer: sealed.box)) == Self.clientBoxHex)
        // The whole frame: type 2, length, client key, nonce, box.
        let frame = Array(buffer: Frame.clientInfo(sealed).encoded())
        #expect(frame[0..<5] == [0x02, 0, 0, 0, UInt8(32 + 24 + 48)])
        #expect(Hex.encode(frame[5..<37]) == Self.clientPublicHex)
        #expect(frame[37..<61] == ArraySlice(0..<24))
        // And the server opens the reference box.
        let reference = SealedClientInfo(
            clientKey: client.publicKey, nonce: Self.nonce, box: ByteBuffer(bytes: Hex.decode(Self.clientBoxHex)!))
        let info = try Login.openClientInfo(reference, serverKey: server)
        #expect(info == ClientInfo(version: 2, canAckPings: true))
    }

    @Test func serverInfoBoxMatchesReference() throws {
        let client = try X25519.PrivateKey(Self.clientPrivate)
        let server = try X25519.PrivateKey(Self.serverPrivate)
        let sealed = try Login.sealServerInfo(ServerInfo(), serverKey: server, clientKey: client.publicKey, nonce: Self.nonce)
        #expect(Hex.encode(Array(buffer: sealed.box)) == Self.serverBoxHex)
        let info = try Login.openServerInfo(sealed, clientKey: client, serverKey: server.publicKey)
        #expect(info == ServerInfo(version: 2))
    }

    /// A client that claims a key it does not hold cannot log in: its box
    /// was made with another private key and does not open.
    @Test func impersonationFails() throws {
        let server = X25519.PrivateKey()
        let victim = X25519.PrivateKey().publicKey
        let attacker = X25519.PrivateKey()
        var sealed = try Login.sealClientInfo(ClientInfo(), clientKey: attacker, serverKey: server.publicKey)
        sealed.clientKey = victim
        #expect(throws: DERPError.self) { try Login.openClientInfo(sealed, serverKey: server) }
    }

    @Test func garbageJSONIsALoginFailure() throws {
        let client = X25519.PrivateKey()
        let server = X25519.PrivateKey()
        let shared = try NaClBox.SharedKey(privateKey: client, peer: server.publicKey)
        let nonce = Nonce24.random()
        let box = NaClBox.seal(key: shared, nonce: nonce, message: Array("{not json".utf8))
        let sealed = SealedClientInfo(clientKey: client.publicKey, nonce: nonce, box: ByteBuffer(bytes: box))
        do {
            _ = try Login.openClientInfo(sealed, serverKey: server)
            Issue.record("garbage JSON accepted")
        } catch let error as DERPError {
            #expect(error.kind == .loginFailed)
        }
    }

    @Test func unknownJSONFieldsAreIgnored() throws {
        let client = X25519.PrivateKey()
        let server = X25519.PrivateKey()
        let shared = try NaClBox.SharedKey(privateKey: client, peer: server.publicKey)
        let nonce = Nonce24.random()
        let json = #"{"version":2,"CanAckPings":true,"Future":[1,2],"meshKey":"k"}"#
        let box = NaClBox.seal(key: shared, nonce: nonce, message: Array(json.utf8))
        let info = try Login.openClientInfo(SealedClientInfo(clientKey: client.publicKey, nonce: nonce, box: ByteBuffer(bytes: box)), serverKey: server)
        #expect(info == ClientInfo(meshKey: "k", version: 2, canAckPings: true))
    }
}

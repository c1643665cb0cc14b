import CryptoPrimitives
import Mesh
import Testing
import WireGuardCore

@Suite struct UAPITests {
    private func set(_ text: String, _ i: inout Interface, _ s: inout UAPI.DeviceSettings) throws(UAPI.SetError) {
        try UAPI.set(text.split(separator: "\n", omittingEmptySubsequences: false), to: &i, settings: &s, now: .zero)
    }

    /// What `wg set wg0 private-key … listen-port … peer … ` sends, and what
    /// `wg show` reads back.
    @Test func setThenGet() throws {
        var i = Interface(privateKey: X25519.PrivateKey())
        var s = UAPI.DeviceSettings(listenPort: 0, hasPrivateKey: false)
        let key = X25519.PrivateKey()
        let peer = X25519.PrivateKey().publicKey
        let psk = SecureRandom.bytes32()
        let request = key.withUnsafeSecretBytes { k in
            """
            private_key=\(Hex.encode(k))
            listen_port=51820
            public_key=\(peer.raw.hex)
            preshared_key=\(psk.hex)
            endpoint=192.0.2.1:51821
            persistent_keepalive_interval=25
            replace_allowed_ips=true
            allowed_ip=10.0.0.2/32
            allowed_ip=fd00::/64
            """
        }
        try set(request, &i, &s)
        #expect(s.listenPort == 51820 && s.hasPrivateKey)
        #expect(i.publicKey == key.publicKey)
        let id = i.peer(forKey: peer)!
        #expect(i.endpoint(of: id) == WireGuardCore.Endpoint("192.0.2.1:51821"))
        #expect(i.presharedKey(of: id) == psk)
        #expect(i.persistentKeepalive(of: id) == 25)
        #expect(Set(i.allowedIPs(of: id)) == [IPPrefix("10.0.0.2/32")!, IPPrefix("fd00::/64")!])
        let shown = UAPI.get(i, settings: s)
        #expect(shown.hasPrefix("private_key=\(key.withUnsafeSecretBytes { Hex.encode($0) })\nlisten_port=51820\n"))
        #expect(shown.contains("public_key=\(peer.raw.hex)\npreshared_key=\(psk.hex)\nprotocol_version=1\n"))
        #expect(shown.contains("endpoint=192.0.2.1:51821\n"))
        #expect(shown.contains("persistent_keepalive_interval=25\n"))
        #expect(shown.hasSuffix("errno=0\n\n"))
    }

    @Test func removeReplaceAndUpdateOnly() throws {
        var i = Interface(privateKey: X25519.PrivateKey())
        var s = UAPI.DeviceSettings(listenPort: 0, hasPrivateKey: true)
        let p1 = X25519.PrivateKey().publicKey
        let p2 = X25519.PrivateKey().publicKey
        try set("public_key=\(p1.raw.hex)\npublic_key=\(p2.raw.hex)\nallowed_ip=10.0.0.0/8", &i, &s)
        #expect(i.peerIDs.count == 2)
        try set("public_key=\(p1.raw.hex)\nremove=true", &i, &s)
        #expect(i.peerIDs.count == 1 && i.peer(forKey: p1) == nil)
        let p3 = X25519.PrivateKey().publicKey
        try set("public_key=\(p3.raw.hex)\nupdate_only=true\nallowed_ip=10.1.0.0/16", &i, &s)
        #expect(i.peer(forKey: p3) == nil)
        try set("replace_peers=true", &i, &s)
        #expect(i.peerIDs.isEmpty)
    }

    @Test func badInputIsEINVAL() {
        var i = Interface(privateKey: X25519.PrivateKey())
        var s = UAPI.DeviceSettings(listenPort: 0, hasPrivateKey: true)
        for bad in [
            "private_key=abc", "listen_port=70000", "allowed_ip=10.0.0.0/8", "nonsense=1",
            "public_key=\(X25519.PrivateKey().publicKey.raw.hex)\nendpoint=nowhere",
            "public_key=\(X25519.PrivateKey().publicKey.raw.hex)\nallowed_ip=10.0.0.0/40",
        ] {
            #expect(throws: UAPI.SetError.self, "\(bad)") { try set(bad, &i, &s) }
        }
    }
}

import CryptoPrimitives
import WireGuardCore

/// WireGuard's cross-platform userspace API (wireguard.com/xplatform), the
/// text protocol `wg` speaks to userspace implementations over
/// /var/run/wireguard/<interface>.sock:
///
///     get=1\n\n          →  private_key=<hex>\nlisten_port=N\n
///                           public_key=<hex>\n  (per peer, then its fields)
///                           …errno=0\n\n
///     set=1\nkey=value\n…\n\n  →  errno=0\n\n  (or errno=<E> on failure)
///
/// Keys are 64 hex digits. This file is pure: it turns requests into
/// changes of an `Interface` (plus the listen port, which the device owns)
/// and renders the state for `get`.
public enum UAPI {
    public struct DeviceSettings: Sendable, Equatable {
        public var listenPort: UInt16
        public var fwmark: UInt32 = 0
        public var hasPrivateKey: Bool
        public init(listenPort: UInt16, hasPrivateKey: Bool) {
            self.listenPort = listenPort
            self.hasPrivateKey = hasPrivateKey
        }
    }

    public struct SetError: Error, Equatable, CustomStringConvertible {
        /// The errno `wg` prints (EINVAL for bad input, as wireguard-go).
        public let errno: Int32
        public let message: String
        public var description: String { message }
        static func invalid(_ m: String) -> SetError { SetError(errno: 22, message: m) }
    }

    /// Renders `get=1`.
    public static func get(_ interface: Interface, settings: DeviceSettings) -> String {
        var out = ""
        if settings.hasPrivateKey {
            interface.withPrivateKey { key in
                key.withUnsafeSecretBytes { out += "private_key=\(Hex.encode($0))\n" }
            }
        }
        out += "listen_port=\(settings.listenPort)\n"
        if settings.fwmark != 0 { out += "fwmark=\(settings.fwmark)\n" }
        for id in interface.peerIDs {
            out += "public_key=\(interface.publicKey(of: id)!.raw.hex)\n"
            out += "preshared_key=\((interface.presharedKey(of: id) ?? .zero).hex)\n"
            out += "protocol_version=1\n"
            if let endpoint = interface.endpoint(of: id) { out += "endpoint=\(endpoint)\n" }
            let stats = interface.statistics(of: id)!
            let last = stats.lastHandshakeUnixNanoseconds ?? 0
            out += "last_handshake_time_sec=\(last / 1_000_000_000)\n"
            out += "last_handshake_time_nsec=\(last % 1_000_000_000)\n"
            out += "tx_bytes=\(stats.sentBytes)\n"
            out += "rx_bytes=\(stats.receivedBytes)\n"
            out += "persistent_keepalive_interval=\(interface.persistentKeepalive(of: id) ?? 0)\n"
            for prefix in interface.allowedIPs(of: id) { out += "allowed_ip=\(prefix)\n" }
        }
        out += "errno=0\n\n"
        return out
    }

    /// Applies the `key=value` lines of a `set=1` request, in order, as
    /// wireguard-go does: a `public_key` line selects (and usually creates)
    /// the peer the following lines refer to.
    public static func set(
        _ lines: [Substring], to interface: inout Interface, settings: inout DeviceSettings, now: Instant
    ) throws(SetError) {
        var peer: PeerID?
        var skipPeer = false  // update_only for a peer that does not exist
        var pendingKey: X25519.PublicKey?
        var updateOnly = false

        func currentPeer(_ interface: inout Interface) throws(SetError) -> PeerID? {
            if let peer { return peer }
            guard let key = pendingKey else { return nil }
            if updateOnly, interface.peer(forKey: key) == nil {
                skipPeer = true
                return nil
            }
            do {
                peer = try interface.addPeer(publicKey: key)
            } catch {
                throw .invalid("peer cannot be added: \(error)")
            }
            return peer
        }

        for line in lines where !line.isEmpty {
            guard let eq = line.firstIndex(of: "=") else { throw .invalid("line without '=': \(line)") }
            let key = line[..<eq]
            let value = line[line.index(after: eq)...]
            if pendingKey == nil && key != "public_key" {
                // Interface-level keys.
                switch key {
                case "private_key":
                    guard let bytes = Hex.decode(String(value)), bytes.count == 32 else {
                        throw .invalid("private_key: expected 64 hex digits")
                    }
                    if bytes.allSatisfy({ $0 == 0 }) {
                        settings.hasPrivateKey = false
                    } else {
                        let key = try! X25519.PrivateKey(bytes)
                        // Setting the key we already have (`wg setconf` does)
                        // must not end the sessions.
                        if !(settings.hasPrivateKey && key.publicKey == interface.publicKey) {
                            interface.setPrivateKey(key)
                        }
                        settings.hasPrivateKey = true
                    }
                case "listen_port":
                    guard let port = UInt16(value) else { throw .invalid("listen_port: not a port") }
                    settings.listenPort = port
                case "fwmark":
                    guard let mark = UInt32(value) else { throw .invalid("fwmark: not a number") }
                    settings.fwmark = mark
                case "replace_peers":
                    guard value == "true" else { throw .invalid("replace_peers: only 'true'") }
                    for id in interface.peerIDs { interface.removePeer(id) }
                case "protocol_version":
                    guard value == "1" else { throw .invalid("protocol_version: only 1") }
                default:
                    throw .invalid("unknown interface key \(key)")
                }
                continue
            }
            switch key {
            case "public_key":
                guard let bytes = Hex.decode(String(value)), bytes.count == 32 else {
                    throw .invalid("public_key: expected 64 hex digits")
                }
                if pendingKey != nil, !skipPeer { _ = try currentPeer(&interface) }
                pendingKey = try! X25519.PublicKey(bytes)
                peer = nil
                skipPeer = false
                updateOnly = false
            case "update_only":
                updateOnly = value == "true"
            case "remove":
                guard value == "true" else { throw .invalid("remove: only 'true'") }
                if let key = pendingKey, let id = interface.peer(forKey: key) { interface.removePeer(id) }
                skipPeer = true
            default:
                guard let id = try currentPeer(&interface) else {
                    if skipPeer { continue }
                    throw .invalid("peer key \(key) before public_key")
                }
                switch key {
                case "preshared_key":
                    guard let bytes = Hex.decode(String(value)), bytes.count == 32 else {
                        throw .invalid("preshared_key: expected 64 hex digits")
                    }
                    let psk = try! Bytes32(bytes)
                    interface.setPresharedKey(id, psk.isZero ? nil : psk)
                case "endpoint":
                    guard let endpoint = WireGuardCore.Endpoint(value) else { throw .invalid("endpoint: expected ip:port") }
                    interface.setEndpoint(id, endpoint)
                case "persistent_keepalive_interval":
                    guard let seconds = UInt16(value) else { throw .invalid("persistent_keepalive_interval") }
                    interface.setPersistentKeepalive(id, seconds: seconds, now: now)
                case "replace_allowed_ips":
                    guard value == "true" else { throw .invalid("replace_allowed_ips: only 'true'") }
                    interface.clearAllowedIPs(id)
                case "allowed_ip":
                    guard let prefix = IPPrefix(value) else { throw .invalid("allowed_ip: bad prefix \(value)") }
                    interface.addAllowedIP(id, prefix)
                case "protocol_version":
                    guard value == "1" else { throw .invalid("protocol_version: only 1") }
                default:
                    throw .invalid("unknown peer key \(key)")
                }
            }
        }
        // A trailing public_key with no other line still creates the peer.
        if !skipPeer { _ = try currentPeer(&interface) }
    }
}

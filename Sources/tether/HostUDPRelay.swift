import Agent
import Mesh
import Netstack
import Synchronization
import WireGuardCore

#if canImport(Glibc)
    import Glibc
#endif

/// `tether port-forward --udp`: a UDP socket on this machine. Each local
/// client address gets a UDP socket of its own in the tunnel, so the
/// workspace's replies find their way back to that client; at most
/// `maximumClients` clients (datagrams from more are dropped).
final class HostUDPRelay: Sendable {
    let fd: Int32
    let port: UInt16
    static let maximumClients = 256

    /// Binds `host` (an IPv4 or IPv6 literal) and `port` (0: any free one).
    init(host: String, port: UInt16) throws(HostTCPListener.Failure) {
        (fd, self.port) = try HostTCPListener.bound(host: host, port: port, type: Int32(SOCK_DGRAM.rawValue))
    }

    /// Relays datagrams to `address`:`remotePort` through `node`, forever, on a thread.
    func run(node: MeshNode, to address: WireGuardCore.IPAddress, port remotePort: UInt16) {
        let fd = fd
        let target = Netstack.SocketAddress(MeshNode.netstackAddress(address), remotePort)
        startThread(name: "udp-relay") {
            var clients: [[UInt8]: Netstack.UDPSocket] = [:]
            var buffer = [UInt8](repeating: 0, count: 65_535)
            while true {
                var from = sockaddr_storage()
                var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
                let n = buffer.withUnsafeMutableBytes { b in
                    withUnsafeMutablePointer(to: &from) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                            recvfrom(fd, b.baseAddress, b.count, 0, $0, &length)
                        }
                    }
                }
                if n < 0 {
                    if errno == EINTR { continue }
                    return
                }
                let key = withUnsafeBytes(of: &from) { Array($0.prefix(Int(length))) }
                var socket = clients[key]
                if socket == nil, clients.count < Self.maximumClients, let made = Self.bindEphemeral(node) {
                    clients[key] = made
                    socket = made
                    let client = from
                    let clientLength = length
                    Task {
                        while let reply = try? await made.receive() {
                            var to = client
                            _ = reply.payload.withUnsafeBytes { p in
                                withUnsafePointer(to: &to) {
                                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                                        sendto(fd, p.baseAddress, p.count, 0, $0, clientLength)
                                    }
                                }
                            }
                        }
                    }
                }
                try? socket?.send(Array(buffer[0..<n]), to: target)
            }
        }
    }

    /// A tunnel UDP socket on a free port of the dynamic range (RFC 6335 §6).
    static func bindEphemeral(_ node: MeshNode) -> Netstack.UDPSocket? {
        for _ in 0..<64 {
            if let s = try? node.bindUDP(port: UInt16.random(in: 49152...65535)) { return s }
        }
        return nil
    }
}

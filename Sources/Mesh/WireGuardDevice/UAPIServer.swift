import CMeshLinux
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Serves the UAPI on /var/run/wireguard/<interface>.sock, where `wg` looks
/// for userspace implementations, so `wg set`/`wg show` work on our device
/// as on wireguard-go's.
public final class UAPIServer: @unchecked Sendable {
    public static let directory = "/var/run/wireguard"
    public let path: String
    private let fd: Int32
    private let device: WireGuardDevice
    private let done = Atomic<Bool>(false)

    public struct StartError: Error, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    public init(device: WireGuardDevice, interfaceName: String) throws(StartError) {
        self.device = device
        mkdir(Self.directory, 0o755)
        path = "\(Self.directory)/\(interfaceName).sock"
        unlink(path)
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw StartError(message: "socket(AF_UNIX): \(String(cString: strerror(errno)))") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            Glibc.close(fd)
            throw StartError(message: "UAPI socket path too long: \(path)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes + [0]) }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard rc == 0, listen(fd, 16) == 0 else {
            let message = String(cString: strerror(errno))
            Glibc.close(fd)
            throw StartError(message: "cannot listen on \(path): \(message)")
        }
        chmod(path, 0o600)
        startThread { [self] in acceptLoop() }
    }

    public func close() {
        guard !done.exchange(true, ordering: .acquiringAndReleasing) else { return }
        unlink(path)
        shutdown(fd, Int32(SHUT_RDWR))
        Glibc.close(fd)
    }

    deinit { close() }

    private func acceptLoop() {
        while !done.load(ordering: .acquiring) {
            guard tether_wait_readable(fd, 200) > 0 else { continue }
            let client = accept(fd, nil, nil)
            guard client >= 0 else { continue }
            startThread { [self] in serve(client) }
        }
    }

    /// Reads requests (each ends with an empty line) and answers each.
    private func serve(_ client: Int32) {
        defer { Glibc.close(client) }
        var pending: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(client, $0.baseAddress, $0.count) }
            guard n > 0 else { return }
            pending += chunk[0..<n]
            while let end = Self.requestEnd(pending) {
                let request = String(decoding: pending[0..<end], as: UTF8.self)
                pending.removeFirst(end + 2)
                let response = Array(device.handleUAPI(request).utf8)
                var sent = 0
                while sent < response.count {
                    let w = response[sent...].withUnsafeBytes { write(client, $0.baseAddress, $0.count) }
                    guard w > 0 else { return }
                    sent += w
                }
            }
            if pending.count > 1 << 20 { return }  // no request is this long
        }
    }

    /// Index of the "\n\n" ending the first request, if complete.
    private static func requestEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 2 else { return nil }
        for i in 0..<(bytes.count - 1) where bytes[i] == 10 && bytes[i + 1] == 10 { return i }
        return nil
    }
}

import CryptoPrimitives
import DERP
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization
import Testing

/// Collects log records so tests can assert that a closed connection's
/// reason was logged.
final class LogCapture: Sendable {
    let records = Mutex<[String]>([])

    var logger: Logger {
        var logger = Logger(label: "test") { _ in Handler(capture: self) }
        logger.logLevel = .info
        return logger
    }

    func contains(_ text: String) -> Bool { records.withLock { $0.contains { $0.contains(text) } } }

    struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .info
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            var all = metadata
            if let extra = event.metadata { all.merge(extra) { $1 } }
            let line = "\(event.level) \(event.message) \(all.map { "\($0)=\($1)" }.sorted().joined(separator: " "))"
            capture.records.withLock { $0.append(line) }
        }
    }
}

/// A server bound to a free loopback port.
func startServer(
    _ configure: (inout DERPServer.Configuration) -> Void = { _ in }, tls: NIOSSLContext? = nil, port: Int = 0
) async throws -> DERPHTTPServer {
    var configuration = DERPServer.Configuration()
    configure(&configuration)
    let server = DERPServer(privateKey: X25519.PrivateKey(), configuration: configuration)
    return try await DERPHTTPServer.bind(server, host: "127.0.0.1", port: port, tls: tls)
}

func url(_ server: DERPHTTPServer, tls: Bool = false) -> DERPURL {
    DERPURL(host: "127.0.0.1", port: server.port, useTLS: tls)
}

func makeClient(
    _ server: DERPHTTPServer, transport: DERPClient.Transport = .upgrade, _ configure: (inout DERPClient.Options) -> Void = { _ in }
) -> DERPClient {
    var options = DERPClient.Options()
    options.transport = transport
    configure(&options)
    return DERPClient(url: url(server), privateKey: X25519.PrivateKey(), options: options)
}

/// The next event matching `match`, or nil after `timeout`.
func nextEvent(
    _ client: DERPClient, timeout: Duration = .seconds(5), where match: @escaping @Sendable (DERPEvent) -> Bool = { _ in true }
) async -> DERPEvent? {
    await withTaskGroup(of: DERPEvent?.self) { group in
        group.addTask {
            for await event in client.events where match(event) { return event }
            return nil
        }
        group.addTask {
            try? await Task.sleep(for: timeout)
            return nil
        }
        let first = await group.next() ?? nil
        group.cancelAll()
        return first
    }
}

func isPacket(_ event: DERPEvent) -> Bool {
    if case .packet = event { return true }
    return false
}

/// Polls `condition` until it holds or `timeout` passes.
func eventually(timeout: Duration = .seconds(5), _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return condition()
}

/// A raw TCP peer: writes bytes, collects whatever comes, sees the close.
/// Stands in for a misbehaving client. (Polled rather than iterated: no
/// async iterator is kept across suspension points.)
final class RawPeer: Sendable {
    let channel: any Channel
    let collector: Collector

    final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let bytes = Mutex<[UInt8]>([])
        let closed = Atomic<Bool>(false)
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let chunk = unwrapInboundIn(data)
            bytes.withLock { $0 += Array(buffer: chunk) }
        }
        func channelInactive(context: ChannelHandlerContext) {
            closed.store(true, ordering: .relaxed)
        }
    }

    init(port: Int) async throws {
        let collector = Collector()
        self.collector = collector
        channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
            }
            .connect(host: "127.0.0.1", port: port).get()
    }

    func write(_ bytes: ByteBuffer) async throws { try await channel.writeAndFlush(bytes) }

    /// Takes the next `count` bytes that arrived (waiting up to 5 s).
    func read(_ count: Int) async -> [UInt8]? {
        guard await eventually({ collector.bytes.withLock { $0.count >= count } }) else { return nil }
        return collector.bytes.withLock { b in
            defer { b.removeFirst(count) }
            return Array(b[0..<count])
        }
    }

    /// Reads up to and including the end of an HTTP response head.
    func readHTTPHead() async -> String? {
        let end = Array("\r\n\r\n".utf8)
        guard await eventually({ collector.bytes.withLock { $0.firstRange(of: end) != nil } }) else { return nil }
        return collector.bytes.withLock { b in
            let range = b.firstRange(of: end)!
            defer { b.removeFirst(range.upperBound) }
            return String(decoding: b[0..<range.upperBound], as: UTF8.self)
        }
    }

    func closes(within timeout: Duration) async -> Bool {
        await eventually(timeout: timeout) { collector.closed.load(ordering: .relaxed) }
    }

    func close() { channel.close(promise: nil) }
}

let upgradeRequest = ByteBuffer(string: "GET /derp HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: DERP\r\n\r\n")

/// Self-signed certificate for 127.0.0.1 / localhost, test only.
let testCertificatePEM = """
    -----BEGIN CERTIFICATE-----
    MIIBnDCCAUGgAwIBAgIUA1f94LhBqaBFB5m+9LeNyXmkV1QwCgYIKoZIzj0EAwIw
    FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyMzE2MDk1M1oYDzIxMjYxMDMw
    MTYwOTUzWjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
    PQMBBwNCAAR2mHO41Kb31SeFdx7RQ921CFjnwy7srJYTayeTQ1xt5EcYMWixvlWK
    0tBdyoEr0UlVKoXqRIPvdYpdF0Z52cz6o28wbTAdBgNVHQ4EFgQUUFuImReHHQC9
    qnGBoRai+2TNY1YwHwYDVR0jBBgwFoAUUFuImReHHQC9qnGBoRai+2TNY1YwDwYD
    VR0TAQH/BAUwAwEB/zAaBgNVHREEEzARgglsb2NhbGhvc3SHBH8AAAEwCgYIKoZI
    zj0EAwIDSQAwRgIhAMOMuIUD8P4npwzRfljuNigojtOBYM1ELMqao/fVk7+nAiEA
    q/glPpCY39G2mFBZ38298yr8ads1Ip33dcoXeiavB8c=
    -----END CERTIFICATE-----
    """
let testKeyPEM = """
    -----BEGIN PRIVATE KEY-----
    MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgat6JDreK+2IoB8uU
    ZLxgHe+Ntx1O3W3KC1UD9t9UZxuhRANCAAR2mHO41Kb31SeFdx7RQ921CFjnwy7s
    rJYTayeTQ1xt5EcYMWixvlWK0tBdyoEr0UlVKoXqRIPvdYpdF0Z52cz6
    -----END PRIVATE KEY-----
    """

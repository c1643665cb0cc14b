import CryptoPrimitives
import DERP
import NIOCore
import NIOPosix
import Synchronization

/// Counts received bytes in whole frames of one known size and reports
/// them to the window. Relayed SendPacket and RecvPacket frames have the
/// same size, so one counter serves socat and DERP alike.
final class FrameCounter: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let frameSize = Atomic<Int>(1)
    let carry = Mutex(0)
    let window: Window?
    init(window: Window?) { self.window = window }

    func count(_ bytes: Int) {
        let size = frameSize.load(ordering: .relaxed)
        let frames = carry.withLock { c -> Int in
            c += bytes
            let n = c / size
            c -= n * size
            return n
        }
        if frames > 0 { window?.received(frames) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        count(unwrapInboundIn(data).readableBytes)
    }
}

/// A DERP client reduced to what the relay benchmark needs: `GET /derp`
/// with `Upgrade: DERP`, the login, then raw bytes (frames written by the
/// caller; received bytes counted by a `FrameCounter`). It puts the same
/// load on the relay as the socat run's sender and receiver.
final class RawDERPPeer: Sendable {
    let channel: any Channel
    let key: NodeKey
    let counter: FrameCounter

    private init(channel: any Channel, key: NodeKey, counter: FrameCounter) {
        self.channel = channel
        self.key = key
        self.counter = counter
    }

    static func connect(port: Int, window: Window?) async throws -> RawDERPPeer {
        let identity = KeyBox(X25519.PrivateKey())
        let counter = FrameCounter(window: window)
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let loggedIn = loop.makePromise(of: Void.self)
        let channel = try await ClientBootstrap(group: loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        LoginHandler(identity: identity, counter: counter, loggedIn: loggedIn))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        try await loggedIn.futureResult.get()
        return RawDERPPeer(channel: channel, key: identity.publicKey, counter: counter)
    }
}

final class KeyBox: Sendable {
    let privateKey: X25519.PrivateKey
    let publicKey: NodeKey
    init(_ key: consuming X25519.PrivateKey) {
        publicKey = key.publicKey
        privateKey = key
    }
}

/// Upgrade, ServerKey → ClientInfo, ServerInfo; afterwards every byte goes
/// to the counter.
final class LoginHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State { case httpHead, login, counting }
    private var state = State.httpHead
    private var head: [UInt8] = []
    private var stream = FrameStream()
    private let identity: KeyBox
    private let counter: FrameCounter
    private let loggedIn: EventLoopPromise<Void>

    init(identity: KeyBox, counter: FrameCounter, loggedIn: EventLoopPromise<Void>) {
        self.identity = identity
        self.counter = counter
        self.loggedIn = loggedIn
    }

    func channelActive(context: ChannelHandlerContext) {
        let request = "GET /derp HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: DERP\r\n\r\n"
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: request)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        switch state {
        case .counting:
            counter.count(bytes.readableBytes)
            return
        case .httpHead:
            head += bytes.readBytes(length: bytes.readableBytes)!
            guard let end = head.firstRange(of: Array("\r\n\r\n".utf8)) else { return }
            guard head.starts(with: Array("HTTP/1.1 101".utf8)) else {
                return fail(context, "upgrade refused: \(String(decoding: head, as: UTF8.self))")
            }
            var rest = ByteBuffer(bytes: head[end.upperBound...])
            head = []
            state = .login
            stream.append(&rest)
        case .login:
            stream.append(&bytes)
        }
        do {
            while state == .login, let frame = try stream.next() {
                switch frame {
                case .serverKey(let serverKey):
                    let sealed = try Login.sealClientInfo(ClientInfo(), clientKey: identity.privateKey, serverKey: serverKey)
                    context.writeAndFlush(wrapOutboundOut(Frame.clientInfo(sealed).encoded()), promise: nil)
                case .serverInfo:
                    state = .counting
                    let left = stream.bufferedBytes
                    stream.reset()
                    if left > 0 { counter.count(left) }
                    loggedIn.succeed()
                default:
                    return fail(context, "unexpected frame 0x\(String(frame.type, radix: 16)) during login")
                }
            }
        } catch {
            fail(context, "\(error)")
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        loggedIn.fail(BenchmarkFailure("connection closed"))
        context.fireChannelInactive()
    }

    private func fail(_ context: ChannelHandlerContext, _ why: String) {
        loggedIn.fail(BenchmarkFailure(why))
        context.close(promise: nil)
    }
}

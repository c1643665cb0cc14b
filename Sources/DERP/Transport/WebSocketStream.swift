import NIOCore
import NIOWebSocket

/// Carries the DERP byte stream in WebSocket binary messages (subprotocol
/// `derp`), for paths where a proxy breaks `Upgrade: DERP`. Messages need
/// not align with frames: the DERP decoder above sees one byte stream.
/// Client-sent frames are masked (RFC 6455 §5.3); pings are answered
/// (§5.5.2); a close is echoed and the channel closed (§5.5.1).
final class WebSocketByteStream: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = WebSocketFrame

    private let isClient: Bool
    private var closing = false

    init(isClient: Bool) { self.isClient = isClient }

    private var maskKey: WebSocketMaskingKey? { isClient ? .random() : nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .binary, .continuation, .text:
            context.fireChannelRead(wrapInboundOut(frame.unmaskedData))
        case .ping:
            let pong = WebSocketFrame(fin: true, opcode: .pong, maskKey: maskKey, data: frame.unmaskedData)
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
        case .connectionClose:
            guard !closing else {
                context.close(promise: nil)
                return
            }
            closing = true
            let close = WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: maskKey, data: frame.unmaskedData)
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.writeAndFlush(wrapOutboundOut(close)).whenComplete { _ in bound.value.close(promise: nil) }
        default:
            break
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let bytes = unwrapOutboundIn(data)
        context.write(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .binary, maskKey: maskKey, data: bytes)), promise: promise)
    }
}

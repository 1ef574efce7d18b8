import NIOCore
import NIOHTTPTypes

/// Gives a connection's descriptor back when its client is too slow to be honest: a request
/// head must arrive whole within `head` of the connection opening (or of the previous
/// response), and the request must end within `request` of its head. Without it, a few
/// hundred clients each sending half a request line hold the server's descriptors forever
/// (the idle timeout alone never fires on a byte every few seconds). No deadline runs while
/// the server itself is answering.
final class RequestDeadlines: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let head: TimeAmount
    let request: TimeAmount
    private var pending: Scheduled<Void>?

    init(head: TimeAmount, request: TimeAmount) {
        self.head = head
        self.request = request
    }

    func handlerAdded(context: ChannelHandlerContext) { arm(context, head) }

    func handlerRemoved(context: ChannelHandlerContext) { disarm() }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head: arm(context, request)
        case .end: disarm()  // the server answers now: no deadline while it does
        case .body: break
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { arm(context, head) }  // the next request's head
        context.write(data, promise: promise)
    }

    func channelInactive(context: ChannelHandlerContext) {
        disarm()
        context.fireChannelInactive()
    }

    private func arm(_ context: ChannelHandlerContext, _ after: TimeAmount) {
        disarm()
        let channel = context.channel
        pending = context.eventLoop.scheduleTask(in: after) { channel.close(promise: nil) }
    }

    private func disarm() {
        pending?.cancel()
        pending = nil
    }
}

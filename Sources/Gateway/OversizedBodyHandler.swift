import HTTPTypes
import Metrics
import NIOCore
import NIOHTTPTypes

/// Keeps bodies over the gateway's body limit off the route handlers, on the event loop.
///
/// A declared `Content-Length` over the limit is answered 413 with `Connection: close` at
/// once, before any handler sees the request. A body without a declared length is passed
/// on and counted: once it is over the limit, the handler gets the end of the request
/// right after the chunk that crossed it (and answers 413 itself, seeing too many bytes).
/// Either way the rest of the body is dropped as it arrives and the connection is closed
/// when it ends.
///
/// Dropping the body instead of closing straight away matters for senders that write
/// their whole body before they read (Python's http.client, many webhook senders): a
/// connection closed under their writes resets, and they never see the 413. Dropping on
/// the event loop, not through the request's async body stream, keeps that fast on a
/// busy machine. A sender that never finishes is cut off after ``dropDeadline``.
final class OversizedBodyHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// How long a refused body may take to arrive before the connection is closed (as
    /// nginx's `lingering_time`).
    static let dropDeadline: TimeAmount = .seconds(30)

    private enum State {
        /// Between requests, or in one whose declared length is within the limit.
        case passing
        /// In a request without a declared length: counting its body.
        case counting(bytes: Int, limit: Int)
        /// Over the limit: dropping the rest of the body; the connection closes once the
        /// body ended and the 413 is written, whichever comes last.
        case dropping(bodyEnded: Bool, answered: Bool)
    }

    private let limit: @Sendable () -> (bytes: Int, source: String)
    private var state = State.passing

    /// A handler refusing bodies over `limit().bytes` (read per request: it can change
    /// once the topics' limits are known); `source` says where the limit comes from.
    init(limit: @escaping @Sendable () -> (bytes: Int, source: String)) {
        self.limit = limit
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch (unwrapInboundIn(data), state) {
        case (.head(let head), _):
            let limit = limit()
            let declared = head.headerFields[.contentLength].flatMap(Int.init)
            if let declared, declared > limit.bytes {
                state = .dropping(bodyEnded: false, answered: true)
                refuse(context: context, declared: declared, limit: limit)
                return
            }
            state = declared == nil ? .counting(bytes: 0, limit: limit.bytes) : .passing
            context.fireChannelRead(data)
        case (.body, .dropping):
            break
        case (.body(let buffer), .counting(let bytes, let limit)):
            let total = bytes + buffer.readableBytes
            context.fireChannelRead(data)
            if total > limit {
                // The route handler answers; its answer passes through ``write``.
                state = .dropping(bodyEnded: false, answered: false)
                context.fireChannelRead(wrapInboundOut(.end(nil)))
                scheduleClose(context: context)
            } else {
                state = .counting(bytes: total, limit: limit)
            }
        case (.body, .passing):
            context.fireChannelRead(data)
        case (.end, .dropping(_, let answered)):
            state = .dropping(bodyEnded: true, answered: answered)
            if answered { context.close(promise: nil) }
        case (.end, _):
            state = .passing
            context.fireChannelRead(data)
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .dropping(let bodyEnded, false) = state, case .end = unwrapOutboundIn(data) else {
            context.write(data, promise: promise)
            return
        }
        state = .dropping(bodyEnded: bodyEnded, answered: true)
        guard bodyEnded else {
            context.write(data, promise: promise)
            return
        }
        // The sender finished first: close once the answer is out.
        let written = promise ?? context.eventLoop.makePromise()
        let channel = context.channel
        written.futureResult.whenComplete { _ in channel.close(promise: nil) }
        context.write(data, promise: written)
    }

    private func refuse(context: ChannelHandlerContext, declared: Int, limit: (bytes: Int, source: String)) {
        Counter(label: "oms_gateway_requests_total", dimensions: [("route", "any (body over the limit)"), ("status", "413")]).increment()
        var body = context.channel.allocator.buffer(capacity: 200)
        body.writeString(#"{"error":"too_large","message":"the body is \#(declared) bytes, over \#(limit.bytes) bytes (\#(limit.source))"}"#)
        let head = HTTPResponse(status: .contentTooLarge, headerFields: [
            .contentType: "application/json", .contentLength: String(body.readableBytes), .connection: "close",
        ])
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        scheduleClose(context: context)
    }

    private func scheduleClose(context: ChannelHandlerContext) {
        let channel = context.channel
        context.eventLoop.scheduleTask(in: Self.dropDeadline) { channel.close(promise: nil) }
    }
}

import HTTPTypes
import Metrics
import NIOCore
import NIOHTTPTypes

/// Keeps bodies over the gateway's body limit off the route handlers, on the event loop.
///
/// A declared `Content-Length` over the limit is answered 413 with `Connection: close` at
/// once, before any handler sees the request. A body without a declared length is passed
/// on and counted: once it is over the limit, this handler answers 413 itself, ends the
/// request for the route handler right after the chunk that crossed it, and drops the
/// route handler's own answer (a 413 too: it sees too many bytes). Either way the rest of
/// the body is dropped as it arrives and the connection is closed once it ended and the
/// answer is out.
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
        /// Over the limit, 413 sent: dropping the rest of the body (and, while `muting`,
        /// the route handler's answer); the connection closes once the body ended and the
        /// route handler's answer, if muted, is over.
        case dropping(bodyEnded: Bool, muting: Bool)
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
                state = .dropping(bodyEnded: false, muting: false)
                refuse(context: context, declared: declared, limit: (limit.bytes, limit.source))
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
                state = .dropping(bodyEnded: false, muting: true)
                refuse(context: context, declared: nil, limit: self.limit())
                context.fireChannelRead(wrapInboundOut(.end(nil)))
            } else {
                state = .counting(bytes: total, limit: limit)
            }
        case (.body, .passing):
            context.fireChannelRead(data)
        case (.end, .dropping(_, let muting)):
            state = .dropping(bodyEnded: true, muting: muting)
            if !muting { context.close(promise: nil) }
        case (.end, _):
            state = .passing
            context.fireChannelRead(data)
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .dropping(let bodyEnded, true) = state else {
            context.write(data, promise: promise)
            return
        }
        // The route handler's answer to a request already answered: dropped.
        promise?.succeed()
        guard case .end = unwrapOutboundIn(data) else { return }
        state = .dropping(bodyEnded: bodyEnded, muting: false)
        if bodyEnded { context.close(promise: nil) }
    }

    private func refuse(context: ChannelHandlerContext, declared: Int?, limit: (bytes: Int, source: String)) {
        Counter(label: "oms_gateway_requests_total", dimensions: [("route", "any (body over the limit)"), ("status", "413")]).increment()
        var body = context.channel.allocator.buffer(capacity: 200)
        let size = declared.map { "\($0) bytes, " } ?? ""
        body.writeString(#"{"error":"too_large","message":"the body is \#(size)over \#(limit.bytes) bytes (\#(limit.source))"}"#)
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

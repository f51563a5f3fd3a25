import Contracts
import Fleet
import HTTPTypes
import Hummingbird
import Tracing

/// The caller's `traceparent`, kept for the request's task, so that the record a request
/// writes continues the caller's trace even when no tracer is bootstrapped (the tracer's
/// own middleware reads it through the instrument, which then is the no-op one).
struct IncomingTraceParentMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let text = request.headers[HTTPField.Name.traceparent], let incoming = try? TraceParent(parsing: text) else {
            return try await next(request, context)
        }
        return try await GatewayTrace.$incoming.withValue(incoming) { try await next(request, context) }
    }
}

/// Which trace the record a gateway request writes belongs to.
enum GatewayTrace {
    /// The request's valid `traceparent` header, if it had one.
    @TaskLocal static var incoming: TraceParent?

    /// The written record's `traceparent`: the request's span when a tracer made one
    /// (so the first stage's span is that span's child), else a child of the caller's
    /// `traceparent` derived from the event id, else a new trace derived from the event
    /// id. The two fallbacks keep a retried request (same event id) in the same trace.
    static func traceparent(forEventID id: String) -> TraceParent {
        if let context = InstrumentationContext.current, let span = RecordTracing.traceparent(of: context) { return span }
        if let incoming { return incoming.child(forEventID: id) }
        return TraceParent.root(forEventID: id)
    }
}

extension HTTPField.Name {
    /// W3C Trace Context's header.
    static let traceparent = HTTPField.Name("traceparent")!
}

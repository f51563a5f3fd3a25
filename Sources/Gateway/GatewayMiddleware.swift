import Foundation
import HTTPTypes
import Hummingbird
import Metrics
import NIOCore

/// Counts every answer of a matched route as `oms_gateway_requests_total{route,status}`,
/// including the ones a middleware gives (401, 409, 413).
struct RequestCountMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            let response = try await next(request, context)
            count(request, context, response.status)
            return response
        } catch let error as any HTTPResponseError {
            count(request, context, error.status)
            throw error
        }
    }

    private func count(_ request: Request, _ context: Context, _ status: HTTPResponse.Status) {
        // Set by the router once a route matched (a shared reference), in OpenAPI's form;
        // unmatched paths would make a label per probe.
        guard let path = context.endpointPath else { return }
        let route = GatewayRoutes.Route(method: request.method.rawValue, path: path)
        Counter(label: "oms_gateway_requests_total", dimensions: [("route", route.description), ("status", String(status.code))]).increment()
    }
}

/// The operator bearer token (`gateway.api.token`) on every route behind it, compared in
/// constant time. With no token configured the routes are open (a local demo).
struct OperatorTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let token {
            let given = request.headers[.authorization].map { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : "" } ?? ""
            guard WebhookSignature.tokensMatch(given, token) else {
                throw GatewayError(status: 401, code: "unauthorized", message: "a valid 'Authorization: Bearer <token>' header is required")
            }
        }
        return try await next(request, context)
    }
}

extension Gateway {
    /// How a webhook proves its sender: a signature over the body in `header`, with the
    /// secret the request names (a shop, a channel, a location).
    struct SignatureCheck: Sendable {
        var kind: WebhookSignature
        var header: HTTPField.Name
        var secret: @Sendable (Call) throws(GatewayError) -> String
    }

    /// Checks a webhook's signature before anything else reads or remembers it; the body
    /// it read (within the gateway's limit) goes on to the route.
    struct SignatureMiddleware: RouterMiddleware {
        let gateway: Gateway
        let check: SignatureCheck

        func handle(_ request: Request, context: BasicRequestContext, next: (Request, BasicRequestContext) async throws -> Response) async throws -> Response {
            let body = try await gateway.readBody(request)
            let call = Call(body: body, request: request, parameters: context.parameters)
            guard check.kind.verify(header: call.header(check.header), body: body, secret: try check.secret(call)) else {
                throw GatewayError(status: 401, code: "bad_signature", message: "the \(check.header.canonicalName) header is missing or does not sign this body")
            }
            var request = request
            request.body = RequestBody(buffer: ByteBuffer(bytes: body))
            return try await next(request, context)
        }
    }

    /// Where a repeated request's key comes from.
    enum Dedupe: Sendable {
        /// The `Idempotency-Key` header.
        case idempotencyKey
        /// A platform header naming the delivery (Shopify's webhook id).
        case header(HTTPField.Name)
    }

    /// Answers a request whose key was answered before with that first answer
    /// (`Idempotent-Replayed: true`), and one whose first is still running with 409. Only
    /// successes are remembered: a refused request may be corrected and sent again.
    struct IdempotencyMiddleware: RouterMiddleware {
        let cache: IdempotencyCache
        let route: GatewayRoutes.Route
        let dedupe: Dedupe

        func handle(_ request: Request, context: BasicRequestContext, next: (Request, BasicRequestContext) async throws -> Response) async throws -> Response {
            let parameters = context.parameters.map { "\($0)=\($1)" }
            let key: String? = switch dedupe {
            case .idempotencyKey: request.headers[.idempotencyKey].map { "\(route.description) \(parameters) \($0)" }
            case .header(let name): request.headers[name].map { "\(route.description) \($0)" }
            }
            guard let key else { return try await next(request, context) }
            switch cache.claim(key) {
            case .answered(let answer):
                var response = Gateway.json(status: answer.status, answer.body)
                response.headers[.idempotentReplayed] = "true"
                return response
            case .inFlight:
                throw GatewayError(status: 409, code: "in_flight", message: "a request with this key is still being processed; retry shortly", retryAfter: 1)
            case .claimed:
                do {
                    var response = try await next(request, context)
                    let body = try await Self.collect(response.body)
                    cache.finish(key, with: .init(status: Int(response.status.code), body: body))
                    response.body = ResponseBody(byteBuffer: ByteBuffer(bytes: body))
                    return response
                } catch {
                    cache.finish(key, with: nil)
                    throw error
                }
            }
        }

        /// A route's whole answer (the gateway's are single buffers).
        private static func collect(_ body: ResponseBody) async throws -> [UInt8] {
            let collector = Collector()
            try await body.write(collector)
            return collector.bytes
        }

        private final class Collector: ResponseBodyWriter {
            var bytes: [UInt8] = []
            func write(_ buffer: ByteBuffer) async throws { bytes += buffer.readableBytesView }
            func finish(_ trailingHeaders: HTTPFields?) async throws {}
        }
    }
}

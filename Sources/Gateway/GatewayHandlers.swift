import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import Kafka
import NIOCore

/// An answer other than success: a status, a machine-readable code and a message for
/// the sender. Bodies are `{"error": code, "message": text}`.
struct GatewayError: Error, HTTPResponseError {
    var statusCode: Int
    var code: String
    var message: String
    var retryAfter: Int?
    /// Answer with `Connection: close` (a body that was not read whole).
    var closeConnection: Bool

    init(status: Int, code: String, message: String, retryAfter: Int? = nil, closeConnection: Bool = false) {
        statusCode = status
        self.code = code
        self.message = message
        self.retryAfter = retryAfter
        self.closeConnection = closeConnection
    }

    var status: HTTPResponse.Status { .init(code: statusCode) }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        if closeConnection { headers[.connection] = "close" }
        let body = (try? JSONEncoder.gateway.encode(["error": code, "message": message])) ?? Data()
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }

    static func invalidBody(_ message: String) -> GatewayError { GatewayError(status: 400, code: "invalid_body", message: message) }
}

/// The body of a 202: where the record went.
struct Accepted: Codable, Sendable {
    var status = "accepted"
    var topic: String
    var partition: Int32
    var offset: Int64
    var orderId: String?
    var channel: String?
    var externalOrderId: String?
    var carrier: String?
    var trackingNumber: String?
    var returnId: String?
    var appeasementId: String?
    var changeId: String?
    var location: String?

    init(_ report: KafkaDeliveryReport, orderId: String? = nil) {
        topic = report.topic
        partition = report.partition
        offset = report.offset
        self.orderId = orderId
    }
}

extension HTTPField.Name {
    static let shopifyHmac = Self("X-Shopify-Hmac-Sha256")!
    static let shopifyWebhookID = Self("X-Shopify-Webhook-Id")!
    static let shopifyTopic = Self("X-Shopify-Topic")!
    static let shopifyShopDomain = Self("X-Shopify-Shop-Domain")!
    static let easyPostSignature = Self("X-Hmac-Signature")!
    static let afterShipSignature = Self("aftership-hmac-sha256")!
    static let omsSignature = Self("X-OMS-Signature")!
    static let idempotencyKey = Self("Idempotency-Key")!
    static let idempotentReplayed = Self("Idempotent-Replayed")!
}

extension JSONEncoder {
    static let gateway: JSONEncoder = {
        let encoder = EventCodec.makeEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()
}

/// What a handler is given: the raw body and the route's parameters.
struct Call: Sendable {
    var body: [UInt8]
    var request: Request
    var parameters: Parameters

    func header(_ name: HTTPField.Name) -> String? { request.headers[name] }

    func parameter(_ name: String) -> String { parameters.get(name) ?? "" }

    /// Decodes the body as `T`, with a 400 that says which field is wrong.
    func decode<T: Decodable>(_ type: T.Type) throws(GatewayError) -> T {
        do {
            return try EventCodec.makeDecoder().decode(T.self, from: Data(body))
        } catch let error as DecodingError {
            throw .invalidBody(Self.describe(error))
        } catch {
            throw .invalidBody("the body is not JSON: \(error.localizedDescription)")
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [any CodingKey]) -> String { keys.isEmpty ? "$" : "$." + keys.map(\.stringValue).joined(separator: ".") }
        switch error {
        case .keyNotFound(let key, let context): return "\(path(context.codingPath + [key])) is missing"
        case .typeMismatch(_, let context), .valueNotFound(_, let context): return "\(path(context.codingPath)): \(context.debugDescription)"
        case .dataCorrupted(let context): return "\(path(context.codingPath)): \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }
}

extension Gateway {
    /// Registers `route` on `routes`: checks `signature` against the body (401), answers a
    /// repeated key with the first answer (`dedupe`), reads the body (413 over the limit)
    /// and runs `work`. Each is a middleware on the route, in that order; the collection's
    /// own middleware (the operator token) runs before them.
    func add(
        _ route: GatewayRoutes.Route, to routes: RouteCollection<BasicRequestContext>, signature: SignatureCheck? = nil, dedupe: Dedupe? = nil,
        media: @escaping @Sendable (Call) -> String = { _ in "application/json" },
        work: @escaping @Sendable (Call) async throws(GatewayError) -> (status: Int, body: [UInt8])
    ) {
        let group = routes.group()
        if let signature { group.add(middleware: SignatureMiddleware(gateway: self, check: signature)) }
        if let dedupe { group.add(middleware: IdempotencyMiddleware(cache: idempotency, route: route, dedupe: dedupe)) }
        group.on(RouterPath(route.routerPath), method: HTTPRequest.Method(route.method)!) { request, context in
            let call = Call(body: try await self.readBody(request), request: request, parameters: context.parameters)
            let (status, body) = try await work(call)
            return Self.response(status: status, body, contentType: media(call))
        }
    }

    /// The request body, up to ``Gateway/bodyLimit``. A declared length over it never gets
    /// here (``OversizedBodyHandler``); a chunked body that passes it is read and dropped
    /// (for at most 2 s) before the 413 goes out with `Connection: close`, so that a sender
    /// that writes its whole body before it reads sees the 413 too.
    func readBody(_ request: Request) async throws(GatewayError) -> [UInt8] {
        let limit = bodyLimit
        var body: [UInt8] = []
        do {
            var iterator = request.body.makeAsyncIterator()
            while let buffer = try await iterator.next() {
                guard body.count + buffer.readableBytes <= limit else {
                    await drain(&iterator)
                    throw tooLargeBody(limit: limit)
                }
                body += buffer.readableBytesView
            }
        } catch let error as GatewayError {
            throw error
        } catch {
            throw .invalidBody("the body could not be read: \(error)")
        }
        return body
    }

    private func tooLargeBody(limit: Int) -> GatewayError {
        GatewayError(status: 413, code: "too_large", message: "the body is over \(limit) bytes (\(bodyLimitSource))", closeConnection: true)
    }

    private func drain(_ iterator: inout RequestBody.AsyncIterator) async {
        let deadline = ContinuousClock.now + .seconds(2)
        var dropped = 0
        while ContinuousClock.now < deadline, dropped < 256 << 20 {
            guard let buffer = try? await iterator.next() else { return }
            dropped += buffer.readableBytes
        }
    }

    static func json(status: Int, _ body: [UInt8]) -> Response {
        response(status: status, body, contentType: "application/json")
    }

    static func response(status: Int, _ body: [UInt8], contentType: String) -> Response {
        Response(status: .init(code: status), headers: [.contentType: contentType], body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }

    /// Writes `event` under `id` and answers 202 with where it went, the order it is
    /// about and whatever `fill` adds (the ids the caller follows it by).
    func accept(
        _ event: Event, id: String, orderId: String? = nil, _ fill: (inout Accepted) -> Void = { _ in }
    ) async throws(GatewayError) -> (status: Int, body: [UInt8]) {
        var accepted = Accepted(try await produce(event, id: id), orderId: orderId)
        fill(&accepted)
        return (202, try Self.encode(accepted))
    }

    static func encode(_ value: some Encodable) throws(GatewayError) -> [UInt8] {
        do {
            return Array(try JSONEncoder.gateway.encode(value))
        } catch {
            throw GatewayError(status: 500, code: "internal", message: "could not encode the answer")
        }
    }
}

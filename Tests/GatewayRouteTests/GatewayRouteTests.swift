import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Kafka
import Logging
import NIOCore
import Prometheus
import Synchronization
import Testing

@testable import Gateway

/// The gateway's routes and middleware through hummingbird's in-process test client: no
/// socket, and no broker (Kafka points at a closed port, so nothing here may need it).
@Suite("gateway routes without a broker")
struct GatewayRouteTests {
    static let token = "operator-token"
    static let shopifySecret = "shpss_test"

    static func gateway() throws -> Gateway {
        var configuration = GatewayConfiguration()
        configuration.apiToken = token
        configuration.shopifySecret = shopifySecret
        configuration.kafkaTimeout = .milliseconds(200)
        let kafka = KafkaConfiguration(bootstrapServers: "127.0.0.1:1")
        return try Gateway(configuration: configuration, kafka: kafka, registry: PrometheusCollectorRegistry(), logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    static func json(_ buffer: ByteBuffer) -> [String: String] {
        (try? JSONDecoder().decode([String: String].self, from: Data(buffer.readableBytesView))) ?? [:]
    }

    @Test("operator routes need the bearer token, checked before the route runs; other routes do not")
    func operatorToken() async throws {
        let app = Application(router: try Self.gateway().router())
        try await app.test(.router) { client in
            for headers: HTTPFields in [[:], [.authorization: "Bearer wrong"], [.authorization: Self.token]] {
                try await client.execute(uri: "/v1/orders/o-1", method: .get, headers: headers) { response in
                    #expect(response.status == .unauthorized)
                    #expect(Self.json(response.body)["error"] == "unauthorized")
                }
            }
            try await client.execute(uri: "/v1/orders/o-1/cancel", method: .post, body: ByteBuffer(string: "{}")) { response in
                #expect(response.status == .unauthorized, "a command too")
            }
            // Past the token: the order view is not read yet (no broker), so not 401.
            try await client.execute(uri: "/v1/orders/o-1", method: .get, headers: [.authorization: "Bearer \(Self.token)"]) { response in
                #expect(response.status != .unauthorized)
                #expect(response.status.code >= 400)
            }
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(response.status == .ok, "health has no token")
            }
            try await client.execute(uri: "/v1/nothing-here", method: .get) { response in
                #expect(response.status == .notFound)
            }
        }
    }

    @Test("a webhook's signature is checked before its body is read by the route; the route then reads the same body")
    func webhookSignature() async throws {
        let app = Application(router: try Self.gateway().router())
        let body = #"{"id": 1, "not": "an order"}"#
        try await app.test(.router) { client in
            try await client.execute(
                uri: "/v1/channels/shopify/orders", method: .post, headers: [.init("X-Shopify-Hmac-Sha256")!: "bm9wZQ=="], body: ByteBuffer(string: body)
            ) { response in
                #expect(response.status == .unauthorized)
                #expect(Self.json(response.body)["error"] == "bad_signature")
            }
            let signature = WebhookSignature.base64.sign(Array(body.utf8), secret: Self.shopifySecret)
            try await client.execute(
                uri: "/v1/channels/shopify/orders", method: .post,
                headers: [.init("X-Shopify-Hmac-Sha256")!: signature, .init("X-Shopify-Webhook-Id")!: "w-1"], body: ByteBuffer(string: body)
            ) { response in
                // Signed, so the route decoded the body: it is no Shopify order.
                #expect(response.status == .badRequest)
                #expect(Self.json(response.body)["error"] == "invalid_body", "\(String(buffer: response.body))")
            }
        }
    }

    @Test("idempotency middleware: a repeated key gets the first answer without running the route; failures are not remembered; a key in flight gets 409")
    func idempotencyMiddleware() async throws {
        let calls = Mutex(0)
        let release = AsyncStream<Void>.makeStream()
        let route = GatewayRoutes.Route(method: "POST", path: "/v1/things/{id}")
        let router = Router()
        router.group()
            .add(middleware: Gateway.IdempotencyMiddleware(cache: IdempotencyCache(capacity: 100), route: route, dedupe: .idempotencyKey))
            .post("/v1/things/:id") { request, context in
                let call = calls.withLock { $0 += 1; return $0 }
                if request.headers[.init("X-Wait")!] != nil { for await _ in release.stream { break } }
                if request.headers[.init("X-Fail")!] != nil { throw GatewayError.invalidBody("failed on purpose") }
                return Gateway.json(status: 202, Array(#"{"call": \#(call), "id": "\#(context.parameters.get("id") ?? "")"}"#.utf8))
            }
        let key = HTTPField.Name.idempotencyKey
        try await Application(router: router).test(.router) { client in
            var first = ""
            try await client.execute(uri: "/v1/things/a", method: .post, headers: [key: "k1"]) { response in
                #expect(response.status == .accepted)
                #expect(response.headers[.idempotentReplayed] == nil)
                first = String(buffer: response.body)
            }
            try await client.execute(uri: "/v1/things/a", method: .post, headers: [key: "k1"]) { response in
                #expect(response.status == .accepted)
                #expect(response.headers[.idempotentReplayed] == "true")
                #expect(String(buffer: response.body) == first)
            }
            #expect(calls.withLock { $0 } == 1)
            // The same key on another resource, or no key: the route runs.
            try await client.execute(uri: "/v1/things/b", method: .post, headers: [key: "k1"]) { #expect($0.headers[.idempotentReplayed] == nil) }
            try await client.execute(uri: "/v1/things/a", method: .post) { #expect($0.status == .accepted) }
            #expect(calls.withLock { $0 } == 3)
            for _ in 0..<2 {
                try await client.execute(uri: "/v1/things/a", method: .post, headers: [key: "k2", .init("X-Fail")!: "1"]) { #expect($0.status == .badRequest) }
            }
            #expect(calls.withLock { $0 } == 5, "a failed answer is not replayed")
            async let slow: HTTPResponse.Status = client.execute(uri: "/v1/things/a", method: .post, headers: [key: "k3", .init("X-Wait")!: "1"]) { $0.status }
            while calls.withLock({ $0 }) < 6 { try await Task.sleep(for: .milliseconds(10)) }
            try await client.execute(uri: "/v1/things/a", method: .post, headers: [key: "k3"]) { response in
                #expect(response.status == .conflict)
                #expect(response.headers[.retryAfter] == "1")
            }
            release.continuation.yield()
            #expect(try await slow == .accepted)
        }
    }
}

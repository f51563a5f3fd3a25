import Contracts
import Fleet
import Foundation
import Kafka
import OrderFleetTesting
import Testing

@testable import Gateway

/// The operator endpoints for webhook subscriptions, over HTTP against a gateway on a
/// broker (``GatewayHarness``, which configures ``GatewayHarness/webhookSigningKey``).
@Suite("gateway webhook subscriptions", .serialized)
struct GatewayWebhookTests {
    @Test("webhooks.signing.key is read as a secret of at least 16 characters; a shorter one names its key")
    func signingKeyConfiguration() async throws {
        let settings = try GatewayConfiguration(reader: try await WorkerConfiguration.reader(environment: ["WEBHOOKS_SIGNING_KEY": "0123456789abcdef"]))
        #expect(settings.webhookSigningKey == "0123456789abcdef")
        #expect(try GatewayConfiguration(reader: try await WorkerConfiguration.reader(environment: [:])).webhookSigningKey == nil)
        let error = await #expect(throws: ConfigurationError.self) {
            try GatewayConfiguration(reader: try await WorkerConfiguration.reader(environment: ["WEBHOOKS_SIGNING_KEY": "short-key"]))
        }
        #expect(error?.key == "webhooks.signing.key")
        #expect(error?.description.contains("short-key") != true, "the key is not echoed")
    }

    @Test("add, list, disable and enable subscriptions; bad input is a 400 naming the field; the delivery log lists the subscription's deliveries, newest first")
    func subscriptions() async throws {
        try await GatewayHarness.with(stages: [], apiToken: GatewayTests.token) { harness in
            #expect(try await harness.get("/v1/ops/webhooks", token: nil).status == 401)
            #expect(try await harness.post("/v1/ops/webhooks", body: Array(#"{"url":"https://erp.example/h","eventTypes":["*"]}"#.utf8), headers: [:]).status == 401)
            let badURL = try await harness.post("/v1/ops/webhooks", json: ["url": "ftp://erp.example/h", "eventTypes": ["*"]])
            #expect(badURL.status == 400 && badURL.json["error"] as? String == "invalid_body", "\(badURL.text)")
            #expect((badURL.json["message"] as? String)?.hasPrefix("$.url: ") == true, "\(badURL.text)")
            let badType = try await harness.post("/v1/ops/webhooks", json: ["url": "https://erp.example/h", "eventTypes": ["oms.inventory.reserve"]])
            #expect(badType.status == 400 && badType.text.contains("$.eventTypes") && badType.text.contains("oms.inventory.reserve"), "\(badType.text)")
            let noTypes = try await harness.post("/v1/ops/webhooks", json: ["url": "https://erp.example/h", "eventTypes": [String]()])
            #expect(noTypes.status == 400 && noTypes.text.contains("$.eventTypes"), "\(noTypes.text)")
            let missing = try await harness.post("/v1/ops/webhooks", json: ["url": "https://erp.example/h"])
            #expect(missing.status == 400 && missing.text.contains("$.eventTypes is missing"), "\(missing.text)")

            // Created: the record's own fields, plus the secret derived from the gateway's key.
            let key = TestCluster.uniqueName("add")
            let body: [String: Any] = ["url": "https://erp.example/h", "eventTypes": ["oms.order.placed"], "description": "ERP"]
            let added = try await harness.post("/v1/ops/webhooks", json: body, headers: ["Idempotency-Key": key])
            #expect(added.status == 201, "\(added.text)")
            let id = try #require(added.json["subscriptionId"] as? String)
            #expect(id.hasPrefix("wh_") && id.count == 19 && id.dropFirst(3).allSatisfy { "0123456789abcdef".contains($0) }, "\(id)")
            #expect(added.json["status"] as? String == "active" && added.json["url"] as? String == "https://erp.example/h")
            #expect(added.json["eventTypes"] as? [String] == ["oms.order.placed"] && added.json["description"] as? String == "ERP")
            #expect(added.json["createdAt"] as? String != nil && added.json["createdAt"] as? String == added.json["updatedAt"] as? String)
            #expect(added.json["secret"] as? String == WebhookEvents.signingSecret(subscriptionID: id, signingKey: GatewayHarness.webhookSigningKey))
            // A retried request (same Idempotency-Key) gets the first answer, not a second subscription.
            let replayed = try await harness.post("/v1/ops/webhooks", json: body, headers: ["Idempotency-Key": key])
            #expect(replayed.status == 201 && replayed.json["subscriptionId"] as? String == id && replayed.header("Idempotent-Replayed") == "true")

            func listed() async throws -> [[String: Any]] {
                try await harness.get("/v1/ops/webhooks").json["subscriptions"] as? [[String: Any]] ?? []
            }
            #expect(try await waitUntil(timeout: .seconds(10)) { try await listed().contains { $0["subscriptionId"] as? String == id } })
            let mine = try await listed().filter { $0["subscriptionId"] as? String == id }
            #expect(mine.count == 1 && mine.first?["secret"] == nil && mine.first?["status"] as? String == "active", "listed once, never with its secret")

            let disabled = try await harness.post("/v1/ops/webhooks/\(id)/disable", json: ["reason": "receiver moves"])
            #expect(disabled.status == 200 && disabled.json["status"] as? String == "disabled" && disabled.json["reason"] as? String == "receiver moves", "\(disabled.text)")
            #expect(disabled.json["subscriptionId"] as? String == id && disabled.json["secret"] == nil)
            let shownDisabled = try await waitUntil(timeout: .seconds(10)) {
                try await listed().contains { $0["subscriptionId"] as? String == id && $0["status"] as? String == "disabled" && $0["reason"] as? String == "receiver moves" }
            }
            #expect(shownDisabled)
            let enabled = try await harness.post("/v1/ops/webhooks/\(id)/enable", body: [], headers: ["Authorization": "Bearer \(GatewayTests.token)"])
            #expect(enabled.status == 200 && enabled.json["status"] as? String == "active" && enabled.json["reason"] == nil, "\(enabled.text)")
            let unknown = "wh_0000000000000000"
            #expect(try await harness.post("/v1/ops/webhooks/\(unknown)/disable", json: [:]).status == 404)
            #expect(try await harness.post("/v1/ops/webhooks/\(unknown)/enable", json: [:]).status == 404)
            let noLog = try await harness.get("/v1/ops/webhooks/\(unknown)/deliveries")
            #expect(noLog.status == 404 && noLog.json["error"] as? String == "not_found", "\(noLog.text)")

            // The log: this subscription's webhooks ledger entries only, newest first.
            let now = Date()
            func entry(_ connector: String, _ command: String, _ state: DeliveryState, _ age: TimeInterval, status: Int? = nil) -> Event {
                OutboundDelivery(
                    connector: connector, commandId: command, commandType: "oms.order.placed.v1", orderId: "o-1", idempotencyKey: command, state: state,
                    attempts: 2, status: status, sourceOffset: 0, updatedAt: now.addingTimeInterval(-age)).event
            }
            try await harness.produce([
                entry("webhooks", "\(id)/e1", .delivered, 60, status: 204), entry("webhooks", "\(id)/e2", .retrying, 5, status: 503),
                entry("channels", "\(id)/e3", .delivered, 1), entry("webhooks", "wh_ffffffffffffffff/e4", .delivered, 1),
            ])
            var deliveries: [[String: Any]] = []
            _ = try await waitUntil(timeout: .seconds(10)) {
                deliveries = try await harness.get("/v1/ops/webhooks/\(id)/deliveries").json["deliveries"] as? [[String: Any]] ?? []
                return deliveries.count >= 2
            }
            #expect(deliveries.compactMap { $0["deliveryId"] as? String } == ["\(id)/e2", "\(id)/e1"], "exactly this subscription's webhooks deliveries, newest first")
            let newest = try #require(deliveries.first)
            #expect(newest["state"] as? String == "retrying" && newest["status"] as? Int == 503 && newest["attempts"] as? Int == 2)
            #expect(newest["eventType"] as? String == "oms.order.placed.v1" && newest["orderId"] as? String == "o-1" && newest["updatedAt"] is String)
            #expect(newest["commandId"] == nil && newest["connector"] == nil, "named for the subscriber, not the ledger")
            let one = try await harness.get("/v1/ops/webhooks/\(id)/deliveries?limit=1").json["deliveries"] as? [[String: Any]]
            #expect(one?.compactMap { $0["deliveryId"] as? String } == ["\(id)/e2"])
            #expect(try await harness.get("/v1/ops/webhooks/\(id)/deliveries?limit=0").status == 400)
            #expect(try await harness.get("/v1/ops/webhooks/\(id)/deliveries?limit=1001").status == 400)
            #expect(try await harness.get("/v1/ops/webhooks/\(id)/deliveries", token: nil).status == 401)

            // The gateway's table holds the webhooks connector's entries only.
            let table = try await GlobalTable.open(
                topic: OutboundDelivery.topic, kafka: harness.cluster.configuration, logger: TestCluster.logger, keep: Gateway.isWebhookDelivery)
            try await table.catchUp(timeout: .seconds(30))
            let connectors = Set(table.values.values.compactMap { event -> String? in
                if case .outboundDelivery(let entry) = event { return entry.connector } else { return nil }
            })
            #expect(connectors == ["webhooks"] && table.value("channels/\(id)/e3") == nil && table.value("webhooks/\(id)/e1") != nil)
            await table.close()
        }
    }
}

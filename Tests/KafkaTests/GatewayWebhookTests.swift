import Contracts
import Foundation
import Kafka
import Testing

@testable import Gateway

/// The operator endpoints for webhook subscriptions, over HTTP against a gateway on a broker.
@Suite("gateway webhook subscriptions", .serialized)
struct GatewayWebhookTests {
    @Test("add, list, disable and enable subscriptions; bad input is a 400 naming the field; the delivery log lists the subscription's deliveries, newest first")
    func subscriptions() async throws {
        try await GatewayHarness.with(stages: [], apiToken: GatewayTests.token) { harness in
            #expect(try await harness.get("/v1/ops/webhooks", token: nil).status == 401)
            let badURL = try await harness.post("/v1/ops/webhooks", json: ["url": "ftp://erp.example/h", "eventTypes": ["*"]])
            #expect(badURL.status == 400 && badURL.text.contains("$.url"), "\(badURL.text)")
            let badType = try await harness.post("/v1/ops/webhooks", json: ["url": "https://erp.example/h", "eventTypes": ["oms.inventory.reserve"]])
            #expect(badType.status == 400 && badType.text.contains("$.eventTypes") && badType.text.contains("oms.inventory.reserve"), "\(badType.text)")
            let missing = try await harness.post("/v1/ops/webhooks", json: ["url": "https://erp.example/h"])
            #expect(missing.status == 400 && missing.text.contains("$.eventTypes is missing"), "\(missing.text)")

            let added = try await harness.post(
                "/v1/ops/webhooks", json: ["url": "https://erp.example/h", "eventTypes": ["oms.order.placed"], "description": "ERP"],
                headers: ["Idempotency-Key": TestCluster.uniqueName("add")])
            #expect(added.status == 201, "\(added.text)")
            let subscription = try #require(added.json["subscription"] as? [String: Any])
            let id = try #require(subscription["subscriptionId"] as? String)
            #expect(id.hasPrefix("wh_") && subscription["status"] as? String == "active")
            #expect(added.json["secret"] as? String == WebhookEvents.signingSecret(subscriptionID: id, signingKey: GatewayHarness.webhookSigningKey))

            let listed = try await waitUntil(timeout: .seconds(10)) {
                let list = try await harness.get("/v1/ops/webhooks").json["subscriptions"] as? [[String: Any]] ?? []
                return list.contains { $0["subscriptionId"] as? String == id && $0["secret"] == nil }
            }
            #expect(listed)
            let disabled = try await harness.post("/v1/ops/webhooks/\(id)/disable", json: ["reason": "receiver moves"])
            #expect(disabled.status == 200 && (disabled.json["subscription"] as? [String: Any])?["status"] as? String == "disabled", "\(disabled.text)")
            #expect(disabled.json["secret"] == nil)
            let shownDisabled = try await waitUntil(timeout: .seconds(10)) {
                let list = try await harness.get("/v1/ops/webhooks").json["subscriptions"] as? [[String: Any]] ?? []
                return list.contains { $0["subscriptionId"] as? String == id && $0["status"] as? String == "disabled" && $0["reason"] as? String == "receiver moves" }
            }
            #expect(shownDisabled)
            let enabled = try await harness.post("/v1/ops/webhooks/\(id)/enable", json: [:])
            #expect(enabled.status == 200 && (enabled.json["subscription"] as? [String: Any])?["status"] as? String == "active")
            #expect(try await harness.post("/v1/ops/webhooks/wh_0000000000000000/disable", json: [:]).status == 404)
            #expect(try await harness.get("/v1/ops/webhooks/wh_0000000000000000/deliveries").status == 404)

            // The log: this subscription's ledger entries only, newest first.
            let now = Date()
            func entry(_ connector: String, _ command: String, _ state: DeliveryState, _ age: TimeInterval) -> Event {
                OutboundDelivery(
                    connector: connector, commandId: command, commandType: "oms.order.placed.v1", orderId: "o-1", idempotencyKey: command, state: state,
                    attempts: 1, sourceOffset: 0, updatedAt: now.addingTimeInterval(-age)).event
            }
            try await harness.produce([
                entry("webhooks", "\(id)/e1", .delivered, 60), entry("webhooks", "\(id)/e2", .retrying, 5), entry("channels", "\(id)/e3", .delivered, 1),
                entry("webhooks", "wh_ffffffffffffffff/e4", .delivered, 1),
            ])
            var deliveries: [[String: Any]] = []
            _ = try await waitUntil(timeout: .seconds(10)) {
                deliveries = try await harness.get("/v1/ops/webhooks/\(id)/deliveries").json["deliveries"] as? [[String: Any]] ?? []
                return deliveries.count == 2
            }
            #expect(deliveries.compactMap { $0["commandId"] as? String } == ["\(id)/e2", "\(id)/e1"])
            #expect(deliveries.first?["state"] as? String == "retrying")
            #expect(try await harness.get("/v1/ops/webhooks/\(id)/deliveries?limit=1").json["deliveries"].map { ($0 as? [Any])?.count } == 1)
            #expect(try await harness.get("/v1/ops/webhooks/\(id)/deliveries?limit=0").status == 400)
        }
    }
}

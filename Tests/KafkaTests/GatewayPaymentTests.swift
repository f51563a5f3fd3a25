import Contracts
import Fleet
import Foundation
import Kafka
import OrderFleetTesting
import Testing

@testable import Gateway
@testable import oms

/// The operator endpoints for payment commands the payments connector could not settle,
/// over HTTP against a gateway on a broker.
@Suite("gateway payment operations", .serialized)
struct GatewayPaymentTests {
    @Test("a failed refund is listed with its reason; retry writes the command again, byte for byte, to its partition; a settled one leaves the list")
    func failedRefund() async throws {
        try await GatewayHarness.with(stages: [], apiToken: GatewayTests.token) { harness in
            let orderId = TestCluster.uniqueName("order")
            let commandId = UUID().uuidString
            let refund = RefundPayment(
                orderId: orderId, returnId: "r-1", amount: Money(minorUnits: 2_500, currency: .usd), reason: Reason(code: "returned", message: "returned"),
                requestedAt: Date(), channel: "web", authorizationReference: "pi_1")
            let producer = try harness.cluster.producer()
            let command = try KafkaProducerMessage(Envelope(id: commandId, source: "test", time: Date(), event: refund.event), topic: RefundPayment.topic, partition: 2)
            let written = try await producer.send(command)
            func entry(_ state: DeliveryState, reason: String?) -> KafkaProducerMessage {
                let entry = OutboundDelivery(
                    connector: "payments", commandId: commandId, commandType: RefundPayment.eventType.description, orderId: orderId,
                    idempotencyKey: "payments/\(commandId)", state: state, attempts: 3, reason: reason, sourceOffset: written.offset, updatedAt: Date(),
                    sourcePartition: 2)
                return try! KafkaProducerMessage(Envelope(id: UUID().uuidString, source: "test", time: Date(), event: entry.event), topic: OutboundDelivery.topic, partition: 2)
            }
            _ = try await producer.send(entry(.failed, reason: "HTTP 500: An unknown error occurred"))

            func listed() async throws -> [[String: Any]] {
                (try await harness.get("/v1/ops/payments").json["payments"] as? [[String: Any]] ?? []).filter { $0["commandId"] as? String == commandId }
            }
            #expect(try await waitUntil(timeout: .seconds(15)) { try await listed().count == 1 })
            let issue = try #require(try await listed().first)
            #expect(issue["state"] as? String == "failed" && issue["orderId"] as? String == orderId && (issue["reason"] as? String)?.contains("500") == true)
            #expect(try await harness.get("/v1/ops/payments", token: nil).status == 401)
            #expect(try await harness.post("/v1/ops/payments/no-such-command/retry", json: [:]).status == 404)

            let retried = try await harness.post("/v1/ops/payments/\(commandId)/retry", json: [:])
            #expect(retried.status == 202 && retried.json["state"] as? String == "resubmitted", "\(retried.text)")
            let copies = try await FleetFixture(cluster: harness.cluster, input: RefundPayment.topic, output: RefundPayment.topic, partitions: 6)
                .readAll(RefundPayment.topic).filter { $0.partition == 2 && $0.value == command.value }
            #expect(copies.count == 2 && copies.map(\.offset).max()! > written.offset, "the command once more, later in its partition")

            _ = try await producer.send(entry(.delivered, reason: "reconciled: the endpoint has it"))
            #expect(try await waitUntil(timeout: .seconds(15)) { try await listed().isEmpty })
            try await producer.close()
        }
    }

    @Test("a capture refused for an expired authorization is listed with its failure class; reauthorize writes it again, same id, with leave to re-authorize; other failures are not re-authorized")
    func expiredCapture() async throws {
        try await GatewayHarness.with(stages: [], apiToken: GatewayTests.token) { harness in
            let orderId = TestCluster.uniqueName("order")
            let producer = try harness.cluster.producer()
            func capture(_ id: String, reason: String) async throws -> (KafkaProducerMessage, Int64) {
                let capture = CapturePayment(
                    orderId: orderId, shipmentId: "s-\(id)", amount: Money(minorUnits: 4_000, currency: .usd), authorizationReference: "pi_1", requestedAt: Date(), channel: "web")
                let command = try KafkaProducerMessage(Envelope(id: id, source: "test", time: Date(), event: capture.event), topic: CapturePayment.topic, partition: 1)
                let written = try await producer.send(command)
                let entry = OutboundDelivery(
                    connector: "payments", commandId: id, commandType: CapturePayment.eventType.description, orderId: orderId,
                    idempotencyKey: "payments/\(id)", state: .rejected, attempts: 1, reason: reason, sourceOffset: written.offset, updatedAt: Date(),
                    sourcePartition: 1)
                _ = try await producer.send(try KafkaProducerMessage(Envelope(id: UUID().uuidString, source: "test", time: Date(), event: entry.event), topic: OutboundDelivery.topic, partition: 1))
                return (command, written.offset)
            }
            let expiredId = UUID().uuidString
            let declinedId = UUID().uuidString
            let (_, offset) = try await capture(expiredId, reason: "authorization_expired: payment_intent_unexpected_state")
            _ = try await capture(declinedId, reason: "declined: Your card was declined.")
            func listed() async throws -> [[String: Any]] {
                (try await harness.get("/v1/ops/payments").json["payments"] as? [[String: Any]] ?? []).filter { [expiredId, declinedId].contains($0["commandId"] as? String) }
            }
            #expect(try await waitUntil(timeout: .seconds(15)) { try await listed().count == 2 })
            let failures = Dictionary(try await listed().map { ($0["commandId"] as! String, $0["failure"] as? String ?? "") }, uniquingKeysWith: { $1 })
            #expect(failures == [expiredId: "authorization_expired", declinedId: "declined"])

            let refused = try await harness.post("/v1/ops/payments/\(declinedId)/reauthorize", json: [:])
            #expect(refused.status == 409 && refused.json["error"] as? String == "not_expired", "\(refused.text)")
            let asked = try await harness.post("/v1/ops/payments/\(expiredId)/reauthorize", json: [:])
            #expect(asked.status == 202 && asked.json["reauthorize"] as? String == "true", "\(asked.text)")
            let again = try await FleetFixture(cluster: harness.cluster, input: CapturePayment.topic, output: CapturePayment.topic, partitions: 6)
                .readAll(CapturePayment.topic).filter { $0.partition == 1 && $0.offset > offset }
                .compactMap { try? Envelope.decode($0.eventRecord) }.filter { $0.id == expiredId }
            guard case .capturePayment(let resubmitted)? = again.first?.event else {
                Issue.record("the command was not written again")
                return
            }
            #expect(again.count == 1 && resubmitted.reauthorize == true && resubmitted.shipmentId == "s-\(expiredId)")
            try await producer.close()
        }
    }
}

/// Adyen's notification webhook on the gateway: signed items become the outcome events
/// of the commands their references name.
@Suite("gateway Adyen notifications", .serialized)
struct GatewayAdyenTests {
    @Test("a signed CAPTURE becomes PaymentCaptured of its command (the same again: the same event id); a failed REFUND a PaymentRefundFailed; a bad signature 401")
    func notifications() async throws {
        try await GatewayHarness.with(stages: []) { harness in
            let orderId = TestCluster.uniqueName("order")
            let producer = try harness.cluster.producer()
            let capture = CapturePayment(
                orderId: orderId, shipmentId: "s-1", amount: Money(minorUnits: 2_000, currency: .eur), authorizationReference: "8815000000000001",
                requestedAt: Date(), channel: "web")
            let refund = RefundPayment(
                orderId: orderId, returnId: "r-1", amount: Money(minorUnits: 500, currency: .eur), reason: Reason(code: "returned", message: "r"),
                requestedAt: Date(), channel: "web", authorizationReference: "8815000000000001")
            let captureID = UUID().uuidString
            let refundID = UUID().uuidString
            let at1 = try await producer.send(try KafkaProducerMessage(Envelope(id: captureID, source: "test", time: Date(), event: capture.event), topic: CapturePayment.topic, partition: 1))
            let at2 = try await producer.send(try KafkaProducerMessage(Envelope(id: refundID, source: "test", time: Date(), event: refund.event), topic: CapturePayment.topic, partition: 1))
            try await producer.close()
            func item(_ code: String, success: Bool, reference: String, psp: String, value: Int64) -> [String: Any] {
                var item: [String: Any] = [
                    "eventCode": code, "success": success ? "true" : "false", "pspReference": psp, "originalReference": "8815000000000001",
                    "merchantAccountCode": "OrderFleetECOM", "merchantReference": reference, "amount": ["value": value, "currency": "EUR"],
                    "reason": success ? "" : "Insufficient balance on payment", "eventDate": "2026-12-04T10:00:00+01:00",
                ]
                item["additionalData"] = ["hmacSignature": AdyenNotifications.signature(item, hexKey: GatewayHarness.adyenHMACKey)!]
                return item
            }
            let captured = item("CAPTURE", success: true, reference: AdyenNotifications.reference(commandID: captureID, partition: 1, offset: at1.offset), psp: "LOCAL1", value: 2_000)
            let refused = item("REFUND", success: false, reference: AdyenNotifications.reference(commandID: refundID, partition: 1, offset: at2.offset), psp: "LOCAL2", value: 500)
            let foreign = item("AUTHORISATION", success: true, reference: "checkout-123", psp: "LOCAL3", value: 2_000)
            let path = "/v1/payments/adyen/notifications"
            let answer = try await harness.post(path, body: LocalAdyen.body([captured, refused, foreign]), headers: ["Content-Type": "application/json"])
            #expect(answer.status == 200 && answer.text == "[accepted]", "\(answer.status) \(answer.text)")
            #expect(try await harness.post(path, body: LocalAdyen.body([captured]), headers: ["Content-Type": "application/json"]).text == "[accepted]")
            var tampered = captured
            tampered["amount"] = ["value": 1, "currency": "EUR"]
            #expect(try await harness.post(path, body: LocalAdyen.body([tampered]), headers: ["Content-Type": "application/json"]).status == 401)
            #expect(try await harness.post(path, body: Array("{}".utf8), headers: ["Content-Type": "application/json"]).status == 400)

            var outcomes: [(String, Event)] = []
            _ = try await waitUntil(timeout: .seconds(15)) {
                outcomes = try await FleetFixture(cluster: harness.cluster, input: PaymentCaptured.topic, output: PaymentCaptured.topic, partitions: 6)
                    .readAll(PaymentCaptured.topic).compactMap { message in
                        guard let envelope = try? Envelope.decode(message.eventRecord), envelope.subject == orderId else { return nil }
                        return (envelope.id, envelope.event)
                    }
                return outcomes.count >= 3
            }
            #expect(outcomes.count == 3, "two outcomes, the capture's written twice")
            #expect(Set(outcomes.map(\.0)).count == 2, "a repeated notification gives the same event id")
            let events = outcomes.map(\.1)
            #expect(events.contains { if case .paymentCaptured(let c) = $0 { c.commandId == captureID && c.shipmentId == "s-1" && c.provider == "adyen" && c.providerReference == "LOCAL1" } else { false } })
            #expect(events.contains { if case .paymentRefundFailed(let r) = $0 { r.commandId == refundID && r.failure == .declined && r.message == "Insufficient balance on payment" } else { false } })
        }
    }
}

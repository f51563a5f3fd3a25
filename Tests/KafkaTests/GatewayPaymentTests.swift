import Contracts
import Fleet
import Foundation
import Kafka
import Testing

@testable import Gateway

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
}

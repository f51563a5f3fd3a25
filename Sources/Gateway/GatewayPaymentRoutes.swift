import Contracts
import Fleet
import Foundation
import Hummingbird
import Kafka

extension GatewayRoutes {
    static let paymentIssues = Route(method: "GET", path: "/v1/ops/payments")
    static let retryPayment = Route(method: "POST", path: "/v1/ops/payments/{commandId}/retry")
}

/// A payment command the payments connector could not settle, as operators see it.
struct PaymentIssue: Encodable {
    var commandId: String
    var commandType: String
    var orderId: String
    var state: DeliveryState
    var reason: String?
    var attempts: Int
    var updatedAt: Date

    init(_ entry: OutboundDelivery) {
        commandId = entry.commandId
        commandType = entry.commandType
        orderId = entry.orderId
        state = entry.state
        reason = entry.reason
        attempts = entry.attempts
        updatedAt = entry.updatedAt
    }
}

extension Gateway {
    /// The payments connector's name in its ledger entries.
    static let paymentsConnector = "payments"

    /// Whether a ledger entry is a payment command waiting for an operator (rejected,
    /// given up, outcome unknown): the table keeps only those, and drops one when a later
    /// entry settles it.
    static func isPaymentIssue(_ event: Event) -> Bool {
        guard case .outboundDelivery(let entry) = event, entry.connector == paymentsConnector else { return false }
        return [.rejected, .failed, .unknown].contains(entry.state)
    }

    /// Captures, refunds and voids that need an operator (docs/OPERATIONS.md, *Payments*):
    /// the list, and running one again. Bearer token.
    func addPaymentRoutes(to router: Router<BasicRequestContext>) {
        add(GatewayRoutes.paymentIssues, to: router, guard: .apiToken) { _ throws(GatewayError) in
            let issues = try self.paymentIssues().sorted { ($0.updatedAt, $0.commandId) > ($1.updatedAt, $1.commandId) }
            return (200, try Self.encode(["payments": issues.map(PaymentIssue.init)]))
        }

        add(GatewayRoutes.retryPayment, to: router, guard: .apiToken, dedupe: .idempotencyKey) { call throws(GatewayError) in
            let commandId = call.parameter("commandId")
            guard let entry = try self.paymentIssues().first(where: { $0.commandId == commandId }) else {
                throw GatewayError(status: 404, code: "not_found", message: "no payment command \(commandId) waits for an operator (GET /v1/ops/payments lists them)")
            }
            try await self.resubmit(entry)
            return (202, try Self.encode(["commandId": entry.commandId, "state": "resubmitted"]))
        }
    }

    private func paymentIssues() throws(GatewayError) -> [OutboundDelivery] {
        try currentTables().paymentIssues.values.values.compactMap { event in
            if case .outboundDelivery(let entry) = event { return entry }
            return nil
        }
    }

    /// Writes the command again, byte for byte, to its topic: the connector meets it at a
    /// later offset than its final entry, which makes it a re-drive (a rejected or failed
    /// command is called again, an unknown one after asking the provider once more).
    private func resubmit(_ entry: OutboundDelivery) async throws(GatewayError) {
        guard let partition = entry.sourcePartition else {
            throw GatewayError(status: 409, code: "no_position", message: "the ledger entry of \(entry.commandId) predates sourcePartition; use `oms dlq replay --stage payments`")
        }
        let position = KafkaTopicPartitionOffset(topic: CapturePayment.topic, partition: partition, offset: entry.sourceOffset)
        let unavailable = { (error: any Error) in
            GatewayError(status: 503, code: "unavailable", message: "cannot read \(CapturePayment.topic): \(error)", retryAfter: self.configuration.retryAfterSeconds)
        }
        let reader: PartitionReader
        do {
            reader = try PartitionReader(kafka: kafka.with(clientID: "oms-gateway-payments"), name: "oms-gateway.payments", batchSize: 10, logger: logger)
        } catch {
            throw unavailable(error)
        }
        let found: KafkaMessage?
        do {
            found = try await reader.record(at: position, timeout: configuration.kafkaTimeout * 4)
        } catch {
            await reader.close()
            throw unavailable(error)
        }
        await reader.close()
        guard let found, let value = found.value else {
            throw GatewayError(status: 410, code: "gone", message: "command \(entry.commandId) (\(CapturePayment.topic) partition \(partition) offset \(entry.sourceOffset)) is no longer in Kafka")
        }
        do {
            _ = try await producer.send(KafkaProducerMessage(topic: CapturePayment.topic, partition: partition, key: found.key, value: value, headers: found.headers))
        } catch {
            throw GatewayError(status: 503, code: "unavailable", message: "Kafka did not acknowledge the command (\(error)); retry later", retryAfter: configuration.retryAfterSeconds)
        }
        logger.info("payment command resubmitted by an operator", metadata: ["command": "\(entry.commandId)", "state": "\(entry.state.rawValue)"])
    }
}

import Contracts
import Fleet
import Foundation
import Hummingbird
import Kafka

extension GatewayRoutes {
    static let paymentIssues = Route(method: "GET", path: "/v1/ops/payments")
    static let retryPayment = Route(method: "POST", path: "/v1/ops/payments/{commandId}/retry")
    static let reauthorizePayment = Route(method: "POST", path: "/v1/ops/payments/{commandId}/reauthorize")
    static let adyenNotifications = Route(method: "POST", path: "/v1/payments/adyen/notifications")
}

/// A payment command the payments connector could not settle, as operators see it.
struct PaymentIssue: Encodable {
    var commandId: String
    var commandType: String
    var orderId: String
    var state: DeliveryState
    /// The failure class (`authorization_expired` can be re-authorized).
    var failure: PaymentFailure?
    var reason: String?
    var attempts: Int
    var updatedAt: Date

    init(_ entry: OutboundDelivery) {
        commandId = entry.commandId
        commandType = entry.commandType
        orderId = entry.orderId
        state = entry.state
        failure = entry.state == .rejected ? entry.reason.map { PaymentFailure.of(ledgerReason: $0).failure } : nil
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
        return entry.state.needsOperator
    }

    /// Captures, refunds and voids that need an operator (docs/OPERATIONS.md, *Payments*):
    /// the list, and running one again. Bearer token.
    func paymentRoutes() -> RouteCollection<BasicRequestContext> {
        let routes = RouteCollection(context: BasicRequestContext.self)
        add(GatewayRoutes.paymentIssues, to: routes) { _ throws(GatewayError) in
            let issues = try self.paymentIssues().sorted { ($0.updatedAt, $0.commandId) > ($1.updatedAt, $1.commandId) }
            return (200, try Self.encode(["payments": issues.map(PaymentIssue.init)]))
        }

        add(GatewayRoutes.retryPayment, to: routes, dedupe: .idempotencyKey) { call throws(GatewayError) in
            let commandId = call.parameter("commandId")
            guard let entry = try self.paymentIssues().first(where: { $0.commandId == commandId }) else {
                throw GatewayError(status: 404, code: "not_found", message: "no payment command \(commandId) waits for an operator (GET /v1/ops/payments lists them)")
            }
            try await self.resubmit(entry)
            return (202, try Self.encode(["commandId": entry.commandId, "state": "resubmitted"]))
        }

        add(GatewayRoutes.reauthorizePayment, to: routes, dedupe: .idempotencyKey) { call throws(GatewayError) in
            let commandId = call.parameter("commandId")
            guard let entry = try self.paymentIssues().first(where: { $0.commandId == commandId }) else {
                throw GatewayError(status: 404, code: "not_found", message: "no payment command \(commandId) waits for an operator (GET /v1/ops/payments lists them)")
            }
            guard entry.commandType.hasPrefix(CapturePayment.eventType.name), PaymentIssue(entry).failure == .authorizationExpired else {
                throw GatewayError(
                    status: 409, code: "not_expired",
                    message: "only a capture refused for an expired authorization is re-authorized; \(commandId) is \(entry.state.rawValue): \(entry.reason ?? "")")
            }
            try await self.resubmit(entry) { command in
                guard case .capturePayment(var capture) = command.event else { return command }
                capture.reauthorize = true
                return Envelope(id: command.id, source: command.source, time: command.time, event: capture.event)
            }
            return (202, try Self.encode(["commandId": entry.commandId, "state": "resubmitted", "reauthorize": "true"]))
        }
        return routes
    }

    /// Adyen's notification webhook: each item's HMAC signature is checked (constant
    /// time) before anything is read; a capture, refund or cancel outcome is written as
    /// the payment outcome event of the command its reference names. Answered
    /// `[accepted]`, as Adyen requires; an item for a payment the fleet did not modify is
    /// accepted and ignored.
    func adyenRoutes() -> RouteCollection<BasicRequestContext> {
        let routes = RouteCollection(context: BasicRequestContext.self)
        add(GatewayRoutes.adyenNotifications, to: routes, media: { _ in "text/plain; charset=utf-8" }) { call throws(GatewayError) in
            guard let key = self.configuration.adyenHMACKey else {
                throw GatewayError(status: 401, code: "bad_signature", message: "no Adyen HMAC key is configured (gateway.adyen.hmac.key): notifications cannot be verified")
            }
            guard let items = AdyenNotifications.items(in: call.body) else {
                throw .invalidBody("$.notificationItems: not an Adyen notification")
            }
            guard items.allSatisfy({ AdyenNotifications.verify($0, hexKey: key) }) else {
                throw GatewayError(status: 401, code: "bad_signature", message: "an item's additionalData.hmacSignature is missing or does not sign it")
            }
            for item in items { try await self.record(adyen: item) }
            return (200, Array("[accepted]".utf8))
        }
        return routes
    }

    private func record(adyen item: [String: Any]) async throws(GatewayError) {
        guard let reference = item["merchantReference"] as? String, let position = AdyenNotifications.command(in: reference) else { return }
        guard let record = try await commandRecord(partition: position.partition, offset: position.offset),
            let command = try? Envelope.decode(record.eventRecord), command.id == position.commandID,
            let outcome = AdyenNotifications.outcome(of: item, command: command, provider: Self.adyenProvider, at: Date())
        else {
            logger.warning("Adyen notification for no command of ours", metadata: ["reference": "\(reference)", "event": "\(item["eventCode"] as? String ?? "")"])
            return
        }
        // Adyen delivers a notification at least once: the same item gives the same event id.
        let cause = "adyen/\(item["pspReference"] as? String ?? "")/\(item["eventCode"] as? String ?? "")/\(item["success"] as? String ?? "")"
        _ = try await produce(outcome, id: DeterministicID.eventID(inputEventID: cause, stage: "gateway", outputIndex: 0))
    }

    /// The provider name Adyen outcomes are written under (its `payments.providers` name).
    static let adyenProvider = "adyen"

    /// The command record at `offset` of `partition` of oms.payments.commands.
    private func commandRecord(partition: Int32, offset: Int64) async throws(GatewayError) -> KafkaMessage? {
        let position = KafkaTopicPartitionOffset(topic: CapturePayment.topic, partition: partition, offset: offset)
        do {
            return try await PartitionReader.record(
                at: position, kafka: kafka.with(clientID: "oms-gateway-payments"), timeout: configuration.kafkaTimeout * 4, logger: logger)
        } catch {
            throw GatewayError(status: 503, code: "unavailable", message: "cannot read \(CapturePayment.topic): \(error)", retryAfter: configuration.retryAfterSeconds)
        }
    }

    private func paymentIssues() throws(GatewayError) -> [OutboundDelivery] {
        try currentTables().paymentIssues.values.values.compactMap { event in
            if case .outboundDelivery(let entry) = event { return entry }
            return nil
        }
    }

    /// Writes the command again to its topic, byte for byte, or changed by `change`
    /// (the same id: it is the same command, with the operator's leave to re-authorize):
    /// the connector meets it at a later offset than its final entry, which makes it a
    /// re-drive (a rejected or failed command is called again, an unknown one after
    /// asking the provider once more).
    private func resubmit(_ entry: OutboundDelivery, change: ((Envelope) -> Envelope)? = nil) async throws(GatewayError) {
        guard let partition = entry.sourcePartition else {
            throw GatewayError(status: 409, code: "no_position", message: "the ledger entry of \(entry.commandId) predates sourcePartition; use `oms dlq replay --stage payments`")
        }
        let found = try await commandRecord(partition: partition, offset: entry.sourceOffset)
        guard let found, let value = found.value else {
            throw GatewayError(status: 410, code: "gone", message: "command \(entry.commandId) (\(CapturePayment.topic) partition \(partition) offset \(entry.sourceOffset)) is no longer in Kafka")
        }
        var message = KafkaProducerMessage(topic: CapturePayment.topic, partition: partition, key: found.key, value: value, headers: found.headers)
        if let change {
            guard let command = try? Envelope.decode(found.eventRecord),
                let changed = try? KafkaProducerMessage(change(command), topic: CapturePayment.topic, partition: partition, key: found.keyString)
            else {
                throw GatewayError(status: 409, code: "unreadable", message: "command \(entry.commandId) cannot be read back to change it")
            }
            message = changed
        }
        do {
            _ = try await producer.send(message)
        } catch {
            throw GatewayError(status: 503, code: "unavailable", message: "Kafka did not acknowledge the command (\(error)); retry later", retryAfter: configuration.retryAfterSeconds)
        }
        logger.info("payment command resubmitted by an operator", metadata: ["command": "\(entry.commandId)", "state": "\(entry.state.rawValue)"])
    }
}

import Contracts
import Fleet
import Foundation
import Kafka
import OrderFleetTesting
import Testing

@testable import oms

/// `oms connector payments` as processes killed with -9 and restarted, against a local
/// Stripe that counts requests and effects per idempotency key and money per
/// PaymentIntent.
@Suite("payment connector processes", .serialized)
struct PaymentConnectorProcessTests {
    @Test("kill -9: each capture, refund and void done once at Stripe, declines never charged, one outcome event per command")
    func paymentsUnderKills() async throws {
        try await withServedChannels { channels, base in
            let broker = try await EmbeddedBrokerProcess.start(topics: [])
            defer { broker.stop() }
            let fixture = FleetFixture(
                cluster: broker.cluster, input: CapturePayment.topic, output: OutboundDelivery.topic,
                partitions: 6)
            let stripe = channels.stripe
            stripe.setFaults { $0.loseAnswerEvery = 9; $0.holdAnswer = .seconds(3) }
            let fleet = WorkerFleet(
                fixture: fixture, stage: TestCluster.uniqueName("payments"), mode: .atLeastOnce, staticMembership: false, arguments: ["connector", "payments"],
                overrides: [
                    "PAYMENTS_PROVIDERS": "stripe", "PAYMENTS_STRIPE_KIND": "stripe", "PAYMENTS_STRIPE_KEY": stripe.secretKey, "PAYMENTS_STRIPE_URL": base,
                    "PAYMENTS_DEFAULT": "stripe",
                    "CONNECTOR_HTTP_TIMEOUT_MS": "1000", "CONNECTOR_RETRY_BASE_MS": "100", "CONNECTOR_RETRY_MAX_DELAY_MS": "2000",
                    "CONNECTOR_BREAKER_OPEN_MS": "2000", "WORKER_BATCH_SIZE": "20", "WORKER_SESSION_TIMEOUT_MS": "10000",
                ])
            defer { fleet.stopAll() }
            for instance in 0..<2 { try fleet.start(instance) }

            // 150 orders: every one captured in two shipments, one in three refunded
            // after, one in ten declined at capture; 20 more voided.
            var commands: [Envelope] = []
            var expected = (captured: [String: Int64](), refunded: [String: Int64](), voided: Set<String>(), declined: 0)
            for index in 0..<150 {
                let intent = "pi_kill\(index)"
                stripe.authorize(intent, amount: 10_000, currency: "usd")
                let declined = index % 10 == 3
                if declined { stripe.setFaults { $0.declined.insert(intent) } }
                commands.append(Self.capture(order: index, shipment: 1, intent: intent, minorUnits: 6_000))
                commands.append(Self.capture(order: index, shipment: 2, intent: intent, minorUnits: 4_000))
                if declined {
                    expected.declined += 2
                    continue
                }
                expected.captured[intent] = 10_000
                if index % 3 == 0 {
                    commands.append(Self.refund(order: index, intent: intent, minorUnits: 2_500))
                    expected.refunded[intent] = 2_500
                }
            }
            for index in 150..<170 {
                let intent = "pi_kill\(index)"
                stripe.authorize(intent, amount: 5_000, currency: "usd")
                commands.append(Self.void(order: index, intent: intent))
                expected.voided.insert(intent)
            }
            let all = commands
            let producing = Task {
                let producer = try fixture.cluster.producer()
                for command in all { try await producer.enqueue(try KafkaProducerMessage(command, topic: CapturePayment.topic)) }
                try await producer.close()
            }
            let kills = try await fleet.killRandomly(for: .seconds(15), every: .seconds(3))
            try await producing.value
            #expect(kills >= 2)

            let done = try await waitUntil(timeout: .seconds(180)) {
                let ledger = stripe.ledger
                return ledger.captured == expected.captured && ledger.refunded == expected.refunded && ledger.cancelled == expected.voided
            }
            #expect(done, "connector logs in \(fleet.directory.path)")
            let final = try await ConnectorFleet.finalStates(fixture, connector: "payments", count: commands.count)
            let outcomes = try await Self.outcomes(fixture, count: commands.count)
            fleet.stopAll()

            let ledger = stripe.ledger
            #expect(ledger.effects.values.allSatisfy { $0 == 1 }, "moved twice under one key: \(ledger.effects.filter { $0.value > 1 })")
            #expect(ledger.captured == expected.captured && ledger.refunded == expected.refunded && ledger.cancelled == expected.voided)
            #expect(ledger.lostAnswers > 0)
            #expect(final.count == commands.count)
            #expect(final.values.filter { $0.state == .rejected }.count == expected.declined)
            #expect(final.values.filter { $0.state != .rejected }.allSatisfy { $0.state == .delivered })
            #expect(final.values.contains { $0.reason == "reconciled: the endpoint has it" })
            // One outcome per command (a replayed settlement writes the same event id again).
            #expect(outcomes.count == commands.count, "\(commands.count - outcomes.count) commands without an outcome")
            #expect(outcomes.values.allSatisfy { $0.count == 1 }, "two different outcomes for one command")
            let failures = outcomes.values.compactMap { ids -> PaymentCaptureFailed? in
                if case .paymentCaptureFailed(let failed)? = ids.values.first { failed } else { nil }
            }
            #expect(failures.count == expected.declined && failures.allSatisfy { $0.failure == .declined })
        }
    }

    static func capture(order: Int, shipment: Int, intent: String, minorUnits: Int64) -> Envelope {
        let command = CapturePayment(
            orderId: "oms-K\(order)", shipmentId: "s-\(order)-\(shipment)", amount: Money(minorUnits: minorUnits, currency: .usd),
            authorizationReference: intent, requestedAt: Date(), channel: "web")
        return Envelope(id: "capture-K\(order)-\(shipment)", source: "test", time: Date(), event: command.event)
    }

    static func refund(order: Int, intent: String, minorUnits: Int64) -> Envelope {
        let command = RefundPayment(
            orderId: "oms-K\(order)", returnId: "r-\(order)", amount: Money(minorUnits: minorUnits, currency: .usd),
            reason: Reason(code: "returned", message: "returned"), requestedAt: Date(), channel: "web", authorizationReference: intent)
        return Envelope(id: "refund-K\(order)", source: "test", time: Date(), event: command.event)
    }

    static func void(order: Int, intent: String) -> Envelope {
        let command = VoidPayment(
            orderId: "oms-K\(order)", authorizationReference: intent, reason: Reason(code: "order_cancelled", message: "cancelled"), requestedAt: Date(),
            channel: "web")
        return Envelope(id: "void-K\(order)", source: "test", time: Date(), event: command.event)
    }

    /// The outcome events per command id, by event id.
    static func outcomes(_ fixture: FleetFixture, count: Int) async throws -> [String: [String: Event]] {
        var outcomes: [String: [String: Event]] = [:]
        _ = try await waitUntil(timeout: .seconds(60)) {
            outcomes = [:]
            for message in try await fixture.readAll(PaymentCaptured.topic) {
                let envelope = try Envelope.decode(message.eventRecord)
                let command: String? = switch envelope.event {
                case .paymentCaptured(let e): e.commandId
                case .paymentCaptureFailed(let e): e.commandId
                case .paymentRefunded(let e): e.commandId
                case .paymentRefundFailed(let e): e.commandId
                case .paymentVoided(let e): e.commandId
                case .paymentVoidFailed(let e): e.commandId
                default: nil
                }
                if let command { outcomes[command, default: [:]][envelope.id] = envelope.event }
            }
            return outcomes.count == count
        }
        return outcomes
    }
}

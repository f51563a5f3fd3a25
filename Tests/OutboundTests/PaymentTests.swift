import Fleet
import Contracts
import Foundation
import Testing

@testable import Outbound
@testable import oms

/// The payments connector's endpoint: routing and outcome events as pure functions, and
/// the Stripe adapter through the connector runtime against a local server speaking
/// Stripe's PaymentIntents API, error bodies and idempotency rule included.
@Suite("Payments")
struct PaymentTests {
    static let at = Date(timeIntervalSince1970: 1_780_000_000)

    static func capture(_ intent: String?, minorUnits: Int64 = 4_000, id: String = "cap-1", channel: String? = "web", reauthorize: Bool? = nil) -> Envelope {
        let command = CapturePayment(
            orderId: "o-1", shipmentId: "s-1", amount: Money(minorUnits: minorUnits, currency: .usd), authorizationReference: intent,
            requestedAt: at, channel: channel, reauthorize: reauthorize)
        return Envelope(id: id, source: "test", time: at, event: command.event)
    }

    static func refund(_ intent: String, minorUnits: Int64, id: String = "ref-1") -> Envelope {
        let command = RefundPayment(
            orderId: "o-1", returnId: "r-1", amount: Money(minorUnits: minorUnits, currency: .usd), reason: Reason(code: "returned", message: "return"),
            requestedAt: at, channel: "web", authorizationReference: intent)
        return Envelope(id: id, source: "test", time: at, event: command.event)
    }

    static func void(_ intent: String, id: String = "void-1") -> Envelope {
        let command = VoidPayment(orderId: "o-1", authorizationReference: intent, reason: Reason(code: "order_cancelled", message: "cancelled"), requestedAt: at, channel: "web")
        return Envelope(id: id, source: "test", time: at, event: command.event)
    }

    static func router(_ base: String, stripe: LocalStripe, key: String? = nil, timeout: Duration = .seconds(5), reauthorizing: Set<String> = []) -> PaymentRouter {
        let provider = StripePayments(baseURL: base, secretKey: key ?? stripe.secretKey, http: HTTPExchange(client: .shared, timeout: timeout))
        return PaymentRouter(providers: ["stripe": provider], channels: ["amazon": .channel], fallback: .provider("stripe"), reauthorizing: reauthorizing)
    }

    @Test("Stripe: an expired authorization is re-authorized with the saved card when the channel allows it, captured once, and refunds follow the money")
    func reauthorization() async throws {
        try await withChannels { channels, base in
            channels.stripe.authorize("pi_old", amount: 10_000, currency: "usd")
            let router = Self.router(base, stripe: channels.stripe, reauthorizing: ["web"])
            let processor = Harness.processor(router)
            let first = try await processor.settle(Self.capture("pi_old", minorUnits: 6_000, id: "cap-1"), offset: 1)
            #expect(first.entry.state == .delivered)
            channels.stripe.setFaults { $0.expired = ["pi_old"] }
            let command = Self.capture("pi_old", minorUnits: 4_000, id: "cap-2")
            let second = try await processor.settle(command, offset: 2)
            #expect(second.entry.state == .delivered)
            let replacement = try #require(PaymentProviderAnswer.reauthorization(in: second.entry.reference))
            #expect(channels.stripe.ledger.reauthorizations == [replacement: "pi_old"])
            #expect(channels.stripe.ledger.captured == ["pi_old": 6_000, replacement: 4_000])
            guard case .paymentCaptured(let captured)? = router.outcomes(of: command, entry: second.entry).first else {
                Issue.record("no capture outcome")
                return
            }
            #expect(captured.reauthorization == replacement && captured.providerReference == replacement && captured.amount.minorUnits == 4_000)
            // A refund names the order's first payment; it is taken from the new one first, then the old.
            let refund = try await processor.settle(Self.refund("pi_old", minorUnits: 7_000, id: "ref-1"), offset: 3)
            #expect(refund.entry.state == .delivered)
            #expect(channels.stripe.ledger.refunded == [replacement: 4_000, "pi_old": 3_000])
            #expect(channels.stripe.ledger.effects["channels/ref-1/\(replacement)"] == 1 && channels.stripe.ledger.effects["channels/ref-1/pi_old"] == 1)
            let tooMuch = try await processor.settle(Self.refund("pi_old", minorUnits: 3_001, id: "ref-2"), offset: 4)
            #expect(tooMuch.entry.state == .rejected && tooMuch.entry.reason?.contains("left to refund") == true)
        }
    }

    @Test("Stripe: without the channel's or an operator's leave, an expired authorization fails as such; with the operator's it is re-authorized; no saved card or a declined one is refused")
    func reauthorizationRefusals() async throws {
        try await withChannels { channels, base in
            channels.stripe.authorize("pi_a", amount: 5_000, currency: "usd")
            channels.stripe.authorize("pi_nocard", amount: 5_000, currency: "usd", savedCard: false)
            channels.stripe.authorize("pi_declined", amount: 5_000, currency: "usd")
            channels.stripe.setFaults { $0.expired = ["pi_a", "pi_nocard", "pi_declined"]; $0.declined = ["pi_declined"] }
            let processor = Harness.processor(Self.router(base, stripe: channels.stripe))
            let plain = try await processor.settle(Self.capture("pi_a", id: "cap-1"), offset: 1)
            #expect(PaymentProviderAnswer.failure(in: plain.entry.reason ?? "").0 == .authorizationExpired)
            // The operator's endpoint writes the same command again, later, with leave to re-authorize: a re-drive.
            let asked = try await processor.settle(Self.capture("pi_a", id: "cap-1", reauthorize: true), offset: 2)
            #expect(asked.entry.state == .delivered && PaymentProviderAnswer.reauthorization(in: asked.entry.reference) != nil)
            let noCard = try await processor.settle(Self.capture("pi_nocard", id: "cap-2", reauthorize: true), offset: 3)
            let (failure, message) = PaymentProviderAnswer.failure(in: noCard.entry.reason ?? "")
            #expect(failure == .authorizationExpired && message.contains("no saved card"))
            let declined = try await processor.settle(Self.capture("pi_declined", id: "cap-3", reauthorize: true), offset: 4)
            let (declinedFailure, declinedMessage) = PaymentProviderAnswer.failure(in: declined.entry.reason ?? "")
            #expect(declinedFailure == .declined && declinedMessage.hasPrefix("re-authorizing pi_declined: Your card was declined."))
            #expect(channels.stripe.ledger.captured.values.reduce(0, +) == 4_000, "only the operator-approved re-authorization took money")
        }
    }

    @Test("Stripe: a re-authorization whose answer is lost is found by its command id, never made twice")
    func reauthorizationLostAnswer() async throws {
        try await withChannels { channels, base in
            channels.stripe.authorize("pi_old", amount: 5_000, currency: "usd")
            channels.stripe.setFaults { $0.expired = ["pi_old"]; $0.loseAnswerEvery = 1; $0.holdAnswer = .seconds(2) }
            let processor = Harness.processor(Self.router(base, stripe: channels.stripe, timeout: .milliseconds(400), reauthorizing: ["web"]))
            let settled = try await processor.settle(Self.capture("pi_old", minorUnits: 5_000), offset: 1)
            #expect(settled.entry.state == .delivered && settled.entry.reason == "reconciled: the endpoint has it")
            #expect(PaymentProviderAnswer.reauthorization(in: settled.entry.reference) != nil)
            let ledger = channels.stripe.ledger
            #expect(ledger.reauthorizations.count == 1 && ledger.captured.values.reduce(0, +) == 5_000 && ledger.effects["channels/cap-1/reauthorization"] == 1)
        }
    }

    @Test("Stripe: a capture moves the money once; the same command again calls nothing; its key is the command's")
    func captures() async throws {
        try await withChannels { channels, base in
            channels.stripe.authorize("pi_1", amount: 10_000, currency: "usd")
            let processor = Harness.processor(Self.router(base, stripe: channels.stripe))
            let first = try await processor.settle(Self.capture("pi_1"), offset: 1)
            #expect(first.entry.state == .delivered && first.entry.reference?.hasPrefix("ch_") == true)
            #expect(try await processor.settle(Self.capture("pi_1"), offset: 1) == .alreadySettled(first.entry))
            let second = try await processor.settle(Self.capture("pi_1", minorUnits: 6_000, id: "cap-2"), offset: 2)
            #expect(second.entry.state == .delivered)
            let ledger = channels.stripe.ledger
            #expect(ledger.captured == ["pi_1": 10_000])
            #expect(ledger.effects == ["channels/cap-1": 1, "channels/cap-2": 1])
        }
    }

    @Test("Stripe: a declined card, a lapsed authorization, an unknown payment and an over-capture are refused with their class")
    func refusals() async throws {
        try await withChannels { channels, base in
            channels.stripe.authorize("pi_declined", amount: 5_000, currency: "usd")
            channels.stripe.authorize("pi_lapsed", amount: 5_000, currency: "usd")
            channels.stripe.authorize("pi_small", amount: 1_000, currency: "usd")
            channels.stripe.setFaults { $0.declined = ["pi_declined"]; $0.expired = ["pi_lapsed"] }
            let router = Self.router(base, stripe: channels.stripe)
            let processor = Harness.processor(router)
            let cases: [(String, PaymentFailure, String)] = [
                ("pi_declined", .declined, "Your card was declined. (card_declined, insufficient_funds)"),
                ("pi_lapsed", .authorizationExpired, "payment_intent_unexpected_state"),
                ("pi_missing", .invalidRequest, "No such payment_intent: 'pi_missing'"),
                ("pi_small", .invalidRequest, "amount_too_large"),
            ]
            for (index, (intent, failure, message)) in cases.enumerated() {
                let command = Self.capture(intent, id: "cap-\(index)")
                let settled = try await processor.settle(command, offset: Int64(index))
                #expect(settled.entry.state == .rejected, "\(intent)")
                let (found, text) = PaymentProviderAnswer.failure(in: settled.entry.reason ?? "")
                #expect(found == failure, "\(intent)")
                #expect(text.contains(message), "\(intent): \(text)")
                let outcome = try #require(router.outcomes(of: command, entry: settled.entry).first)
                guard case .paymentCaptureFailed(let failed) = outcome else { Issue.record("\(outcome)"); continue }
                #expect(failed.failure == failure && failed.commandId == command.id && failed.provider == "stripe")
            }
            #expect(channels.stripe.ledger.captured.isEmpty)
            #expect(channels.stripe.ledger.declines == 1)
        }
    }

    @Test("Stripe: a wrong key is refused without retries; an outage is retried until the ceiling, then fails as unavailable")
    func keyAndOutage() async throws {
        try await withChannels { channels, base in
            channels.stripe.authorize("pi_1", amount: 5_000, currency: "usd")
            let wrong = try await Harness.processor(Self.router(base, stripe: channels.stripe, key: "sk_test_wrong")).settle(Self.capture("pi_1"), offset: 1)
            #expect(wrong.entry.state == .rejected && wrong.entry.attempts == 1 && wrong.entry.reason?.contains("Invalid API Key provided: sk_test…") == true)
            #expect(wrong.entry.reason?.contains("wrong") == false)
            channels.stripe.setFaults { $0.down = true }
            let router = Self.router(base, stripe: channels.stripe)
            let down = try await Harness.processor(router, maxAttempts: 3).settle(Self.capture("pi_1", id: "cap-2"), offset: 2)
            #expect(down.entry.state == .failed && down.entry.attempts == 3)
            guard case .paymentCaptureFailed(let failed)? = router.outcomes(of: Self.capture("pi_1", id: "cap-2"), entry: down.entry).first else {
                Issue.record("no failure outcome")
                return
            }
            #expect(failed.failure == .providerUnavailable)
            channels.stripe.setFaults { $0.down = false }
            let redriven = try await Harness.processor(router).settle(Self.capture("pi_1", id: "cap-2"), offset: 9)
            #expect(redriven.entry.state == .delivered && channels.stripe.ledger.captured == ["pi_1": 4_000])
        }
    }

    @Test("Stripe: a capture, a refund and a void whose answers are lost are reconciled by reading back, never done twice")
    func lostAnswers() async throws {
        try await withChannels { channels, base in
            channels.stripe.authorize("pi_1", amount: 10_000, currency: "usd")
            channels.stripe.authorize("pi_2", amount: 3_000, currency: "usd")
            channels.stripe.setFaults { $0.loseAnswerEvery = 1; $0.holdAnswer = .seconds(2) }
            let router = Self.router(base, stripe: channels.stripe, timeout: .milliseconds(400))
            let processor = Harness.processor(router)
            let captured = try await processor.settle(Self.capture("pi_1", minorUnits: 7_000), offset: 1)
            #expect(captured.entry.state == .delivered && captured.entry.reference?.hasPrefix("ch_") == true)
            #expect(captured.entry.reason == "reconciled: the endpoint has it")
            let refunded = try await processor.settle(Self.refund("pi_1", minorUnits: 2_500), offset: 2)
            #expect(refunded.entry.state == .delivered && refunded.entry.reference?.hasPrefix("re_") == true)
            let voided = try await processor.settle(Self.void("pi_2"), offset: 3)
            #expect(voided.entry.state == .delivered && voided.entry.reference == "pi_2")
            let ledger = channels.stripe.ledger
            #expect(ledger.lostAnswers == 3)
            #expect(ledger.captured == ["pi_1": 7_000] && ledger.refunded == ["pi_1": 2_500] && ledger.cancelled == ["pi_2"])
            #expect(ledger.effects.values.allSatisfy { $0 == 1 } && ledger.effects.count == 3)
            guard case .paymentRefunded(let refund)? = router.outcomes(of: Self.refund("pi_1", minorUnits: 2_500), entry: refunded.entry).first else {
                Issue.record("no refund outcome")
                return
            }
            #expect(refund.amount.minorUnits == 2_500 && refund.providerReference == refunded.entry.reference && refund.returnId == "r-1")
        }
    }

    @Test("Stripe: a repeated key gets the first answer; the same key with other parameters is refused")
    func idempotencyRule() async throws {
        try await withChannels { channels, base in
            channels.stripe.authorize("pi_1", amount: 10_000, currency: "usd")
            let provider = StripePayments(baseURL: base, secretKey: channels.stripe.secretKey, http: HTTPExchange(client: .shared))
            let call = OutboundCall(command: Self.capture("pi_1"), idempotencyKey: "payments/cap-1", attempt: 1) {}
            let request = try #require(PaymentRequest(command: call.command))
            let first = await provider.execute(request, call: call)
            let again = await provider.execute(request, call: call)
            #expect(first == again)
            var other = request
            other.amount = Money(minorUnits: 1, currency: .usd)
            guard case .rejected(400, let reason) = await provider.execute(other, call: call) else {
                Issue.record("a changed request under the same key went through")
                return
            }
            #expect(reason.contains("can only be used with the same parameters"))
            #expect(channels.stripe.ledger.requests["payments/cap-1"] == 3 && channels.stripe.ledger.effects["payments/cap-1"] == 1)
        }
    }

    @Test("routing: marketplace channels are skipped, a command without a reference is refused, a channel without a provider names the keys")
    func routing() async {
        let router = PaymentRouter(
            providers: ["stripe": StripePayments(secretKey: "sk", http: HTTPExchange(client: .shared))], channels: ["amazon": .channel], fallback: nil)
        let call = { (command: Envelope) in OutboundCall(command: command, idempotencyKey: "payments/\(command.id)", attempt: 1) {} }
        #expect(await router.perform(call(Self.capture("pi_1", channel: "amazon"))) == .skipped(reason: "channel amazon moves the money itself"))
        guard case .rejected(nil, let reason) = await router.perform(call(Self.capture("pi_1", channel: "web"))) else {
            Issue.record("an unrouted channel was called")
            return
        }
        #expect(reason.contains("payments.routes") && reason.contains("payments.default"))
        let routed = PaymentRouter(providers: router.providers, channels: [:], fallback: .provider("stripe"))
        let missing = await routed.perform(call(Self.capture(nil)))
        #expect(PaymentProviderAnswer.failure(in: { if case .rejected(_, let r) = missing { r } else { "" } }()).0 == .invalidRequest)
        #expect(routed.gateKey(for: Self.capture("pi_1")) == "payments/stripe")
        let skipped = OutboundDelivery(
            connector: "payments", commandId: "cap-1", commandType: "oms.payment.capture", orderId: "o-1", idempotencyKey: "payments/cap-1",
            state: .skipped, attempts: 0, sourceOffset: 1, updatedAt: Self.at)
        #expect(router.outcomes(of: Self.capture("pi_1", channel: "amazon"), entry: skipped).isEmpty)
    }

    @Test("configuration: providers, routes and the default are checked at start-up, naming the key")
    func configuration() async throws {
        let good = [
            "PAYMENTS_PROVIDERS": "stripe", "PAYMENTS_STRIPE_KIND": "stripe", "PAYMENTS_STRIPE_KEY": "sk_live_x",
            "PAYMENTS_ROUTES": "amazon=channel", "PAYMENTS_DEFAULT": "stripe",
        ]
        let definition = try ConnectorCatalog.make("payments", reader: try await WorkerConfiguration.reader(environment: good))
        #expect(definition.inputTopic == CapturePayment.topic && definition.outcomes.topics == [PaymentCaptured.topic])
        #expect((definition.endpoint as? PaymentRouter)?.reauthorizing == [])
        var reauthorizing = good
        reauthorizing["PAYMENTS_REAUTHORIZE"] = "web,pos"
        let withLeave = try ConnectorCatalog.make("payments", reader: try await WorkerConfiguration.reader(environment: reauthorizing))
        #expect((withLeave.endpoint as? PaymentRouter)?.reauthorizing == ["web", "pos"])
        let broken: [(String, String?, String)] = [
            ("PAYMENTS_STRIPE_KEY", nil, "payments.stripe.key (PAYMENTS_STRIPE_KEY): required"),
            ("PAYMENTS_STRIPE_KIND", "paypal", "'paypal' is not a supported payment provider"),
            ("PAYMENTS_ROUTES", "web", "'web' is not channel=provider"),
            ("PAYMENTS_DEFAULT", "adyen", "payments.default"),
            ("PAYMENTS_PROVIDERS", nil, "payments.providers"),
            ("PAYMENTS_STRIPE_KIND", "adyen", "payments.stripe.url (PAYMENTS_STRIPE_URL): required for Adyen"),
        ]
        for (key, value, expected) in broken {
            var values = good
            values[key] = value
            let error = try await ConnectorConfigurationTests.error("payments", values)
            #expect(error?.contains(expected) == true, "\(key): \(error ?? "started")")
            #expect(error?.contains("sk_live_x") != true)
        }
    }
}

import Contracts
import Fleet
import Foundation
import Testing

@testable import Outbound
@testable import oms

/// Shopify-channel payments through the shop's transactions API: the adapter against a
/// local shop speaking Shopify's Admin REST shapes (transactions, refunds, error bodies),
/// through the connector runtime; the matching rules as pure functions.
@Suite("Shopify payments")
struct ShopifyPaymentTests {
    static let at = Date().addingTimeInterval(-60)

    static func capture(_ order: String, minorUnits: Int64, id: String) -> Envelope {
        let command = CapturePayment(
            orderId: "o-\(order)", shipmentId: "s-\(id)", amount: Money(minorUnits: minorUnits, currency: .usd), authorizationReference: order,
            requestedAt: at, channel: "shopify")
        return Envelope(id: id, source: "test", time: at, event: command.event)
    }

    static func refund(_ order: String, minorUnits: Int64, id: String) -> Envelope {
        let command = RefundPayment(
            orderId: "o-\(order)", returnId: "r-\(id)", amount: Money(minorUnits: minorUnits, currency: .usd), reason: Reason(code: "returned", message: "return"),
            requestedAt: at, channel: "shopify", authorizationReference: order)
        return Envelope(id: id, source: "test", time: at, event: command.event)
    }

    static func void(_ order: String, id: String) -> Envelope {
        let command = VoidPayment(orderId: "o-\(order)", authorizationReference: order, reason: Reason(code: "order_cancelled", message: "cancelled"), requestedAt: at, channel: "shopify")
        return Envelope(id: id, source: "test", time: at, event: command.event)
    }

    static func router(_ base: String, channels: LocalChannels, timeout: Duration = .seconds(5)) -> PaymentRouter {
        let provider = ShopifyPayments(shop: "brand.myshopify.com", baseURL: base, accessToken: channels.token, http: HTTPExchange(client: .shared, timeout: timeout))
        return PaymentRouter(providers: ["shopify": provider], channels: ["shopify": .provider("shopify")], fallback: nil)
    }

    static func usd(_ minor: Int64) -> Money { Money(minorUnits: minor, currency: .usd) }

    @Test("Shopify: shipments are captured on the order's authorization, each once; a refund goes back against the captures; a void releases the rest")
    func capturesRefundsVoids() async throws {
        try await withChannels { channels, base in
            channels.addShopifyOrder("9001", lines: ["1": 2], authorized: Self.usd(10_000))
            channels.addShopifyOrder("9002", lines: ["1": 1], authorized: Self.usd(3_000))
            let router = Self.router(base, channels: channels)
            let processor = Harness.processor(router)
            let first = try await processor.settle(Self.capture("9001", minorUnits: 6_000, id: "cap-1"), offset: 1)
            #expect(first.entry.state == .delivered && first.entry.reference != nil)
            let second = try await processor.settle(Self.capture("9001", minorUnits: 4_000, id: "cap-2"), offset: 2)
            #expect(second.entry.state == .delivered)
            // The same command met again (a replay): the ledger has it; nothing is called.
            #expect(try await processor.settle(Self.capture("9001", minorUnits: 6_000, id: "cap-1"), offset: 1) == .alreadySettled(first.entry))
            let refunded = try await processor.settle(Self.refund("9001", minorUnits: 7_000, id: "ref-1"), offset: 3)
            #expect(refunded.entry.state == .delivered)
            let voided = try await processor.settle(Self.void("9002", id: "void-1"), offset: 4)
            #expect(voided.entry.state == .delivered)
            let ledger = channels.ledger
            #expect(ledger.shopifyCaptured == ["9001": 10_000])
            #expect(ledger.shopifyRefunded == ["9001": 7_000], "7,000 spread over the two captures, newest first")
            #expect(ledger.shopifyVoided == ["9002": 1])
            #expect(ledger.refunds == ["channels/ref-1": 1], "one refund, noted with the key (the harness connector is `channels`)")
            guard case .paymentCaptured(let captured)? = router.outcomes(of: Self.capture("9001", minorUnits: 6_000, id: "cap-1"), entry: first.entry).first else {
                Issue.record("no capture outcome")
                return
            }
            #expect(captured.provider == "shopify" && captured.amount == Self.usd(6_000) && captured.providerReference == first.entry.reference)
        }
    }

    @Test("Shopify: a declined card, an expired or voided authorization and an over-capture are refused with their class")
    func refusals() async throws {
        try await withChannels { channels, base in
            channels.addShopifyOrder("9101", lines: ["1": 1], authorized: Self.usd(5_000))
            channels.addShopifyOrder("9102", lines: ["1": 1], authorized: Self.usd(5_000), expiresAt: Date().addingTimeInterval(-3_600))
            channels.addShopifyOrder("9103", lines: ["1": 1], authorized: Self.usd(1_000))
            channels.addShopifyOrder("9104", lines: ["1": 1])
            channels.setFaults { $0.declinedShopifyOrders = ["9101"] }
            let router = Self.router(base, channels: channels)
            let processor = Harness.processor(router)
            let cases: [(String, PaymentFailure, String)] = [
                ("9101", .declined, "The card was declined. (card_declined)"),
                ("9102", .authorizationExpired, "expired at"),
                ("9103", .invalidRequest, "no authorization of the order has 50.00 USD left"),
                ("9104", .invalidRequest, "no successful authorization"),
            ]
            for (index, (order, failure, message)) in cases.enumerated() {
                let command = Self.capture(order, minorUnits: 5_000, id: "cap-\(index)")
                let settled = try await processor.settle(command, offset: Int64(index))
                #expect(settled.entry.state == .rejected, "\(order)")
                let (found, text) = PaymentProviderAnswer.failure(in: settled.entry.reason ?? "")
                #expect(found == failure, "\(order): \(text)")
                #expect(text.contains(message), "\(order): \(text)")
            }
            #expect(try await processor.settle(Self.void("9103", id: "void-1"), offset: 10).entry.state == .delivered)
            let afterVoid = try await processor.settle(Self.capture("9103", minorUnits: 500, id: "cap-after-void"), offset: 11)
            #expect(PaymentProviderAnswer.failure(in: afterVoid.entry.reason ?? "").0 == .authorizationExpired, "a voided authorization cannot be captured")
            let overRefund = try await processor.settle(Self.refund("9103", minorUnits: 100, id: "ref-1"), offset: 12)
            #expect(overRefund.entry.state == .rejected && overRefund.entry.reason?.contains("less captured") == true)
            #expect(channels.ledger.shopifyCaptured.isEmpty && channels.ledger.refunds.isEmpty)
        }
    }

    @Test("Shopify: a capture, a refund and a void whose answers are lost are reconciled by reading the order back, never done twice")
    func lostAnswers() async throws {
        try await withChannels { channels, base in
            channels.addShopifyOrder("9201", lines: ["1": 1], authorized: Self.usd(8_000))
            channels.addShopifyOrder("9202", lines: ["1": 1], authorized: Self.usd(2_000))
            channels.setFaults { $0.loseAnswerEvery = 1; $0.holdAnswer = .seconds(2) }
            let processor = Harness.processor(Self.router(base, channels: channels, timeout: .milliseconds(400)))
            let captured = try await processor.settle(Self.capture("9201", minorUnits: 8_000, id: "cap-1"), offset: 1)
            #expect(captured.entry.state == .delivered && captured.entry.reason == "reconciled: the endpoint has it")
            let refunded = try await processor.settle(Self.refund("9201", minorUnits: 3_000, id: "ref-1"), offset: 2)
            #expect(refunded.entry.state == .delivered)
            let voided = try await processor.settle(Self.void("9202", id: "void-1"), offset: 3)
            #expect(voided.entry.state == .delivered)
            let ledger = channels.ledger
            #expect(ledger.lostAnswers == 3)
            #expect(ledger.shopifyCaptured == ["9201": 8_000] && ledger.shopifyRefunded == ["9201": 3_000] && ledger.shopifyVoided == ["9202": 1])
            #expect(ledger.refunds == ["channels/ref-1": 1], "one refund, noted with the key (the harness connector is `channels`)")
        }
    }

    @Test("Shopify: two parcels of one order for the same amount, both answers lost: each is captured once, told apart by the checkpoint")
    func sameAmountCaptures() async throws {
        try await withChannels { channels, base in
            channels.addShopifyOrder("9301", lines: ["1": 2], authorized: Self.usd(4_000))
            channels.setFaults { $0.loseAnswerEvery = 1; $0.holdAnswer = .seconds(2) }
            let processor = Harness.processor(Self.router(base, channels: channels, timeout: .milliseconds(400)))
            let first = try await processor.settle(Self.capture("9301", minorUnits: 2_000, id: "cap-1"), offset: 1)
            let second = try await processor.settle(Self.capture("9301", minorUnits: 2_000, id: "cap-2"), offset: 2)
            #expect(first.entry.state == .delivered && second.entry.state == .delivered)
            #expect(first.entry.reference != second.entry.reference, "each found its own capture")
            #expect(channels.ledger.shopifyCaptured == ["9301": 4_000])
        }
    }

    @Test("Shopify: an attempt whose outcome is in doubt and that noted no checkpoint is not called again blindly")
    func noCheckpoint() async throws {
        try await withChannels { channels, base in
            channels.addShopifyOrder("9401", lines: ["1": 1], authorized: Self.usd(1_000))
            let router = Self.router(base, channels: channels)
            let command = Self.capture("9401", minorUnits: 1_000, id: "cap-1")
            let call = OutboundCall(command: command, idempotencyKey: "payments/cap-1", attempt: 2, pointOfNoReturn: {})
            guard case .cannotTell(let reason) = await router.reconcile(call) else {
                Issue.record("reconciled without a checkpoint")
                return
            }
            #expect(reason.contains("no checkpoint"))
            #expect(channels.ledger.shopifyCaptured.isEmpty)
        }
    }

    @Test("matching: a capture is the command's only when of its amount and not among the captures noted before the attempt")
    func matching() {
        let request = PaymentRequest(command: Self.capture("1", minorUnits: 2_500, id: "c"))!
        func capture(_ id: Int, _ amount: String, status: String = "success") -> [String: Any] {
            ["id": id, "kind": "capture", "status": status, "amount": amount, "parent_id": 1]
        }
        let auth: [String: Any] = ["id": 1, "kind": "authorization", "status": "success", "amount": "100.00"]
        let earlier = capture(2, "25.00")
        let checkpoint = ShopifyPayments.checkpoint(of: [auth, earlier])
        #expect(checkpoint == "captures:2")
        let before = ShopifyPayments.capturesBefore(checkpoint)!
        #expect(ShopifyPayments.capturesBefore(nil) == nil && ShopifyPayments.capturesBefore("other") == nil)
        #expect(ShopifyPayments.effect(of: request, before: before, in: [auth, earlier]) == nil, "the earlier capture of the same amount is not ours")
        #expect(ShopifyPayments.effect(of: request, before: before, in: [auth, earlier, capture(3, "25.01")]) == nil)
        #expect(ShopifyPayments.effect(of: request, before: before, in: [auth, earlier, capture(4, "25.00", status: "failure")]) == nil)
        #expect(ShopifyPayments.effect(of: request, before: before, in: [auth, earlier, capture(5, "25.00")]) == "5")
        let parts = ShopifyPayments.refundParts(Self.usd(5_000), transactions: [
            auth, capture(6, "30.00"), capture(7, "40.00"),
            ["id": 8, "kind": "refund", "status": "success", "amount": "15.00", "parent_id": 7],
        ])
        #expect(parts.map(\.parent) == ["7", "6"] && parts.map(\.minorUnits) == [2_500, 2_500], "newest capture first, less what was refunded of it")
    }

    @Test("configuration: a Shopify provider needs its shop; a Shopify channel's refunds go through payments when told so")
    func configuration() async throws {
        let payments = ["PAYMENTS_PROVIDERS": "shop", "PAYMENTS_SHOP_KIND": "shopify", "PAYMENTS_SHOP_KEY": "shpat_secret", "PAYMENTS_ROUTES": "shopify=shop"]
        var withoutShop = payments
        withoutShop["PAYMENTS_SHOP_SHOP"] = nil
        let error = try await ConnectorConfigurationTests.error("payments", withoutShop)
        #expect(error?.contains("payments.shop.shop (PAYMENTS_SHOP_SHOP): required for Shopify") == true, "\(error ?? "started")")
        #expect(error?.contains("shpat_secret") != true)
        var complete = payments
        complete["PAYMENTS_SHOP_SHOP"] = "b.myshopify.com"
        let definition = try ConnectorCatalog.make("payments", reader: try await WorkerConfiguration.reader(environment: complete))
        let router = try #require(definition.endpoint as? PaymentRouter)
        #expect(router.providers["shop"] is ShopifyPayments && router.channels["shopify"] == .provider("shop"))

        let channel = ["CHANNELS_NAMES": "shopify", "CHANNELS_SHOPIFY_KIND": "shopify", "CHANNELS_SHOPIFY_SHOP": "b.myshopify.com", "CHANNELS_SHOPIFY_TOKEN": "t"]
        var byPayments = channel
        byPayments["CHANNELS_SHOPIFY_REFUNDS"] = "payments"
        let channels = try #require(try ConnectorCatalog.make("channels", reader: try await WorkerConfiguration.reader(environment: byPayments)).endpoint as? ChannelRouter)
        #expect((channels.channels["shopify"] as? ShopifyChannel)?.refundsByPayments == true)
        let plain = try #require(try ConnectorCatalog.make("channels", reader: try await WorkerConfiguration.reader(environment: channel)).endpoint as? ChannelRouter)
        #expect((plain.channels["shopify"] as? ShopifyChannel)?.refundsByPayments == false)
        var both = channel
        both["CHANNELS_SHOPIFY_REFUNDS"] = "both"
        #expect(try await ConnectorConfigurationTests.error("channels", both)?.contains("channels.shopify.refunds (CHANNELS_SHOPIFY_REFUNDS): 'both'") == true)
    }
}

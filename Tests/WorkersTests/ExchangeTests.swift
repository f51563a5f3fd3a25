import Contracts
import Foundation
import Testing
import Workers

private typealias F = PipelineFixtures

/// Exchanges (``Exchanges`` through `ReturnsMachine`, shipping's hold through
/// `StageDriver<ShippingStage>`, the view's notice): even, cheaper and dearer
/// replacements and their money; out-of-stock by rule; invalid replacements refused;
/// reserved at authorization (held until the return arrives) or at receipt; an expired
/// RMA releasing the replacement; a replacement cancelled before or after its release
/// ending in one refund; a replacement returned for money and exchanged again, its credit
/// going back to the order it came from.
@Suite struct ExchangeTests {
    static let rules = BusinessRules(
        locations: [StockLocation(id: "WH-1", type: .warehouse, country: "US")],
        returns: ReturnRules(windowDays: 30))
    static let deliveredAt = F.now.addingTimeInterval(F.days(3))

    /// 2 × SKU-A at 20.00, 5.00 shipping: 45.00; each unit is worth 20.00.
    let placed = F.placed(F.order(lines: [F.line("1", "SKU-A", quantity: 2, price: 2_000)], shipping: 500))
    var orderId: String { placed.orderId }
    let connector = DeterministicCarrierConnector()

    /// SKU-A2 another size at the same price, SKU-C dearer (25.00), SKU-D cheaper (15.00),
    /// SKU-X not sellable.
    static func product(_ sku: String) -> CatalogProduct? {
        let prices: [String: Int64] = ["SKU-A": 2_000, "SKU-A2": 2_000, "SKU-C": 2_500, "SKU-D": 1_500, "SKU-X": 2_000]
        guard let price = prices[sku] else { return nil }
        var product = F.product(sku, sellable: sku != "SKU-X")
        product.prices = [RegionPrice(region: "US", price: F.money(price))]
        return product
    }

    func run(
        _ events: [Event], from start: ReturnsState? = nil, orderId: String? = nil, rules: BusinessRules = ExchangeTests.rules,
        stock: Int = 5
    ) throws(StageFailure) -> (state: ReturnsState?, outputs: [[Event]]) {
        var state = start
        var outputs: [[Event]] = []
        for event in events {
            let step = try ReturnsMachine.advance(
                state, orderId: orderId ?? self.orderId, on: event, rules: rules, connector: connector, now: F.now, product: Self.product,
                available: { _ in stock })
            state = step.state
            outputs.append(step.outputs)
        }
        return (state, outputs)
    }

    func shipment(_ order: OrderPlaced, lines: [ShipmentLine]) -> Event {
        ShipmentCreated(
            shipmentId: "s-\(order.orderId)", orderId: order.orderId, location: "WH-1", carrier: "oms-post", service: "ground", trackingNumber: "T1",
            labelRef: "l", lines: lines, promisedDate: F.now, estimatedDelivery: F.now, atRisk: false, createdAt: F.now
        ).event
    }

    func delivered(_ order: OrderPlaced, lines: [ShipmentLine]) throws -> ReturnsState {
        let delivery = ShipmentDelivered(
            orderId: order.orderId, shipmentId: "s-\(order.orderId)", carrier: "oms-post", trackingNumber: "T1", rawStatus: "delivered", deliveredAt: Self.deliveredAt)
        return try #require(try run([order.event, shipment(order, lines: lines), delivery.event], orderId: order.orderId).state)
    }

    func request(
        _ returnId: String, line: String = "1", sku: String = "SKU-A", quantity: Int = 1, exchange: String?, payment: PaymentAuthorization? = nil,
        for order: OrderPlaced? = nil
    ) -> Event {
        ReturnRequested(
            orderId: (order ?? placed).orderId, returnId: returnId,
            lines: [ReturnLine(lineId: line, sku: sku, quantity: quantity, reason: "wrong_size", exchangeSku: exchange)],
            requestedAt: Self.deliveredAt.addingTimeInterval(F.days(2)), differencePayment: payment
        ).event
    }

    func arrived(_ returnId: String, for order: OrderPlaced? = nil) -> Event {
        ShipmentDelivered(
            orderId: (order ?? placed).orderId, shipmentId: returnId, carrier: "oms-post", trackingNumber: "R", rawStatus: "delivered",
            deliveredAt: Self.deliveredAt.addingTimeInterval(F.days(5))
        ).event
    }

    /// The replacement order an output list places, as intake would place it.
    func replacement(_ events: [Event]) throws -> OrderPlaced? {
        for case .inboundChannelOrder(let inbound) in events {
            #expect(inbound.format == .canonical)
            let order = try CanonicalOrderAdapter.decode(inbound.payload)
            #expect(IntakeStage.validate(order, rules: IntakeRules(), product: Self.product) == [], "intake places it")
            return OrderPlaced(order: order)
        }
        return nil
    }

    func refunds(_ events: [Event]) -> [RefundPayment] { events.compactMap { if case .refundPayment(let r) = $0 { r } else { nil } } }
    func exchangeTerms(_ events: [Event]) -> ExchangeTerms? {
        events.lazy.compactMap { if case .returnAuthorized(let a) = $0 { a.exchange } else { nil } }.first
    }

    // MARK: Even, cheaper, dearer

    @Test func anEvenExchangeIsPaidByTheReturnedUnitAndShipsWhenTheReturnArrives() throws {
        let asked = try run([request("r-1", exchange: "SKU-A2")], from: try delivered(placed, lines: [F.shipmentLine("1", "SKU-A", 2)]))
        let outputs = asked.outputs[0]
        let terms = try #require(exchangeTerms(outputs))
        #expect(terms.difference == F.money(0) && terms.credits.map(\.amount) == [F.money(2_000)] && terms.differenceRefunds.isEmpty)
        #expect(terms.credits.first?.orderId == orderId && terms.reserveAt == .authorization)
        let order = try #require(try replacement(outputs), "reserved at authorization: placed now")
        #expect(order.orderId == terms.exchangeOrderId)
        #expect(order.totals.total == F.money(0) && order.payment.status == .captured, "nothing to pay")
        #expect(order.lines.map(\.sku) == ["SKU-A2"] && order.lines.first?.discount == F.money(2_000))
        #expect(order.exchangeOf == ExchangeLink(orderId: orderId, returnId: "r-1", holdUntilReturned: true, credits: terms.credits))
        #expect(order.customer == placed.customer && order.shippingAddress == placed.shippingAddress)

        let received = try run([arrived("r-1"), arrived("r-1")], from: asked.state)
        #expect(received.outputs[0].contains { if case .shipReplacement(let s) = $0 { s.orderId == order.orderId && s.originalOrderId == orderId } else { false } })
        #expect(received.outputs[0].contains { if case .restockInventory = $0 { true } else { false } }, "the returned unit is restocked")
        #expect(refunds(received.outputs[0]).isEmpty, "an even exchange moves no money")
        #expect(received.outputs[1].isEmpty, "the same receipt again does nothing")
        #expect(received.state?.returns.first?.exchangeOutcome == .replacement)
    }

    @Test func aCheaperReplacementRefundsTheDifferenceWhenTheReturnArrives() throws {
        let asked = try run([request("r-1", exchange: "SKU-D")], from: try delivered(placed, lines: [F.shipmentLine("1", "SKU-A", 2)]))
        let terms = try #require(exchangeTerms(asked.outputs[0]))
        #expect(terms.difference == F.money(-500) && terms.credits.map(\.amount) == [F.money(1_500)] && terms.differenceRefunds.map(\.amount) == [F.money(500)])
        let cheaper = try replacement(asked.outputs[0])
        #expect(cheaper?.totals.total == F.money(0))
        #expect(refunds(asked.outputs[0]).isEmpty, "no money back before the goods")
        let received = try run([arrived("r-1")], from: asked.state)
        let refund = try #require(refunds(received.outputs[0]).first)
        #expect(refunds(received.outputs[0]).count == 1 && refund.amount == F.money(500) && refund.orderId == orderId)
        #expect(refund.reason.code == "exchange_difference" && refund.authorizationReference == "psp-1")
    }

    @Test func aDearerReplacementNeedsTheDifferenceAuthorizedAndCharges() throws {
        let start = try delivered(placed, lines: [F.shipmentLine("1", "SKU-A", 2)])
        let unpaid = try run([request("r-1", exchange: "SKU-C")], from: start)
        guard case .returnRejected(let rejected)? = unpaid.outputs[0].first else {
            Issue.record("expected a rejection, got \(unpaid.outputs)")
            return
        }
        #expect(F.codes(rejected.reasons) == ["difference_unpaid"] && rejected.reasons[0].message.contains("5.00"))

        let authorization = PaymentAuthorization(status: .authorized, amount: F.money(500), reference: "psp-diff")
        let paid = try run([request("r-2", exchange: "SKU-C", payment: authorization)], from: start)
        #expect(exchangeTerms(paid.outputs[0])?.difference == F.money(500))
        let order = try #require(try replacement(paid.outputs[0]))
        #expect(order.totals.total == F.money(500) && order.payment == authorization, "the replacement order captures the difference when it ships")
        #expect(order.lines.first?.unitPrice == F.money(2_500) && order.lines.first?.discount == F.money(2_000))
        let arrival = try run([arrived("r-2")], from: paid.state)
        #expect(refunds(arrival.outputs[0]).isEmpty)
    }

    @Test func anExchangeAskedBeforeItsDeliveryIsReadKeepsItsAuthorizationUntilThen() throws {
        let authorization = PaymentAuthorization(status: .authorized, amount: F.money(500), reference: "psp-diff")
        let delivery = ShipmentDelivered(
            orderId: orderId, shipmentId: "s-\(orderId)", carrier: "oms-post", trackingNumber: "T1", rawStatus: "delivered", deliveredAt: Self.deliveredAt)
        let steps = try run([placed.event, shipment(placed, lines: [F.shipmentLine("1", "SKU-A", 2)]), request("r-1", exchange: "SKU-C", payment: authorization), delivery.event])
        #expect(steps.outputs[2].isEmpty, "waits for the delivery")
        #expect(exchangeTerms(steps.outputs[3])?.differencePayment == authorization, "decided with the authorization it came with")
    }

    // MARK: Out of stock, invalid

    @Test func anOutOfStockReplacementIsRefundedRefusedOrWaitedForAsTheRuleSays() throws {
        let start = try delivered(placed, lines: [F.shipmentLine("1", "SKU-A", 2)])
        let refunded = try run([request("r-1", exchange: "SKU-A2")], from: start, stock: 0)
        #expect(refunded.outputs[0].contains { if case .exchangeReplacedByRefund(let e) = $0 { e.reason.code == "replacement_out_of_stock" } else { false } })
        let plainReplacement = try replacement(refunded.outputs[0])
        #expect(exchangeTerms(refunded.outputs[0]) == nil && plainReplacement == nil, "authorized as a plain return")
        let arrival = try run([arrived("r-1")], from: refunded.state)
        #expect(refunds(arrival.outputs[0]).map(\.amount) == [F.money(2_000)])

        var rules = Self.rules
        rules.returns.exchanges.outOfStock = .reject
        let refused = try run([request("r-1", exchange: "SKU-A2")], from: start, rules: rules, stock: 0)
        guard case .returnRejected(let rejected)? = refused.outputs[0].first else {
            Issue.record("expected a rejection, got \(refused.outputs)")
            return
        }
        #expect(F.codes(rejected.reasons) == ["replacement_out_of_stock"])
        rules.returns.exchanges.outOfStock = .wait
        let waiting = try run([request("r-1", exchange: "SKU-A2")], from: start, rules: rules, stock: 0)
        #expect(exchangeTerms(waiting.outputs[0]) != nil)
    }

    @Test func aReplacementThatCannotBeSoldIsRefusedWithEveryReason() throws {
        let start = try delivered(placed, lines: [F.shipmentLine("1", "SKU-A", 2)])
        for (sku, code) in [("SKU-NOPE", "replacement_unknown"), ("SKU-X", "replacement_not_sellable")] {
            let outputs = try run([request("r-1", exchange: sku)], from: start).outputs[0]
            guard case .returnRejected(let rejected)? = outputs.first else {
                Issue.record("\(sku): expected a rejection, got \(outputs)")
                continue
            }
            #expect(F.codes(rejected.reasons) == [code])
        }
    }

    // MARK: When it is reserved; expiry

    @Test func reservedAtReceiptTheReplacementIsPlacedThenAndShipsAtOnce() throws {
        var rules = Self.rules
        rules.returns.exchanges.reserveAt = .received
        let asked = try run([request("r-1", exchange: "SKU-A2")], from: try delivered(placed, lines: [F.shipmentLine("1", "SKU-A", 2)]), rules: rules)
        let early = try replacement(asked.outputs[0])
        #expect(early == nil, "nothing reserved yet")
        let received = try run([arrived("r-1")], from: asked.state, rules: rules)
        let order = try #require(try replacement(received.outputs[0]))
        #expect(order.exchangeOf?.holdUntilReturned == false)
        #expect(!received.outputs[0].contains { if case .shipReplacement = $0 { true } else { false } })
    }

    @Test func anExpiredRMACancelsItsReplacementAndALateParcelWaitsForReview() throws {
        let asked = try run([request("r-1", exchange: "SKU-A2")], from: try delivered(placed, lines: [F.shipmentLine("1", "SKU-A", 2)]))
        let exchangeOrderId = try #require(exchangeTerms(asked.outputs[0])?.exchangeOrderId)
        let expiry = ReturnsMachine.expire(try #require(asked.state), now: F.now.addingTimeInterval(F.days(60)))
        #expect(expiry.outputs.contains { if case .returnExpired = $0 { true } else { false } })
        #expect(expiry.outputs.contains { if case .cancelOrder(let c) = $0 { c.orderId == exchangeOrderId && c.reason.code == "rma_expired" } else { false } },
                "the replacement's reservation is released")
        let late = try run([ShipmentDelivered(
            orderId: orderId, shipmentId: "r-1", carrier: "oms-post", trackingNumber: "R", rawStatus: "delivered", deliveredAt: F.now.addingTimeInterval(F.days(61))).event],
            from: expiry.state)
        #expect(late.outputs[0].contains { if case .returnNeedsReview(let r) = $0 { r.amount == F.money(2_000) } else { false } })
        #expect(!late.outputs[0].contains { if case .shipReplacement = $0 { true } else { false } } && refunds(late.outputs[0]).isEmpty)
    }

    // MARK: The replacement cancelled

    @Test func aReplacementOutOfStockIsCancelledAndItsCancelEndsTheExchangeInOneRefund() throws {
        let asked = try run([request("r-1", exchange: "SKU-A2")], from: try delivered(placed, lines: [F.shipmentLine("1", "SKU-A", 2)]))
        let order = try #require(try replacement(asked.outputs[0]))
        // The replacement's side, on its own key.
        let backordered = OrderBackordered(orderId: order.orderId, lines: [BackorderedLine(lineId: "x1", sku: "SKU-A2", quantity: 1)], policy: .backorder, reasons: [], decidedAt: F.now)
        let side = try run([order.event, backordered.event], orderId: order.orderId)
        guard case .cancelOrder(let cancel)? = side.outputs[1].first else {
            Issue.record("expected a cancel of the replacement, got \(side.outputs)")
            return
        }
        #expect(cancel.orderId == order.orderId && cancel.reason.code == "replacement_out_of_stock")
        let cancelled = OrderCancelled(orderId: order.orderId, requestedBy: "returns", reason: cancel.reason, cancelledAt: F.now)
        let told = try run([cancelled.event], from: side.state, orderId: order.orderId)
        guard case .replacementCancelled(let ended)? = told.outputs[0].first else {
            Issue.record("expected the original order to be told, got \(told.outputs)")
            return
        }
        #expect(ended.orderId == orderId && ended.returnId == "r-1" && ended.exchangeOrderId == order.orderId)

        // The original order's side: before the return arrives, then when it does.
        let before = try run([ended.event, ended.event, arrived("r-1")], from: asked.state)
        #expect(before.outputs[0].contains { if case .exchangeReplacedByRefund = $0 { true } else { false } } && before.outputs[1].isEmpty)
        #expect(refunds(before.outputs[2]).map(\.amount) == [F.money(2_000)], "the returned unit is refunded in full")
        #expect(!before.outputs[2].contains { if case .shipReplacement = $0 { true } else { false } })

        // Released (the return arrived), then cancelled before it shipped: the credit comes back.
        let after = try run([arrived("r-1"), ended.event, ended.event], from: asked.state)
        #expect(refunds(after.outputs[0]).isEmpty)
        let refund = refunds(after.outputs[1])
        #expect(refund.map(\.amount) == [F.money(2_000)] && refund.first?.reason.code == "exchange_cancelled")
        #expect(after.outputs[2].isEmpty, "one refund")
    }

    @Test func aCancelReadBeforeTheReplacementOrderStillReachesTheOriginal() throws {
        let asked = try run([request("r-1", exchange: "SKU-A2")], from: try delivered(placed, lines: [F.shipmentLine("1", "SKU-A", 2)]))
        let order = try #require(try replacement(asked.outputs[0]))
        let cancelled = OrderCancelled(orderId: order.orderId, requestedBy: "agent:sam", reason: Reason(code: "customer_request", message: "m"), cancelledAt: F.now)
        let side = try run([cancelled.event, order.event], orderId: order.orderId)
        #expect(side.outputs[0].isEmpty)
        #expect(side.outputs[1].contains { if case .replacementCancelled(let e) = $0 { e.orderId == orderId && e.reason.code == "customer_request" } else { false } })
    }

    // MARK: A replacement returned again

    @Test func aReplacementReturnedForMoneyRefundsItsCreditToTheOrderItCameFrom() throws {
        let authorization = PaymentAuthorization(status: .authorized, amount: F.money(500), reference: "psp-diff")
        let asked = try run([request("r-1", exchange: "SKU-C", payment: authorization)], from: try delivered(placed, lines: [F.shipmentLine("1", "SKU-A", 2)]))
        let order = try #require(try replacement(asked.outputs[0]))
        let replacementDelivered = try delivered(order, lines: [F.shipmentLine("x1", "SKU-C", 1)])
        let returned = try run(
            [request("r-2", line: "x1", sku: "SKU-C", exchange: nil, for: order), arrived("r-2", for: order)], from: replacementDelivered, orderId: order.orderId)
        let paidBack = refunds(returned.outputs[1])
        #expect(paidBack.map(\.orderId) == [order.orderId, orderId])
        #expect(paidBack.map(\.amount) == [F.money(500), F.money(2_000)], "the difference paid on the replacement, the credit on the original")
        #expect(paidBack.map(\.authorizationReference) == ["psp-diff", "psp-1"])
        #expect(paidBack.map(\.reason.code) == ["returned", Exchanges.creditRefundCode])
    }

    @Test func aReplacementExchangedAgainCarriesItsCreditOn() throws {
        let first = try run([request("r-1", exchange: "SKU-A2")], from: try delivered(placed, lines: [F.shipmentLine("1", "SKU-A", 2)]))
        let order = try #require(try replacement(first.outputs[0]))
        let start = try delivered(order, lines: [F.shipmentLine("x1", "SKU-A2", 1)])
        let again = try run([request("r-2", line: "x1", sku: "SKU-A2", exchange: "SKU-D", for: order)], from: start, orderId: order.orderId)
        let terms = try #require(exchangeTerms(again.outputs[0]))
        #expect(terms.credits.map(\.orderId) == [orderId] && terms.credits.map(\.amount) == [F.money(1_500)], "the first order's credit pays again")
        #expect(terms.differenceRefunds.map(\.orderId) == [orderId] && terms.differenceRefunds.map(\.amount) == [F.money(500)])
        let second = try #require(try replacement(again.outputs[0]))
        #expect(second.exchangeOf?.orderId == order.orderId && second.exchangeOf?.credits.map(\.orderId) == [orderId])
        let received = try run([arrived("r-2", for: order)], from: again.state, orderId: order.orderId)
        let refund = refunds(received.outputs[0])
        #expect(refund.map(\.orderId) == [orderId] && refund.map(\.amount) == [F.money(500)], "the cheaper replacement's difference goes back to the card that paid")
    }

    // MARK: Shipping holds the replacement

    @Test func shippingHoldsAReplacementReservedAtAuthorizationUntilTheReturnArrives() throws {
        let asked = try run([request("r-1", exchange: "SKU-A2")], from: try delivered(placed, lines: [F.shipmentLine("1", "SKU-A", 2)]))
        let order = try #require(try replacement(asked.outputs[0]))
        var driver = StageDriver(stage: ShippingStage(rules: Self.rules))
        driver.tables[CatalogProduct.topic] = ["SKU-A2": F.shippingProduct("SKU-A2").event]
        let allocated = OrderAllocated(orderId: order.orderId, allocations: [F.allocation("x1", "SKU-A2", "WH-1", 1)], decidedAt: F.now)
        let release = ShipReplacement(orderId: order.orderId, originalOrderId: orderId, returnId: "r-1", requestedAt: F.now)
        let outputs = [order.event, allocated.event, release.event, release.event].enumerated().map { index, event in
            F.events(driver.handle(F.envelope("in-\(index)", event), offset: Int64(index), now: F.now))
        }
        #expect(outputs[1].isEmpty, "reserved, not shipped")
        #expect(outputs[2].contains { if case .shipmentCreated(let s) = $0 { s.lines.map(\.sku) == ["SKU-A2"] } else { false } })
        #expect(!outputs[2].contains { if case .capturePayment = $0 { true } else { false } }, "nothing to capture")
        #expect(outputs[3].isEmpty)

        // Cancelled while held: no void or refund of nothing.
        var held = StageDriver(stage: ShippingStage(rules: Self.rules))
        let cancel = CancelOrder(orderId: order.orderId, requestedBy: "returns", reason: Reason(code: "rma_expired", message: "m"), requestedAt: F.now)
        let cancelled = [order.event, allocated.event, cancel.event].enumerated().map { index, event in
            F.events(held.handle(F.envelope("c-\(index)", event), offset: Int64(index), now: F.now))
        }
        #expect(cancelled[2].count == 1 && { if case .orderCancelled = cancelled[2][0] { true } else { false } }())
    }

    // MARK: The view

    @Test func theViewTellsTheCustomerOnceThatTheExchangeBecomesARefund() throws {
        let ended = ExchangeReplacedByRefund(
            orderId: orderId, returnId: "r-1", exchangeOrderId: "x", reason: Reason(code: "replacement_out_of_stock", message: "no stock for SKU-A2"), decidedAt: F.now)
        var view: OrderView?
        var kinds: [NotificationKind] = []
        for (index, event) in [placed.event, ended.event].enumerated() {
            let step = OrderViewFolder.fold(view, orderId: orderId, envelope: F.envelope("v-\(index)", event), rules: NotificationRules(), now: F.now)
            view = step.view ?? view
            kinds += step.notifications.map(\.kind)
        }
        let again = OrderViewFolder.fold(view, orderId: orderId, envelope: F.envelope("v-9", ended.event), rules: NotificationRules(), now: F.now)
        #expect(kinds == [.exchangeRefund] && again.notifications.isEmpty)
        #expect(view?.returns.first?.exchangeOutcome == .refund)
        #expect(view?.history.last?.note?.contains("replacement_out_of_stock") == true)
    }
}

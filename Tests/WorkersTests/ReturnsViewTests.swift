import Contracts
import Foundation
import Testing
import Workers

private typealias F = PipelineFixtures

/// Returns (`ReturnsMachine.eligibility` reasons, authorization with RMA, label and index
/// entry, receipt by return-parcel delivery or `ReceiveReturn`, restock or write-off,
/// refunds of exactly the units' worth), the order view (`OrderViewFolder.fold`: the
/// status machine, line progress, notifications once each, idempotent folds, any event
/// order; `OrderViewStage.tick`: the review invitation) and SLA watch (`SLAWatch.follow`
/// and `due`, `SLAWatchStage.tick`: alerts once, ship-by deadlines, recoveries, final
/// statuses forgotten).
@Suite struct ReturnsTests {
    static let rules = BusinessRules(
        locations: ["WH-1", "WH-2", "WH-RET"].map { StockLocation(id: $0, type: .warehouse, country: "US") },
        returns: ReturnRules(windowDays: 30, channelWindowDays: ["marketplace": 14]))
    static let deliveredAt = F.now.addingTimeInterval(F.days(3))
    /// Line 1: 3 × 10.00 less 1.00 = 29.00; line 2: 10.01; 5.00 shipping.
    static func order(channel: String = "web", coupon: Int64 = 0) -> OrderPlaced {
        F.placed(F.order(
            channel: channel,
            lines: [F.line("1", "SKU-A", quantity: 3, price: 1_000, discount: 100), F.line("2", "SKU-B", price: 1_001)],
            shipping: 500, discount: 100 + coupon))
    }

    let placed = order()
    var orderId: String { placed.orderId }
    let connector = DeterministicCarrierConnector()

    func shipment(for order: OrderPlaced? = nil) -> ShipmentCreated {
        ShipmentCreated(
            shipmentId: "s-1", orderId: (order ?? placed).orderId, location: "WH-1", carrier: "oms-post", service: "ground", trackingNumber: "OMSP1",
            labelRef: "label://oms-post/OMSP1.pdf", lines: [F.shipmentLine("1", "SKU-A", 3), F.shipmentLine("2", "SKU-B", 1)],
            promisedDate: F.now.addingTimeInterval(F.days(5)), estimatedDelivery: F.now.addingTimeInterval(F.days(3)), atRisk: false, createdAt: F.now)
    }

    func delivery(_ parcel: String, trackingNumber: String = "OMSP1", at: Date = ReturnsTests.deliveredAt, for order: OrderPlaced? = nil) -> Event {
        ShipmentDelivered(orderId: (order ?? placed).orderId, shipmentId: parcel, carrier: "oms-post", trackingNumber: trackingNumber, rawStatus: "delivered", deliveredAt: at).event
    }

    func request(_ returnId: String, _ lines: [(String, String, Int)], reason: String = "too_small", after days: Double = 2, for order: OrderPlaced? = nil) -> ReturnRequested {
        ReturnRequested(
            orderId: (order ?? placed).orderId, returnId: returnId, lines: lines.map { ReturnLine(lineId: $0.0, sku: $0.1, quantity: $0.2, reason: reason) },
            requestedAt: Self.deliveredAt.addingTimeInterval(F.days(days)))
    }

    func label(_ returnId: String) -> CarrierLabel {
        connector.label(for: LabelRequest(parcelId: returnId, carrier: "oms-post", service: "return", weightGrams: 0))
    }

    /// Feeds events in order.
    func run(_ events: [Event], from start: ReturnsState? = nil, rules: BusinessRules = ReturnsTests.rules, orderId: String? = nil) throws(StageFailure) -> (state: ReturnsState?, outputs: [[Event]]) {
        var state = start
        var outputs: [[Event]] = []
        for event in events {
            let step = try ReturnsMachine.advance(state, orderId: orderId ?? self.orderId, on: event, rules: rules, connector: connector, now: F.now)
            state = step.state
            outputs.append(step.outputs)
        }
        return (state, outputs)
    }

    /// The order placed, shipped in one parcel and delivered.
    func delivered(_ order: OrderPlaced? = nil, rules: BusinessRules = ReturnsTests.rules) throws -> ReturnsState {
        let order = order ?? placed
        return try #require(try run([order.event, shipment(for: order).event, delivery("s-1", for: order)], rules: rules, orderId: order.orderId).state)
    }

    func refunds(_ events: [Event]) -> [RefundPayment] { events.compactMap { if case .refundPayment(let r) = $0 { r } else { nil } } }
    func restocks(_ events: [Event]) -> [RestockInventory] { events.compactMap { if case .restockInventory(let r) = $0 { r } else { nil } } }

    // MARK: Eligibility

    /// The customer saw the delivery before this stage read it (a backlog after a restart):
    /// the request waits for the delivery instead of being refused.
    @Test func requestForShippedUnitsWaitsForTheirDelivery() throws {
        let shippedOnly = try run([placed.event, shipment().event])
        let asked = try run([request("r-1", [("1", "SKU-A", 1)]).event], from: shippedOnly.state)
        #expect(asked.outputs == [[]], "no decision yet")
        #expect(asked.state?.returns.map(\.status) == [.awaitingDelivery])
        let decided = try run([delivery("s-1")], from: asked.state)
        guard case .returnAuthorized(let authorized)? = decided.outputs.first?.first else {
            Issue.record("expected ReturnAuthorized, got \(decided.outputs)")
            return
        }
        #expect(authorized.returnId == "r-1")
        #expect(decided.state?.returns.map(\.status) == [.authorized])
        // A request for a line that never shipped is refused at once.
        let unshipped = try run([placed.event, request("r-2", [("1", "SKU-A", 1)]).event])
        guard case .returnRejected(let rejected)? = unshipped.outputs.last?.first else {
            Issue.record("expected ReturnRejected, got \(unshipped.outputs)")
            return
        }
        #expect(rejected.reasons.map(\.code) == ["not_delivered"])
    }

    // MARK: Late returns

    @Test func aReturnReceivedAfterItsRMAExpiredIsRestockedButItsRefundWaitsForAnOperator() throws {
        let state = try delivered()
        let authorized = try run([request("r-1", [("1", "SKU-A", 2)]).event], from: state)
        let expiry = try #require(authorized.state?.returns.first?.expiresAt)
        let late = try run([delivery("r-1", trackingNumber: label("r-1").trackingNumber, at: expiry.addingTimeInterval(F.days(1)))], from: authorized.state)
        let outputs = late.outputs.flatMap { $0 }
        #expect(refunds(outputs).isEmpty, "no refund without a look")
        #expect(restocks(outputs).map(\.quantity) == [2], "the units are back on the shelf all the same")
        guard case .returnNeedsReview(let review)? = outputs.last else {
            Issue.record("expected ReturnNeedsReview, got \(outputs)")
            return
        }
        #expect(review.reason.code == "rma_expired" && review.amount.minorUnits > 0)
        #expect(late.state?.returns.first?.status == .review)
        // The same parcel reported again changes nothing; an operator approves once.
        #expect(try run([delivery("r-1", trackingNumber: label("r-1").trackingNumber, at: expiry.addingTimeInterval(F.days(2)))], from: late.state).outputs == [[]])
        let approve = ApproveReturnRefund(orderId: orderId, returnId: "r-1", approvedBy: "ops:kim", requestedAt: F.now).event
        let approved = try run([approve], from: late.state)
        let refund = try #require(refunds(approved.outputs.flatMap { $0 }).first)
        #expect(refund.amount == review.amount && refund.returnId == "r-1" && refund.reason.message.contains("approved by ops:kim"))
        #expect(approved.state?.returns.first?.status == .received)
        #expect(try run([approve], from: approved.state).outputs == [[]], "approved once")
        // In time: refunded at once, nothing to approve.
        let onTime = try run([delivery("r-1", trackingNumber: label("r-1").trackingNumber, at: expiry.addingTimeInterval(-60))], from: authorized.state)
        #expect(refunds(onTime.outputs.flatMap { $0 }).first?.amount == review.amount)
        #expect(throws: StageFailure.self) { try run([approve], from: authorized.state) }
    }

    @Test func anRMANotReceivedBeforeItExpiresExpiresOnceAndALateParcelStillGoesToReview() throws {
        let state = try delivered()
        let authorized = try run([request("r-1", [("1", "SKU-A", 2)]).event, request("r-2", [("2", "SKU-B", 1)], after: 5).event], from: state)
        let returns = try #require(authorized.state?.returns)
        let first = try #require(returns.first?.expiresAt)
        #expect(ReturnsMachine.expire(try #require(authorized.state), now: first.addingTimeInterval(-1)).state == nil, "not yet")
        let expired = ReturnsMachine.expire(try #require(authorized.state), now: first)
        #expect(expired.outputs == [
            ReturnExpired(
                orderId: orderId, returnId: "r-1", rma: returns[0].rma, lines: [F.shipmentLine("1", "SKU-A", 2)], expiresAt: first, expiredAt: first
            ).event,
        ], "only the RMA past its expiry; r-2 was authorized three days later")
        #expect(expired.state?.returns.map(\.status) == [.expired, .authorized])
        #expect(ReturnsMachine.expire(try #require(expired.state), now: first).state == nil, "once")
        // The parcel comes after all: restocked, its refund waits for an operator.
        let late = try run([delivery("r-1", trackingNumber: label("r-1").trackingNumber, at: first.addingTimeInterval(F.days(1)))], from: expired.state)
        #expect(late.state?.returns.first?.status == .review)
        #expect(restocks(late.outputs.flatMap { $0 }).map(\.quantity) == [2] && refunds(late.outputs.flatMap { $0 }).isEmpty)

        // Through the stage's timer.
        var driver = StageDriver(stage: ReturnsStage(rules: Self.rules))
        let events = [placed.event, shipment().event, delivery("s-1"), request("r-1", [("1", "SKU-A", 2)]).event]
        for (index, event) in events.enumerated() { _ = driver.handle(F.envelope("r-\(index)", event), offset: Int64(index), now: F.now) }
        #expect(driver.tick(now: first.addingTimeInterval(-60)).isEmpty)
        let firings = driver.tick(now: first)
        #expect(firings.count == 1 && firings.first?.outputs.map(\.topic) == [ReturnExpired.topic])
        #expect(driver.tick(now: first.addingTimeInterval(60)).isEmpty, "expired once")
    }

    // MARK: Appeasements

    func appease(_ id: String, _ minor: Int64, role: String = "agent", lineId: String? = nil, currency: CurrencyCode = .usd, storeCredit: Bool? = nil) -> Event {
        AppeaseOrder(
            orderId: orderId, appeasementId: id, amount: Money(minorUnits: minor, currency: currency), reason: Reason(code: "late_delivery", message: "arrived late"),
            requestedBy: "agent:sam", role: role, lineId: lineId, requestedAt: F.now, storeCredit: storeCredit).event
    }

    @Test func storeCreditIsGrantedWithinTheSameLimitsWithoutARefundAndShownOnTheView() throws {
        let state = try delivered(rules: Self.appeasing)
        let granted = try run([appease("a-1", 2_000, storeCredit: true)], from: state, rules: Self.appeasing)
        let outputs = try #require(granted.outputs.first)
        #expect(outputs.count == 1 && refunds(outputs).isEmpty, "store credit is no money back")
        guard case .orderAppeased(let appeased)? = outputs.first else {
            Issue.record("expected OrderAppeased, got \(outputs)")
            return
        }
        #expect(appeased.storeCredit == true && appeased.amount == F.money(2_000))
        #expect(granted.state?.appeased == F.money(2_000), "it counts against the order's limit")
        let over = try run([appease("a-2", 2_000, storeCredit: true), appease("a-3", 2_000)], from: granted.state, rules: Self.appeasing)
        guard case .appeasementRejected(let refused)? = over.outputs.last?.first else {
            Issue.record("expected a refusal, got \(over.outputs)")
            return
        }
        #expect(refused.reasons.map(\.code) == ["above_order_limit", "above_paid"], "20 + 20 + 20 is above the 50.00 per order and the 44.01 paid")

        var view: OrderView?
        var notes: [Contracts.Notification] = []
        for (index, event) in [placed.event, appeased.event, appeased.event].enumerated() {
            let step = OrderViewFolder.fold(view, orderId: orderId, envelope: F.envelope("v-\(index)", event), rules: NotificationRules(), now: F.now)
            view = step.view ?? view
            notes += step.notifications
        }
        #expect(view?.storeCredit == F.money(4_000), "two grants read (two event ids): both count")
        #expect(notes.map(\.kind) == [.storeCredit], "one message per appeasement id")
    }

    /// Limits: an agent 25.00 at a time, a lead 100.00; 50.00 per order in all.
    static let appeasing = BusinessRules(
        locations: ReturnsTests.rules.locations,
        returns: ReturnRules(appeasements: AppeasementRules(perRole: ["agent": ["USD": 2_500], "lead": ["USD": 10_000]], perOrder: ["USD": 5_000])))

    @Test func anAppeasementWithinTheLimitsIsRefundedWithoutAReturnOnce() throws {
        let state = try delivered(rules: Self.appeasing)
        let granted = try run([appease("a-1", 2_000)], from: state, rules: Self.appeasing)
        let outputs = try #require(granted.outputs.first)
        guard case .orderAppeased(let appeased)? = outputs.first else {
            Issue.record("expected OrderAppeased, got \(outputs)")
            return
        }
        #expect(appeased.amount == F.money(2_000) && appeased.role == "agent" && appeased.reason.code == "late_delivery")
        let refund = try #require(refunds(outputs).first)
        #expect(refund.returnId == nil && refund.amount == F.money(2_000) && refund.reason.code == "appeasement")
        #expect(refund.reason.message.contains("late_delivery") && refund.reason.message.contains("a-1"))
        #expect(refund.authorizationReference == placed.payment.reference && refund.channel == placed.channel)
        #expect(granted.state?.appeased == F.money(2_000) && granted.state?.appeasements == ["a-1"])
        let again = try run([appease("a-1", 2_000)], from: granted.state, rules: Self.appeasing)
        #expect(again.outputs == [[]], "the same appeasement is decided once")
    }

    @Test func appeasementsAboveALimitAreRefusedWithTheirReasons() throws {
        let state = try delivered(rules: Self.appeasing)
        func reasons(_ event: Event, from start: ReturnsState?) throws -> [String] {
            let step = try run([event], from: start, rules: Self.appeasing)
            guard case .appeasementRejected(let rejected)? = step.outputs.first?.first else { return [] }
            #expect(step.state?.appeased == start?.appeased, "a refusal gives nothing back")
            return rejected.reasons.map(\.code)
        }
        #expect(try reasons(appease("a-1", 2_501), from: state) == ["above_role_limit"])
        #expect(try reasons(appease("a-2", 1_000, role: "intern"), from: state) == ["unknown_role"])
        #expect(try reasons(appease("a-3", 1_000, lineId: "9"), from: state) == ["unknown_line"])
        #expect(try reasons(appease("a-4", 1_002, role: "lead", lineId: "2"), from: state) == ["above_line"], "line 2 is worth 10.01")
        #expect(try reasons(appease("a-5", 1_000, currency: .eur), from: state) == ["currency_mismatch"])
        // Two of 20.00 and 20.00 more: the order's 50.00 is reached.
        let twice = try run([appease("a-6", 2_000), appease("a-7", 2_000)], from: state, rules: Self.appeasing)
        #expect(try reasons(appease("a-8", 1_001, role: "lead"), from: twice.state) == ["above_order_limit", "above_paid"], "every failed check: 4.01 is left paid")
        // After a return refunded line 1 (29.00), 15.01 is left paid of 44.01: a lead's 20.00 is above it.
        let returned = try run([request("r-1", [("1", "SKU-A", 3)]).event], from: state, rules: Self.appeasing)
        let received = try run([delivery("r-1", trackingNumber: label("r-1").trackingNumber)], from: returned.state, rules: Self.appeasing)
        #expect(refunds(received.outputs.flatMap { $0 }).first?.amount == F.money(2_900))
        let big = AppeasementRules(perRole: ["lead": ["USD": 10_000]], perOrder: ["USD": 100_000])
        let rules = BusinessRules(locations: ReturnsTests.rules.locations, returns: ReturnRules(appeasements: big))
        let overPaid = try run([appease("a-9", 2_000, role: "lead")], from: received.state, rules: rules)
        guard case .appeasementRejected(let rejected)? = overPaid.outputs.first?.first else {
            Issue.record("expected a refusal, got \(overPaid.outputs)")
            return
        }
        #expect(rejected.reasons.map(\.code) == ["above_paid"] && rejected.reasons.first?.message.contains("15.01") == true, "\(rejected.reasons)")
    }

    @Test func unitsCancelledBeforeTheyShippedAreNotLeftPaid() throws {
        let state = try delivered(rules: Self.appeasing)
        let big = BusinessRules(
            locations: ReturnsTests.rules.locations,
            returns: ReturnRules(appeasements: AppeasementRules(perRole: ["lead": ["USD": 100_000]], perOrder: ["USD": 100_000])))
        let cut = OrderLinesCancelled(
            orderId: orderId, changeId: "chg-1", lines: [F.shipmentLine("2", "SKU-B", 1)], amount: F.money(1_001), requestedBy: "customer",
            reason: Reason(code: "customer_request", message: "-"), cancelledAt: F.now).event
        // Read twice (a replay): counted once. 44.01 − 10.01 = 34.00 is left paid.
        let cancelled = try run([cut, cut], from: state, rules: big)
        #expect(cancelled.state?.cancelledLines == [F.shipmentLine("2", "SKU-B", 1)])
        let over = try run([appease("a-1", 3_401, role: "lead")], from: cancelled.state, rules: big)
        guard case .appeasementRejected(let rejected)? = over.outputs.first?.first else {
            Issue.record("expected a refusal, got \(over.outputs)")
            return
        }
        #expect(rejected.reasons.map(\.code) == ["above_paid"] && rejected.reasons.first?.message.contains("34.00") == true, "\(rejected.reasons)")
        let within = try run([appease("a-2", 3_400, role: "lead")], from: cancelled.state, rules: big)
        #expect(within.outputs.first?.first.map { if case .orderAppeased = $0 { true } else { false } } == true)
    }

    @Test func anAppeasementBeforeItsOrderIsDeadLetteredForAReplay() {
        #expect(throws: StageFailure.self) { try run([appease("a-1", 100)], rules: Self.appeasing) }
    }

    @Test func unknownOrderIsRejected() throws {
        let step = try ReturnsMachine.advance(nil, orderId: orderId, on: request("r-1", [("1", "SKU-A", 1)]).event, rules: Self.rules, connector: connector, now: F.now)
        #expect(step.state == nil, "nothing is kept for an unknown order")
        guard case .returnRejected(let rejected)? = step.outputs.first else {
            Issue.record("expected ReturnRejected, got \(step.outputs)")
            return
        }
        #expect(F.codes(rejected.reasons) == ["order_unknown"])
        #expect(rejected.returnId == "r-1")
    }

    @Test func undeliveredUnitsCannotBeReturned() throws {
        let shipped = try #require(try run([placed.event, shipment().event]).state)
        let reasons = ReturnsMachine.eligibility(of: request("r-1", [("1", "SKU-A", 1)]), state: shipped, rules: Self.rules.returns)
        #expect(F.codes(reasons) == ["not_delivered"])
    }

    @Test func moreThanDeliveredAndUnknownLinesAreRejected() throws {
        let state = try delivered()
        let returns = Self.rules.returns
        #expect(F.codes(ReturnsMachine.eligibility(of: request("r-1", [("1", "SKU-A", 4)]), state: state, rules: returns)) == ["quantity_exceeds_delivered"])
        #expect(F.codes(ReturnsMachine.eligibility(of: request("r-1", [("9", "SKU-Z", 1)]), state: state, rules: returns)) == ["line_unknown"])
        // Every problem is listed, by line id.
        #expect(F.codes(ReturnsMachine.eligibility(of: request("r-1", [("9", "SKU-Z", 1), ("1", "SKU-A", 4)]), state: state, rules: returns))
            == ["quantity_exceeds_delivered", "line_unknown"])
        #expect(F.codes(ReturnsMachine.eligibility(of: request("r-1", [("1", "SKU-B", 1)]), state: state, rules: returns)) == ["sku_mismatch"])
        #expect(ReturnsMachine.eligibility(of: request("r-1", [("1", "SKU-A", 3), ("2", "SKU-B", 1)]), state: state, rules: returns) == [])
    }

    @Test func unitsAlreadyOnTheirWayBackCannotBeAskedAgain() throws {
        let (state, outputs) = try run([request("r-1", [("1", "SKU-A", 2)]).event, request("r-2", [("1", "SKU-A", 2)]).event], from: try delivered())
        #expect(outputs[0].count == 2, "the first is authorized")
        guard case .returnRejected(let rejected)? = outputs[1].first else {
            Issue.record("expected ReturnRejected, got \(outputs[1])")
            return
        }
        #expect(F.codes(rejected.reasons) == ["already_returned"])
        #expect(state?.returns.map(\.returnId) == ["r-1"])
    }

    @Test func returnWindowRunsFromDeliveryPerChannel() throws {
        let web = try delivered()
        let returns = Self.rules.returns
        #expect(ReturnsMachine.eligibility(of: request("r-1", [("1", "SKU-A", 1)], after: 30), state: web, rules: returns) == [], "the last day counts")
        #expect(F.codes(ReturnsMachine.eligibility(of: request("r-1", [("1", "SKU-A", 1)], after: 30.001), state: web, rules: returns)) == ["window_passed"])

        let marketplaceOrder = Self.order(channel: "marketplace")
        let marketplace = try delivered(marketplaceOrder)
        #expect(marketplace.channel == "marketplace")
        #expect(ReturnsMachine.eligibility(of: request("r-1", [("1", "SKU-A", 1)], after: 14, for: marketplaceOrder), state: marketplace, rules: returns) == [])
        #expect(F.codes(ReturnsMachine.eligibility(of: request("r-1", [("1", "SKU-A", 1)], after: 15, for: marketplaceOrder), state: marketplace, rules: returns))
            == ["window_passed"])
        #expect(ReturnsMachine.eligibility(of: request("r-1", [("1", "SKU-A", 1)], after: 15), state: web, rules: returns) == [], "web keeps 30 days")
    }

    @Test func returnWindowPerShipToCountryGivesWayToTheChannels() throws {
        var returns = Self.rules.returns
        returns.countryWindowDays = ["DE": 60]
        let rules = BusinessRules(locations: Self.rules.locations, returns: returns)
        let german = F.placed(F.order(
            channel: "web", lines: [F.line("1", "SKU-A", quantity: 3, price: 1_000)], shippingAddress: F.address(country: "DE", postalCode: "10117", region: nil)))
        let state = try delivered(german, rules: rules)
        #expect(state.country == "DE")
        #expect(ReturnsMachine.eligibility(of: request("r-1", [("1", "SKU-A", 1)], after: 59, for: german), state: state, rules: returns) == [])
        #expect(F.codes(ReturnsMachine.eligibility(of: request("r-1", [("1", "SKU-A", 1)], after: 61, for: german), state: state, rules: returns)) == ["window_passed"])
        #expect(try delivered(rules: rules).country == "US")
        #expect(ReturnsMachine.eligibility(of: request("r-1", [("1", "SKU-A", 1)], after: 31), state: try delivered(rules: rules), rules: returns).map(\.code) == ["window_passed"])
        returns.channelWindowDays["web"] = 10
        #expect(returns.window(channel: "web", country: "DE") == 10, "a channel's window comes first")
        #expect(returns.window(channel: "pos", country: "DE") == 60 && returns.window(channel: "pos", country: "FR") == 30)
    }

    @Test func aCategoryWindowComesBeforeEveryOtherForItsLinesOnly() throws {
        var returns = Self.rules.returns
        returns.categoryWindowDays = ["swimwear": 7]
        returns.channelWindowDays["web"] = 60
        let rules = BusinessRules(locations: Self.rules.locations, returns: returns)
        // SKU-A is swimwear in the catalog when the order is read; SKU-B has no category.
        let product: (String) -> CatalogProduct? = { sku in
            var product = PipelineFixtures.product(sku)
            product.category = sku == "SKU-A" ? "swimwear" : nil
            return product
        }
        var state: ReturnsState?
        for event in [placed.event, shipment().event, delivery("s-1")] {
            state = try ReturnsMachine.advance(state, orderId: orderId, on: event, rules: rules, connector: connector, now: F.now, product: product).state
        }
        let delivered = try #require(state)
        #expect(delivered.categories == ["1": "swimwear"])
        #expect(F.codes(ReturnsMachine.eligibility(of: request("r-1", [("1", "SKU-A", 1), ("2", "SKU-B", 1)], after: 8), state: delivered, rules: returns))
            == ["window_passed"], "the swimwear line's 7 days are over, the other line keeps the channel's 60")
        #expect(ReturnsMachine.eligibility(of: request("r-1", [("2", "SKU-B", 1)], after: 59), state: delivered, rules: returns) == [])
        #expect(returns.window(channel: "web", country: "US", category: "swimwear") == 7)
        #expect(returns.window(channel: "web", country: "US", category: "shoes") == 60)
    }

    // MARK: Authorization

    @Test func authorizedReturnGetsAnRMALabelAndIndexEntry() throws {
        let ask = request("r-1", [("1", "SKU-A", 1)])
        let (state, outputs) = try run([ask.event], from: try delivered())
        let record = try #require(state?.returns.first)
        #expect(record.rma.hasPrefix("RMA-") && record.rma.count == 12)
        #expect(record.status == .authorized)
        let expires = ask.requestedAt.addingTimeInterval(F.days(30))
        let label = label("r-1")
        #expect(outputs[0] == [
            ReturnAuthorized(
                orderId: orderId, returnId: "r-1", rma: record.rma, labelRef: label.labelRef, carrier: "oms-post", trackingNumber: label.trackingNumber,
                lines: ask.lines, expiresAt: expires
            ).event,
            ShipmentIndexEntry(
                carrier: "oms-post", trackingNumber: label.trackingNumber, shipmentId: "r-1", orderId: orderId, promisedDate: expires,
                shippedAt: ask.requestedAt, returnId: "r-1"
            ).event,
        ])
        // The same request again (a retry) changes nothing.
        let again = try run([ask.event], from: state)
        #expect(again.outputs == [[]])
        #expect(again.state == state)
    }

    // MARK: Receipt

    @Test func returnParcelDeliveryReceivesRestocksAndRefunds() throws {
        let (authorized, _) = try run([request("r-1", [("1", "SKU-A", 1)]).event], from: try delivered())
        let rma = try #require(authorized?.returns.first?.rma)
        let arrived = Self.deliveredAt.addingTimeInterval(F.days(6))
        let (state, outputs) = try run([delivery("r-1", trackingNumber: label("r-1").trackingNumber, at: arrived)], from: authorized)
        let lines = [ReceivedReturnLine(lineId: "1", sku: "SKU-A", quantity: 1, disposition: .restock, location: "WH-1")]
        try #require(outputs[0].count == 3)
        #expect(outputs[0][0] == ReturnReceived(orderId: orderId, returnId: "r-1", rma: rma, lines: lines, receivedAt: arrived).event)
        #expect(outputs[0][1] == RestockInventory(orderId: orderId, returnId: "r-1", sku: "SKU-A", location: "WH-1", quantity: 1).event, "back where it shipped from")
        let refund = try #require(refunds(outputs[0]).first)
        #expect(refund.channel == placed.channel && refund.authorizationReference == placed.payment.reference, "the payments connector routes by them")
        // Line 1 is worth 29.00 for 3 units: the first returned unit 9.66.
        #expect(refund.amount == F.money(966))
        #expect(refund.returnId == "r-1")
        #expect(refund.reason.code == "returned")
        #expect(refund.reason.message == "return \(rma): 1 × SKU-A")
        #expect(state?.returns.first?.status == .received)
        #expect(state?.refunded == [F.shipmentLine("1", "SKU-A", 1)])
    }

    @Test func receivingLocationRuleAndWriteOffReasonsApply() throws {
        var rules = Self.rules
        rules.returns.receivingLocation = "WH-RET"
        let start = try delivered(rules: rules)
        let (authorized, _) = try run(
            [request("r-1", [("1", "SKU-A", 1)]).event, request("r-2", [("2", "SKU-B", 1)], reason: "damaged").event], from: start, rules: rules)
        let (_, outputs) = try run([delivery("r-1"), delivery("r-2")], from: authorized, rules: rules)
        #expect(restocks(outputs[0]).map(\.location) == ["WH-RET"])
        #expect(restocks(outputs[1]) == [], "damaged units are written off")
        guard case .returnReceived(let received)? = outputs[1].first else {
            Issue.record("expected ReturnReceived, got \(outputs[1])")
            return
        }
        #expect(received.lines.map(\.disposition) == [.writeOff])
        #expect(refunds(outputs[1]).map(\.amount) == [F.money(1_001)], "a written-off unit is refunded all the same")
    }

    @Test func warehouseReceiptUsesItsOwnDispositions() throws {
        let (authorized, _) = try run([request("r-1", [("1", "SKU-A", 1), ("2", "SKU-B", 1)]).event], from: try delivered())
        let lines = [
            ReceivedReturnLine(lineId: "1", sku: "SKU-A", quantity: 1, disposition: .writeOff, location: "WH-2"),
            ReceivedReturnLine(lineId: "2", sku: "SKU-B", quantity: 1, disposition: .restock, location: "WH-2"),
        ]
        let receipt = ReceiveReturn(orderId: orderId, returnId: "r-1", lines: lines, receivedAt: F.now)
        let (_, outputs) = try run([receipt.event], from: authorized)
        guard case .returnReceived(let received)? = outputs[0].first else {
            Issue.record("expected ReturnReceived, got \(outputs[0])")
            return
        }
        #expect(received.lines == lines)
        #expect(restocks(outputs[0]) == [RestockInventory(orderId: orderId, returnId: "r-1", sku: "SKU-B", location: "WH-2", quantity: 1)])
        #expect(refunds(outputs[0]).map(\.amount) == [F.money(966 + 1_001)])
    }

    @Test func partialReturnsOfALineRefundItsTotalExactly() throws {
        // A 0.51 coupon makes the shares odd.
        let order = Self.order(coupon: 51)
        let amounts = OrderAmounts(lines: order.lines, totals: order.totals)
        var state = try delivered(order)
        var refunded: [Int64] = []
        for (returnId, lines) in [("r-1", [("1", "SKU-A", 1)]), ("r-2", [("1", "SKU-A", 2), ("2", "SKU-B", 1)])] {
            let (next, outputs) = try run([request(returnId, lines, for: order).event, delivery(returnId, for: order)], from: state, orderId: order.orderId)
            state = try #require(next)
            refunded += refunds(outputs[1]).map(\.amount.minorUnits)
        }
        #expect(refunded.count == 2)
        #expect(refunded.reduce(0, +) == order.totals.total.minorUnits - 500, "everything but shipping comes back")
        #expect(refunded[0] == amounts.value(lineId: "1", units: 1, after: 0))
        #expect(refunded[0] + refunded[1] - amounts.lineTotals["2", default: 0] == amounts.lineTotals["1"])
    }

    @Test func receivingTwiceDoesNothing() throws {
        let (authorized, _) = try run([request("r-1", [("1", "SKU-A", 1)]).event], from: try delivered())
        let (received, first) = try run([delivery("r-1")], from: authorized)
        #expect(first[0].count == 3)
        let receipt = ReceiveReturn(
            orderId: orderId, returnId: "r-1", lines: [ReceivedReturnLine(lineId: "1", sku: "SKU-A", quantity: 1, disposition: .restock, location: "WH-1")],
            receivedAt: F.now)
        let (after, again) = try run([delivery("r-1", at: F.now.addingTimeInterval(F.days(9))), receipt.event], from: received)
        #expect(again == [[], []])
        #expect(after == received)
    }

    @Test func receivingAnUnknownOrOverfullReturnIsRejected() throws {
        let (authorized, _) = try run([request("r-1", [("1", "SKU-A", 1)]).event], from: try delivered())
        let unknown = ReceiveReturn(orderId: orderId, returnId: "r-9", lines: [], receivedAt: F.now)
        #expect(throws: StageFailure.rejected("return r-9 of order \(orderId) was never authorized")) {
            try ReturnsMachine.advance(authorized, orderId: orderId, on: unknown.event, rules: Self.rules, connector: connector, now: F.now)
        }
        let tooMany = ReceiveReturn(
            orderId: orderId, returnId: "r-1", lines: [ReceivedReturnLine(lineId: "1", sku: "SKU-A", quantity: 2, disposition: .restock, location: "WH-1")],
            receivedAt: F.now)
        #expect(throws: StageFailure.self) {
            try ReturnsMachine.advance(authorized, orderId: orderId, on: tooMany.event, rules: Self.rules, connector: connector, now: F.now)
        }
    }

    @Test func unitsThatDidNotArriveMayBeAskedAgain() throws {
        let (authorized, _) = try run([request("r-1", [("1", "SKU-A", 2)]).event], from: try delivered())
        let oneOfTwo = ReceiveReturn(
            orderId: orderId, returnId: "r-1", lines: [ReceivedReturnLine(lineId: "1", sku: "SKU-A", quantity: 1, disposition: .restock, location: "WH-1")],
            receivedAt: F.now)
        let (received, _) = try run([oneOfTwo.event], from: authorized)
        let state = try #require(received)
        // 3 delivered, 1 returned: 2 may still be asked.
        #expect(ReturnsMachine.eligibility(of: request("r-2", [("1", "SKU-A", 2)]), state: state, rules: Self.rules.returns) == [])
        #expect(F.codes(ReturnsMachine.eligibility(of: request("r-2", [("1", "SKU-A", 3)]), state: state, rules: Self.rules.returns)) == ["already_returned"])
    }

    @Test func stageKeepsStatePerOrderAndRejectsUnknownReceipts() throws {
        var driver = StageDriver(stage: ReturnsStage(rules: Self.rules))
        let inputs: [Event] = [placed.event, shipment().event, delivery("s-1"), request("r-1", [("1", "SKU-A", 1)]).event]
        var last: StepResult?
        for (index, event) in inputs.enumerated() {
            last = driver.handle(F.envelope("r-\(index)", event), offset: Int64(index), now: F.now)
        }
        let result = try #require(last)
        #expect(result.outputs.map(\.topic) == [ReturnAuthorized.topic, ShipmentIndexEntry.topic])
        #expect(result.outputs[1].envelope.key == "oms-post/\(label("r-1").trackingNumber)")
        guard case .returnsState(let state)? = driver.value(orderId) else {
            Issue.record("no returns state")
            return
        }
        #expect(state.updatedAt == F.now)
        #expect(state.returns.count == 1)

        let tracking = TrackingUpdated(
            orderId: orderId, shipmentId: "s-1", carrier: "oms-post", trackingNumber: "OMSP1", status: .inTransit, rawStatus: "x", occurredAt: F.now)
        let ignored = driver.handle(F.envelope("t", tracking.event), offset: 10, now: F.now)
        #expect(ignored.kind == .processed && ignored.outputs.isEmpty && ignored.stateRecords.isEmpty)

        let unknown = driver.handle(F.envelope("u", ReceiveReturn(orderId: orderId, returnId: "r-9", lines: [], receivedAt: F.now).event), offset: 11, now: F.now)
        guard case .rejected? = F.failure(unknown) else {
            Issue.record("an unknown return is dead-lettered: \(unknown.kind)")
            return
        }
    }
}

@Suite struct OrderViewTests {
    /// Two lines: 2 × SKU-A and 1 × SKU-B.
    let placed = F.placed(F.order(lines: [F.line("1", "SKU-A", quantity: 2), F.line("2", "SKU-B", quantity: 1)]))
    var orderId: String { placed.orderId }
    let rules = NotificationRules()
    var amount: Money { placed.totals.total }
    let reason = Reason(code: "changed_mind", message: "no longer needed")

    var approved: Event { PaymentApproved(orderId: orderId, amount: amount, reasons: [], decidedAt: F.now).event }
    var held: Event { PaymentHeld(orderId: orderId, amount: amount, reasons: [], decidedAt: F.now).event }
    var released: Event { PaymentReleased(orderId: orderId, amount: amount, reasons: [], releasedBy: "ops", decidedAt: F.now).event }
    var allocated: Event {
        OrderAllocated(orderId: orderId, allocations: [F.allocation("1", "SKU-A", "WH-1", 2), F.allocation("2", "SKU-B", "WH-2", 1)], decidedAt: F.now).event
    }
    var cancelled: Event { OrderCancelled(orderId: orderId, requestedBy: "customer", reason: reason, cancelledAt: F.now).event }

    func shipped(_ id: String, _ location: String, _ lines: [ShipmentLine], number: String) -> Event {
        ShipmentCreated(
            shipmentId: id, orderId: orderId, location: location, carrier: "oms-post", service: "ground", trackingNumber: number, labelRef: "label://\(number)",
            lines: lines, promisedDate: F.now.addingTimeInterval(F.days(7)), estimatedDelivery: F.now.addingTimeInterval(F.days(5)), atRisk: false, createdAt: F.now
        ).event
    }
    var shipped1: Event { shipped("s-1", "WH-1", [F.shipmentLine("1", "SKU-A", 2)], number: "T1") }
    var shipped2: Event { shipped("s-2", "WH-2", [F.shipmentLine("2", "SKU-B", 1)], number: "T2") }

    func tracking(_ shipment: String, _ status: TrackingStatus, number: String = "T1") -> Event {
        TrackingUpdated(orderId: orderId, shipmentId: shipment, carrier: "oms-post", trackingNumber: number, status: status, rawStatus: status.rawValue, occurredAt: F.now).event
    }
    func delivered(_ shipment: String, number: String = "T1", at: Date = F.now.addingTimeInterval(F.days(4))) -> Event {
        ShipmentDelivered(orderId: orderId, shipmentId: shipment, carrier: "oms-post", trackingNumber: number, rawStatus: "delivered", deliveredAt: at).event
    }
    func delayed(_ shipment: String) -> Event {
        ShipmentDelayed(
            orderId: orderId, shipmentId: shipment, carrier: "oms-post", trackingNumber: "T1", status: .inTransit, rawStatus: "in_transit",
            promisedDate: F.now.addingTimeInterval(F.days(7)), estimatedDelivery: F.now.addingTimeInterval(F.days(9)), detectedAt: F.now
        ).event
    }
    func returnAuthorized(_ id: String, _ lines: [ShipmentLine]) -> Event {
        ReturnAuthorized(
            orderId: orderId, returnId: id, rma: "RMA-\(id)", labelRef: "label://\(id)", carrier: "oms-post", trackingNumber: "R-\(id)",
            lines: lines.map { ReturnLine(lineId: $0.lineId, sku: $0.sku, quantity: $0.quantity, reason: "too_small") }, expiresAt: F.now.addingTimeInterval(F.days(30))
        ).event
    }
    func returnReceived(_ id: String, _ lines: [ShipmentLine]) -> Event {
        ReturnReceived(
            orderId: orderId, returnId: id, rma: "RMA-\(id)",
            lines: lines.map { ReceivedReturnLine(lineId: $0.lineId, sku: $0.sku, quantity: $0.quantity, disposition: .restock, location: "WH-1") }, receivedAt: F.now
        ).event
    }
    func refund(_ returnId: String, _ minorUnits: Int64) -> Event {
        RefundPayment(orderId: orderId, returnId: returnId, amount: F.money(minorUnits), reason: Reason(code: "returned", message: "r"), requestedAt: F.now).event
    }

    /// Folds `events` in order, one minute apart, each under its own envelope id
    /// (`id` prefix plus index) unless the pair gives one.
    func fold(_ events: [Event], from start: OrderView? = nil, ids: [String]? = nil) -> (view: OrderView?, notes: [Contracts.Notification], statuses: [OrderStatus]) {
        var view = start
        var notes: [Contracts.Notification] = []
        var statuses: [OrderStatus] = []
        for (index, event) in events.enumerated() {
            let at = F.now.addingTimeInterval(TimeInterval(index * 60))
            let id = ids?[index] ?? "e-\(index)"
            let step = OrderViewFolder.fold(view, orderId: orderId, envelope: F.envelope(id, event, at: at), rules: rules, now: at)
            if let next = step.view { view = next }
            notes += step.notifications
            statuses.append(view?.status ?? .placed)
        }
        return (view, notes, statuses)
    }

    @Test func statusFollowsTheOrderThroughFulfilmentAndReturns() throws {
        let a1 = F.shipmentLine("1", "SKU-A", 1)
        let events: [Event] = [
            placed.event, held, released, allocated, shipped1, shipped2, delivered("s-1"), delivered("s-2", number: "T2"),
            returnAuthorized("r-1", [a1]), returnReceived("r-1", [a1]), refund("r-1", 1_000),
            returnAuthorized("r-2", [a1, F.shipmentLine("2", "SKU-B", 1)]), returnReceived("r-2", [a1, F.shipmentLine("2", "SKU-B", 1)]),
        ]
        let result = fold(events)
        #expect(result.statuses == [
            .placed, .held, .approved, .allocated, .partiallyShipped, .shipped, .shipped, .delivered,
            .returnRequested, .partiallyReturned, .partiallyReturned, .partiallyReturned, .returned,
        ])
        let view = try #require(result.view)
        #expect(view.lineProgress.sorted { $0.lineId < $1.lineId } == [
            LineProgress(lineId: "1", sku: "SKU-A", ordered: 2, allocated: 2, shipped: 2, delivered: 2, returned: 2),
            LineProgress(lineId: "2", sku: "SKU-B", ordered: 1, allocated: 1, shipped: 1, delivered: 1, returned: 1),
        ])
        #expect(view.history.count == events.count)
        #expect(view.statusSince == F.now.addingTimeInterval(12 * 60), "since the last status change")
        #expect(view.deliveredAt == F.now.addingTimeInterval(F.days(4)))
        #expect(view.payments.map(\.kind) == [.authorization, .refund])
        #expect(view.returns.map(\.status) == [.received, .received])
        #expect(view.returns.first?.refund == F.money(1_000))
        #expect(result.notes.map(\.kind) == [.confirmed, .shipped, .shipped, .delivered, .delivered, .refunded])
        #expect(result.notes.allSatisfy { $0.recipientEmail == "ada@example.com" && $0.data["externalOrderId"] == "W-1001" })
        #expect(result.notes[1].data["trackingUrl"] == "https://track.orderfleet.example/oms-post/T1")
        #expect(result.notes[2].data["trackingNumber"] == "T2")
    }

    @Test func cancelledRejectedAndAllocationOutcomes() {
        let cancel = fold([placed.event, approved, cancelled, VoidPayment(orderId: orderId, authorizationReference: "psp-1", reason: reason, requestedAt: F.now).event])
        #expect(cancel.statuses == [.placed, .approved, .cancelled, .cancelled])
        #expect(cancel.notes.map(\.kind) == [.confirmed, .cancelled])
        #expect(cancel.view?.payments.map(\.kind) == [.authorization, .void])

        let rejected = OrderRejected(orderId: orderId, channel: "web", externalOrderId: "W-1001", reasons: [], rejectedAt: F.now).event
        let reject = fold([rejected])
        #expect(reject.view?.status == .rejected)
        #expect(reject.view?.externalOrderId == "W-1001")

        let backordered = OrderBackordered(orderId: orderId, lines: [], policy: .backorder, reasons: [], decidedAt: F.now).event
        #expect(fold([placed.event, approved, backordered]).view?.status == .backordered)
        let partial = OrderPartiallyAllocated(
            orderId: orderId, allocations: [F.allocation("1", "SKU-A", "WH-1", 2)], backordered: [BackorderedLine(lineId: "2", sku: "SKU-B", quantity: 1)],
            policy: .backorder, decidedAt: F.now
        ).event
        #expect(fold([placed.event, approved, partial]).view?.status == .partiallyAllocated)
        let declined = PaymentDeclined(orderId: orderId, amount: amount, reasons: [], decidedAt: F.now).event
        #expect(fold([placed.event, declined]).view?.status == .declined)
        // A rejected cancel leaves the order as it was.
        let refused = CancelRejected(orderId: orderId, requestedBy: "customer", reasons: [], rejectedAt: F.now).event
        #expect(fold([placed.event, approved, allocated, shipped1, refused]).view?.status == .partiallyShipped)
    }

    @Test func eachNotificationIsSentOnceWhateverRepeats() {
        // Every event twice, the second time under another envelope id (a re-publish).
        let events: [Event] = [
            placed.event, approved, released, shipped1, shipped1, tracking("s-1", .outForDelivery), tracking("s-1", .outForDelivery),
            delayed("s-1"), delayed("s-1"), delivered("s-1"), delivered("s-1"), refund("r-1", 500), refund("r-1", 500), cancelled, cancelled,
        ]
        let result = fold(events)
        #expect(result.notes.map(\.kind) == [.confirmed, .shipped, .outForDelivery, .delayed, .delivered, .refunded, .cancelled])
        #expect(result.view?.notificationsSent == ["confirmed", "shipped/s-1", "out_for_delivery/s-1", "delayed/s-1", "delivered/s-1", "refunded/r-1", "cancelled"])
        #expect(result.view?.lineProgress.first { $0.lineId == "1" }?.shipped == 2, "a repeated shipment is counted once")
        #expect(result.view?.lineProgress.first { $0.lineId == "1" }?.delivered == 2, "a repeated delivery is counted once")
    }

    @Test func paymentOutcomesShowWhatTheProviderDidAndStatusIsUnchanged() throws {
        let capture = CapturePayment(orderId: orderId, shipmentId: "s-1", amount: F.money(4_400), requestedAt: F.now)
        let captured = PaymentCaptured(
            orderId: orderId, commandId: "cap-1", shipmentId: "s-1", amount: F.money(4_400), provider: "stripe", providerReference: "ch_1", capturedAt: F.now)
        let failed = PaymentRefundFailed(
            orderId: orderId, commandId: "ref-1", returnId: "r-1", amount: F.money(1_000), provider: "stripe", failure: .declined,
            message: "Your card was declined.", failedAt: F.now)
        let result = fold([placed.event, approved, allocated, shipped1, capture.event, captured.event, failed.event])
        let view = try #require(result.view)
        #expect(view.payments.map(\.kind) == [.authorization, .capture, .captured, .refundFailed])
        #expect(view.payments[2].reference == "ch_1" && view.payments[2].amount == F.money(4_400))
        #expect(view.payments[3].note == "declined: Your card was declined.")
        #expect(result.statuses.suffix(3).allSatisfy { $0 == result.statuses[3] }, "money movements do not change the order's status")
        let again = OrderViewFolder.fold(view, orderId: orderId, envelope: F.envelope("e-5", captured.event, at: F.now), rules: rules, now: F.now)
        #expect(again.view == nil, "an outcome written twice (a replayed settlement) is folded once")
    }

    @Test func aFailedCaptureHoldsTheOrderForAnOperatorUntilItsShipmentIsCaptured() throws {
        let expired = PaymentCaptureFailed(
            orderId: orderId, commandId: "cap-1", shipmentId: "s-1", amount: F.money(4_400), provider: "stripe", failure: .authorizationExpired,
            message: "payment_intent_unexpected_state", failedAt: F.now)
        let held = try #require(fold([placed.event, approved, allocated, shipped1, expired.event]).view)
        #expect(held.paymentHold?.code == "authorization_expired")
        #expect(held.paymentHold?.message.contains("POST /v1/ops/payments/cap-1/reauthorize") == true)
        let other = PaymentCaptured(
            orderId: orderId, commandId: "cap-9", shipmentId: "s-2", amount: F.money(100), provider: "stripe", capturedAt: F.now)
        let stillHeld = try #require(fold([placed.event, approved, allocated, shipped1, expired.event, other.event]).view)
        #expect(stillHeld.paymentHold == held.paymentHold, "another shipment's capture does not lift it")
        let reauthorized = PaymentCaptured(
            orderId: orderId, commandId: "cap-2", shipmentId: "s-1", amount: F.money(4_400), provider: "stripe", providerReference: "pi_new",
            capturedAt: F.now, reauthorization: "pi_new")
        let lifted = try #require(fold([placed.event, approved, allocated, shipped1, expired.event, reauthorized.event]).view)
        #expect(lifted.paymentHold == nil)
        let declined = PaymentCaptureFailed(
            orderId: orderId, commandId: "cap-3", shipmentId: "s-1", amount: F.money(4_400), provider: "stripe", failure: .declined,
            message: "Your card was declined.", failedAt: F.now)
        let retry = try #require(fold([placed.event, approved, allocated, shipped1, declined.event]).view)
        #expect(retry.paymentHold?.code == "declined" && retry.paymentHold?.message.contains("/retry") == true)
    }

    @Test func sameEnvelopeFoldedTwiceChangesNothing() throws {
        let first = fold([placed.event, approved])
        let view = try #require(first.view)
        let again = OrderViewFolder.fold(view, orderId: orderId, envelope: F.envelope("e-1", approved, at: F.now), rules: rules, now: F.now.addingTimeInterval(999))
        #expect(again.view == nil)
        #expect(again.notifications == [])
    }

    @Test func anyOrderOfEventsGivesTheSameView() throws {
        let events = [placed.event, approved, allocated, shipped1]
        let expected = try #require(fold(events).view)
        #expect(expected.status == .partiallyShipped)
        // Every permutation of the four inputs.
        func permutations(_ items: [Int]) -> [[Int]] {
            guard items.count > 1 else { return [items] }
            var all: [[Int]] = []
            for (index, first) in items.enumerated() {
                var rest = items
                rest.remove(at: index)
                for tail in permutations(rest) { all.append([first] + tail) }
            }
            return all
        }
        let orders = permutations([0, 1, 2, 3])
        #expect(orders.count == 24)
        for order in orders {
            let view = try #require(fold(order.map { events[$0] }, ids: order.map { "e-\($0)" }).view)
            #expect(view.status == .partiallyShipped, "order \(order)")
            #expect(view.lineProgress.sorted { $0.lineId < $1.lineId } == expected.lineProgress.sorted { $0.lineId < $1.lineId }, "order \(order)")
            #expect(view.externalOrderId == "W-1001")
            // Found by the chain simulation: an order read after its shipment lost the promise.
            #expect(view.promisedDeliveryDate == expected.promisedDeliveryDate, "order \(order)")
        }
        // Allocation read before the order: allocated either way.
        #expect(fold([allocated, placed.event, approved]).view?.status == .allocated)
    }

    /// oms.shipments.tracking can be read ahead of oms.shipments.created (a backlog after
    /// a restart): the timeline keeps the early events and the shipment applies them.
    @Test func trackingReadBeforeItsShipmentIsAppliedWhenTheShipmentArrives() throws {
        let early = [tracking("s-1", .outForDelivery), tracking("s-1", .delivered), delivered("s-1")]
        let result = fold([placed.event, approved, allocated] + early + [shipped1, shipped2, tracking("s-2", .delivered, number: "T2"), delivered("s-2", number: "T2")])
        let view = try #require(result.view)
        #expect(view.shipments.first { $0.shipmentId == "s-1" }?.status == .delivered)
        #expect(view.lineProgress.first { $0.lineId == "1" }?.delivered == 2, "counted once")
        #expect(view.status == .delivered)
        let kinds = result.notes.map(\.kind)
        #expect(kinds.filter { $0 == .delivered }.count == 2, "one per shipment: \(kinds)")
        #expect(kinds.filter { $0 == .outForDelivery }.count == 1)
        #expect(view.promisedDeliveryDate != nil, "shipping's promise is kept when the channel gave none")
    }

    @Test func deliveryReportedByTrackingBeforeShipmentDeliveredStillCounts() throws {
        // TrackingStage emits TrackingUpdated(status: delivered) and then ShipmentDelivered
        // for the same parcel, in that order, on the same topic and key.
        let single = F.placed(F.order(lines: [F.line("1", "SKU-A", quantity: 2)]))
        let shipment = ShipmentCreated(
            shipmentId: "s-1", orderId: single.orderId, location: "WH-1", carrier: "oms-post", service: "ground", trackingNumber: "T1", labelRef: "l",
            lines: [F.shipmentLine("1", "SKU-A", 2)], promisedDate: F.now, estimatedDelivery: F.now, atRisk: false, createdAt: F.now)
        let allocation = OrderAllocated(orderId: single.orderId, allocations: [F.allocation("1", "SKU-A", "WH-1", 2)], decidedAt: F.now)
        let update = TrackingUpdated(
            orderId: single.orderId, shipmentId: "s-1", carrier: "oms-post", trackingNumber: "T1", status: .delivered, rawStatus: "delivered", occurredAt: F.now)
        let delivery = ShipmentDelivered(orderId: single.orderId, shipmentId: "s-1", carrier: "oms-post", trackingNumber: "T1", rawStatus: "delivered", deliveredAt: F.now)
        var view: OrderView?
        for (index, event) in [single.event, allocation.event, shipment.event, update.event, delivery.event].enumerated() {
            let step = OrderViewFolder.fold(view, orderId: single.orderId, envelope: F.envelope("d-\(index)", event, at: F.now), rules: rules, now: F.now)
            if let next = step.view { view = next }
        }
        let final = try #require(view)
        #expect(final.shipments.first?.status == .delivered)
        #expect(final.lineProgress.first?.delivered == 2, "counted once, by whichever event came first")
        #expect(final.status == .delivered)
    }

    // MARK: Review invitation (OrderViewStage.tick)

    @Test func reviewInvitationIsSentOnceAfterTheDelay() throws {
        let stage = OrderViewStage(rules: NotificationRules(reviewInvitationDelaySeconds: 3_600))
        var driver = StageDriver(stage: stage)
        let deliveredAt = F.now.addingTimeInterval(F.days(4))
        let single = [F.allocation("1", "SKU-A", "WH-1", 2), F.allocation("2", "SKU-B", "WH-1", 1)]
        let allInOne = shipped("s-1", "WH-1", [F.shipmentLine("1", "SKU-A", 2), F.shipmentLine("2", "SKU-B", 1)], number: "T1")
        let events = [placed.event, approved, OrderAllocated(orderId: orderId, allocations: single, decidedAt: F.now).event, allInOne, delivered("s-1", at: deliveredAt)]
        for (index, event) in events.enumerated() {
            let result = driver.handle(F.envelope("v-\(index)", event, at: F.now), offset: Int64(index), now: F.now)
            #expect(result.kind == .processed)
        }
        guard case .orderView(let view)? = driver.value(orderId) else {
            Issue.record("no view")
            return
        }
        try #require(view.status == .delivered)
        #expect(driver.tick(now: deliveredAt.addingTimeInterval(3_599)).isEmpty, "not yet")

        let due = deliveredAt.addingTimeInterval(3_600)
        let firings = driver.tick(now: due)
        try #require(firings.count == 1)
        #expect(firings[0].outputs.map(\.topic) == [Contracts.Notification.topic])
        #expect(firings[0].outputs.first?.envelope.event == Contracts.Notification(
            orderId: orderId, kind: .reviewInvitation, recipientEmail: "ada@example.com", data: ["externalOrderId": "W-1001", "channel": "web"], createdAt: due
        ).event)
        #expect(firings[0].stateRecords.map(\.key) == [orderId])
        #expect(driver.tick(now: due.addingTimeInterval(86_400)).isEmpty, "once")
    }

    @Test func noReviewInvitationWhenSwitchedOffOrNotDelivered() {
        var off = StageDriver(stage: OrderViewStage(rules: NotificationRules(reviewInvitationDelaySeconds: nil)))
        var shippedOnly = StageDriver(stage: OrderViewStage(rules: NotificationRules(reviewInvitationDelaySeconds: 0)))
        for (index, event) in [placed.event, allocated, shipped1].enumerated() {
            _ = off.handle(F.envelope("o-\(index)", event, at: F.now), offset: Int64(index), now: F.now)
            _ = shippedOnly.handle(F.envelope("o-\(index)", event, at: F.now), offset: Int64(index), now: F.now)
        }
        #expect(off.tick(now: F.now.addingTimeInterval(F.days(365))).isEmpty)
        #expect(shippedOnly.tick(now: F.now.addingTimeInterval(F.days(365))).isEmpty)
        #expect(OrderViewStage(rules: rules).tickInterval == .seconds(5))
    }
}

@Suite struct SLAWatchTests {
    static let since = F.now
    let rules = SLARules()

    static func view(_ status: OrderStatus, since: Date = since, promise: Date? = nil, orderId: String = "o-1") -> OrderView {
        OrderView(
            orderId: orderId, channel: "web", externalOrderId: "W-1", status: status, currency: .usd, lines: [], payments: [], shipments: [], tracking: [],
            returns: [], history: [], lineProgress: [], promisedDeliveryDate: promise, statusSince: since, notificationsSent: [], updatedAt: since)
    }

    @Test func followingAViewStartsTheClockWithoutOutput() throws {
        let (state, outputs) = SLAWatch.follow(nil, view: Self.view(.placed), now: F.now)
        #expect(outputs == [])
        #expect(state == SLAWatchState(orderId: "o-1", status: .placed, since: Self.since, alerted: []))
    }

    @Test func alertOnceAfterMaxSecondsInAStatus() throws {
        let watched = try #require(SLAWatch.follow(nil, view: Self.view(.placed), now: F.now).state)
        #expect(SLAWatch.due(watched, rules: rules.rules, now: Self.since.addingTimeInterval(299)).alerts == [], "before the limit")
        let at = Self.since.addingTimeInterval(300)
        let (alerts, next) = SLAWatch.due(watched, rules: rules.rules, now: at)
        #expect(alerts == [SLAAlert(orderId: "o-1", rule: "placed_not_checked", status: .placed, since: Self.since, thresholdSeconds: 300, severity: .warning, detectedAt: at)])
        #expect(next.alerted == ["placed_not_checked"])
        #expect(SLAWatch.due(next, rules: rules.rules, now: at.addingTimeInterval(3_600)).alerts == [], "once per breach")
    }

    @Test func rulesOfOtherStatusesDoNotApply() throws {
        let watched = try #require(SLAWatch.follow(nil, view: Self.view(.shipped), now: F.now).state)
        #expect(SLAWatch.due(watched, rules: rules.rules, now: Self.since.addingTimeInterval(F.days(100))).alerts == [])
    }

    @Test func shipByRuleCountsBackFromThePromise() throws {
        let promise = Self.since.addingTimeInterval(F.days(3))
        let watched = try #require(SLAWatch.follow(nil, view: Self.view(.allocated, promise: promise), now: F.now).state)
        #expect(watched.promisedDeliveryDate == promise)
        // allocated_not_shipped: shipped a day before the promise, so due two days in.
        #expect(SLAWatch.due(watched, rules: rules.rules, now: Self.since.addingTimeInterval(F.days(2) - 1)).alerts == [])
        let alerts = SLAWatch.due(watched, rules: rules.rules, now: Self.since.addingTimeInterval(F.days(2))).alerts
        #expect(alerts.map(\.rule) == ["allocated_not_shipped"])
        #expect(alerts.first?.thresholdSeconds == 2 * 86_400)

        let noPromise = try #require(SLAWatch.follow(nil, view: Self.view(.allocated), now: F.now).state)
        #expect(SLAWatch.due(noPromise, rules: rules.rules, now: Self.since.addingTimeInterval(F.days(100))).alerts == [], "no promise, no ship-by deadline")
        #expect(SLARule(name: "x", status: .allocated, shipBySecondsBeforePromise: 60).deadline(since: Self.since, promise: nil) == nil)
    }

    @Test func leavingAnAlertedStatusReportsTheRecovery() throws {
        let watched = try #require(SLAWatch.follow(nil, view: Self.view(.placed), now: F.now).state)
        let alerted = SLAWatch.due(watched, rules: rules.rules, now: Self.since.addingTimeInterval(600)).state
        let left = Self.since.addingTimeInterval(700)
        let (state, outputs) = SLAWatch.follow(alerted, view: Self.view(.approved, since: left), now: left)
        #expect(outputs == [SLARecovered(orderId: "o-1", rule: "placed_not_checked", status: .placed, since: Self.since, recoveredAt: left).event])
        #expect(state == SLAWatchState(orderId: "o-1", status: .approved, since: left, alerted: []))

        // Without an alert there is nothing to recover from.
        #expect(SLAWatch.follow(watched, view: Self.view(.approved, since: left), now: left).outputs == [])
    }

    @Test func theSameStatusAgainOnlyUpdatesThePromise() throws {
        let watched = try #require(SLAWatch.follow(nil, view: Self.view(.allocated), now: F.now).state)
        let promise = Self.since.addingTimeInterval(F.days(4))
        let (state, outputs) = SLAWatch.follow(watched, view: Self.view(.allocated, promise: promise), now: F.now)
        #expect(outputs == [])
        #expect(state?.promisedDeliveryDate == promise)
        #expect(state?.since == Self.since)
    }

    @Test(arguments: [OrderStatus.rejected, .declined, .cancelled, .delivered, .returned, .partiallyReturned])
    func finalStatusesForgetTheOrder(status: OrderStatus) throws {
        let watched = try #require(SLAWatch.follow(nil, view: Self.view(.held), now: F.now).state)
        let alerted = SLAWatch.due(watched, rules: rules.rules, now: Self.since.addingTimeInterval(F.days(1))).state
        let (state, outputs) = SLAWatch.follow(alerted, view: Self.view(status, since: Self.since.addingTimeInterval(F.days(2))), now: F.now)
        #expect(state == nil)
        #expect(outputs.count == 1, "the held breach still recovers")
        #expect(SLAWatch.follow(nil, view: Self.view(status), now: F.now).state == nil)
    }

    @Test func stageAlertsOnceThroughTicksAndDeletesFinishedOrders() throws {
        var driver = StageDriver(stage: SLAWatchStage(rules: rules))
        let first = driver.handle(F.envelope("v-1", Self.view(.placed).event), now: F.now)
        #expect(first.stateRecords.map(\.key) == ["o-1"])
        #expect(driver.tick(now: Self.since.addingTimeInterval(299)).isEmpty)
        let firings = driver.tick(now: Self.since.addingTimeInterval(300))
        try #require(firings.count == 1)
        #expect(firings[0].outputs.map(\.topic) == [SLAAlert.topic])
        guard case .slaAlert(let alert)? = firings[0].outputs.first?.envelope.event else {
            Issue.record("expected an SLA alert")
            return
        }
        #expect(alert.rule == "placed_not_checked")
        #expect(driver.tick(now: Self.since.addingTimeInterval(900)).isEmpty, "alerted once")

        let done = driver.handle(F.envelope("v-2", Self.view(.delivered, since: Self.since.addingTimeInterval(1_000)).event), offset: 1, now: F.now)
        #expect(done.outputs.map(\.topic) == [SLARecovered.topic])
        #expect(done.stateRecords.count == 1)
        #expect(done.stateRecords.first?.envelope == nil, "deleted")
        #expect(driver.value("o-1") == nil)

        let wrong = driver.handle(F.envelope("x", F.placed().event), offset: 2, now: F.now)
        guard case .rejected? = F.failure(wrong) else {
            Issue.record("sla-watch reads views only: \(wrong.kind)")
            return
        }
    }
}

/// The catalog CSV's columns, the category among them.
@Suite struct CatalogImportTests {
    @Test func aCatalogCSVRowBecomesAProductWithItsCategory() throws {
        let csv = """
            sku,title,weight_grams,length_mm,width_mm,height_mm,launch_date,blocked_countries,hazmat,prices,sellable,ship_from_store,drop_ship_supplier,category
            SWIM-1,Swim shorts,200,300,200,20,,CU IR,no,US=USD 29.00,yes,,,swimwear
            LAMP-01,Desk lamp,1200,400,200,200,,,false,,,,SUP-ACME,
            """
        let products = try DataImport.products(Data(csv.utf8), json: false)
        #expect(products.map(\.sku) == ["SWIM-1", "LAMP-01"])
        #expect(products[0].category == "swimwear" && products[0].blockedCountries.map(\.code) == ["CU", "IR"])
        #expect(products[1].category == nil && products[1].dropShipSupplier == "SUP-ACME")
        #expect(throws: DataImport.Failure.self) { try DataImport.products(Data("sku,title\nX,\"unterminated\n".utf8), json: false) }
    }
}

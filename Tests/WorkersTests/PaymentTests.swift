import Contracts
import Foundation
import Testing
import Workers

private typealias F = PipelineFixtures

/// Payment screening and decisions: `PaymentStage.screen` (authorization status,
/// currency and amount decline; total above threshold, billing/shipping country
/// mismatch and risky postcodes hold), `PaymentStage.customerKey`,
/// `FraudVelocityStage.decide` (precedence declined > held > approved with reasons
/// carried; the velocity window counted by the orders' own times, each order once, old
/// entries pruned), both stages through `StageDriver`, and the holds `PaymentStage`
/// keeps for operators: release of held orders, and accepted cancels (`OrderCancelled`,
/// decided by shipping) ending a held order's review declined, without a void (shipping
/// voids); the `CancelOrder` command itself is ignored.
@Suite struct PaymentTests {
    let rules = PaymentRules(
        holdAboveMinorUnits: ["USD": 100_000], velocity: nil, holdOnCountryMismatch: true,
        riskyPostcodes: [RiskyPostcode(country: "US", prefix: "96799"), RiskyPostcode(country: "GB", prefix: "bt 99")])

    func screen(_ order: CanonicalOrder, rules: PaymentRules? = nil) -> PaymentScreening {
        PaymentStage.screen(F.placed(order), rules: rules ?? self.rules)
    }

    func authorization(_ status: PaymentAuthorizationStatus, _ amount: Int64, _ currency: CurrencyCode = .usd) -> PaymentAuthorization {
        PaymentAuthorization(status: status, amount: F.money(amount, currency), reference: "psp-1")
    }

    // MARK: screen

    @Test func cleanOrderPassesScreeningWithItsFacts() {
        let order = F.order()
        let screening = screen(order)
        #expect(screening.declineReasons == [])
        #expect(screening.holdReasons == [])
        #expect(screening.orderId == DeterministicID.orderID(channel: "web", externalOrderID: "W-1001"))
        #expect(screening.customerKey == "email:ada@example.com")
        #expect(screening.amount == F.money(2_500))
        #expect(screening.placedAt == F.placedAt)
        #expect(screening.event.payload.partitionKey == "email:ada@example.com", "screenings are keyed by customer")
    }

    @Test(arguments: [PaymentAuthorizationStatus.authorized, .captured, .partiallyCaptured])
    func usableAuthorizationsAreAccepted(status: PaymentAuthorizationStatus) {
        #expect(screen(F.order(payment: authorization(status, 2_500))).declineReasons == [])
        #expect(screen(F.order(payment: authorization(status, 9_999))).declineReasons == [], "more than the total is fine")
    }

    @Test func pendingOrVoidedAuthorizationDeclines() {
        #expect(F.codes(screen(F.order(payment: authorization(.pending, 2_500))).declineReasons) == ["authorization_missing"])
        #expect(F.codes(screen(F.order(payment: authorization(.voided, 2_500))).declineReasons) == ["authorization_voided"])
        // A pending authorization for too little is declined once, for being pending.
        #expect(F.codes(screen(F.order(payment: authorization(.pending, 1))).declineReasons) == ["authorization_missing"])
    }

    @Test func authorizationInAnotherCurrencyDeclines() throws {
        let screening = screen(F.order(payment: authorization(.authorized, 2_500, .eur)))
        #expect(F.codes(screening.declineReasons) == ["authorization_currency"])
        let message = try #require(screening.declineReasons.first).message
        #expect(message.contains("EUR"))
        #expect(message.contains("USD"))
    }

    @Test func authorizationBelowTheTotalDeclines() {
        #expect(F.codes(screen(F.order(payment: authorization(.authorized, 2_499))).declineReasons) == ["authorization_insufficient"])
        #expect(F.codes(screen(F.order(payment: authorization(.captured, 0))).declineReasons) == ["authorization_insufficient"])
    }

    @Test func totalAboveTheThresholdHolds() throws {
        // The limit is 1,000.00 USD: exactly the limit passes, one cent more holds.
        #expect(screen(F.order(lines: [F.line("1", "SKU-A", price: 99_500)])).holdReasons == [])
        let above = screen(F.order(lines: [F.line("1", "SKU-A", price: 99_501)]))
        #expect(F.codes(above.holdReasons) == ["amount_above_threshold"])
        #expect(try #require(above.holdReasons.first).message.contains("1000.00 USD"))
        #expect(above.declineReasons == [])

        let eur = F.currency("EUR")
        let big = F.order(lines: [F.line("1", "SKU-A", price: 10_000_000, currency: eur)], currency: eur)
        #expect(screen(big).holdReasons == [], "no threshold for EUR")
    }

    @Test func billingCountryOtherThanShippingHoldsOnlyWhenTheRuleIsOn() {
        let canadian = F.address(country: "CA", postalCode: "K1A 0B1", region: "ON", city: "Ottawa")
        let order = F.order(billingAddress: canadian)
        #expect(F.codes(screen(order).holdReasons) == ["country_mismatch"])

        var off = rules
        off.holdOnCountryMismatch = false
        #expect(screen(order, rules: off).holdReasons == [])
        #expect(screen(F.order(billingAddress: F.address(postalCode: "10001"))).holdReasons == [], "same country")
        #expect(screen(F.order(billingAddress: nil)).holdReasons == [], "no billing address")
    }

    @Test(arguments: ["96799", "96799-0001", " 96 799 ", "9679 9"])
    func riskyUSPostcodeHolds(postal: String) {
        let order = F.order(shippingAddress: F.address(postalCode: postal, region: "AS"))
        #expect(F.codes(screen(order).holdReasons) == ["risky_postcode"])
    }

    @Test func riskyPrefixIsComparedWithoutCaseOrSpaces() {
        let belfast = { (postal: String) in F.address(country: "GB", postalCode: postal, region: nil, city: "Belfast") }
        #expect(F.codes(screen(F.order(shippingAddress: belfast("BT99 1AA"))).holdReasons) == ["risky_postcode"])
        #expect(F.codes(screen(F.order(shippingAddress: belfast("bt991aa"))).holdReasons) == ["risky_postcode"])
        #expect(screen(F.order(shippingAddress: belfast("BT9 1AA"))).holdReasons == [], "BT9 is not BT99")
    }

    @Test func riskyPrefixOnlyAppliesInItsCountry() {
        #expect(screen(F.order(shippingAddress: F.address(postalCode: "96800"))).holdReasons == [])
        let german = F.address(country: "DE", postalCode: "96799", region: nil, city: "Coburg")
        #expect(screen(F.order(shippingAddress: german)).holdReasons == [])
        let noPostal = F.address(country: "IE", postalCode: nil, region: nil, city: "Dublin")
        #expect(screen(F.order(shippingAddress: noPostal), rules: PaymentRules(riskyPostcodes: [RiskyPostcode(country: "IE", prefix: "D")])).holdReasons == [])
    }

    @Test func declineAndHoldReasonsAreBothCollected() {
        let order = F.order(
            lines: [F.line("1", "SKU-A", price: 200_000)], shippingAddress: F.address(postalCode: "96799"),
            billingAddress: F.address(country: "CA", postalCode: "K1A 0B1", region: "ON"), payment: authorization(.voided, 200_500))
        let screening = screen(order)
        #expect(F.codes(screening.declineReasons) == ["authorization_voided"])
        #expect(F.codes(screening.holdReasons) == ["amount_above_threshold", "country_mismatch", "risky_postcode"])
    }

    // MARK: customerKey

    @Test func customerKeyIsTheNormalizedEmailElseTheChannelIdElseTheOrder() {
        #expect(PaymentStage.customerKey(F.placed(F.order(customer: Customer(id: "c-1", email: "  Ada@Example.COM ")))) == "email:ada@example.com")
        #expect(PaymentStage.customerKey(F.placed(F.order(customer: Customer(id: "c-1", email: "   ")))) == "customer:web/c-1")
        #expect(PaymentStage.customerKey(F.placed(F.order(customer: Customer(id: "c-1", email: nil)))) == "customer:web/c-1")
        let guest = F.placed(F.order(customer: Customer(id: "", email: nil)))
        #expect(PaymentStage.customerKey(guest) == "order:\(guest.orderId)")
        #expect(PaymentStage.customerKey(F.placed(F.order(customer: Customer()))) == "order:\(guest.orderId)")
    }

    @Test func sameEmailOnTwoChannelsIsOneCustomer() {
        let web = F.placed(F.order(channel: "web", customer: Customer(id: "1", email: "a@example.com")))
        let shop = F.placed(F.order(channel: "shopify", customer: Customer(id: "99", email: "A@example.com")))
        #expect(PaymentStage.customerKey(web) == PaymentStage.customerKey(shop))
        let webId = F.placed(F.order(channel: "web", customer: Customer(id: "1")))
        let shopId = F.placed(F.order(channel: "shopify", customer: Customer(id: "1")))
        #expect(PaymentStage.customerKey(webId) != PaymentStage.customerKey(shopId), "channel ids are per channel")
    }

    // MARK: decide

    func screening(_ orderId: String, at offset: TimeInterval = 0, decline: [String] = [], hold: [String] = [], customer: String = "email:ada@example.com") -> PaymentScreening {
        PaymentScreening(
            orderId: orderId, customerKey: customer, amount: F.money(2_500), placedAt: F.placedAt.addingTimeInterval(offset),
            declineReasons: decline.map { Reason(code: $0, message: $0) }, holdReasons: hold.map { Reason(code: $0, message: $0) })
    }

    @Test func decisionPrecedenceIsDeclinedThenHeldThenApproved() {
        let none = PaymentRules()
        let declined = FraudVelocityStage.decide(screening("o1", decline: ["authorization_voided"], hold: ["risky_postcode"]), previous: nil, rules: none, now: F.now)
        guard case .paymentDeclined(let decision) = declined.decision else {
            Issue.record("expected PaymentDeclined, got \(declined.decision)")
            return
        }
        #expect(F.codes(decision.reasons) == ["authorization_voided", "risky_postcode"], "decline carries the hold reasons too")
        #expect(decision.orderId == "o1")
        #expect(decision.amount == F.money(2_500))
        #expect(decision.decidedAt == F.now)
        #expect(declined.velocity == nil, "no velocity state without the rule")

        let held = FraudVelocityStage.decide(screening("o2", hold: ["amount_above_threshold", "country_mismatch"]), previous: nil, rules: none, now: F.now)
        guard case .paymentHeld(let hold) = held.decision else {
            Issue.record("expected PaymentHeld, got \(held.decision)")
            return
        }
        #expect(F.codes(hold.reasons) == ["amount_above_threshold", "country_mismatch"])

        let approved = FraudVelocityStage.decide(screening("o3"), previous: nil, rules: none, now: F.now)
        guard case .paymentApproved(let approval) = approved.decision else {
            Issue.record("expected PaymentApproved, got \(approved.decision)")
            return
        }
        #expect(approval.reasons == [])
        #expect(approval.orderId == "o3")
    }

    /// Runs screenings through `decide` in order, as the stage would for one customer.
    func run(_ screenings: [PaymentScreening], rules: PaymentRules, from previous: CustomerVelocity? = nil) -> (decisions: [Event], velocity: CustomerVelocity?) {
        var velocity = previous
        var decisions: [Event] = []
        for screening in screenings {
            let step = FraudVelocityStage.decide(screening, previous: velocity, rules: rules, now: F.now)
            decisions.append(step.decision)
            velocity = step.velocity
        }
        return (decisions, velocity)
    }

    func isHeld(_ event: Event) -> Bool {
        if case .paymentHeld = event { return true }
        return false
    }

    func velocityCodes(_ event: Event) -> [String] {
        switch event {
        case .paymentHeld(let e): F.codes(e.reasons)
        case .paymentDeclined(let e): F.codes(e.reasons)
        case .paymentApproved(let e): F.codes(e.reasons)
        default: []
        }
    }

    let velocity = PaymentRules(velocity: VelocityRule(maxOrders: 2, windowSeconds: 3_600))

    @Test func orderBeyondTheLimitInTheWindowIsHeld() throws {
        let (decisions, state) = run([screening("o1", at: 0), screening("o2", at: 600), screening("o3", at: 1_200)], rules: velocity)
        #expect(decisions.map(isHeld) == [false, false, true])
        guard case .paymentHeld(let held) = decisions[2] else { return }
        #expect(F.codes(held.reasons) == ["velocity"])
        #expect(held.reasons[0].message == "3 orders from this customer within 3600 s (limit 2)")
        let window = try #require(state)
        #expect(window.recent.map(\.orderId) == ["o1", "o2", "o3"])
        #expect(window.customerKey == "email:ada@example.com")
        #expect(window.updatedAt == F.now)
    }

    @Test func velocityHoldAddsToOtherReasonsAndToADecline() {
        let (decisions, _) = run(
            [screening("o1"), screening("o2", at: 1), screening("o3", at: 2, hold: ["risky_postcode"]), screening("o4", at: 3, decline: ["authorization_voided"])],
            rules: velocity)
        #expect(velocityCodes(decisions[2]) == ["risky_postcode", "velocity"])
        #expect(velocityCodes(decisions[3]) == ["authorization_voided", "velocity"])
        guard case .paymentDeclined = decisions[3] else {
            Issue.record("a decline stays a decline: \(decisions[3])")
            return
        }
    }

    @Test func orderOutsideTheWindowIsNotHeldAndOldEntriesArePruned() throws {
        let (decisions, state) = run(
            [screening("o1", at: 0), screening("o2", at: 600), screening("o3", at: 7_200), screening("o4", at: 7_800)], rules: velocity)
        #expect(decisions.map(isHeld) == [false, false, false, false])
        #expect(try #require(state).recent.map(\.orderId) == ["o3", "o4"], "entries a window older than the newest are dropped")
    }

    @Test func windowBoundaryIsExclusive() throws {
        let one = PaymentRules(velocity: VelocityRule(maxOrders: 1, windowSeconds: 3_600))
        let (exact, exactState) = run([screening("o1", at: 0), screening("o2", at: 3_600)], rules: one)
        #expect(exact.map(isHeld) == [false, false], "an order exactly one window earlier is outside it")
        #expect(try #require(exactState).recent.map(\.orderId) == ["o2"])
        let (inside, _) = run([screening("o1", at: 0), screening("o2", at: 3_599)], rules: one)
        #expect(inside.map(isHeld) == [false, true])
    }

    @Test func resentScreeningOfTheSameOrderCountsOnce() throws {
        let (decisions, state) = run([screening("o1", at: 0), screening("o2", at: 60), screening("o2", at: 60), screening("o2", at: 60)], rules: velocity)
        #expect(decisions.map(isHeld) == [false, false, false, false])
        #expect(try #require(state).recent.map(\.orderId) == ["o1", "o2"])
        // A third distinct order still trips the limit.
        let (next, _) = run([screening("o3", at: 120)], rules: velocity, from: state)
        #expect(next.map(isHeld) == [true])
    }

    @Test func lateOrderIsCountedByItsOwnPlacedTime() throws {
        // o1 and o2 were placed at 10 and 20 minutes; o-late arrives afterwards but was
        // placed 80 minutes before o1: no other order is within an hour of it.
        let (early, state) = run([screening("o1", at: 600), screening("o2", at: 1_200), screening("o-late", at: -4_200)], rules: velocity)
        #expect(early.map(isHeld) == [false, false, false])
        #expect(try #require(state).recent.map(\.orderId) == ["o1", "o2"], "a late entry older than the window is not kept")

        // A late order placed between them is counted with both.
        let (between, betweenState) = run([screening("o1", at: 600), screening("o2", at: 1_200), screening("o-mid", at: 900)], rules: velocity)
        #expect(between.map(isHeld) == [false, false, true])
        #expect(try #require(betweenState).recent.map(\.orderId) == ["o1", "o-mid", "o2"], "entries stay sorted by placed time")
    }

    // MARK: FraudVelocityStage through StageDriver

    @Test func fraudVelocityStageKeepsOneWindowPerCustomer() throws {
        let rules = PaymentRules(velocity: VelocityRule(maxOrders: 1, windowSeconds: 3_600))
        var driver = StageDriver(stage: FraudVelocityStage(rules: rules))
        let inputs = [
            screening("o1", at: 0, customer: "email:a@x.com"), screening("o2", at: 60, customer: "email:b@x.com"),
            screening("o3", at: 120, customer: "email:a@x.com"),
        ]
        var decisions: [Event] = []
        for (index, input) in inputs.enumerated() {
            let result = driver.handle(F.envelope("s-\(index)", input.event), offset: Int64(index), now: F.now)
            #expect(result.kind == .processed)
            try #require(result.outputs.count == 1)
            #expect(result.outputs[0].topic == PaymentHeld.topic)
            #expect(result.stateRecords.map(\.key) == [input.customerKey])
            decisions.append(result.outputs[0].envelope.event)
        }
        #expect(decisions.map(isHeld) == [false, false, true], "only a's second order is over the limit")
        guard case .customerVelocity(let a)? = driver.value("email:a@x.com"), case .customerVelocity(let b)? = driver.value("email:b@x.com") else {
            Issue.record("each customer has a velocity record")
            return
        }
        #expect(a.recent.map(\.orderId) == ["o1", "o3"])
        #expect(b.recent.map(\.orderId) == ["o2"])
    }

    @Test func fraudVelocityStageWithoutTheRuleKeepsNoState() throws {
        var driver = StageDriver(stage: FraudVelocityStage(rules: PaymentRules()))
        let result = driver.handle(F.envelope("s-1", screening("o1").event), now: F.now)
        #expect(result.stateRecords.isEmpty)
        guard case .paymentApproved? = F.events(result).first else {
            Issue.record("expected an approval, got \(F.events(result))")
            return
        }
        let wrong = driver.handle(F.envelope("x", F.placed().event), now: F.now)
        guard case .rejected? = F.failure(wrong) else {
            Issue.record("fraud-velocity reads screenings only: \(wrong.kind)")
            return
        }
    }

    // MARK: PaymentStage holds, release and cancel

    var orderId: String { F.placed().orderId }

    func held(reasons: [String] = ["amount_above_threshold"]) -> PaymentHeld {
        PaymentHeld(orderId: orderId, amount: F.money(250_000), reasons: reasons.map { Reason(code: $0, message: "m-\($0)") }, decidedAt: F.placedAt)
    }

    func release() -> ReleaseHold {
        ReleaseHold(orderId: orderId, releasedBy: "ops@example.com", note: "checked with the customer", requestedAt: F.now)
    }

    /// A cancel shipping accepted.
    func cancel() -> OrderCancelled {
        OrderCancelled(orderId: orderId, requestedBy: "ops@example.com", reason: Reason(code: "fraud", message: "stolen card"), cancelledAt: F.now)
    }

    /// The command as the gateway sends it; shipping, not payment, decides it.
    func cancelCommand() -> CancelOrder {
        CancelOrder(orderId: orderId, requestedBy: "ops@example.com", reason: Reason(code: "fraud", message: "stolen card"), requestedAt: F.now)
    }

    @Test func placedOrderIsScreenedAndSentToItsCustomerPartition() throws {
        var driver = StageDriver(stage: PaymentStage(rules: rules))
        let result = driver.handle(F.envelope("p-1", F.placed().event), now: F.now)
        try #require(result.outputs.count == 1)
        #expect(result.outputs[0].topic == PaymentScreening.topic)
        #expect(result.outputs[0].envelope.key == "email:ada@example.com")
        #expect(result.outputs[0].envelope.event == PaymentStage.screen(F.placed(), rules: rules).event)
        #expect(result.stateRecords.isEmpty)
    }

    @Test func heldDecisionIsRememberedAndReleasedOnce() throws {
        var driver = StageDriver(stage: PaymentStage(rules: rules))
        let recorded = driver.handle(F.envelope("d-1", held().event), now: F.now)
        #expect(recorded.outputs.isEmpty)
        #expect(recorded.stateRecords.map(\.key) == [orderId])
        let decision = held()
        #expect(driver.value(orderId) == HeldOrder(orderId: orderId, amount: decision.amount, reasons: decision.reasons, heldAt: decision.decidedAt).event)

        let released = driver.handle(F.envelope("c-1", release().event), offset: 1, now: F.now)
        #expect(released.kind == .processed)
        try #require(released.outputs.count == 1)
        #expect(released.outputs[0].topic == PaymentReleased.topic)
        #expect(
            released.outputs[0].envelope.event
                == PaymentReleased(orderId: orderId, amount: F.money(250_000), reasons: held().reasons, releasedBy: "ops@example.com", decidedAt: F.now).event)
        #expect(released.stateRecords.count == 1)
        #expect(released.stateRecords.first?.key == orderId)
        #expect(released.stateRecords.first?.envelope == nil, "the hold is deleted")
        #expect(driver.value(orderId) == nil)

        let again = driver.handle(F.envelope("c-2", release().event), offset: 2, now: F.now)
        guard case .rejected(let reason)? = F.failure(again) else {
            Issue.record("a second release must be rejected: \(again.kind)")
            return
        }
        #expect(reason.contains(orderId))
    }

    @Test func releaseOfAnOrderThatIsNotHeldIsRejected() {
        var state = DictionaryState()
        let input = StageInput(envelope: F.envelope("c-1", release().event), topic: ReleaseHold.topic, partition: 0, offset: 0, now: F.now)
        #expect(throws: StageFailure.rejected("order \(orderId) is not held for review, so there is nothing to release")) {
            try PaymentStage(rules: rules).process(input, state: state)
        }
        // An approval in state is not a hold either.
        state.values[orderId] = PaymentApproved(orderId: orderId, amount: F.money(1), reasons: [], decidedAt: F.now).event
        #expect(throws: StageFailure.self) { try PaymentStage(rules: rules).process(input, state: state) }
    }

    @Test func cancelOfAHeldOrderEndsItsReviewDeclinedWithoutAVoid() throws {
        var state = DictionaryState()
        let stage = PaymentStage(rules: rules)
        let hold = StageInput(envelope: F.envelope("d-1", held(reasons: ["velocity"]).event), topic: PaymentHeld.topic, partition: 0, offset: 0, now: F.now)
        state.apply(try stage.process(hold, state: state).stateChanges)

        let input = StageInput(envelope: F.envelope("c-1", cancel().event), topic: OrderCancelled.topic, partition: 0, offset: 1, now: F.now)
        let outcome = try stage.process(input, state: state)
        // Shipping, which accepted the cancel, voids the authorization: only the decline here.
        try #require(outcome.outputs.count == 1, "\(outcome.outputs.map(\.event))")
        guard case .paymentDeclined(let declined) = outcome.outputs[0].event else {
            Issue.record("expected PaymentDeclined, got \(outcome.outputs.map(\.event))")
            return
        }
        #expect(declined.orderId == orderId)
        #expect(declined.amount == F.money(250_000))
        #expect(F.codes(declined.reasons) == ["velocity", "cancelled_in_review"])
        #expect(declined.reasons[1].message == "cancelled by ops@example.com: stolen card")
        #expect(declined.decidedAt == F.now)
        #expect(outcome.stateChanges == [.delete(key: orderId)])

        state.apply(outcome.stateChanges)
        #expect(try stage.process(input, state: state) == .none, "cancelling again finds no hold")
    }

    @Test func cancelCommandAndRejectedCancelAreIgnoredEvenForAHeldOrder() throws {
        let stage = PaymentStage(rules: rules)
        #expect(stage.inputTopics.contains(OrderCancelled.topic))
        var driver = StageDriver(stage: stage)
        _ = driver.handle(F.envelope("d-1", held().event), now: F.now)
        let refused = CancelRejected(orderId: orderId, requestedBy: "ops@example.com", reasons: [], rejectedAt: F.now)
        for (index, event) in [cancelCommand().event, refused.event].enumerated() {
            let result = driver.handle(F.envelope("c-\(index)", event), offset: Int64(index + 1), now: F.now)
            #expect(result.kind == .processed)
            #expect(result.outputs.isEmpty)
            #expect(result.stateRecords.isEmpty)
        }
        #expect(driver.value(orderId) != nil, "the hold stays until a cancel is accepted")
    }

    @Test func cancelOfAnOrderThatIsNotHeldIsLeftToOthers() throws {
        var driver = StageDriver(stage: PaymentStage(rules: rules))
        let result = driver.handle(F.envelope("c-1", cancel().event), now: F.now)
        #expect(result.kind == .processed)
        #expect(result.outputs.isEmpty)
        #expect(result.stateRecords.isEmpty)
    }

    @Test func otherDecisionsAndCommandsAreIgnoredAndUnknownInputsRejected() throws {
        let stage = PaymentStage(rules: rules)
        let state = DictionaryState()
        let ignored: [Event] = [
            PaymentApproved(orderId: orderId, amount: F.money(1), reasons: [], decidedAt: F.now).event,
            PaymentDeclined(orderId: orderId, amount: F.money(1), reasons: [], decidedAt: F.now).event,
            PaymentReleased(orderId: orderId, amount: F.money(1), reasons: [], releasedBy: "x", decidedAt: F.now).event,
            UpdateShippingAddress(orderId: orderId, shippingAddress: F.address(), requestedBy: "x", requestedAt: F.now).event,
        ]
        for (index, event) in ignored.enumerated() {
            let input = StageInput(envelope: F.envelope("i-\(index)", event), topic: "t", partition: 0, offset: Int64(index), now: F.now)
            #expect(try stage.process(input, state: state) == .none)
        }
        let level = StageInput(envelope: F.envelope("l", F.level("SKU-A", []).event), topic: "t", partition: 0, offset: 9, now: F.now)
        #expect(throws: StageFailure.self) { try stage.process(level, state: state) }
    }
}

import Contracts
import Foundation
import Testing
import Workers

private typealias F = PipelineFixtures

/// Changes to an order in flight, decided by shipping (``ShippingStage`` through
/// `StageDriver`) and acted on by allocation (`AllocationMachine`) and the view
/// (`OrderViewFolder`): an address change until a label is bought, re-rated; each
/// refusal reason; a line cancel for units not shipped, with its worth, captured less
/// or refunded, decided once per change id; a cancel racing with the allocation it
/// follows; allocation releasing the units it held for cancelled lines.
@Suite struct ShippingChangeTests {
    /// WH-1 is local to Brooklyn (11201) and far from San Francisco (94107): a local
    /// courier serves only the local zone.
    static let rules = BusinessRules(
        locations: [StockLocation(id: "WH-1", type: .warehouse, country: "US"), StockLocation(id: "WH-2", type: .warehouse, country: "US")],
        zones: [
            Zone(country: "US", distances: ["WH-1": 10, "WH-2": 2_000]),
            Zone(country: "US", postalPrefix: "9", distances: ["WH-1": 4_000, "WH-2": 4_000]),
        ],
        shipping: ShippingRules(rates: [
            CarrierRate(carrier: "courier", service: "city", serviceLevel: .standard, zones: ["local"], maxWeightGrams: 30_000, price: 300, transitDays: 1),
            CarrierRate(carrier: "oms-post", service: "ground", serviceLevel: .standard, maxWeightGrams: 30_000, price: 600, transitDays: 5),
        ]))

    /// 3 × SKU-A at 10.00 and 1 × SKU-B at 20.00, 5.00 shipping: 55.00.
    let placed = F.placed(F.order(lines: [F.line("1", "SKU-A", quantity: 3, price: 1_000), F.line("2", "SKU-B", price: 2_000)]))
    var orderId: String { placed.orderId }
    let reason = Reason(code: "customer_request", message: "too many")
    var allocated: Event {
        OrderAllocated(orderId: orderId, allocations: [F.allocation("1", "SKU-A", "WH-1", 3), F.allocation("2", "SKU-B", "WH-1", 1)], decidedAt: F.now).event
    }

    func driver(products: [CatalogProduct]? = nil) -> StageDriver<ShippingStage> {
        var driver = StageDriver(stage: ShippingStage(rules: Self.rules))
        let catalog = products ?? [F.shippingProduct("SKU-A"), F.shippingProduct("SKU-B")]
        driver.tables[CatalogProduct.topic] = Dictionary(uniqueKeysWithValues: catalog.map { ($0.sku, $0.event) })
        return driver
    }

    func run(_ events: [Event], driver: inout StageDriver<ShippingStage>) -> [[Event]] {
        events.enumerated().map { index, event in
            F.events(driver.handle(F.envelope("in-\(index)-\(event.payload.partitionKey)", event), offset: Int64(index), now: F.now))
        }
    }

    func moveTo(_ address: Address, by who: String = "agent:sam") -> Event {
        UpdateShippingAddress(orderId: orderId, shippingAddress: address, requestedBy: who, requestedAt: F.now).event
    }

    func cancelLines(_ lines: [(String, Int)], id: String = "chg-1") -> Event {
        CancelOrderLines(
            orderId: orderId, changeId: id, lines: lines.map { LineQuantity(lineId: $0.0, quantity: $0.1) }, requestedBy: "agent:sam", reason: reason,
            requestedAt: F.now
        ).event
    }

    func rejection(_ events: [Event]) -> OrderChangeRejected? {
        events.lazy.compactMap { if case .orderChangeRejected(let r) = $0 { r } else { nil } }.first
    }

    var sanFrancisco: Address { F.address(postalCode: "94107", region: "CA", lines: ["1 Market St"], city: "San Francisco") }

    // MARK: Address

    @Test func addressChangeBeforeALabelIsAcceptedAndTheShipmentIsRatedForIt() throws {
        var changed = driver()
        let out = run([placed.event, moveTo(sanFrancisco), allocated], driver: &changed)
        #expect(out[1] == [ShippingAddressChanged(orderId: orderId, shippingAddress: sanFrancisco, requestedBy: "agent:sam", changedAt: F.now).event])
        let shipment = try #require(out[2].compactMap { if case .shipmentCreated(let s) = $0 { s } else { nil } }.first)
        #expect(shipment.carrier == "oms-post" && shipment.service == "ground", "San Francisco is national from WH-1: no courier")

        var unchanged = driver()
        let before = run([placed.event, allocated], driver: &unchanged)
        let local = try #require(before[1].compactMap { if case .shipmentCreated(let s) = $0 { s } else { nil } }.first)
        #expect(local.carrier == "courier", "the old address was local")
        guard case .shippingState(let state)? = changed.value(orderId) else {
            Issue.record("no shipping state")
            return
        }
        #expect(state.destination == sanFrancisco)
    }

    @Test func addressChangeAfterTheLabelIsRefused() throws {
        var driver = driver()
        let out = run([placed.event, allocated, moveTo(sanFrancisco)], driver: &driver)
        let refused = try #require(rejection(out[2]))
        #expect(F.codes(refused.reasons) == ["label_bought"])
        #expect(refused.change == .address && refused.requestedBy == "agent:sam")
        guard case .shippingState(let state)? = driver.value(orderId) else {
            Issue.record("no shipping state")
            return
        }
        #expect(state.destination == placed.shippingAddress, "the label's address stays")
    }

    @Test func addressChangeToAnotherCountryOrAnIncompleteOrBlockedAddressIsRefusedWithEveryReason() throws {
        let blocked = F.shippingProduct("SKU-B")
        var noCA = blocked
        noCA.blockedCountries = [F.country("CA")]
        var driver = driver(products: [F.shippingProduct("SKU-A"), noCA])
        let toronto = F.address(country: "CA", postalCode: "M5V 2T6", region: "ON", city: "")
        let out = run([placed.event, moveTo(toronto)], driver: &driver)
        let refused = try #require(rejection(out[1]))
        #expect(F.codes(refused.reasons) == ["address_incomplete", "country_changed", "destination_blocked"])
    }

    @Test func changesToACancelledOrAnUnknownOrderAreRefused() throws {
        var driver = driver()
        let cancel = CancelOrder(orderId: orderId, requestedBy: "customer", reason: reason, requestedAt: F.now).event
        let out = run([moveTo(sanFrancisco), cancelLines([("1", 1)]), placed.event, cancel, moveTo(sanFrancisco), cancelLines([("1", 1)], id: "chg-2")], driver: &driver)
        #expect(F.codes(rejection(out[0])?.reasons ?? []) == ["order_not_ready"])
        #expect(F.codes(rejection(out[1])?.reasons ?? []) == ["order_not_ready"])
        #expect(F.codes(rejection(out[4])?.reasons ?? []) == ["order_cancelled"])
        #expect(F.codes(rejection(out[5])?.reasons ?? []) == ["order_cancelled"])
    }

    @Test func theSameAddressAgainIsNoChangeAndAChannelEditBeforeTheOrderIsPassedOver() throws {
        var driver = driver()
        let early = UpdateShippingAddress(orderId: orderId, shippingAddress: sanFrancisco, requestedBy: "channel:shopify", requestedAt: F.now).event
        let earlyCut = CancelOrderLines(
            orderId: orderId, changeId: "channel:shopify/1/1", lines: [LineQuantity(lineId: "1", quantity: 1)], requestedBy: "channel:shopify",
            reason: reason, requestedAt: F.now).event
        let out = run([early, earlyCut, placed.event, moveTo(placed.shippingAddress, by: "channel:shopify"), earlyCut], driver: &driver)
        #expect(out[0] == [] && out[1] == [], "the channel repeats its whole order in the next update")
        #expect(out[3] == [], "an unchanged address is no change")
        #expect(out[4].contains { if case .orderLinesCancelled = $0 { true } else { false } }, "the repeated edit, now the order is known")
    }

    /// A channel's edit becomes the commands an operator would send: a cancel, or the
    /// address and one line cancel per removed unit, named by the unit.
    @Test func channelEditsBecomeCommands() throws {
        let edit = ChannelOrderEdit(
            externalOrderId: "S-1", cancelled: nil, shippingAddress: sanFrancisco, removed: [LineQuantity(lineId: "7", quantity: 2)], changedAt: F.now)
        let commands = IntakeStage.commands(for: edit, channel: "shopify")
        let id = DeterministicID.orderID(channel: "shopify", externalOrderID: "S-1")
        #expect(commands.first == UpdateShippingAddress(orderId: id, shippingAddress: sanFrancisco, requestedBy: "channel:shopify", requestedAt: F.now).event)
        let cuts = commands.compactMap { if case .cancelOrderLines(let c) = $0 { c } else { nil } }
        #expect(cuts.map(\.changeId) == ["channel:shopify/7/1", "channel:shopify/7/2"])
        #expect(cuts.allSatisfy { $0.orderId == id && $0.lines == [LineQuantity(lineId: "7", quantity: 1)] })
        var cancel = edit
        cancel.cancelled = Reason(code: "channel_customer", message: "cancelled in Shopify (customer)")
        #expect(IntakeStage.commands(for: cancel, channel: "shopify") == [
            CancelOrder(orderId: id, requestedBy: "channel:shopify", reason: cancel.cancelled!, requestedAt: F.now).event,
        ])
    }

    // MARK: Lines

    @Test func lineCancelBeforeShipmentShipsAndCapturesOnlyWhatIsLeft() throws {
        var driver = driver()
        let out = run([placed.event, cancelLines([("1", 2)]), allocated], driver: &driver)
        let cancelled = try #require(out[1].compactMap { if case .orderLinesCancelled(let c) = $0 { c } else { nil } }.first)
        #expect(cancelled.lines == [F.shipmentLine("1", "SKU-A", 2)])
        #expect(cancelled.amount == F.money(2_000), "two units of 10.00")
        #expect(out[1].count == 1, "an authorization is captured for less: nothing to refund or void")

        let shipment = try #require(out[2].compactMap { if case .shipmentCreated(let s) = $0 { s } else { nil } }.first)
        #expect(shipment.lines == [F.shipmentLine("1", "SKU-A", 1), F.shipmentLine("2", "SKU-B", 1)])
        let commits = out[2].compactMap { if case .commitInventory(let c) = $0 { c.quantity } else { nil } }
        #expect(commits == [1, 1], "only the units that ship are committed; allocation releases the others")
        let capture = try #require(out[2].compactMap { if case .capturePayment(let c) = $0 { c } else { nil } }.first)
        #expect(capture.amount.minorUnits + cancelled.amount.minorUnits == placed.totals.total.minorUnits, "captured + cancelled = the order")
    }

    @Test func lineCancelOfShippedUnitsIsRefusedWhole() throws {
        var driver = driver()
        let out = run([placed.event, allocated, cancelLines([("1", 1), ("2", 1), ("9", 1)])], driver: &driver)
        let refused = try #require(rejection(out[2]))
        #expect(F.codes(refused.reasons) == ["already_shipped", "already_shipped", "unknown_line"])
        #expect(refused.changeId == "chg-1" && refused.change == .lines)
        #expect(refused.reasons[0].message.contains("return the shipped units"))
    }

    @Test func moreUnitsThanLeftAreRefusedAndTheSameChangeIsDecidedOnce() throws {
        var driver = driver()
        let out = run([placed.event, cancelLines([("1", 2)]), cancelLines([("1", 2)]), cancelLines([("1", 2)], id: "chg-2")], driver: &driver)
        #expect(out[1].count == 1)
        #expect(out[2] == [], "the same change id again: decided already")
        #expect(F.codes(rejection(out[3])?.reasons ?? []) == ["more_than_left"], "3 ordered, 2 cancelled: 1 left")
    }

    @Test func withTheShareRuleTheCancelledUnitsShareOfShippingIsRefundedOnceTheChargeIsTaken() throws {
        var rules = Self.rules
        rules.shipping.lineCancelShipping = .share
        func sharing() -> StageDriver<ShippingStage> {
            var driver = StageDriver(stage: ShippingStage(rules: rules))
            driver.tables[CatalogProduct.topic] = Dictionary(uniqueKeysWithValues: [F.shippingProduct("SKU-A"), F.shippingProduct("SKU-B")].map { ($0.sku, $0.event) })
            return driver
        }
        // Before the first shipment: the charge is captured whole with it, then 1 × A's share
        // (10.00 of 50.00 goods: a fifth of 5.00) goes back.
        var before = sharing()
        let early = run([placed.event, cancelLines([("1", 1)]), allocated], driver: &before)
        #expect(!early[1].contains { if case .refundPayment = $0 { true } else { false } }, "nothing taken yet, nothing to give back")
        let captured = early[2].compactMap { if case .capturePayment(let c) = $0 { c.amount.minorUnits } else { nil } }
        let refunded = early[2].compactMap { if case .refundPayment(let r) = $0 { r.amount.minorUnits } else { nil } }
        #expect(captured == [4_500] && refunded == [100])

        // After a shipment took the charge: at once, and two cancels add up to the exact share.
        var after = sharing()
        let lineTwo = OrderAllocated(orderId: orderId, allocations: [F.allocation("2", "SKU-B", "WH-1", 1)], decidedAt: F.now).event
        let late = run([placed.event, lineTwo, cancelLines([("1", 1)], id: "c1"), cancelLines([("1", 2)], id: "c2")], driver: &after)
        let shares = late[2...].flatMap { $0 }.compactMap { if case .refundPayment(let r) = $0 { r.amount.minorUnits } else { nil } }
        #expect(shares == [100, 200], "3 × A: three fifths of 5.00")

        // Paid at checkout: the units' worth and their share, in one refund.
        let paid = F.placed(F.order(
            lines: [F.line("1", "SKU-A", quantity: 3, price: 1_000), F.line("2", "SKU-B", price: 2_000)],
            payment: PaymentAuthorization(status: .captured, amount: F.money(5_500), reference: "psp-1")))
        var checkout = sharing()
        let refund = run([paid.event, cancelLines([("1", 1)])], driver: &checkout)[1].compactMap { if case .refundPayment(let r) = $0 { r.amount.minorUnits } else { nil } }
        #expect(refund == [1_100])

        // The default keeps the charge whole.
        var keep = driver()
        let kept = run([placed.event, cancelLines([("1", 1)]), allocated], driver: &keep)
        #expect(!kept.flatMap { $0 }.contains { if case .refundPayment = $0 { true } else { false } })
    }

    @Test func cancellingEveryUnitBeforeShipmentCancelsTheOrder() throws {
        var driver = driver()
        let out = run([placed.event, cancelLines([("1", 3), ("2", 1)]), allocated], driver: &driver)
        #expect(out[1].contains { if case .orderCancelled = $0 { true } else { false } })
        #expect(out[1].contains { if case .voidPayment = $0 { true } else { false } })
        #expect(out[2] == [], "a cancelled order does not ship")
    }

    @Test func orderPaidAtCheckoutIsRefundedTheCancelledWorth() throws {
        let paid = F.placed(F.order(
            channel: "amazon", lines: [F.line("1", "SKU-A", quantity: 3, price: 1_000), F.line("2", "SKU-B", price: 2_000)],
            payment: PaymentAuthorization(status: .captured, amount: F.money(5_500), reference: "AMZ-1")))
        var driver = driver()
        let cancel = CancelOrderLines(
            orderId: paid.orderId, changeId: "chg-1", lines: [LineQuantity(lineId: "2", quantity: 1)], requestedBy: "amazon", reason: reason,
            requestedAt: F.now
        ).event
        let out = run([paid.event, cancel], driver: &driver)
        let refund = try #require(out[1].compactMap { if case .refundPayment(let r) = $0 { r } else { nil } }.first)
        #expect(refund.amount == F.money(2_000) && refund.returnId == nil && refund.authorizationReference == "AMZ-1")
        #expect(refund.reason.code == "line_cancelled" && refund.reason.message.hasPrefix("chg-1: customer_request"))
    }
}

/// Allocation acting on accepted line cancels: backordered units go first, reservations
/// beyond what a line still asks for are released (from the last location), a cancel
/// read before the order or during a round is applied when they come, each change once.
@Suite struct AllocationLineCancelTests {
    static let rules = BusinessRules(
        locations: [StockLocation(id: "WH-1", type: .warehouse, country: "US"), StockLocation(id: "WH-2", type: .warehouse, country: "US")],
        zones: [Zone(country: "US", distances: ["WH-1": 10, "WH-2": 20])])
    let placed = F.placed(F.order(lines: [F.line("1", "SKU-A", quantity: 3), F.line("2", "SKU-B", quantity: 1)]))
    var orderId: String { placed.orderId }
    var approved: Event { PaymentApproved(orderId: orderId, amount: placed.totals.total, reasons: [], decidedAt: F.now).event }

    func cancelled(_ lineId: String, _ sku: String, _ quantity: Int, id: String = "chg-1") -> Event {
        OrderLinesCancelled(
            orderId: orderId, changeId: id, lines: [F.shipmentLine(lineId, sku, quantity)], amount: F.money(0), requestedBy: "agent",
            reason: Reason(code: "customer_request", message: "-"), cancelledAt: F.now
        ).event
    }

    func reserved(_ lineId: String, _ sku: String, _ location: String, _ quantity: Int) -> Event {
        InventoryResult(orderId: orderId, lineId: lineId, sku: sku, location: location, quantity: quantity, outcome: .reserved, commandId: "c").event
    }

    func run(_ events: [Event], snapshot: FakeSnapshot) -> (state: AllocationState?, outputs: [[Event]]) {
        var state: AllocationState?
        var outputs: [[Event]] = []
        for event in events {
            let step = AllocationMachine.advance(state, on: event, rules: Self.rules, now: F.now, snapshot: snapshot)
            state = step.state
            outputs.append(step.outputs)
        }
        return (state, outputs)
    }

    func releases(_ events: [Event]) -> [ReleaseInventory] {
        events.compactMap { if case .releaseInventory(let r) = $0 { r } else { nil } }
    }

    @Test func cancelAfterAllocationReleasesTheUnitsFromTheLastLocation() throws {
        // Line 1 is split: 2 at WH-1, 1 at WH-2.
        let split = FakeSnapshot(free: ["SKU-A": ["WH-1": 2, "WH-2": 5], "SKU-B": ["WH-1": 5]])
        let (state, outputs) = run(
            [placed.event, approved, reserved("1", "SKU-A", "WH-1", 2), reserved("1", "SKU-A", "WH-2", 1), reserved("2", "SKU-B", "WH-1", 1),
             cancelled("1", "SKU-A", 2), cancelled("1", "SKU-A", 2)],
            snapshot: split)
        #expect(outputs[4].contains { if case .orderAllocated = $0 { true } else { false } })
        let given = releases(outputs[5])
        #expect(given.map { "\($0.location):\($0.quantity)" } == ["WH-2:1", "WH-1:1"])
        #expect(outputs[6] == [], "the same change again changes nothing")
        let s = try #require(state)
        #expect(s.lines.first { $0.lineId == "1" }?.quantity == 1)
        #expect(s.reserved.filter { $0.lineId == "1" }.map(\.quantity) == [1])
    }

    @Test func cancelOfBackorderedUnitsReleasesNothing() throws {
        let short = FakeSnapshot(free: ["SKU-A": ["WH-1": 1], "SKU-B": ["WH-1": 5]])
        let (state, outputs) = run(
            [placed.event, approved, reserved("1", "SKU-A", "WH-1", 1), reserved("2", "SKU-B", "WH-1", 1), cancelled("1", "SKU-A", 2)], snapshot: short)
        #expect(outputs[3].contains { if case .orderPartiallyAllocated = $0 { true } else { false } })
        #expect(releases(outputs[4]).isEmpty, "the two units were never held")
        #expect(try #require(state).backordered.isEmpty)
    }

    @Test func cancelReadBeforeTheOrderShrinksItsLines() throws {
        let stocked = FakeSnapshot(free: ["SKU-A": ["WH-1": 9], "SKU-B": ["WH-1": 9]])
        let (state, outputs) = run([cancelled("1", "SKU-A", 1), placed.event, approved], snapshot: stocked)
        let asked = outputs[2].compactMap { if case .reserveInventory(let r) = $0 { "\(r.lineId):\(r.quantity)" } else { nil } }
        #expect(asked.sorted() == ["1:2", "2:1"])
        #expect(try #require(state).status == .reserving)
    }

    @Test func cancelAndApprovalBothReadBeforeTheOrderWaitForIt() throws {
        let stocked = FakeSnapshot(free: ["SKU-A": ["WH-1": 9], "SKU-B": ["WH-1": 9]])
        let (state, outputs) = run([cancelled("1", "SKU-A", 1), approved, placed.event], snapshot: stocked)
        #expect(outputs[1] == [], "nothing to plan before the order is read")
        let asked = outputs[2].compactMap { if case .reserveInventory(let r) = $0 { "\(r.lineId):\(r.quantity)" } else { nil } }
        #expect(asked.sorted() == ["1:2", "2:1"])
        #expect(try #require(state).status == .reserving)
    }

    @Test func unitsReservedWhileTheRoundWasOutAreTrimmedAtTheDecision() throws {
        let stocked = FakeSnapshot(free: ["SKU-A": ["WH-1": 9], "SKU-B": ["WH-1": 9]])
        let (state, outputs) = run(
            [placed.event, approved, cancelled("1", "SKU-A", 1), reserved("1", "SKU-A", "WH-1", 3), reserved("2", "SKU-B", "WH-1", 1)], snapshot: stocked)
        #expect(outputs[2] == [], "answers are still out")
        #expect(releases(outputs[4]).map(\.quantity) == [1])
        let decision = try #require(outputs[4].compactMap { if case .orderAllocated(let a) = $0 { a } else { nil } }.first)
        #expect(decision.allocations.first { $0.lineId == "1" }?.quantity == 2)
        #expect(try #require(state).reserved.first { $0.lineId == "1" }?.quantity == 2)
    }
}

/// The view of changes: the timeline says who asked and why; cancelled units are
/// counted per line; the customer is told once per change.
@Suite struct OrderChangeViewTests {
    let placed = F.placed(F.order(lines: [F.line("1", "SKU-A", quantity: 3)]))

    func fold(_ events: [Event]) -> (view: OrderView?, notes: [Contracts.Notification]) {
        var view: OrderView?
        var notes: [Contracts.Notification] = []
        for (index, event) in events.enumerated() {
            let step = OrderViewFolder.fold(view, orderId: placed.orderId, envelope: F.envelope("e-\(index)", event), rules: NotificationRules(), now: F.now)
            if let next = step.view { view = next }
            notes += step.notifications
        }
        return (view, notes)
    }

    @Test func changesAreOnTheTimelineWithWhoAndWhyAndTheCustomerIsToldOnce() throws {
        let moved = ShippingAddressChanged(
            orderId: placed.orderId, shippingAddress: F.address(city: "Queens"), requestedBy: "agent:sam", changedAt: F.now).event
        let cut = OrderLinesCancelled(
            orderId: placed.orderId, changeId: "chg-1", lines: [F.shipmentLine("1", "SKU-A", 1)], amount: F.money(1_000), requestedBy: "customer",
            reason: Reason(code: "customer_request", message: "-"), cancelledAt: F.now).event
        let refused = OrderChangeRejected(
            orderId: placed.orderId, change: .address, requestedBy: "agent:kim", reasons: [Reason(code: "label_bought", message: "too late")],
            rejectedAt: F.now).event
        // Paid at checkout: the cancel's refund is told in the order_changed message only.
        let refund = RefundPayment(
            orderId: placed.orderId, amount: F.money(1_000), reason: Reason(code: "line_cancelled", message: "chg-1: customer_request: -"), requestedAt: F.now
        ).event
        let (view, notes) = fold([placed.event, moved, cut, refund, refused])
        let v = try #require(view)
        #expect(v.lineProgress.first?.cancelled == 1)
        #expect(v.history.compactMap(\.note) == [
            "by agent:sam: ship to Queens, US", "by customer: 1 × line 1 cancelled (10.00 USD), customer_request",
            "by agent:kim, address change refused: label_bought: too late",
        ])
        #expect(notes.map(\.kind) == [.orderChanged, .orderChanged], "no refunded message for the line cancel's refund")
        #expect(notes[0].data["shipTo"] == "Queens, US" && notes[1].data["cancelledItems"] == "1 × SKU-A")
    }

    @Test func anExpiredRMAIsShownAndTheCustomerToldOnce() throws {
        let expiry = F.now.addingTimeInterval(F.days(30))
        let authorized = ReturnAuthorized(
            orderId: placed.orderId, returnId: "r-1", rma: "RMA-1", labelRef: "label://r-1", carrier: "oms-post", trackingNumber: "R1",
            lines: [ReturnLine(lineId: "1", sku: "SKU-A", quantity: 1, reason: "too_small")], expiresAt: expiry).event
        let expired = ReturnExpired(
            orderId: placed.orderId, returnId: "r-1", rma: "RMA-1", lines: [F.shipmentLine("1", "SKU-A", 1)], expiresAt: expiry, expiredAt: expiry).event
        let (view, notes) = fold([placed.event, authorized, expired, expired])
        #expect(view?.returns.first?.status == .expired)
        #expect(notes.map(\.kind) == [.returnExpired] && notes.first?.data["rma"] == "RMA-1")
    }
}

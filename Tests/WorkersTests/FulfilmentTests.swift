import Contracts
import Foundation
import Testing
import Workers

private typealias F = PipelineFixtures

/// Carrier choice (`CarrierChoice.choose`: cheapest meeting the promise, ties, at-risk
/// fallback, zone, weight and hazmat filters), `OrderAmounts` (line shares of the goods
/// total, unit values that add up whatever the split), shipping (`ShippingStage` through
/// `StageDriver`: shipments, index entries, commits, captures, waiting for the order,
/// replays, labels, cancels, promises) and tracking (`TrackingStage` and
/// `TrackingMachine`: the index join, window, dedupe, ordering, delivered and delayed once).
@Suite struct CarrierChoiceTests {
    /// A promise three days after ``PipelineFixtures/now``.
    let promise = F.now.addingTimeInterval(F.days(3))

    func rate(
        _ service: String, price: Int64, days: Int, zones: [String]? = nil, maxWeight: Int = 30_000, hazmat: Bool = false, carrier: String = "acme"
    ) -> CarrierRate {
        CarrierRate(carrier: carrier, service: service, serviceLevel: .standard, zones: zones, maxWeightGrams: maxWeight, price: price, transitDays: days, hazmat: hazmat)
    }

    func choose(_ rates: [CarrierRate], zone: String = "local", weight: Int = 1_000, hazmat: Bool = false, promise: Date? = nil) -> CarrierChoice? {
        CarrierChoice.choose(rates: rates, zone: zone, weightGrams: weight, hazmat: hazmat, promise: promise ?? self.promise, now: F.now)
    }

    @Test func cheapestRateMeetingThePromiseWins() throws {
        let rates = [rate("ground", price: 600, days: 5), rate("two-day", price: 1_400, days: 2), rate("three-day", price: 1_200, days: 3)]
        let choice = try #require(choose(rates))
        // Ground is cheaper but late; three days lands exactly on the promise, which counts.
        #expect(choice.rate.service == "three-day")
        #expect(choice.atRisk == false)
        #expect(choice.estimatedDelivery == F.now.addingTimeInterval(F.days(3)))
    }

    @Test func priceTieGoesToFewerTransitDays() throws {
        let rates = [rate("slow", price: 1_000, days: 3), rate("fast", price: 1_000, days: 2)]
        #expect(try #require(choose(rates)).rate.service == "fast")
        #expect(try #require(choose(rates.reversed())).rate.service == "fast", "independent of table order")
    }

    @Test func whenNoRateMeetsThePromiseTheFastestIsChosenAtRisk() throws {
        let rates = [rate("ground", price: 600, days: 5), rate("two-day", price: 1_400, days: 2), rate("two-day-cheap", price: 1_300, days: 2)]
        let choice = try #require(choose(rates, promise: F.now.addingTimeInterval(F.days(1))))
        #expect(choice.rate.service == "two-day-cheap", "fastest, then cheapest")
        #expect(choice.atRisk)
        #expect(choice.estimatedDelivery == F.now.addingTimeInterval(F.days(2)))
    }

    @Test func ratesOutsideTheZoneAreNotUsed() throws {
        let rates = [rate("courier", price: 300, days: 1, zones: ["local"]), rate("ground", price: 600, days: 2)]
        #expect(try #require(choose(rates, zone: "local")).rate.service == "courier")
        #expect(try #require(choose(rates, zone: "national")).rate.service == "ground")
    }

    @Test func ratesBelowTheParcelWeightAreNotUsed() throws {
        let rates = [rate("letter", price: 200, days: 2, maxWeight: 1_000), rate("parcel", price: 700, days: 2)]
        #expect(try #require(choose(rates, weight: 1_000)).rate.service == "letter", "the limit itself is accepted")
        #expect(try #require(choose(rates, weight: 1_001)).rate.service == "parcel")
    }

    @Test func dangerousGoodsGoOnlyWithHazmatRates() throws {
        let rates = [rate("ground", price: 600, days: 2), rate("hazmat-ground", price: 900, days: 2, hazmat: true)]
        #expect(try #require(choose(rates, hazmat: true)).rate.service == "hazmat-ground")
        #expect(try #require(choose(rates, hazmat: false)).rate.service == "ground", "ordinary parcels take the cheapest")
        #expect(choose([rate("ground", price: 600, days: 2)], hazmat: true) == nil)
    }

    @Test func nothingServingTheParcelGivesNil() {
        let rates = [rate("courier", price: 300, days: 1, zones: ["local"], maxWeight: 5_000)]
        #expect(choose(rates, zone: "international") == nil)
        #expect(choose(rates, weight: 5_001) == nil)
        #expect(choose([]) == nil)
    }
}

@Suite struct OrderAmountsTests {
    /// Odd cents everywhere: 3 × 3.33, 1 × 10.01 with 0.37 line discount, 7 × 0.99 with
    /// tax, an order-level coupon and an odd shipping charge.
    func oddOrder(taxIncluded: Bool) -> CanonicalOrder {
        F.order(
            lines: [
                F.line("1", "SKU-A", quantity: 3, price: 333), F.line("2", "SKU-B", quantity: 1, price: 1_001, discount: 37),
                F.line("3", "SKU-C", quantity: 7, price: 99, tax: 51),
            ],
            shipping: 499, tax: 51, discount: 37 + 113, taxIncluded: taxIncluded)
    }

    @Test(arguments: [false, true])
    func lineTotalsAddUpToTheTotalLessShipping(taxIncluded: Bool) {
        let order = oddOrder(taxIncluded: taxIncluded)
        let amounts = OrderAmounts(lines: order.lines, totals: order.totals)
        #expect(amounts.lineTotals.values.reduce(0, +) == order.totals.total.minorUnits - 499)
        #expect(amounts.shipping == 499)
        #expect(amounts.quantities == ["1": 3, "2": 1, "3": 7])
        #expect(amounts.currency == .usd)
        #expect(amounts.lineTotals.values.allSatisfy { $0 > 0 })
    }

    @Test func leftoverCentGoesToTheLargestRemainderThenTheFirstLine() {
        let equal = F.order(lines: [F.line("a", "SKU-A", price: 1_000), F.line("b", "SKU-B", price: 1_000)], shipping: 0, total: 1_001)
        #expect(OrderAmounts(lines: equal.lines, totals: equal.totals).lineTotals == ["a": 501, "b": 500], "equal remainders: line order")
        // 1,963 over 999 : 1,001 is 980.52 : 982.48; the larger remainder is line 1's.
        let odd = F.order(lines: [F.line("1", "SKU-A", quantity: 3, price: 333), F.line("2", "SKU-B", price: 1_001)], shipping: 499, discount: 37)
        #expect(OrderAmounts(lines: odd.lines, totals: odd.totals).lineTotals == ["1": 981, "2": 982])
    }

    @Test func anySplitOfALineAddsUpToItsTotal() {
        let order = F.order(lines: [F.line("1", "SKU-A", quantity: 3, price: 333)], shipping: 0, total: 1_000)
        let amounts = OrderAmounts(lines: order.lines, totals: order.totals)
        #expect(amounts.lineTotals["1"] == 1_000)
        for split in [[3], [1, 2], [2, 1], [1, 1, 1]] {
            var counted = 0
            var sum: Int64 = 0
            for units in split {
                sum += amounts.value(lineId: "1", units: units, after: counted)
                counted += units
            }
            #expect(sum == 1_000, "split \(split)")
        }
        #expect([0, 1, 2].map { amounts.value(lineId: "1", units: 1, after: $0) } == [333, 333, 334])
    }

    @Test func valueOfShipmentLinesAcrossSeveralShipmentsAddsUp() {
        let order = oddOrder(taxIncluded: false)
        let amounts = OrderAmounts(lines: order.lines, totals: order.totals)
        let first = [F.shipmentLine("1", "SKU-A", 1), F.shipmentLine("3", "SKU-C", 4)]
        let second = [F.shipmentLine("1", "SKU-A", 2), F.shipmentLine("3", "SKU-C", 2)]
        let third = [F.shipmentLine("2", "SKU-B", 1), F.shipmentLine("3", "SKU-C", 1)]
        let v1 = amounts.value(of: first, after: [:])
        let v2 = amounts.value(of: second, after: ["1": 1, "3": 4])
        let v3 = amounts.value(of: third, after: ["1": 3, "3": 6])
        #expect(v1 + v2 + v3 == amounts.lineTotals.values.reduce(0, +))
        // The same line twice in one list counts its units one after the other.
        #expect(amounts.value(of: [F.shipmentLine("1", "SKU-A", 1), F.shipmentLine("1", "SKU-A", 2)], after: [:]) == amounts.lineTotals["1"])
    }

    @Test func unitsBeyondTheLineOrUnknownLinesAreWorthNothing() {
        let order = F.order(lines: [F.line("1", "SKU-A", quantity: 2)], shipping: 0)
        let amounts = OrderAmounts(lines: order.lines, totals: order.totals)
        #expect(amounts.value(lineId: "1", units: 5, after: 0) == 2_000, "capped at the line")
        #expect(amounts.value(lineId: "1", units: 1, after: 2) == 0)
        #expect(amounts.value(lineId: "9", units: 1, after: 0) == 0)
    }

    @Test func partialReturnOfADiscountedLineRefundsItsShare() {
        // Line 1: 4 × 25.00 less a 10.00 line discount = 90.00; line 2: 10.00; plus a 3.00
        // coupon on the order: 97.00 of goods, 87.30 of it line 1's.
        let order = F.order(
            lines: [F.line("1", "SKU-A", quantity: 4, price: 2_500, discount: 1_000), F.line("2", "SKU-B", price: 1_000)],
            shipping: 500, discount: 1_000 + 300)
        let amounts = OrderAmounts(lines: order.lines, totals: order.totals)
        #expect(amounts.lineTotals == ["1": 8_730, "2": 970])
        let one = amounts.value(of: [F.shipmentLine("1", "SKU-A", 1)], after: [:])
        let rest = amounts.value(of: [F.shipmentLine("1", "SKU-A", 3)], after: ["1": 1])
        #expect(one == 2_182)
        #expect(one + rest == 8_730)
    }
}

@Suite struct ShippingTests {
    static let rules = BusinessRules(
        locations: [StockLocation(id: "WH-1", type: .warehouse, country: "US"), StockLocation(id: "WH-2", type: .warehouse, country: "US")],
        // WH-1 is local to the default address, WH-2 national.
        zones: [Zone(country: "US", distances: ["WH-1": 10, "WH-2": 2_000])])

    /// 3 × 3.33 and 1 × 10.01, 0.37 off, 4.99 shipping: 24.62 in all.
    let placed = F.placed(F.order(lines: [F.line("1", "SKU-A", quantity: 3, price: 333), F.line("2", "SKU-B", price: 1_001)], shipping: 499, discount: 37))
    var orderId: String { placed.orderId }
    /// Line 1 split over both warehouses, line 2 from WH-2.
    var allocations: [LineAllocation] { [F.allocation("1", "SKU-A", "WH-1", 2), F.allocation("1", "SKU-A", "WH-2", 1), F.allocation("2", "SKU-B", "WH-2", 1)] }
    var allocated: Event { OrderAllocated(orderId: orderId, allocations: allocations, decidedAt: F.now).event }
    let reason = Reason(code: "changed_mind", message: "no longer needed")
    var cancel: Event { CancelOrder(orderId: orderId, requestedBy: "customer", reason: reason, requestedAt: F.now).event }

    func driver(rules: BusinessRules = ShippingTests.rules, products: [CatalogProduct]? = nil) -> StageDriver<ShippingStage> {
        var driver = StageDriver(stage: ShippingStage(rules: rules))
        let catalog = products ?? [F.shippingProduct("SKU-A"), F.shippingProduct("SKU-B")]
        driver.tables[CatalogProduct.topic] = Dictionary(uniqueKeysWithValues: catalog.map { ($0.sku, $0.event) })
        return driver
    }

    /// Feeds events in order, returning each input's result.
    func run(_ events: [Event], driver: inout StageDriver<ShippingStage>, now: Date = F.now) -> [StepResult] {
        events.enumerated().map { index, event in driver.handle(F.envelope("in-\(index)-\(event.payload.partitionKey)", event), offset: Int64(index), now: now) }
    }

    func shipments(_ result: StepResult) -> [ShipmentCreated] { F.events(result).compactMap { if case .shipmentCreated(let s) = $0 { s } else { nil } } }
    func captures(_ result: StepResult) -> [CapturePayment] { F.events(result).compactMap { if case .capturePayment(let c) = $0 { c } else { nil } } }

    @Test func allocatedOrderShipsOncePerLocation() throws {
        var driver = driver()
        let results = run([placed.event, allocated], driver: &driver)
        #expect(results[0].outputs.isEmpty, "the order alone ships nothing")
        let result = results[1]
        #expect(result.outputs.map(\.topic) == [
            ShipmentCreated.topic, ShipmentIndexEntry.topic, CommitInventory.topic, CapturePayment.topic,
            ShipmentCreated.topic, ShipmentIndexEntry.topic, CommitInventory.topic, CommitInventory.topic, CapturePayment.topic,
        ])
        let created = shipments(result)
        try #require(created.count == 2)
        #expect(created.map(\.location) == ["WH-1", "WH-2"])
        #expect(created[0].lines == [F.shipmentLine("1", "SKU-A", 2)])
        #expect(created[1].lines == [F.shipmentLine("1", "SKU-A", 1), F.shipmentLine("2", "SKU-B", 1)])
        #expect(created[0].shipmentId != created[1].shipmentId)
        #expect(created.allSatisfy { $0.orderId == orderId && $0.createdAt == F.now && $0.carrier == "oms-post" })
        // No promised date on the order: standard is 7 days after placement, which ground (5 days) meets.
        #expect(created.allSatisfy { $0.service == "ground" && !$0.atRisk })
        #expect(created.allSatisfy { $0.promisedDate == F.placedAt.addingTimeInterval(F.days(7)) })
        #expect(created.allSatisfy { $0.estimatedDelivery == F.now.addingTimeInterval(F.days(5)) })

        let index = F.events(result).compactMap { if case .shipmentIndexEntry(let e) = $0 { e } else { nil } }
        #expect(index == created.map {
            ShipmentIndexEntry(carrier: $0.carrier, trackingNumber: $0.trackingNumber, shipmentId: $0.shipmentId, orderId: orderId, promisedDate: $0.promisedDate, shippedAt: F.now)
        })
        #expect(result.outputs[1].envelope.key == "oms-post/\(created[0].trackingNumber)", "the index is keyed by carrier and number")

        let commits = F.events(result).compactMap { if case .commitInventory(let c) = $0 { c } else { nil } }
        #expect(commits == [
            CommitInventory(orderId: orderId, shipmentId: created[0].shipmentId, lineId: "1", sku: "SKU-A", location: "WH-1", quantity: 2),
            CommitInventory(orderId: orderId, shipmentId: created[1].shipmentId, lineId: "1", sku: "SKU-A", location: "WH-2", quantity: 1),
            CommitInventory(orderId: orderId, shipmentId: created[1].shipmentId, lineId: "2", sku: "SKU-B", location: "WH-2", quantity: 1),
        ])

        let paid = captures(result)
        #expect(paid.map(\.shipmentId) == created.map(\.shipmentId))
        #expect(paid.allSatisfy { $0.authorizationReference == "psp-1" && $0.amount.currency == .usd && $0.channel == placed.channel })
        #expect(paid.map(\.amount.minorUnits).reduce(0, +) == placed.totals.total.minorUnits, "captures add up to the order total")
        // Line 1 is worth 9.81 (2 units 6.54), line 2 9.82; shipping 4.99 goes with the first.
        #expect(paid.map(\.amount.minorUnits) == [654 + 499, 327 + 982])

        guard case .shippingState(let state)? = driver.value(orderId) else {
            Issue.record("no shipping state")
            return
        }
        #expect(state.shipments.map(\.location) == ["WH-1", "WH-2"])
        #expect(state.cancelled == false)
    }

    @Test func allocationReadBeforeTheOrderWaitsForIt() throws {
        var early = driver()
        let first = run([allocated], driver: &early)
        #expect(first[0].outputs.isEmpty)
        guard case .shippingState(let waiting)? = early.value(orderId) else {
            Issue.record("the early allocation is kept")
            return
        }
        #expect(waiting.waiting == allocations)
        #expect(waiting.shipments == [])
        #expect(waiting.totals == nil)

        let second = early.handle(F.envelope("late-order", placed.event), offset: 1, now: F.now)
        var inOrder = driver()
        let expected = run([placed.event, allocated], driver: &inOrder)
        #expect(shipments(second).count == 2)
        #expect(F.events(second) == F.events(expected[1]), "the same shipments whichever came first")
        guard case .shippingState(let shipped)? = early.value(orderId) else { return }
        #expect(shipped.waiting == [])
        #expect(shipped.shipments.count == 2)
    }

    @Test func replayedAllocationDoesNotShipTwice() {
        var driver = driver()
        _ = run([placed.event, allocated], driver: &driver)
        // The same decision again under another id (a re-published record): not deduped by id.
        let again = driver.handle(F.envelope("replay", allocated), offset: 9, now: F.now.addingTimeInterval(60))
        #expect(again.kind == .processed)
        #expect(again.outputs.isEmpty)
        #expect(again.stateRecords.isEmpty)
    }

    @Test func trackingNumbersAreDeterministic() throws {
        var first = driver()
        var second = driver()
        let a = shipments(run([placed.event, allocated], driver: &first)[1])
        let b = shipments(run([placed.event, allocated], driver: &second)[1])
        #expect(a.map(\.trackingNumber) == b.map(\.trackingNumber))
        #expect(a.map(\.shipmentId) == b.map(\.shipmentId))
        #expect(Set(a.map(\.trackingNumber)).count == 2)

        let connector = DeterministicCarrierConnector()
        let request = LabelRequest(parcelId: "s-1", carrier: "oms-post", service: "ground", weightGrams: 100)
        let label = connector.label(for: request)
        #expect(connector.label(for: request) == label)
        #expect(label.trackingNumber.hasPrefix("OMSP"))
        #expect(label.trackingNumber.dropFirst(4).count == 16 && label.trackingNumber.dropFirst(4).allSatisfy(\.isNumber))
        #expect(label.labelRef == "label://oms-post/\(label.trackingNumber).pdf")
        #expect(connector.label(for: LabelRequest(parcelId: "s-2", carrier: "oms-post", service: "ground", weightGrams: 100)) != label)
        // The service and weight do not change the number (a re-bought label keeps it).
        #expect(connector.label(for: LabelRequest(parcelId: "s-1", carrier: "oms-post", service: "overnight", weightGrams: 9)) == label)
    }

    @Test func cancelBeforeShipmentIsAcceptedAndVoids() throws {
        var driver = driver()
        let results = run([placed.event, cancel, allocated], driver: &driver)
        #expect(results[1].outputs.map(\.topic) == [OrderCancelled.topic, VoidPayment.topic])
        #expect(F.events(results[1]) == [
            OrderCancelled(orderId: orderId, requestedBy: "customer", reason: reason, cancelledAt: F.now).event,
            VoidPayment(orderId: orderId, authorizationReference: "psp-1", reason: reason, requestedAt: F.now, channel: placed.channel).event,
        ])
        #expect(results[2].outputs.isEmpty, "a cancelled order is not shipped")
        guard case .shippingState(let state)? = driver.value(orderId) else {
            Issue.record("no shipping state")
            return
        }
        #expect(state.cancelled)
        #expect(state.shipments == [])
    }

    /// The cancel is read before the order: accepted at once, and the void waits for the
    /// order, which carries the authorization reference.
    @Test func cancelWhileTheAllocationWaitsForTheOrderDropsIt() {
        var driver = driver()
        let results = run([allocated, cancel, placed.event], driver: &driver)
        #expect(F.events(results[1]).map { "\(type(of: $0.payload))" } == ["OrderCancelled"])
        let void = F.events(results[2]).compactMap { if case .voidPayment(let v) = $0 { v } else { nil } }
        #expect(F.events(results[2]).count == 1, "no shipment once the order arrives, only the void")
        #expect(void.first?.authorizationReference == placed.payment.reference)
    }

    /// An order paid at checkout (a marketplace's, a Shopify order `paid`): its shipments
    /// ask for no capture, and a cancel refunds it in full instead of voiding.
    @Test func orderPaidAtCheckoutIsNotCapturedAndACancelRefundsIt() throws {
        let paid = F.placed(F.order(
            channel: "amazon", lines: [F.line("1", "SKU-A", quantity: 3, price: 333), F.line("2", "SKU-B", price: 1_001)],
            payment: PaymentAuthorization(status: .captured, amount: F.money(2_000), reference: "AMZ-1")))
        let allocated = OrderAllocated(orderId: paid.orderId, allocations: allocations, decidedAt: F.now).event
        var driver = driver()
        let shipped = run([paid.event, allocated], driver: &driver)
        #expect(shipments(shipped[1]).count == 2)
        #expect(captures(shipped[1]).isEmpty, "the money was taken at checkout")

        var other = self.driver()
        let cancel = CancelOrder(orderId: paid.orderId, requestedBy: "customer", reason: reason, requestedAt: F.now).event
        let results = run([paid.event, cancel], driver: &other)
        let refunds = F.events(results[1]).compactMap { if case .refundPayment(let r) = $0 { r } else { nil } }
        #expect(refunds.count == 1 && refunds.first?.amount == paid.totals.total && refunds.first?.returnId == nil)
        #expect(refunds.first?.channel == "amazon" && refunds.first?.authorizationReference == "AMZ-1")
        #expect(!F.events(results[1]).contains { if case .voidPayment = $0 { true } else { false } }, "nothing to void")
    }

    @Test func cancelAfterShipmentIsRejected() throws {
        var driver = driver()
        let results = run([placed.event, allocated, cancel], driver: &driver)
        try #require(results[2].outputs.count == 1)
        #expect(results[2].outputs[0].topic == CancelRejected.topic)
        guard case .cancelRejected(let rejected) = results[2].outputs[0].envelope.event else {
            Issue.record("expected CancelRejected, got \(F.events(results[2]))")
            return
        }
        #expect(rejected.orderId == orderId)
        #expect(rejected.requestedBy == "customer")
        #expect(F.codes(rejected.reasons) == ["already_shipped"])
        #expect(rejected.rejectedAt == F.now)
        #expect(results[2].stateRecords.isEmpty)
    }

    @Test func secondCancelIsRejectedAsAlreadyCancelled() throws {
        var driver = driver()
        let results = run([placed.event, cancel, cancel], driver: &driver)
        guard case .cancelRejected(let rejected)? = F.events(results[2]).first else {
            Issue.record("expected CancelRejected, got \(F.events(results[2]))")
            return
        }
        #expect(F.events(results[2]).count == 1)
        #expect(F.codes(rejected.reasons) == ["already_cancelled"])
    }

    @Test func promiseComesFromPromiseDaysWhenTheOrderHasNone() throws {
        var expedited = placed
        expedited.serviceLevel = .expedited
        var d = driver()
        let created = shipments(run([expedited.event, allocated], driver: &d)[1])
        // 3 days from placement: ground (5) is late, two-day (2) is in time.
        #expect(created.map(\.promisedDate) == [F.placedAt.addingTimeInterval(F.days(3)), F.placedAt.addingTimeInterval(F.days(3))])
        #expect(created.map(\.service) == ["two-day", "two-day"])
        #expect(created.allSatisfy { !$0.atRisk })

        var promised = placed
        promised.promisedDeliveryDate = F.now.addingTimeInterval(F.days(10))
        var e = driver()
        #expect(shipments(run([promised.event, allocated], driver: &e)[1]).map(\.promisedDate) == [promised.promisedDeliveryDate, promised.promisedDeliveryDate])

        var rules = Self.rules
        rules.shipping.promiseDays = ["standard": 2]
        var f = driver(rules: rules)
        #expect(shipments(run([placed.event, allocated], driver: &f)[1]).first?.promisedDate == F.placedAt.addingTimeInterval(F.days(2)))
    }

    @Test func promiseNoRateCanMeetIsFlaggedAtRisk() throws {
        var rushed = placed
        rushed.promisedDeliveryDate = F.now.addingTimeInterval(12 * 3_600)
        var driver = driver()
        let created = shipments(run([rushed.event, allocated], driver: &driver)[1])
        try #require(created.count == 2)
        #expect(created.allSatisfy { $0.atRisk && $0.service == "overnight" }, "the fastest service, flagged")
        #expect(created.allSatisfy { $0.estimatedDelivery == F.now.addingTimeInterval(F.days(1)) })
    }

    @Test func zoneOfEachLocationPicksItsRate() throws {
        var rules = Self.rules
        rules.shipping.rates.append(CarrierRate(carrier: "city", service: "courier", serviceLevel: .nextDay, zones: ["local"], maxWeightGrams: 5_000, price: 300, transitDays: 1))
        var driver = driver(rules: rules)
        let created = shipments(run([placed.event, allocated], driver: &driver)[1])
        #expect(created.map(\.carrier) == ["city", "oms-post"], "WH-1 is local, WH-2 is not")
    }

    @Test func parcelNoRateServesStillShipsAtRisk() throws {
        // 40 kg is above every default rate's limit.
        var driver = driver(products: [F.shippingProduct("SKU-A", weightGrams: 40_000), F.shippingProduct("SKU-B")])
        let created = shipments(run([placed.event, allocated], driver: &driver)[1])
        #expect(created.first?.atRisk == true)
        #expect(created.first?.service == "overnight")
        #expect(created.last?.atRisk == true, "WH-2's parcel holds a heavy unit too")
    }

    @Test func otherOrderCommandsAreIgnoredAndForeignEventsRejected() {
        var driver = driver()
        let release = ReleaseHold(orderId: orderId, releasedBy: "ops", requestedAt: F.now).event
        let backordered = OrderBackordered(orderId: orderId, lines: [], policy: .backorder, reasons: [], decidedAt: F.now).event
        for (index, event) in [release, backordered].enumerated() {
            let result = driver.handle(F.envelope("i-\(index)", event), offset: Int64(index), now: F.now)
            #expect(result.kind == .processed)
            #expect(result.outputs.isEmpty && result.stateRecords.isEmpty)
        }
        let wrong = driver.handle(F.envelope("w", F.level("SKU-A", []).event), offset: 5, now: F.now)
        guard case .rejected? = F.failure(wrong) else {
            Issue.record("shipping does not read levels: \(wrong.kind)")
            return
        }
    }
}

@Suite struct TrackingTests {
    static let shippedAt = F.now
    static let promised = F.now.addingTimeInterval(F.days(5))
    let entry = ShipmentIndexEntry(carrier: "oms-post", trackingNumber: "OMSP1", shipmentId: "s-1", orderId: "o-1", promisedDate: TrackingTests.promised, shippedAt: TrackingTests.shippedAt)
    let rules = ShippingRules()

    func update(
        _ status: TrackingStatus, at offset: TimeInterval, id: String? = nil, estimate: Date? = nil, number: String = "OMSP1"
    ) -> CarrierTrackingUpdate {
        CarrierTrackingUpdate(
            source: .generic, externalEventId: id, carrier: "oms-post", trackingNumber: number, status: status, rawStatus: status.rawValue,
            occurredAt: Self.shippedAt.addingTimeInterval(offset), estimatedDelivery: estimate, checkpoints: [])
    }

    func driver(_ entries: [ShipmentIndexEntry]? = nil) -> StageDriver<TrackingStage> {
        var driver = StageDriver(stage: TrackingStage(rules: rules))
        driver.tables[ShipmentIndexEntry.topic] = Dictionary(uniqueKeysWithValues: (entries ?? [entry]).map { ("\($0.carrier)/\($0.trackingNumber)", $0.event) })
        return driver
    }

    @Test func unknownNumberIsRetried() {
        var driver = driver()
        let result = driver.handle(F.envelope("u-1", update(.inTransit, at: 3_600, number: "NOPE").event), now: F.now)
        guard case .retryable(let reason)? = F.failure(result) else {
            Issue.record("expected a retryable failure, got \(result.kind)")
            return
        }
        #expect(reason.contains("oms-post/NOPE"))
    }

    @Test func updateOutsideTheWindowIsRejectedAndNotAttached() {
        var driver = driver()
        // The carrier reused the number months later, or the scan predates the shipment.
        for (index, offset) in [F.days(121), -F.days(2)].enumerated() {
            let result = driver.handle(F.envelope("late-\(index)", update(.delivered, at: offset).event), offset: Int64(index), now: F.now)
            guard case .rejected(let reason)? = F.failure(result) else {
                Issue.record("expected rejection, got \(result.kind)")
                continue
            }
            #expect(reason.contains("s-1"))
            #expect(result.outputs.isEmpty)
        }
        #expect(driver.value("oms-post/OMSP1") == nil)
        // The edges of the window are inside it.
        #expect(driver.handle(F.envelope("edge", update(.inTransit, at: F.days(120)).event), offset: 5, now: F.now).kind == .processed)
    }

    @Test func firstUpdateIsPublishedAndRemembered() throws {
        var driver = driver()
        let result = driver.handle(F.envelope("t-1", update(.inTransit, at: 3_600, id: "x-1").event), now: F.now)
        #expect(result.outputs.map(\.topic) == [TrackingUpdated.topic])
        #expect(F.events(result) == [
            TrackingUpdated(
                orderId: "o-1", shipmentId: "s-1", carrier: "oms-post", trackingNumber: "OMSP1", status: .inTransit, rawStatus: "in_transit",
                occurredAt: F.now.addingTimeInterval(3_600)
            ).event
        ])
        #expect(result.outputs.first?.envelope.key == "o-1", "tracking events are keyed by order")
        #expect(driver.value("oms-post/OMSP1") == TrackingState(
            carrier: "oms-post", trackingNumber: "OMSP1", shipmentId: "s-1", orderId: "o-1", status: .inTransit,
            occurredAt: F.now.addingTimeInterval(3_600), recentEventIds: ["x-1"], delivered: false, delayed: false
        ).event)
    }

    @Test func duplicateEventIdIsDropped() {
        var driver = driver()
        _ = driver.handle(F.envelope("t-1", update(.inTransit, at: 3_600, id: "x-1").event), now: F.now)
        // Another envelope with the carrier's same event id, even with a newer time.
        let again = driver.handle(F.envelope("t-2", update(.outForDelivery, at: 7_200, id: "x-1").event), offset: 1, now: F.now)
        #expect(again.kind == .processed)
        #expect(again.outputs.isEmpty)
    }

    @Test func olderUpdateThanKnownIsDropped() {
        var driver = driver()
        _ = driver.handle(F.envelope("t-1", update(.outForDelivery, at: 7_200, id: "x-2").event), now: F.now)
        let older = driver.handle(F.envelope("t-2", update(.inTransit, at: 3_600, id: "x-1").event), offset: 1, now: F.now)
        #expect(older.outputs.isEmpty)
        let sameAgain = driver.handle(F.envelope("t-3", update(.outForDelivery, at: 7_200).event), offset: 2, now: F.now)
        #expect(sameAgain.outputs.isEmpty, "same status at the same time, without an id")
        guard case .trackingState(let state)? = driver.value("oms-post/OMSP1") else {
            Issue.record("no tracking state")
            return
        }
        #expect(state.status == .outForDelivery)
        #expect(state.recentEventIds == ["x-2", "x-1"], "the dropped update's id is remembered too")
    }

    @Test func deliveredIsPublishedOnce() throws {
        var driver = driver()
        let first = driver.handle(F.envelope("t-1", update(.delivered, at: F.days(2), id: "d-1").event), now: F.now)
        #expect(first.outputs.map(\.topic) == [TrackingUpdated.topic, ShipmentDelivered.topic])
        guard case .shipmentDelivered(let delivered)? = F.events(first).last else {
            Issue.record("expected ShipmentDelivered, got \(F.events(first))")
            return
        }
        #expect(delivered.shipmentId == "s-1")
        #expect(delivered.orderId == "o-1")
        #expect(delivered.deliveredAt == F.now.addingTimeInterval(F.days(2)))

        // The carrier confirms the delivery again later, under another id.
        let again = driver.handle(F.envelope("t-2", update(.delivered, at: F.days(2) + 60, id: "d-2").event), offset: 1, now: F.now)
        #expect(again.outputs.map(\.topic) == [TrackingUpdated.topic])
        #expect(!F.events(again).contains { if case .shipmentDelivered = $0 { true } else { false } })
    }

    @Test func estimatePastThePromiseIsADelayOnce() throws {
        var driver = driver()
        let onTime = driver.handle(F.envelope("t-1", update(.inTransit, at: 3_600, estimate: Self.promised).event), now: F.now)
        #expect(onTime.outputs.count == 1, "an estimate on the promised date is not a delay")

        let late = Self.promised.addingTimeInterval(F.days(1))
        let delayed = driver.handle(F.envelope("t-2", update(.inTransit, at: 7_200, estimate: late).event), offset: 1, now: F.now)
        #expect(F.events(delayed).dropFirst() == [
            ShipmentDelayed(
                orderId: "o-1", shipmentId: "s-1", carrier: "oms-post", trackingNumber: "OMSP1", status: .inTransit, rawStatus: "in_transit",
                promisedDate: Self.promised, estimatedDelivery: late, detectedAt: F.now
            ).event
        ])
        let later = driver.handle(F.envelope("t-3", update(.inTransit, at: 9_000, estimate: late.addingTimeInterval(F.days(1))).event), offset: 2, now: F.now)
        #expect(later.outputs.map(\.topic) == [TrackingUpdated.topic], "delayed once")
    }

    @Test func indexMovedToANewShipmentStartsAfresh() throws {
        var driver = driver()
        _ = driver.handle(F.envelope("t-1", update(.delivered, at: F.days(2), id: "d-1").event), now: F.now)
        // Months later the carrier issues the same number for another order's parcel.
        let reusedAt = F.now.addingTimeInterval(F.days(200))
        let newer = ShipmentIndexEntry(
            carrier: "oms-post", trackingNumber: "OMSP1", shipmentId: "s-2", orderId: "o-2", promisedDate: reusedAt.addingTimeInterval(F.days(3)), shippedAt: reusedAt)
        driver.tables[ShipmentIndexEntry.topic] = ["oms-post/OMSP1": newer.event]
        let result = driver.handle(F.envelope("t-2", update(.delivered, at: F.days(201), id: "d-1").event), offset: 1, now: reusedAt)
        let events = F.events(result)
        try #require(events.count == 2, "\(events)")
        guard case .trackingUpdated(let updated) = events[0], case .shipmentDelivered(let delivered) = events[1] else {
            Issue.record("expected TrackingUpdated and ShipmentDelivered, got \(events)")
            return
        }
        #expect(updated.shipmentId == "s-2" && updated.orderId == "o-2")
        #expect(delivered.shipmentId == "s-2" && delivered.orderId == "o-2", "the old parcel's delivered flag does not carry over")
        guard case .trackingState(let state)? = driver.value("oms-post/OMSP1") else { return }
        #expect(state.shipmentId == "s-2")
        #expect(state.recentEventIds == ["d-1"])
    }

    @Test func machineRejectsOtherInputsThroughTheStage() {
        var driver = driver()
        let result = driver.handle(F.envelope("x", F.placed().event), now: F.now)
        guard case .rejected? = F.failure(result) else {
            Issue.record("tracking reads carrier updates only: \(result.kind)")
            return
        }
    }

    @Test func recentEventIdsAreBounded() throws {
        var state: TrackingState?
        for index in 0..<40 {
            let step = try TrackingMachine.advance(state, update: update(.inTransit, at: TimeInterval(index + 1), id: "e-\(index)"), entry: entry, rules: rules, now: F.now)
            state = step.state
        }
        let ids = try #require(state).recentEventIds
        #expect(ids.count == 32)
        #expect(ids.first == "e-8" && ids.last == "e-39", "the oldest ids are forgotten first")
    }
}

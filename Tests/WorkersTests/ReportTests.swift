import Contracts
import Foundation
import Testing
import Workers

private typealias F = PipelineFixtures

/// The report stage's folds (`ReportFold.fold`) on hand-built event streams, and the
/// reports read back from the buckets (`ReportQuery`): partitions added up, money never
/// added across currencies, late events, partial returns, percentiles.
@Suite struct ReportTests {
    /// Buckets per partition, as the changelog would hold them.
    struct Store {
        var state: [String: Event] = [:]

        mutating func fold(_ events: [Event], partition: Int32 = 0, at time: Date = F.now) {
            for event in events {
                let snapshot = state
                for change in ReportFold.fold(event, partition: partition, at: time, value: { snapshot[$0] }) {
                    switch change {
                    case .put(let value): state[change.key] = value
                    case .delete(let key): state[key] = nil
                    }
                }
            }
        }

        var query: ReportQuery {
            ReportQuery(buckets: state.values.compactMap { if case .reportBucket(let bucket) = $0 { return bucket } else { return nil } })
        }
    }

    static func placed(_ id: String, channel: String = "web", currency: CurrencyCode = .usd, price: Int64 = 1_000, quantity: Int = 2, promise: Date? = nil) -> OrderPlaced {
        var order = F.placed(F.order(channel: channel, externalOrderId: id, lines: [F.line("1", "SKU-A", quantity: quantity, price: price, currency: currency)], shipping: 0, currency: currency))
        order.promisedDeliveryDate = promise
        return order
    }

    static func shipment(_ order: OrderPlaced, at: Date, units: Int = 2, atRisk: Bool = false) -> ShipmentCreated {
        ShipmentCreated(
            shipmentId: "s-\(order.orderId)", orderId: order.orderId, location: "WH-1", carrier: "ups", service: "ground", trackingNumber: "T-\(order.orderId)",
            labelRef: "label", lines: [F.shipmentLine("1", "SKU-A", units)], promisedDate: order.placedAt.addingTimeInterval(F.days(3)),
            estimatedDelivery: at.addingTimeInterval(F.days(2)), atRisk: atRisk, createdAt: at)
    }

    static func delivered(_ order: OrderPlaced, at: Date) -> Event {
        ShipmentDelivered(orderId: order.orderId, shipmentId: "s-\(order.orderId)", carrier: "ups", trackingNumber: "T-\(order.orderId)", rawStatus: "delivered", deliveredAt: at).event
    }

    @Test("orders and revenue per day, channel and currency: never summed across currencies, partitions added up")
    func ordersAndRevenue() throws {
        var store = Store()
        store.fold([Self.placed("a", channel: "web").event, Self.placed("b", channel: "web", price: 2_500).event], partition: 0)
        store.fold([Self.placed("c", channel: "web", currency: .eur, price: 700).event], partition: 3)
        store.fold([Self.placed("d", channel: "shop", price: 100, quantity: 1).event], partition: 3)
        store.fold([OrderRejected(orderId: "x", channel: "web", externalOrderId: "x", reasons: [], rejectedAt: F.placedAt).event], partition: 1)
        let table = store.query.orders(.init())
        let rows = Dictionary(uniqueKeysWithValues: table.rows.map { ("\($0[1])/\($0[2])", $0) })
        #expect(rows["web/USD"]?[3] == .integer(2))
        #expect(rows["web/USD"]?[4] == .integer(2 * 1_000 + 2 * 2_500), "revenue in minor units")
        #expect(rows["web/USD"]?[5] == .integer(3_500), "average order value")
        #expect(rows["web/EUR"]?[4] == .integer(1_400), "EUR kept apart from USD")
        #expect(rows["shop/USD"]?[3] == .integer(1))
        #expect(rows["web/-"]?[7] == .integer(1), "rejected orders counted")
        #expect(store.query.orders(.init(channel: "shop")).rows.count == 1)
        #expect(store.query.orders(.init(from: "2030-01-01")).rows.isEmpty, "filtered by day")
        let hourly = store.query.orders(.init(hourly: true))
        #expect(hourly.columns.first == "hour")
        #expect(hourly.rows.first?[0] == .text(ReportFold.hourKey(F.placedAt)))
    }

    @Test("fulfilment: ship and delivery times, on time against the promise, late events, delays")
    func fulfilment() throws {
        var store = Store()
        let onTime = Self.placed("a", promise: F.placedAt.addingTimeInterval(F.days(5)))
        let late = Self.placed("b", promise: F.placedAt.addingTimeInterval(F.days(1)))
        store.fold([onTime.event, late.event])
        store.fold([Self.shipment(onTime, at: F.placedAt.addingTimeInterval(100)).event, Self.shipment(late, at: F.placedAt.addingTimeInterval(3_000), atRisk: true).event])
        store.fold([Self.delivered(onTime, at: F.placedAt.addingTimeInterval(F.days(2))), Self.delivered(late, at: F.placedAt.addingTimeInterval(F.days(2)))])
        // A delivery whose order the stage never saw (read before it, or placed before the
        // report stage existed) counts as a delivered parcel, not as an order on time.
        store.fold([Self.delivered(Self.placed("ghost"), at: F.now)])
        store.fold([ShipmentDelayed(orderId: late.orderId, shipmentId: "s", carrier: "ups", trackingNumber: "T", status: .inTransit, rawStatus: "x", promisedDate: F.now, estimatedDelivery: F.now, detectedAt: F.now).event])
        let days = store.query.fulfilment(.init()).rows
        let total = { (column: Int) in days.reduce(Int64(0)) { if case .integer(let v) = $1[column] { return $0 + v } else { return $0 } } }
        #expect(total(1) == 2, "two orders shipped")
        #expect(total(2) == 2, "two orders delivered (the unknown one is not an order here)")
        #expect(total(3) == 1 && total(4) == 1, "one on time, one late")
        #expect(total(12) == 1, "one delay")
        #expect(total(13) == 1, "one shipment at risk")
        let shipDay = try #require(days.first { $0[1] != .integer(0) })
        #expect(shipDay[6] == .integer(128), "p50 of 100 s and 3000 s is the 128 s bucket")
        #expect(shipDay[8] == .integer(4_096), "p99 is 3000 s's bucket")
        #expect(store.query.lateOrders(now: F.now).rows.isEmpty, "delivered orders are no longer open")
    }

    @Test("late and at-risk orders now: open orders past their promise or shipped at risk")
    func lateNow() {
        var store = Store()
        let overdue = Self.placed("a", promise: F.placedAt.addingTimeInterval(60))
        let fine = Self.placed("b", promise: F.placedAt.addingTimeInterval(F.days(9)))
        let risky = Self.placed("c", promise: F.placedAt.addingTimeInterval(F.days(9)))
        store.fold([overdue.event, fine.event, risky.event, Self.shipment(risky, at: F.placedAt, atRisk: true).event])
        let rows = store.query.lateOrders(now: F.now).rows
        #expect(rows.map { $0[0] } == [.text(overdue.orderId), .text(risky.orderId)].sorted { $0.description < $1.description })
        store.fold([OrderCancelled(orderId: overdue.orderId, requestedBy: "ops", reason: Reason(code: "x", message: "x"), cancelledAt: F.now).event])
        #expect(store.query.lateOrders(now: F.now).rows.count == 1, "a cancelled order is not late")
    }

    @Test("inventory: shipped, backordered and refused units per SKU, sell-through against stock")
    func inventory() {
        var store = Store()
        let order = Self.placed("a")
        store.fold([
            Self.shipment(order, at: F.now, units: 3).event,
            OrderBackordered(orderId: "a", lines: [BackorderedLine(lineId: "1", sku: "SKU-A", quantity: 4)], policy: .backorder, reasons: [], decidedAt: F.now).event,
            InventoryResult(orderId: "a", lineId: "1", sku: "SKU-A", location: "WH-1", quantity: 2, outcome: .refused, available: 0, commandId: "c").event,
            InventoryResult(orderId: "a", lineId: "1", sku: "SKU-A", location: "WH-1", quantity: 2, outcome: .reserved, available: 5, commandId: "d").event,
        ])
        let row = store.query.inventory(onHand: ["SKU-A": 9], reserved: ["SKU-A": 1]).rows.first
        #expect(row == [.text("SKU-A"), .integer(3), .integer(4), .integer(1), .integer(0), .integer(9), .integer(1), .decimal(0.25)])
        #expect(store.query.stockouts().rows == [[.text("SKU-A"), .text("WH-1"), .integer(1), .integer(2)]])
    }

    @Test("returns: partial returns per SKU and reason, return rate, restocked vs written off, refunds per currency")
    func returns() {
        var store = Store()
        let order = Self.placed("a", quantity: 4)
        store.fold([Self.shipment(order, at: F.now, units: 4).event])
        store.fold([
            ReturnAuthorized(orderId: order.orderId, returnId: "r1", rma: "R1", labelRef: "l", carrier: "ups", trackingNumber: nil, lines: [ReturnLine(lineId: "1", sku: "SKU-A", quantity: 1, reason: "damaged")], expiresAt: F.now).event,
            ReturnReceived(orderId: order.orderId, returnId: "r1", rma: "R1", lines: [ReceivedReturnLine(lineId: "1", sku: "SKU-A", quantity: 1, disposition: .writeOff, location: "WH-1")], receivedAt: F.now).event,
            RefundPayment(orderId: order.orderId, returnId: "r1", amount: Money(minorUnits: 1_000, currency: .usd), reason: Reason(code: "return", message: ""), requestedAt: F.now).event,
            RefundPayment(orderId: "b", returnId: "r2", amount: Money(minorUnits: 300, currency: .eur), reason: Reason(code: "return", message: ""), requestedAt: F.now).event,
        ])
        #expect(store.query.returns().rows == [[.text("SKU-A"), .text("damaged"), .integer(1), .decimal(0.25), .integer(0), .integer(1)]])
        let refunds = store.query.refunds(.init()).rows
        #expect(refunds.map { $0[1] } == [.text("EUR"), .text("USD")])
        #expect(refunds.map { $0[3] } == [.integer(300), .integer(1_000)], "never summed across currencies")
    }

    @Test("payments: authorized at checkout against captured, failed captures, refunded and failed refunds, per day and currency")
    func payments() throws {
        var store = Store()
        let usd = Self.placed("a")
        let eur = Self.placed("b", currency: .eur, price: 700)
        store.fold([usd.event, eur.event], partition: 0)
        store.fold([
            PaymentCaptured(orderId: usd.orderId, commandId: "c1", shipmentId: "s1", amount: F.money(1_500), provider: "stripe", capturedAt: F.placedAt).event,
            PaymentCaptureFailed(
                orderId: eur.orderId, commandId: "c2", shipmentId: "s2", amount: Money(minorUnits: 1_400, currency: .eur), provider: "stripe",
                failure: .declined, message: "declined", failedAt: F.placedAt).event,
            PaymentRefunded(orderId: usd.orderId, commandId: "r1", amount: F.money(500), provider: "stripe", refundedAt: F.placedAt).event,
        ], partition: 2)
        let table = store.query.payments(.init())
        #expect(table.columns.prefix(4) == ["day", "currency", "authorized", "authorizedAmount"])
        let rows = Dictionary(uniqueKeysWithValues: table.rows.map { ($0[1].description, $0) })
        let column = { (name: String) in table.columns.firstIndex(of: name) ?? -1 }
        #expect(rows["USD"]?[column("authorizedAmount")] == .integer(usd.payment.amount.minorUnits))
        #expect(rows["USD"]?[column("capturedAmount")] == .integer(1_500))
        #expect(rows["USD"]?[column("refundedAmount")] == .integer(500))
        #expect(rows["EUR"]?[column("captureFailed")] == .integer(1) && rows["EUR"]?[column("captured")] == .integer(0))
        #expect(store.query.report("payments")?.map(\.name) == ["payments"])
    }

    @Test("invoices: per entity and currency, invoiced less credited; tax per category and rate, credit notes subtracted")
    func invoices() throws {
        func document(_ kind: InvoiceKind, number: String, gross: Int64, tax: Int64) -> Event {
            let invoice = Invoice(
                invoiceId: "us/\(kind.rawValue)/\(number)", number: number, kind: kind, legalEntity: "us", series: kind.rawValue, sequence: 1,
                issuedAt: F.placedAt, orderId: "o-1", cause: number, seller: InvoiceParty(name: "S"), buyer: InvoiceParty(name: "B"), currency: .usd,
                pricesIncludeTax: false, rounding: .perLine, reverseCharge: false, lines: [],
                taxes: [TaxSubtotal(taxCategory: "S", taxRateBasisPoints: 400, taxableAmount: F.money(gross - tax), taxAmount: F.money(tax))],
                netTotal: F.money(gross - tax), taxTotal: F.money(tax), grossTotal: F.money(gross))
            return InvoiceIssued(orderId: "o-1", invoice: invoice).event
        }
        var store = Store()
        store.fold([document(.invoice, number: "US-1", gross: 10_400, tax: 400), document(.invoice, number: "US-2", gross: 5_200, tax: 200)], partition: 1)
        store.fold([document(.creditNote, number: "USC-1", gross: 2_600, tax: 100)], partition: 4)
        let tables = try #require(store.query.report("invoices"))
        #expect(tables.map(\.name) == ["invoices", "taxes"])
        let row = try #require(tables[0].rows.first)
        let column = { (name: String) in tables[0].columns.firstIndex(of: name) ?? -1 }
        #expect(row[column("invoices")] == .integer(2) && row[column("creditNotes")] == .integer(1))
        #expect(row[column("invoicedGross")] == .integer(15_600) && row[column("creditedGross")] == .integer(2_600))
        #expect(row[column("netRevenue")] == .integer(13_000))
        let tax = try #require(tables[1].rows.first)
        #expect(tax.map(\.description).prefix(5) == ["\(ReportFold.dayKey(F.placedAt))", "us", "USD", "S", "400"])
        #expect(tax[5] == .integer(15_000 - 2_500) && tax[6] == .integer(600 - 100))
    }

    @Test("pipeline: dead letters per stage and reason code; SLA breaches per status")
    func pipeline() {
        var store = Store()
        func letter(_ stage: String, _ error: String) -> Event {
            DeadLetter(originalTopic: "t", partition: 0, offset: 1, stage: stage, error: error, attempts: 1, failedAt: F.now, rawKey: nil, rawValue: nil).event
        }
        store.fold([letter("tracking", "unknown tracking number 1Z999"), letter("tracking", "unknown tracking number 1Z998"), letter("intake", "payload is not valid JSON: x")])
        store.fold([SLAAlert(orderId: "a", rule: "r", status: .placed, since: F.now, thresholdSeconds: 60, severity: .warning, detectedAt: F.now).event])
        #expect(store.query.deadLetters().rows == [
            [.text("intake"), .text("payload is not valid JSON"), .integer(1)], [.text("tracking"), .text("unknown tracking number"), .integer(2)],
        ])
        #expect(store.query.slaBreaches(.init()).rows.map { $0[1...] } == [[.text("placed"), .integer(1)]])
    }

    @Test("the same input folded twice after a crash gives the same buckets as the stage state sees them")
    func determinism() {
        var first = Store()
        var second = Store()
        let event = Self.placed("a").event
        first.fold([event], at: F.now)
        second.fold([event], at: F.now)
        #expect(first.state == second.state)
        #expect(ReportQuery.percentile(["x_0": 1, "x_3": 1, "x_5": 2], "x", 0.5) == 8)
        #expect(ReportQuery.percentile([:], "x", 0.5) == 0)
        #expect(ReportFold.histogramKey("ship", seconds: 0) == "ship_0")
        #expect(ReportFold.histogramKey("ship", seconds: 5) == "ship_3")
    }

    @Test("tables as text and CSV")
    func formats() {
        let table = ReportTable(name: "t", columns: ["a", "b"], rows: [[.text("x,y"), .integer(3)], [.text("z"), .decimal(0.5)]])
        #expect(table.csv == "a,b\n\"x,y\",3\nz,0.500\n")
        #expect(table.text.split(separator: "\n").count == 3)
    }
}

/// The fulfilment report's location and backorder tables: requests and their answers per
/// day and location, the short-pick rate, SLA misses, time to pick; backorders filled and
/// their age.
@Suite struct LocationReportTests {
    typealias Store = ReportTests.Store

    func progressed(_ status: FulfilmentStatus, location: String = "3PL-1", order: String = "o-1", after seconds: TimeInterval = 0) -> Event {
        FulfilmentProgressed(
            orderId: order, requestId: "\(order)/\(location)", location: location, mode: .thirdParty, status: status, requestedAt: F.now,
            at: F.now.addingTimeInterval(seconds), lines: [F.shipmentLine("1", "SKU-A", 1)]
        ).event
    }

    @Test func requestsAnswersShortPicksAndTimeToPickPerLocationAndDay() throws {
        var store = Store()
        store.fold([
            progressed(.requested), progressed(.accepted, after: 10), progressed(.packed, after: 100),
            progressed(.requested, order: "o-2"), progressed(.shipped, order: "o-2", after: 3_000),
            progressed(.requested, order: "o-3"), progressed(.withdrawn, order: "o-3", after: 9_000),
            progressed(.requested, order: "o-4"),
            FulfilmentShort(
                orderId: "o-4", requestId: "o-4/3PL-1", location: "3PL-1", lines: [F.shipmentLine("1", "SKU-A", 2)], cause: .shortPick,
                reason: Reason(code: "short_pick", message: "found 0"), decidedAt: F.now
            ).event,
            FulfilmentShort(
                orderId: "o-3", requestId: "o-3/3PL-1", location: "3PL-1", lines: [F.shipmentLine("1", "SKU-A", 1)], cause: .withdrawn,
                reason: Reason(code: "fulfilment_sla_missed", message: "late"), decidedAt: F.now
            ).event,
            FulfilmentOverdue(orderId: "o-3", requestId: "o-3/3PL-1", location: "3PL-1", rule: "accept", due: F.now, withdrawAt: F.now, detectedAt: F.now).event,
        ])
        let table = store.query.locations(ReportQuery.Filter())
        try #require(table.rows.count == 1)
        let row = Dictionary(uniqueKeysWithValues: zip(table.columns, table.rows[0]))
        #expect(row["location"] == .text("3PL-1"))
        #expect(row["requests"] == .integer(4))
        #expect(row["accepted"] == .integer(1))
        #expect(row["packed"] == .integer(1) && row["ownLabel"] == .integer(1))
        #expect(row["shortPicks"] == .integer(1) && row["shortUnits"] == .integer(2))
        #expect(row["shortPickRate"] == .decimal(0.25))
        #expect(row["withdrawn"] == .integer(1) && row["overdue"] == .integer(1))
        #expect(row["pickP50s"] == .integer(128), "100 s falls in the 2^7 bucket")
        #expect(row["pickP90s"] == .integer(4_096), "3,000 s in the 2^12 one")
    }

    @Test func aBackorderFilledCountsItsAgeFromItsFirstDecision() throws {
        var store = Store()
        let line = BackorderedLine(lineId: "1", sku: "SKU-A", quantity: 2)
        store.fold([OrderBackordered(orderId: "o-1", lines: [line], policy: .backorder, reasons: [], decidedAt: F.now).event], at: F.now)
        // A later decision does not restart the clock.
        store.fold([OrderPartiallyAllocated(orderId: "o-1", allocations: [], backordered: [line], policy: .backorder, decidedAt: F.now).event], at: F.now.addingTimeInterval(50))
        let filled = InventoryResult(orderId: "o-1", lineId: "1", sku: "SKU-A", location: "WH-1", quantity: 2, outcome: .backorderFilled, commandId: "c").event
        store.fold([filled], at: F.now.addingTimeInterval(1_000))
        store.fold([filled], at: F.now.addingTimeInterval(2_000))
        let table = store.query.backorders(ReportQuery.Filter())
        try #require(table.rows.count == 1)
        let row = Dictionary(uniqueKeysWithValues: zip(table.columns, table.rows[0]))
        #expect(row["filled"] == .integer(1), "counted at the first stock that came for it")
        #expect(row["ageP50s"] == .integer(1_024))
        #expect(store.query.locations(ReportQuery.Filter()).rows.isEmpty, "not a location")
    }
}

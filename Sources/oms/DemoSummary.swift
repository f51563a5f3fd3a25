import Contracts
import Fleet
import Foundation
import Kafka
import Logging
import Workers

/// Stock summed over locations, per SKU.
struct DemoInventory: Codable, Sendable {
    var onHand: [String: Int] = [:]
    var reserved: [String: Int] = [:]
    /// Locations whose numbers cannot be right: negative, or more reserved than on hand.
    var broken: [String] = []

    init(_ levels: GlobalTable) {
        for (key, value) in levels.values {
            guard case .inventoryLevel(let level) = value, key == level.sku else { continue }
            for stock in level.locations {
                onHand[level.sku, default: 0] += stock.onHand
                reserved[level.sku, default: 0] += stock.reserved
                if stock.onHand < 0 || stock.reserved < 0 || stock.reserved > stock.onHand {
                    broken.append("\(level.sku)@\(stock.location): on hand \(stock.onHand), reserved \(stock.reserved)")
                }
            }
        }
    }

    func total(_ skus: [String]) -> (onHand: Int, reserved: Int) {
        (skus.reduce(0) { $0 + (onHand[$1] ?? 0) }, skus.reduce(0) { $0 + (reserved[$1] ?? 0) })
    }
}

/// The end of a demo run: what became of the orders, the invariants and the latencies.
struct DemoSummary: Codable, Sendable {
    /// One checked property of the run.
    struct Invariant: Codable, Sendable {
        var name: String
        var holds: Bool
        var detail: String
    }

    /// Latency of one stage: from the record that caused an output to the output.
    struct Latency: Codable, Sendable {
        var p50Ms: Double
        var p99Ms: Double
        var records: Int
    }

    var orders: Int
    var settled: Bool
    var seconds: Double
    var finalStates: [String: Int]
    var explained: [String: Int]
    var twists: [String: Int]
    var routes: [String: Int]
    var gatewayAnswers: [String: Int]
    var replayedAnswers: Int
    var directRecords: [String: Int]
    var followUps: [String: Int]
    var deadLetters: [String: Int]
    var inventoryBefore: [String: Int]
    var inventoryAfter: [String: Int]
    var scarceStock: [String: [String: Int]]
    var invariants: [Invariant]
    var latency: [String: Latency]

    var passed: Bool { invariants.allSatisfy(\.holds) }

    static let finalStatuses: Set<OrderStatus> = [.delivered, .cancelled, .rejected, .declined, .returned, .partiallyReturned]

    /// Nil while the order is still moving; else "final" or why it rests where it is.
    /// " plus 0/1/0/0 restocked from returns": a returned unit put back on the shelf can be
    /// shipped again, so a scarce SKU may ship more than its first stock.
    static func restockNote(_ restocked: [Int]) -> String {
        restocked.allSatisfy { $0 == 0 } ? "" : " plus \(restocked.map(String.init).joined(separator: "/")) restocked from returns"
    }

    static func settlement(_ plan: DemoScenario.PlannedOrder, _ view: OrderView, returnRequested: Bool, views: GlobalTable) -> String? {
        let parcelsOut = view.shipments.contains { $0.status != .delivered }
        let returnOpen = view.returns.contains { $0.status == .authorized || $0.status == .awaitingDelivery }
        if parcelsOut || returnOpen { return nil }
        // A received exchange ends when its replacement ships or is refunded instead.
        for entry in view.returns where entry.status == .received && entry.exchangeOutcome != .refund {
            guard let replacement = entry.exchangeOrderId else { continue }
            guard case .orderView(let linked) = views.value(replacement), !linked.shipments.isEmpty else { return nil }
        }
        if view.status == .delivered, plan.returns, !returnRequested { return nil }
        if finalStatuses.contains(view.status) { return "final" }
        let wantsScarce = view.lines.contains { DemoScenario.scarceSKUs.contains($0.sku) }
        if wantsScarce, [.backordered, .partiallyAllocated, .partiallyShipped].contains(view.status) {
            return "waiting for stock of a scarce SKU"
        }
        return nil
    }

    /// Every address change and line cancel the driver sent was decided once by shipping
    /// (accepted, refused, or — all units — the order cancelled); no order ships a
    /// cancelled unit; nothing is left reserved once every order has settled.
    static func orderChanges(scenario: DemoScenario, views: GlobalTable, requests: [String: [OrderChangeKind]], after: DemoInventory) -> Invariant {
        func count(_ view: OrderView, _ types: [EventType]) -> Int {
            view.history.filter { entry in types.contains { entry.eventType == $0.description } }.count
        }
        var problems: [String] = []
        var (addresses, lines, wholeOrders, cancelledUnits) = (0, 0, 0, 0)
        for plan in scenario.orders where plan.expectsView {
            guard case .orderView(let view) = views.value(plan.orderId) else { continue }
            let asked = requests[plan.orderId] ?? []
            let moved = count(view, [ShippingAddressChanged.eventType])
            let whole = asked.contains(.lines) ? count(view, [OrderCancelled.eventType]) : 0
            let cut = count(view, [OrderLinesCancelled.eventType]) + whole
            let refused = count(view, [OrderChangeRejected.eventType])
            addresses += moved
            lines += cut
            wholeOrders += whole
            if moved + cut + refused != asked.count { problems.append("\(plan.orderId): \(asked.count) changes asked, \(moved + cut + refused) decided") }
            for line in view.lineProgress {
                cancelledUnits += line.cancelled ?? 0
                if line.shipped + (line.cancelled ?? 0) > line.ordered {
                    problems.append("\(plan.orderId) line \(line.lineId): \(line.shipped) shipped + \(line.cancelled ?? 0) cancelled > \(line.ordered) ordered")
                }
            }
        }
        let reserved = after.reserved.values.reduce(0, +)
        if reserved != 0 { problems.append("\(reserved) units still reserved after every order settled") }
        return Invariant(
            name: "order changes decided once, cancelled units never shipped, no reservation left behind", holds: problems.isEmpty,
            detail: problems.isEmpty
                ? "\(requests.values.map(\.count).reduce(0, +)) changes asked: \(addresses) addresses changed, \(lines) line cancels (\(cancelledUnits) units; \(wholeOrders) of every unit left, which cancelled the order), the rest refused; 0 units reserved at the end"
                : problems.prefix(10).joined(separator: "; "))
    }

    /// Every exchange the driver asked for ends once: its replacement (a linked order)
    /// shipped in one parcel, or, refunded instead, none; a cheaper replacement's
    /// difference refunded, an even one's nothing.
    static func exchanges(views: GlobalTable, asked: [String: DemoScenario.ExchangeKind]) -> Invariant {
        var problems: [String] = []
        var (replaced, refunded, differences, expired) = (0, 0, 0, 0)
        for (orderId, kind) in asked.sorted(by: { $0.key < $1.key }) {
            guard case .orderView(let view) = views.value(orderId) else { continue }
            guard let entry = view.returns.first(where: { $0.exchangeOrderId != nil || $0.exchangeOutcome != nil }) else {
                problems.append("\(orderId): the \(kind.rawValue) exchange was not authorized (\(view.returns.map(\.status)))")
                continue
            }
            var parcels = 0
            if let replacement = entry.exchangeOrderId, case .orderView(let linked) = views.value(replacement) {
                parcels = linked.shipments.count
                if linked.replacesOrderId != orderId { problems.append("\(replacement) does not name \(orderId) as the order it replaces") }
            }
            let instead = entry.exchangeOutcome == .refund
            if entry.status == .expired {
                // Never sent back: its replacement was cancelled, so nothing shipped or refunded.
                var cancelled = false
                if let replacement = entry.exchangeOrderId, case .orderView(let linked) = views.value(replacement) { cancelled = linked.status == .cancelled }
                if parcels == 0, cancelled, entry.refund == nil { expired += 1 } else { problems.append("\(orderId): RMA expired, replacement cancelled: \(cancelled), \(parcels) parcels") }
                continue
            }
            switch (parcels, instead) {
            case (1, false):
                replaced += 1
                let back = entry.refund?.minorUnits ?? 0
                if kind == .cheaper, back > 0 { differences += 1 }
                if kind == .even, back != 0 { problems.append("\(orderId): an even exchange refunded \(back)") }
                if kind == .cheaper, back == 0 { problems.append("\(orderId): a cheaper exchange refunded no difference") }
                if kind == .scarce, back > 0 { differences += 1 }
            case (0, true): refunded += 1
            default: problems.append("\(orderId): \(parcels) replacement parcels, refunded instead: \(instead)")
            }
        }
        return Invariant(
            name: "every exchange ends once: one replacement shipped, one refund, or the RMA expired and its replacement cancelled", holds: problems.isEmpty,
            detail: problems.isEmpty
                ? "\(asked.count) exchanges (\(asked.values.filter { $0 == .even }.count) even, \(asked.values.filter { $0 == .cheaper }.count) for a cheaper SKU, \(asked.values.filter { $0 == .scarce }.count) for a scarce one, \(asked.values.filter { $0 == .neverSent }.count) never sent back): \(replaced) replacements shipped as linked orders, \(differences) differences refunded, \(refunded) refunded instead (no stock), \(expired) RMAs expired with their replacement cancelled"
                : problems.prefix(10).joined(separator: "; "))
    }

    static func make(
        scenario: DemoScenario, driver: DemoDriver, sender: DemoSender, views: GlobalTable, timelines: GlobalTable, levels: GlobalTable, before: DemoInventory,
        settled: Bool, elapsed: Double, outbound: [Invariant] = [], kafka: KafkaConfiguration, logger: Logger
    ) async throws -> DemoSummary {
        let expected = scenario.orders.filter(\.expectsView)
        let returnRequests = await driver.returnRequests
        var finalStates: [String: Int] = [:]
        var explained: [String: Int] = [:]
        var unsettled: [String] = []
        var shippedUnits: [String: Int] = [:]
        var restocked: [String: Int] = [:]
        for plan in expected {
            guard case .orderView(let view) = views.value(plan.orderId) else {
                unsettled.append("\(plan.orderId) (\(plan.twist.rawValue)): no order view")
                continue
            }
            for shipment in view.shipments {
                for line in shipment.lines { shippedUnits[line.sku, default: 0] += line.quantity }
            }
            for entry in view.returns where entry.status == .received && !plan.index.isMultiple(of: 3) {
                for line in entry.lines { restocked[line.sku, default: 0] += line.quantity }
            }
            switch settlement(plan, view, returnRequested: returnRequests.contains(view.orderId), views: views) {
            case "final": finalStates[view.status.rawValue, default: 0] += 1
            case let reason?: explained["\(view.status.rawValue): \(reason)", default: 0] += 1
            case nil: unsettled.append("\(plan.orderId) (\(plan.twist.rawValue)): \(view.status.rawValue)")
            }
        }
        // Exchanges' replacements are orders of their own: their parcels and sales count too.
        let plannedIds = Set(expected.map(\.orderId))
        let replacements = views.values.values.compactMap { event -> OrderView? in
            if case .orderView(let view) = event, let original = view.replacesOrderId, plannedIds.contains(original) { view } else { nil }
        }
        for view in replacements {
            for line in view.shipments.flatMap(\.lines) { shippedUnits[line.sku, default: 0] += line.quantity }
        }
        let after = DemoInventory(levels)

        // The records themselves: duplicates, dead letters and latencies.
        let scanned = TopicCatalog.topics.filter { $0.cleanupPolicy == .delete || $0.name == OrderView.topic || $0.name == InventoryLevel.topic }
        let topics = Set(scanned.map(\.name) + [TopicCatalog.deadLetterTopic]).sorted()
        let records = try await TopicScan.records(of: topics, kafka: kafka.with(clientID: "oms-demo-scan"), logger: logger)
        var placed: [String: Int] = [:]
        var deadLetters: [String: Int] = [:]
        var times: [String: Date] = [:]
        var outputs: [(stage: String, cause: String, time: Date)] = []
        let stageNames = Set(StageCatalog.pipeline)
        let planned = Set(scenario.orders.map(\.orderId))
        for record in records {
            guard let envelope = try? Envelope.decode(record.eventRecord) else { continue }
            times[envelope.id] = envelope.time
            // Stage outputs only: changelog records (`oms/<stage>.state`) are the same step.
            if let cause = envelope.causationID, envelope.source.hasPrefix("oms/"), stageNames.contains(String(envelope.source.dropFirst(4))) {
                outputs.append((String(envelope.source.dropFirst(4)), cause, envelope.time))
            }
            switch envelope.event {
            case .orderPlaced(let order) where planned.contains(order.orderId): placed[order.orderId, default: 0] += 1
            case .deadLetter(let letter): deadLetters["\(letter.stage): \(letter.originalTopic)", default: 0] += 1
            default: break
            }
        }
        var samples: [String: [Double]] = [:]
        for output in outputs {
            guard let cause = times[output.cause] else { continue }
            samples[output.stage, default: []].append(max(0, output.time.timeIntervalSince(cause) * 1000))
        }
        let latency = samples.mapValues { values in
            let sorted = values.sorted()
            func at(_ p: Double) -> Double { sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }
            return Latency(p50Ms: at(0.5), p99Ms: at(0.99), records: sorted.count)
        }

        // The invariants.
        let statuses = await sender.statuses
        let replayed = await sender.replayed
        let count = { (twist: DemoScenario.Twist, routes: [DemoScenario.Route]) in
            scenario.orders.filter { $0.twist == twist && routes.contains($0.route) }.count
        }
        var invariants: [Invariant] = []
        // The supplier's delivery (DemoLocations.restock) came once every order was sent.
        let supplied = DemoLocations.restockUnits
        let oversold = DemoScenario.scarceSKUs.filter { (shippedUnits[$0] ?? 0) > DemoScenario.scarceStock + supplied + (restocked[$0] ?? 0) }
        invariants.append(Invariant(
            name: "no oversell", holds: after.broken.isEmpty && oversold.isEmpty,
            detail: after.broken.isEmpty && oversold.isEmpty
                ? "every location has 0 ≤ reserved ≤ on hand; scarce SKUs shipped \(DemoScenario.scarceSKUs.map { "\(shippedUnits[$0] ?? 0)" }.joined(separator: "/")) of \(DemoScenario.scarceStock) each plus \(supplied) each from the supplier"
                    + Self.restockNote(DemoScenario.scarceSKUs.map { restocked[$0] ?? 0 })
                : (after.broken + oversold.map { "\($0): shipped \(shippedUnits[$0] ?? 0) > stock \(DemoScenario.scarceStock) + supplied \(supplied) + restocked \(restocked[$0] ?? 0)" }).prefix(10).joined(separator: "; ")))
        let duplicated = placed.filter { $0.value > 1 }
        let resent = scenario.orders.filter { $0.twist == .resent }.count
        invariants.append(Invariant(
            name: "no duplicate order", holds: duplicated.isEmpty,
            detail: duplicated.isEmpty
                ? "\(placed.count) orders placed once each on \(OrderPlaced.topic), \(resent) of them sent twice"
                : "placed more than once: " + duplicated.prefix(10).map { "\($0.key) ×\($0.value)" }.joined(separator: ", ")))
        invariants.append(Invariant(
            name: "every order in a final or explained state", holds: unsettled.isEmpty,
            detail: unsettled.isEmpty
                ? "\(expected.count) orders: \(finalStates.values.reduce(0, +)) final, \(explained.values.reduce(0, +)) explained"
                : "\(unsettled.count) not: " + unsettled.prefix(10).joined(separator: "; ")))
        let malformedRecords = count(.malformedKafka, [.marketplace])
        let inboundLetters = deadLetters.filter { $0.key.hasSuffix(InboundChannelOrder.topic) }.values.reduce(0, +)
        let malformedBodies = count(.malformedHTTP, [.shopify, .web])
        invariants.append(Invariant(
            name: "malformed input refused or dead-lettered", holds: inboundLetters == malformedRecords && (statuses[400] ?? 0) >= malformedBodies,
            detail: "\(malformedBodies) malformed bodies → \(statuses[400] ?? 0) × 400; \(malformedRecords) malformed records → \(inboundLetters) dead letters"))
        let resentHTTP = count(.resent, [.shopify, .web])
        invariants.append(Invariant(
            name: "re-sent webhooks answered from the first delivery", holds: replayed == resentHTTP,
            detail: "\(resentHTTP) re-sent webhooks, \(replayed) answered with Idempotent-Replayed"))
        invariants.append(Self.orderChanges(scenario: scenario, views: views, requests: await driver.changeRequests, after: after))
        invariants.append(Self.exchanges(views: views, asked: await driver.exchanges))
        invariants += outbound
        invariants.append(try await feedsMatch(scenario: scenario, views: views, timelines: timelines, kafka: kafka, logger: logger))
        invariants.append(try await reportsMatch(
            scenario: scenario, views: views, replacements: replacements, shippedUnits: shippedUnits, deadLetters: deadLetters.values.reduce(0, +), kafka: kafka))

        func totals(_ inventory: DemoInventory) -> [String: Int] {
            let regular = inventory.total(DemoScenario.regularSKUs)
            let scarce = inventory.total(DemoScenario.scarceSKUs)
            return ["regularOnHand": regular.onHand, "regularReserved": regular.reserved, "scarceOnHand": scarce.onHand, "scarceReserved": scarce.reserved]
        }
        return DemoSummary(
            orders: scenario.orders.count, settled: settled, seconds: elapsed, finalStates: finalStates, explained: explained,
            twists: Dictionary(grouping: scenario.orders, by: \.twist.rawValue).mapValues(\.count),
            routes: Dictionary(grouping: scenario.orders, by: \.route.rawValue).mapValues(\.count),
            gatewayAnswers: Dictionary(uniqueKeysWithValues: statuses.map { (String($0.key), $0.value) }), replayedAnswers: replayed,
            directRecords: await sender.direct, followUps: await driver.actions, deadLetters: deadLetters,
            inventoryBefore: totals(before), inventoryAfter: totals(after),
            scarceStock: Dictionary(uniqueKeysWithValues: DemoScenario.scarceSKUs.map {
                ($0, ["before": before.onHand[$0] ?? 0, "after": after.onHand[$0] ?? 0, "reservedAfter": after.reserved[$0] ?? 0, "shipped": shippedUnits[$0] ?? 0])
            }),
            invariants: invariants, latency: latency)
    }

    /// The report stage's numbers against a model: orders, revenue and rejections per
    /// channel from what was sent; shipped units, returned units and deliveries from the
    /// order views; dead letters from the dead-letter topic. The report stage may trail
    /// the views, so this waits up to 60 s for them to agree.
    static func reportsMatch(
        scenario: DemoScenario, views: GlobalTable, replacements: [OrderView], shippedUnits: [String: Int], deadLetters: Int, kafka: KafkaConfiguration
    ) async throws -> Invariant {
        var model: [String: Int64] = [:]
        for view in replacements {
            model["orders \(view.channel)", default: 0] += 1
            model["revenue \(view.channel) \(view.currency.code)", default: 0] += view.totals?.total.minorUnits ?? 0
        }
        for plan in scenario.orders where plan.expectsView {
            let channel = plan.order.channel
            if plan.twist == .unknownSKU {
                model["rejected \(channel)", default: 0] += 1
            } else {
                model["orders \(channel)", default: 0] += 1
                model["revenue \(channel) \(plan.order.currency.code)", default: 0] += plan.order.totals.total.minorUnits
            }
        }
        for (sku, units) in shippedUnits { model["shipped \(sku)"] = Int64(units) }
        for case .orderView(let view) in views.values.values where Set(scenario.orders.map(\.orderId)).contains(view.orderId) {
            if view.deliveredAt != nil { model["delivered orders", default: 0] += 1 }
            for entry in view.returns where [ReturnStatus.authorized, .received, .expired, .review].contains(entry.status) {
                model["returned units", default: 0] += Int64(entry.lines.reduce(0) { $0 + $1.quantity })
            }
        }
        model["dead letters"] = Int64(deadLetters)
        var differences: [String] = []
        let deadline = ContinuousClock.now + .seconds(60)
        repeat {
            let buckets = try await GlobalTable.snapshot(topic: ReportBucket.topic, kafka: kafka.with(clientID: "oms-demo-reports")).values.compactMap { event -> ReportBucket? in
                if case .reportBucket(let bucket) = event { return bucket } else { return nil }
            }
            let query = ReportQuery(buckets: buckets)
            var reported: [String: Int64] = [:]
            func int(_ cell: ReportTable.Cell) -> Int64 { if case .integer(let value) = cell { value } else { 0 } }
            for row in query.orders(.init()).rows {
                let channel = row[1].description
                if int(row[3]) > 0 { reported["orders \(channel)", default: 0] += int(row[3]) }
                if int(row[4]) > 0 { reported["revenue \(channel) \(row[2])", default: 0] += int(row[4]) }
                if int(row[7]) > 0 { reported["rejected \(channel)", default: 0] += int(row[7]) }
            }
            for row in query.inventory(onHand: [:], reserved: [:]).rows where int(row[1]) > 0 { reported["shipped \(row[0])"] = int(row[1]) }
            reported["delivered orders"] = query.fulfilment(.init()).rows.reduce(0) { $0 + int($1[2]) }
            reported["returned units"] = query.returns().rows.reduce(0) { $0 + int($1[2]) }
            reported["dead letters"] = query.deadLetters().rows.reduce(0) { $0 + int($1[2]) }
            differences = Set(model.keys).union(reported.keys).sorted().compactMap { key in
                (model[key] ?? 0) == (reported[key] ?? 0) ? nil : "\(key): model \(model[key] ?? 0), report \(reported[key] ?? 0)"
            }
            if differences.isEmpty { break }
            try await Task.sleep(for: .seconds(1))
        } while ContinuousClock.now < deadline
        return Invariant(
            name: "reports agree with the inputs", holds: differences.isEmpty,
            detail: differences.isEmpty
                ? "orders, revenue and rejections per channel, shipped units per SKU, deliveries, returned units and dead letters (\(model.count) numbers)"
                : differences.prefix(10).joined(separator: "; "))
    }

    /// The CRM and ERP feeds against the order views: every order with an address is in
    /// its customer's timeline with the view's status, the lifetime values add up to what
    /// the listed orders are worth, and the ERP feed has one order row per placed order and
    /// one shipment row per shipment. The feed stages trail the views, so this waits up to
    /// 60 s for them to agree.
    static func feedsMatch(scenario: DemoScenario, views: GlobalTable, timelines: GlobalTable, kafka: KafkaConfiguration, logger: Logger) async throws -> Invariant {
        let planned = Set(scenario.orders.map(\.orderId))
        let orderViews = views.values.values.compactMap { event -> OrderView? in
            if case .orderView(let view) = event, planned.contains(view.orderId) { view } else { nil }
        }
        let withAddress = orderViews.filter { CustomerTimelines.normalized(email: $0.customerEmail) != nil }
        let placedViews = orderViews.filter { $0.totals != nil && $0.status != .rejected }
        var problems: [String] = []
        var customers = 0
        let deadline = ContinuousClock.now + .seconds(60)
        repeat {
            problems = []
            var listed: [String: OrderStatus] = [:]
            customers = 0
            for case .customerTimeline(let timeline) in timelines.values.values {
                customers += 1
                for order in timeline.orders { listed[order.orderId] = order.status }
                if timeline.lifetime.value != CustomerTimelines.sum(timeline.orders.compactMap(CustomerTimelines.value) + timeline.older.value) {
                    problems.append("customer \(timeline.customerId): lifetime value \(timeline.lifetime.value) is not what its orders are worth")
                }
            }
            for view in withAddress where listed[view.orderId] != view.status {
                problems.append("\(view.orderId): \(listed[view.orderId].map { "timeline says \($0.rawValue)" } ?? "in no timeline"), view \(view.status.rawValue)")
            }
            let rows = try await TopicScan.records(of: [ERPRecord.topic], kafka: kafka.with(clientID: "oms-demo-erp"), logger: logger).compactMap { record -> ERPRecord? in
                if case .erpRecord(let row)? = (try? Envelope.decode(record.eventRecord))?.event { row } else { nil }
            }
            let orderRows = Set(rows.filter { $0.entity == .orders }.map(\.id))
            let shipmentRows = Set(rows.filter { $0.entity == .shipments }.map(\.id))
            for view in placedViews where !orderRows.contains(view.orderId) { problems.append("\(view.orderId): no ERP order row") }
            for shipment in orderViews.flatMap(\.shipments) where !shipmentRows.contains(shipment.shipmentId) {
                problems.append("shipment \(shipment.shipmentId): no ERP shipment row")
            }
            if problems.isEmpty { break }
            try await Task.sleep(for: .seconds(1))
        } while ContinuousClock.now < deadline
        return Invariant(
            name: "CRM and ERP feeds agree with the order views", holds: problems.isEmpty,
            detail: problems.isEmpty
                ? "\(withAddress.count) orders in \(customers) customer timelines with their status and value; \(placedViews.count) order rows and \(orderViews.flatMap(\.shipments).count) shipment rows for the ERP"
                : "\(problems.count) differences: " + problems.prefix(10).joined(separator: "; "))
    }

    func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }

    var text: String {
        func table(_ values: [String: Int]) -> String {
            values.sorted { $0.key < $1.key }.map { "    \($0.key): \($0.value)" }.joined(separator: "\n")
        }
        var lines = ["", "Summary: \(orders) orders in \(String(format: "%.1f", seconds)) s\(settled ? "" : " (not all settled)")"]
        lines += ["  final states:", table(finalStates)]
        if !explained.isEmpty { lines += ["  resting, explained:", table(explained)] }
        lines += ["  order mix:", table(twists)]
        lines += ["  gateway answers (HTTP status): " + gatewayAnswers.sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", ") + ", \(replayedAnswers) replayed"]
        lines += ["  follow-ups:", table(followUps)]
        lines += ["  dead letters:", deadLetters.isEmpty ? "    none" : table(deadLetters)]
        lines += ["  inventory before → after:"]
        lines += inventoryBefore.keys.sorted().map { "    \($0): \(inventoryBefore[$0] ?? 0) → \(inventoryAfter[$0] ?? 0)" }
        lines += ["  latency per stage (cause → output; p50 / p99 ms):"]
        lines += latency.sorted { $0.key < $1.key }.map {
            "    " + $0.key.padding(toLength: 16, withPad: " ", startingAt: 0) + String(format: "%8.1f / %8.1f  (%d records)", $0.value.p50Ms, $0.value.p99Ms, $0.value.records)
        }
        lines += ["  invariants:"]
        lines += invariants.map { "    [\($0.holds ? "ok" : "FAILED")] \($0.name): \($0.detail)" }
        lines.append(passed ? "All invariants hold." : "AN INVARIANT FAILED.")
        return lines.joined(separator: "\n")
    }
}

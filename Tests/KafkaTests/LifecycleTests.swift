import Contracts
import Fleet
import Foundation
import Kafka
import OrderFleetTesting
import ReferenceStages
import Testing
import Workers

// In the pipeline suite: the noida-db run joins the same consumer groups as the other
// pipeline tests, and all of them run worker processes that load this 2-core machine.
extension PipelineTests {
    /// On the shared noida-db (or `KAFKA_BROKERS`), exactly once.
    @Test("life cycle: 1,000 orders from inbound to delivered, 10% returned, 5% cancelled; views, stock and payments match the model")
    func lifecycle() async throws {
        try await OrderLifecycle.run(orders: 1_000, kill: false)
    }
}

/// Drives orders through every stage as channels, carriers, customers and operators
/// would, then checks the final views, stock and payment commands against what a model
/// computes from the inputs alone.
enum OrderLifecycle {
    /// Every topic the ten stages read or write, except oms.alerts (no SLA fires here).
    static let topics = PipelineScenario.topics

    /// One order of the model: what was asked and what should come of it.
    struct Planned {
        let name: String
        let order: CanonicalOrder
        let orderId: String
        /// Held for review (above the threshold), then cancelled by an operator.
        let cancel: Bool
        /// Returns one unit of its first line after delivery; "damaged" is written off.
        let returnReason: String?
    }

    /// On `broker` at least once, else on noida-db (or `KAFKA_BROKERS`) exactly once.
    static func run(orders count: Int, kill: Bool, broker: EmbeddedBrokerProcess? = nil) async throws {
        let mode: DeliveryMode = broker == nil ? .exactlyOnce : .atLeastOnce
        if broker == nil { try await TestCluster.make(.full).ensureTopics(topics) }
        let scenario = try await PipelineScenario.make(cluster: broker?.cluster, rules: """
            payment:
              holdAboveMinorUnits: {USD: 100000}
            sourcing: {maxShipments: 2, maxReplans: 2, backorderPolicy: backorder}
            locations:
              - {id: WH-A, type: warehouse, country: US, latitude: 40.7, longitude: -74.0}
              - {id: WH-B, type: warehouse, country: US, latitude: 34.0, longitude: -118.2}
            zones:
              - {country: US, latitude: 41.9, longitude: -87.6}
            returns: {windowDays: 30, writeOffReasons: [damaged], receivingLocation: WH-A, carrier: ups}
            notifications: {reviewInvitationDelaySeconds: 1, checkIntervalSeconds: 1}
            sla:
              rules:
                - {name: approved_not_allocated, status: approved, maxSeconds: 86400}
            """)
        let run = scenario.run
        // Even SKUs are stocked only at WH-A, odd ones only at WH-B: an order with both
        // kinds ships in two parcels.
        let skus = (0..<20).map { "\(run)-sku-\($0)" }
        let initial = 10_000
        var setup: [Event] = skus.map { sku in
            CatalogProduct(
                sku: sku, title: sku, weightGrams: 400, dimensions: Dimensions(lengthMm: 100, widthMm: 100, heightMm: 50),
                blockedCountries: [], hazmat: false, prices: []
            ).event
        }
        for sku in skus {
            setup.append(AdjustInventory(sku: sku, location: skuLocation(sku, skus), mode: .absolute, quantity: initial, source: "test", sourceSequence: 1).event)
        }
        try await scenario.produce(setup)

        var generator = SplitMix64(seed: 6)
        var planned: [Planned] = []
        for index in 0..<count {
            let cancel = index % 20 == 3
            let lineCount = Int.random(in: 1...2, using: &generator)
            var lines = (0..<lineCount).map { slot in
                (skus[(index + slot * 7) % skus.count], Int.random(in: 1...3, using: &generator), Int64(Int.random(in: 5...60, using: &generator) * 100))
            }
            if cancel { lines[0].2 = 200_000 }  // above the hold threshold
            let order = scenario.canonical("o\(index)", lines: lines)
            let returnReason: String? = !cancel && index % 10 == 5 ? (index % 20 == 5 ? "damaged" : "changed_mind") : nil
            planned.append(Planned(
                name: "o\(index)", order: order, orderId: DeterministicID.orderID(channel: order.channel, externalOrderID: order.externalOrderId),
                cancel: cancel, returnReason: returnReason))
        }
        let byId = Dictionary(uniqueKeysWithValues: planned.map { ($0.orderId, $0) })

        var overrides = [
            "RULES_FILE": scenario.rulesFile, "WORKER_BATCH_SIZE": "500", "WORKER_RETRY_ATTEMPTS": "4",
            "LOG_LEVEL": ProcessInfo.processInfo.environment["TEST_WORKER_LOG_LEVEL"] ?? "notice",
        ]
        if broker != nil { overrides["KAFKA_PROPERTIES"] = EmbeddedBrokerProcess.compressedProducers }
        // Dynamic members leave their groups when stopped. (Static ones would not, and
        // noida-db never expires them: later tests of the same stages would get no partitions.)
        // The order stages only: the report stage is the demo's and the gateway's to test,
        // and its inputs include oms.alerts, which another suite owns on the shared broker.
        let stages = ["intake", "payment", "fraud-velocity", "inventory", "allocation", "shipping", "tracking", "returns", "view", "sla-watch"]
        let fleet = WorkerFleet(
            fixture: scenario.fixture, stage: "lifecycle-\(run)", mode: mode, staticMembership: false,
            arguments: ["fleet"] + stages.flatMap { ["--stage", $0] }, overrides: overrides)
        defer { fleet.stopAll() }
        // Both processes ready (every stage assigned and restored) before orders flow, so
        // no member joins under open transactions.
        let ports = try (0..<2).map { _ in Int(try NoidaServer.freePort()) }
        for instance in 0..<2 { try fleet.start(instance, httpPort: ports[instance]) }
        let ready = try await waitUntil(timeout: .seconds(180)) {
            var all = true
            for port in ports where await LocalHTTP.readiness(port: port) != 200 { all = false }
            return all
        }
        try #require(ready, "fleet processes ready; logs in \(fleet.directory.path)")
        // Orders only once inventory has applied the counts (allocation plans from them).
        let stocked = try await waitUntil(timeout: .seconds(120)) { try await scenario.finalLevels().count == skus.count }
        try #require(stocked, "inventory levels exist; logs in \(fleet.directory.path)")
        try await scenario.produce(try planned.map { try scenario.inbound($0.order) })
        // A carrier push for a number nobody issued goes to the dead-letter topic.
        try await scenario.produce([carrierUpdate(carrier: "ups", number: "\(run)-NOBODY", status: .inTransit, at: Date(), eventId: "\(run)-nobody")])

        // The outside world, until every order is where the model says it ends.
        var pushed = Set<String>()  // shipments and returns whose parcels were tracked
        var shippedOrders = Set<String>()
        var cancelled = Set<String>()
        var requested = Set<String>()
        var kills = 0
        var lastKill = ContinuousClock.now
        let killUntil = ContinuousClock.now + .seconds(40)
        var finished = false
        // The loop ends as soon as every order is where the model says; the deadline only
        // bounds a run that went wrong. Exactly once on noida-db, 1,000 orders take 3–6
        // minutes on a 2-core machine shared with the other broker suites.
        let deadline = ContinuousClock.now + .seconds(kill ? 480 : 600)
        var views: [String: OrderView] = [:]
        // Read what the stages write as it comes, not whole topics every round.
        let tail = try await TopicTail(cluster: scenario.fixture.cluster, topics: [
            PaymentHeld.topic, ShipmentCreated.topic, ReturnAuthorized.topic, OrderView.topic,
        ])
        while ContinuousClock.now < deadline {
            try await Task.sleep(for: .seconds(2))
            try broker?.checkAlive()
            if kill, ContinuousClock.now < killUntil, ContinuousClock.now - lastKill >= .seconds(6) {
                let victim = Int.random(in: 0..<2)
                fleet.kill(victim)
                try fleet.start(victim)
                kills += 1
                lastKill = ContinuousClock.now
            }
            var outside: [Event] = []
            let fresh = try await tail.next()
            // Operators cancel the held orders.
            for envelope in fresh {
                guard case .paymentHeld(let held) = envelope.event, byId[held.orderId]?.cancel == true, cancelled.insert(held.orderId).inserted else { continue }
                outside.append(CancelOrder(orderId: held.orderId, requestedBy: "ops@example.com", reason: Reason(code: "fraud", message: "card reported stolen"), requestedAt: Date()).event)
            }
            // Carriers: in transit (twice, as carriers retry), out for delivery, delivered,
            // then a stale in-transit that arrives late. Scan times lie a few minutes in
            // the past, as pushes usually arrive after the scan.
            for envelope in fresh {
                guard case .shipmentCreated(let shipment) = envelope.event, byId[shipment.orderId] != nil, pushed.insert(shipment.shipmentId).inserted else { continue }
                shippedOrders.insert(shipment.orderId)
                let start = Date().addingTimeInterval(-600)
                outside += [
                    carrierUpdate(carrier: shipment.carrier, number: shipment.trackingNumber, status: .inTransit, at: start.addingTimeInterval(60), eventId: "\(shipment.shipmentId)-1"),
                    carrierUpdate(carrier: shipment.carrier, number: shipment.trackingNumber, status: .inTransit, at: start.addingTimeInterval(60), eventId: "\(shipment.shipmentId)-1"),
                    carrierUpdate(carrier: shipment.carrier, number: shipment.trackingNumber, status: .outForDelivery, at: start.addingTimeInterval(120), eventId: "\(shipment.shipmentId)-2"),
                    carrierUpdate(carrier: shipment.carrier, number: shipment.trackingNumber, status: .delivered, at: start.addingTimeInterval(180), eventId: "\(shipment.shipmentId)-3"),
                    carrierUpdate(carrier: shipment.carrier, number: shipment.trackingNumber, status: .inTransit, at: start.addingTimeInterval(90), eventId: "\(shipment.shipmentId)-4"),
                ]
            }
            // Customers return one unit of the first line once the order is delivered.
            for envelope in fresh {
                if case .orderView(let view) = envelope.event, byId[view.orderId] != nil { views[view.orderId] = view }
            }
            // Only once every order is allocated (has a shipment): a unit restocked at
            // WH-A before a later order with its SKU is allocated would be sourced there
            // (WH-A is nearer), which the model does not foresee. CI, loaded, did that.
            let allAllocated = planned.allSatisfy { $0.cancel || shippedOrders.contains($0.orderId) }
            for view in views.values where allAllocated && view.status == .delivered {
                guard let plan = byId[view.orderId], let reason = plan.returnReason, requested.insert(view.orderId).inserted else { continue }
                let line = plan.order.lines[0]
                outside.append(ReturnRequested(
                    orderId: view.orderId, returnId: "\(plan.name)-r1",
                    lines: [ReturnLine(lineId: line.lineId, sku: line.sku, quantity: 1, reason: reason)], requestedAt: Date()).event)
            }
            // The return parcels reach the warehouse.
            for envelope in fresh {
                guard case .returnAuthorized(let ret) = envelope.event, byId[ret.orderId] != nil, let number = ret.trackingNumber,
                    pushed.insert(ret.returnId).inserted
                else { continue }
                outside.append(carrierUpdate(carrier: ret.carrier, number: number, status: .delivered, at: Date().addingTimeInterval(-10), eventId: "\(ret.returnId)-d"))
            }
            if !outside.isEmpty { try await scenario.produce(outside) }
            let done = planned.allSatisfy { plan in
                guard let view = views[plan.orderId] else { return false }
                if plan.cancel { return view.status == .cancelled }
                if plan.returnReason != nil { return [.returned, .partiallyReturned].contains(view.status) && view.returns.first?.refund != nil }
                return view.status == .delivered && view.notificationsSent.contains("review_invitation")
            }
            if done, !kill || ContinuousClock.now >= killUntil {
                finished = true
                break
            }
        }
        await tail.close()
        let statuses = Dictionary(grouping: views.values, by: \.status).mapValues(\.count)
        #expect(finished, "every order reached its end: \(statuses) of \(count); logs in \(fleet.directory.path)")
        if kill { #expect(kills >= 4, "fleet processes were killed") }
        // Stock, from the inputs alone: shipped units left, restocked units came back,
        // nothing stays reserved. The views can be final before the inventory stage has
        // applied the last restocks and releases (after a kill near the end its
        // partitions are still being restored), so wait for the levels to settle.
        var expectedOnHand: [String: Int] = [:]
        for sku in skus { expectedOnHand["\(sku)@\(skuLocation(sku, skus))"] = initial }
        for plan in planned {
            if !plan.cancel { for line in plan.order.lines { expectedOnHand["\(line.sku)@\(skuLocation(line.sku, skus))", default: 0] -= line.quantity } }
            if let reason = plan.returnReason, reason != "damaged" { expectedOnHand["\(plan.order.lines[0].sku)@WH-A", default: 0] += 1 }
        }
        /// What differs from the model, by `sku@location`.
        func stockDifferences(_ levels: [String: InventoryLevel]) -> [String: String] {
            var differences: [String: String] = [:]
            for (key, expected) in expectedOnHand {
                let parts = key.split(separator: "@").map(String.init)
                let stock = levels[parts[0]]?.locations.first { $0.location == parts[1] }
                if stock?.onHand != expected || stock?.reserved != 0 {
                    differences[key] = "\(key): on hand \(stock?.onHand ?? -1) reserved \(stock?.reserved ?? -1), model on hand \(expected) reserved 0"
                }
            }
            return differences
        }
        if finished { _ = try await waitUntil(timeout: .seconds(90), interval: .seconds(1)) { stockDifferences(try await scenario.finalLevels()).isEmpty } }
        fleet.stopAll()
        // The stages' changelogs, whole. Not oms.idempotency: at 250 orders its
        // partitions already lose their oldest half on the embedded broker (one run kept
        // them from offsets 2,408–5,278 of 6,089–8,853): keys of inputs committed long
        // before, which a replay after a kill (from the committed offsets on) does not
        // look up. A restore reading while the cut moves is the failure described in
        // EmbeddedKillTests.
        if broker != nil {
            // Compressed records kept every restore whole, and the producer's property did
            // not reach the consumers (librdkafka would warn once per property and client).
            #expect(fleet.logLines(containing: "records were deleted before the restore").isEmpty, "logs in \(fleet.directory.path)")
            let producerPropertyWarnings = fleet.logLines(containing: "is a producer property")
            #expect(producerPropertyWarnings.isEmpty, "\(producerPropertyWarnings.prefix(2))")
        }
        if kill { try await scenario.expectWholeLogs(TopicCatalog.topics.filter { $0.cleanupPolicy == .compact && $0.name != "oms.idempotency" }.map(\.name)) }

        // The model: what each order must look like, computed from the inputs alone.
        var problems: [String] = []
        for plan in planned {
            guard let view = views[plan.orderId] else {
                problems.append("\(plan.name): no view")
                continue
            }
            let returned = plan.returnReason == nil ? 0 : 1
            for line in plan.order.lines {
                let progress = view.lineProgress.first { $0.lineId == line.lineId }
                let units = plan.cancel ? 0 : line.quantity
                let back = line.lineId == plan.order.lines[0].lineId ? returned : 0
                let expected = [line.quantity, units, units, units, back]
                let actual = [progress?.ordered, progress?.allocated, progress?.shipped, progress?.delivered, progress?.returned].map { $0 ?? -1 }
                if actual != expected { problems.append("\(plan.name) line \(line.lineId): ordered/allocated/shipped/delivered/returned \(actual), model \(expected)") }
            }
            let unitsOrdered = plan.order.lines.reduce(0) { $0 + $1.quantity }
            let status: OrderStatus = plan.cancel ? .cancelled : plan.returnReason == nil ? .delivered : (unitsOrdered == 1 ? .returned : .partiallyReturned)
            if view.status != status { problems.append("\(plan.name): status \(view.status), model \(status)") }
            let parcels = Set(plan.order.lines.map { skuLocation($0.sku, skus) }).count
            if view.shipments.count != (plan.cancel ? 0 : parcels) { problems.append("\(plan.name): \(view.shipments.count) shipments, model \(plan.cancel ? 0 : parcels)") }
        }
        #expect(problems.isEmpty, "\(problems.count) orders differ from the model: \(problems.prefix(8))")

        let differences = stockDifferences(try await scenario.finalLevels())
        var stockProblems = differences.sorted { $0.key < $1.key }.map(\.value)
        if !differences.isEmpty {
            // Where the units went missing: commands, the inventory stage's results, or
            // its level records.
            let commands = try await scenario.events(RestockInventory.topic)
            var restocks: [String: Set<String>] = [:], results: [String: Set<String>] = [:]
            for envelope in commands { if case .restockInventory(let c) = envelope.event { restocks["\(c.sku)@\(c.location)", default: []].insert(envelope.id) } }
            for envelope in try await scenario.events(InventoryResult.topic) {
                if case .inventoryResult(let r) = envelope.event, r.outcome == .restocked { results["\(r.sku)@\(r.location)", default: []].insert(envelope.id) }
            }
            var history: [String: [Int]] = [:]
            for record in try await scenario.records(InventoryLevel.topic) {
                guard case .inventoryLevel(let level)? = record.event else { continue }
                for stock in level.locations where differences["\(level.sku)@\(stock.location)"] != nil {
                    history["\(level.sku)@\(stock.location)", default: []].append(stock.onHand)
                }
            }
            for (key, values) in history {
                stockProblems.append("\(key): \(restocks[key]?.count ?? 0) restock commands, \(results[key]?.count ?? 0) restocked results, on hand in its level records: \(values)")
            }
        }
        #expect(stockProblems.isEmpty, "\(stockProblems.prefix(8))")

        // Payments, deduplicated by event id as the payments connector does: captures are
        // the order total (every unit shipped, shipping with the first parcel), refunds the
        // returned unit's price, a void for each cancelled order.
        var seen = Set<String>()
        var captured: [String: Int64] = [:], refunded: [String: Int64] = [:], voids: [String: [String?]] = [:]
        for envelope in try await scenario.events(CapturePayment.topic) where byId[envelope.subject] != nil && seen.insert(envelope.id).inserted {
            switch envelope.event {
            case .capturePayment(let capture): captured[capture.orderId, default: 0] += capture.amount.minorUnits
            case .refundPayment(let refund): refunded[refund.orderId, default: 0] += refund.amount.minorUnits
            case .voidPayment(let void): voids[void.orderId, default: []].append(void.authorizationReference)
            default: break
            }
        }
        var paymentProblems: [String] = []
        for plan in planned {
            let total = plan.order.totals.total.minorUnits
            let capture = captured[plan.orderId] ?? 0, refund = refunded[plan.orderId] ?? 0
            if capture != (plan.cancel ? 0 : total) { paymentProblems.append("\(plan.name): captured \(capture), model \(plan.cancel ? 0 : total)") }
            let expectedRefund = plan.returnReason == nil ? 0 : plan.order.lines[0].unitPrice.minorUnits
            if refund != expectedRefund { paymentProblems.append("\(plan.name): refunded \(refund), model \(expectedRefund)") }
            let expectedVoids: [String?] = plan.cancel ? ["auth-\(plan.name)"] : []
            if voids[plan.orderId] ?? [] != expectedVoids { paymentProblems.append("\(plan.name): voids \(voids[plan.orderId] ?? []), model \(expectedVoids)") }
        }
        #expect(paymentProblems.isEmpty, "\(paymentProblems.prefix(8))")

        // Notifications go once each: one id per (order, kind, subject).
        var notes: [String: Set<String>] = [:]
        var kinds: [String: [NotificationKind: Int]] = [:]
        for envelope in try await scenario.events(Contracts.Notification.topic) where byId[envelope.subject] != nil {
            guard case .notification(let note) = envelope.event else { continue }
            let subject = note.data["trackingNumber"] ?? note.data["amount"] ?? ""
            let key = "\(note.orderId)/\(note.kind.rawValue)/\(subject)"
            if notes[key, default: []].insert(envelope.id).inserted, notes[key]!.count == 1 { kinds[note.orderId, default: [:]][note.kind, default: 0] += 1 }
        }
        #expect(notes.values.allSatisfy { $0.count == 1 }, "never the same message twice under different ids: \(notes.filter { $0.value.count > 1 }.prefix(5).map { "\($0.key): \($0.value.sorted())" })")
        for plan in planned {
            let got = kinds[plan.orderId] ?? [:]
            let parcels = plan.cancel ? 0 : Set(plan.order.lines.map { skuLocation($0.sku, skus) }).count
            if plan.cancel {
                #expect(got == [.cancelled: 1], "\(plan.name): \(got)")
            } else {
                #expect(got[.confirmed] == 1 && got[.shipped] == parcels && got[.delivered] == parcels && got[.outForDelivery] == parcels, "\(plan.name): \(got)")
                if plan.returnReason != nil { #expect(got[.refunded] == 1, "\(plan.name): \(got)") }
            }
        }

        // The unknown tracking number was dead-lettered with the reason, after retries.
        let letters = try await scenario.fixture.readAll(TopicCatalog.deadLetterTopic).compactMap { try? Envelope.decode($0.eventRecord) }
        var ours: [String: DeadLetter] = [:]
        for envelope in letters {
            guard case .deadLetter(let letter) = envelope.event, let raw = letter.rawKey else { continue }
            let key = String(decoding: raw, as: UTF8.self)
            if byId[key] != nil || key.contains(run) { ours[key] = letter }
        }
        #expect(ours["ups/\(run)-NOBODY"]?.error.contains("unknown tracking number") == true, "\(ours)")
        #expect(ours.count == 1, "nothing else of this run was dead-lettered: \(ours.values.map(\.error).prefix(3))")

        // What operators see: `oms orders show` and `oms orders list` on the same views. Not
        // on the embedded broker: it keeps only the last ~5 MiB of a partition and does
        // not compact, so the views of orders that finished early are gone from it.
        guard broker == nil else { return }
        let brokers = scenario.fixture.cluster.bootstrapServers
        let returnedPlan = try #require(planned.first { $0.returnReason != nil })
        let show = try await OMSCommandTests.run(OMSCommandTests.omsBinary, ["orders", "show", returnedPlan.orderId, "--brokers", brokers])
        #expect(show.status == 0)
        #expect(show.output.contains("status \(views[returnedPlan.orderId]?.status.rawValue ?? "?") since"))
        #expect(show.output.contains("oms.return.received.v1"), "the timeline lists the return")
        #expect(show.output.contains("refund "), "the return shows its refund")
        let list = try await OMSCommandTests.run(OMSCommandTests.omsBinary, ["orders", "list", "--status", "cancelled", "--limit", "100000", "--brokers", brokers])
        #expect(list.status == 0)
        let listed = planned.filter { $0.cancel && list.output.contains($0.orderId) }.count
        #expect(listed == planned.filter(\.cancel).count, "every cancelled order of the run is listed as cancelled")
        #expect(!planned.contains { !$0.cancel && list.output.contains($0.orderId) })
        #expect(try await OMSCommandTests.run(OMSCommandTests.omsBinary, ["orders", "show", "no-such-order", "--brokers", brokers]).status != 0)
        #expect(try await OMSCommandTests.run(OMSCommandTests.omsBinary, ["orders", "list", "--status", "lost", "--brokers", brokers]).status != 0)
    }

    /// Where a SKU of this run is stocked.
    static func skuLocation(_ sku: String, _ skus: [String]) -> String {
        (skus.firstIndex(of: sku) ?? 0) % 2 == 0 ? "WH-A" : "WH-B"
    }


    /// A generic-format carrier push, as the gateway's adapter would produce it.
    static func carrierUpdate(carrier: String, number: String, status: TrackingStatus, at: Date, eventId: String) -> Event {
        CarrierTrackingUpdate(
            source: .generic, externalEventId: eventId, carrier: carrier, trackingNumber: number, status: status, rawStatus: status.rawValue,
            occurredAt: at, location: TrackingLocation(city: "Chicago", region: "IL", postalCode: nil, country: "US"), message: nil,
            estimatedDelivery: nil, checkpoints: []
        ).event
    }
}

/// Follows topics from their beginning and hands out what arrived since the last call.
final class TopicTail: Sendable {
    private let consumer: KafkaConsumer

    init(cluster: TestCluster, topics: [String], partitions: Int32 = 6) async throws {
        consumer = try KafkaConsumer(configuration: KafkaConsumerConfiguration(kafka: cluster.configuration, groupID: TestCluster.uniqueName("tail")), logger: TestCluster.logger)
        try await consumer.assign(topics.flatMap { topic in
            (0..<partitions).map { KafkaTopicPartitionOffset(topic: topic, partition: $0, offset: KafkaTopicPartitionOffset.beginning) }
        })
    }

    /// The decoded records that arrived since the last call (tombstones and undecodable ones left out).
    func next() async throws -> [Envelope] {
        var envelopes: [Envelope] = []
        while true {
            var got = 0
            for event in try await consumer.poll(timeout: .milliseconds(200)) {
                guard case .messages(let batch) = event else { continue }
                got += batch.count
                envelopes += batch.compactMap { $0.value == nil ? nil : try? Envelope.decode($0.eventRecord) }
            }
            if got == 0 { return envelopes }
        }
    }

    func close() async { try? await consumer.close() }
}

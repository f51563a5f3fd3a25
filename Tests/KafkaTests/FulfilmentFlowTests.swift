import Contracts
import Fleet
import Foundation
import Kafka
import OrderFleetTesting
import Testing
import Workers

/// The fulfilment loop on a real broker, through the runners of intake, payment,
/// inventory, allocation, fulfilment and shipping: a confirming warehouse short-picks and
/// the missing unit is re-sourced from a warehouse that ships directly, while the one
/// found ships from the parcel the first packed; a silent warehouse is alerted, withdrawn
/// after its SLA and its order re-sourced; the count comes down only for the short pick.
/// One of the serialized pipeline tests: stage runners share consumer groups.
extension PipelineTests {
    @Test("fulfilment loop: a short pick re-sourced from a second location, a silent location withdrawn after its SLA and re-sourced, nothing shipped that was not packed")
    func fulfilmentLoopEndToEnd() async throws {
        let scenario = try await PipelineScenario.make(rules: """
            locations:
              - {id: WH-PICK, type: warehouse, country: US, fulfilment: request}
              - {id: WH-QUIET, type: warehouse, country: US, fulfilment: request}
              - {id: WH-DIRECT, type: warehouse, country: US}
            zones:
              - {country: US, distances: {WH-PICK: 10, WH-QUIET: 10, WH-DIRECT: 50}}
            fulfilment: {acceptWithinSeconds: 6, shipWithinSeconds: 3600, withdrawAfterSeconds: 2, checkIntervalSeconds: 1}
            """)
        try await scenario.fixture.cluster.ensureTopics([
            ShipmentCreated.topic, ShipmentIndexEntry.topic, CommitInventory.topic, CapturePayment.topic, ShippingState.topic,
            FulfilmentRequested.topic, FulfilmentUpdate.topic, FulfilmentPacked.topic, FulfilmentState.topic, ShipmentDelivered.topic,
        ])
        // oms.alerts may exist already with other partitions on a shared broker (the
        // topics test's drift): the alerts are written and read there all the same.
        try? await scenario.fixture.cluster.ensureTopics([FulfilmentOverdue.topic])
        let run = scenario.run
        let picked = "\(run)-PICKED"
        let quiet = "\(run)-QUIET"
        try await scenario.produce(
            [picked, quiet].map { sku in
                CatalogProduct(
                    sku: sku, title: sku, weightGrams: 500, dimensions: Dimensions(lengthMm: 1, widthMm: 1, heightMm: 1), blockedCountries: [], hazmat: false,
                    prices: [RegionPrice(region: "US", price: Money(minorUnits: 1_000, currency: .usd))]
                ).event
            }
            + [
                AdjustInventory(sku: picked, location: "WH-PICK", mode: .absolute, quantity: 5, source: "test", sourceSequence: 1).event,
                AdjustInventory(sku: picked, location: "WH-DIRECT", mode: .absolute, quantity: 5, source: "test", sourceSequence: 1).event,
                AdjustInventory(sku: quiet, location: "WH-QUIET", mode: .absolute, quantity: 5, source: "test", sourceSequence: 1).event,
                AdjustInventory(sku: quiet, location: "WH-DIRECT", mode: .absolute, quantity: 5, source: "test", sourceSequence: 1).event,
            ])

        func runner(_ stage: some Stage) -> StageRunner<some Stage> {
            StageRunner(stage: stage, configuration: scenario.fixture.configuration(), logger: TestCluster.logger)
        }
        let workers = RunningWorkers([
            runner(IntakeStage(rules: scenario.rules.intake)), runner(PaymentStage(rules: scenario.rules.payment)),
            runner(FraudVelocityStage(rules: scenario.rules.payment)), runner(InventoryStage()), runner(AllocationStage(rules: scenario.rules)),
            runner(FulfilmentStage(rules: scenario.rules)), runner(ShippingStage(rules: scenario.rules)),
        ])

        let shortOrder = scenario.canonical("short", lines: [(picked, 2, 1_000)])
        let quietOrder = scenario.canonical("quiet", lines: [(quiet, 2, 1_000)])
        try await scenario.produce(try [shortOrder, quietOrder].map { try scenario.inbound($0) })
        let shortId = DeterministicID.orderID(channel: shortOrder.channel, externalOrderID: shortOrder.externalOrderId)
        let quietId = DeterministicID.orderID(channel: quietOrder.channel, externalOrderID: quietOrder.externalOrderId)

        func requests() async throws -> [FulfilmentRequested] {
            try await scenario.events(FulfilmentRequested.topic).compactMap { if case .fulfilmentRequested(let r) = $0.event, [shortId, quietId].contains(r.orderId) { r } else { nil } }
        }
        let asked = try await waitUntil(timeout: .seconds(120)) { try await requests().count == 2 }
        try #require(asked, "both confirming warehouses asked")
        let request = try #require(try await requests().first { $0.orderId == shortId })
        #expect(request.location == "WH-PICK" && request.lines.map(\.quantity) == [2])

        // WH-PICK finds one of the two units and packs it; WH-QUIET never answers.
        func answer(_ id: String, _ kind: FulfilmentUpdateKind, lines: [LineQuantity]? = nil, parcels: [PackedParcel]? = nil) -> Event {
            FulfilmentUpdate(updateId: "\(run)-\(id)", orderId: shortId, location: "WH-PICK", kind: kind, lines: lines, parcels: parcels, occurredAt: Date()).event
        }
        try await scenario.produce([
            answer("accept", .accepted), answer("pick", .picked, lines: [LineQuantity(lineId: "l0", quantity: 1)]),
        ])
        func shipments() async throws -> [ShipmentCreated] {
            try await scenario.events(ShipmentCreated.topic).compactMap { if case .shipmentCreated(let s) = $0.event, [shortId, quietId].contains(s.orderId) { s } else { nil } }
        }
        let reSourced = try await waitUntil(timeout: .seconds(120)) { try await shipments().contains { $0.orderId == shortId && $0.location == "WH-DIRECT" } }
        try #require(reSourced, "the missing unit re-sourced to WH-DIRECT and shipped")
        #expect(try await shipments().filter { $0.location == "WH-PICK" }.isEmpty, "nothing from WH-PICK before it packs")
        try await scenario.produce([answer("pack", .packed, parcels: [PackedParcel(weightGrams: 700)])])

        let settled = try await waitUntil(timeout: .seconds(120)) {
            let made = try await shipments()
            guard made.contains(where: { $0.orderId == shortId && $0.location == "WH-PICK" }), made.contains(where: { $0.orderId == quietId }) else { return false }
            let levels = try await scenario.finalLevels()
            return [picked, quiet].allSatisfy { sku in levels[sku]?.locations.allSatisfy { $0.reserved == 0 } == true }
        }
        let made = try await shipments()
        let levels = try await scenario.finalLevels()
        // Read by the partitions the topic has: on a shared broker oms.alerts may have fewer.
        let alerts = try await TopicScan.records(of: [FulfilmentOverdue.topic], kafka: scenario.fixture.cluster.configuration, logger: TestCluster.logger)
        let overdue = alerts.compactMap { try? Envelope.decode($0.eventRecord) }.compactMap { if case .fulfilmentOverdue(let o) = $0.event, o.orderId == quietId { o } else { nil } }
        let withdrawn = try await scenario.events(FulfilmentWithdrawn.topic).compactMap { if case .fulfilmentWithdrawn(let w) = $0.event, w.orderId == quietId { w } else { nil } }
        try await workers.stop()
        #expect(settled, "both orders shipped in full, nothing left reserved: \(levels.mapValues { $0.locations.map { ($0.location, $0.onHand, $0.reserved) } })")

        let shortParcels = made.filter { $0.orderId == shortId }.sorted { $0.location < $1.location }
        #expect(shortParcels.map(\.location) == ["WH-DIRECT", "WH-PICK"])
        #expect(shortParcels.map { $0.lines.map(\.quantity) } == [[1], [1]])
        #expect(shortParcels.last?.parcels == [PackedParcel(weightGrams: 700)], "the label bought for the packed parcel")
        let quietParcels = made.filter { $0.orderId == quietId }
        #expect(quietParcels.map(\.location) == ["WH-DIRECT"] && quietParcels.first?.lines.map(\.quantity) == [2])
        #expect(overdue.map(\.rule) == ["accept"], "one alert")
        #expect(withdrawn.map(\.reason.code) == ["fulfilment_sla_missed"], "withdrawn once")

        func stock(_ sku: String, _ location: String) -> Int? { levels[sku]?.locations.first { $0.location == location }?.onHand }
        #expect(stock(picked, "WH-PICK") == 3, "one shipped, one written down by the short pick")
        #expect(stock(picked, "WH-DIRECT") == 4)
        #expect(stock(quiet, "WH-QUIET") == 5, "a withdrawal does not touch the count")
        #expect(stock(quiet, "WH-DIRECT") == 3)
    }
}

extension PipelineTests {
    @Test("backorders filled first placed first while a new order races for the restock; a pre-order released on its launch date; a pick-up order held at its store and collected")
    func backordersPreordersAndPickupEndToEnd() async throws {
        let scenario = try await PipelineScenario.make(rules: """
            locations:
              - {id: WH-1, type: warehouse, country: US}
              - {id: STORE-1, type: store, country: US, fulfilment: request}
            zones:
              - {country: US, distances: {WH-1: 10, STORE-1: 20}}
            fulfilment: {checkIntervalSeconds: 1}
            """)
        try await scenario.fixture.cluster.ensureTopics([
            ShipmentCreated.topic, ShipmentIndexEntry.topic, CommitInventory.topic, CapturePayment.topic, ShippingState.topic,
            FulfilmentRequested.topic, FulfilmentUpdate.topic, FulfilmentPacked.topic, FulfilmentState.topic, ShipmentDelivered.topic,
        ])
        let run = scenario.run
        let scarce = "\(run)-SCARCE"
        let preorder = "\(run)-PRE"
        let inStore = "\(run)-STORE"
        let launch = Date().addingTimeInterval(8)
        func product(_ sku: String, launch: Date? = nil) -> Event {
            CatalogProduct(
                sku: sku, title: sku, weightGrams: 500, dimensions: Dimensions(lengthMm: 1, widthMm: 1, heightMm: 1), launchDate: launch, blockedCountries: [],
                hazmat: false, prices: [RegionPrice(region: "US", price: Money(minorUnits: 1_000, currency: .usd))], preorder: launch == nil ? nil : true
            ).event
        }
        func stock(_ sku: String, _ location: String, _ quantity: Int, sequence: Int64 = 1, mode: AdjustmentMode = .absolute) -> Event {
            AdjustInventory(sku: sku, location: location, mode: mode, quantity: quantity, source: "test", sourceSequence: sequence).event
        }
        try await scenario.produce([
            product(scarce), product(preorder, launch: launch), product(inStore),
            stock(scarce, "WH-1", 0), stock(preorder, "WH-1", 5), stock(inStore, "STORE-1", 3),
        ])
        func runner(_ stage: some Stage) -> StageRunner<some Stage> {
            StageRunner(stage: stage, configuration: scenario.fixture.configuration(), logger: TestCluster.logger)
        }
        let workers = RunningWorkers([
            runner(IntakeStage(rules: scenario.rules.intake)), runner(PaymentStage(rules: scenario.rules.payment)),
            runner(FraudVelocityStage(rules: scenario.rules.payment)), runner(InventoryStage()), runner(AllocationStage(rules: scenario.rules)),
            runner(FulfilmentStage(rules: scenario.rules)), runner(ShippingStage(rules: scenario.rules)),
        ])
        func id(_ order: CanonicalOrder) -> String { DeterministicID.orderID(channel: order.channel, externalOrderID: order.externalOrderId) }
        func shipped() async throws -> [String: [ShipmentCreated]] {
            var byOrder: [String: [ShipmentCreated]] = [:]
            for envelope in try await scenario.events(ShipmentCreated.topic) {
                if case .shipmentCreated(let s) = envelope.event, s.orderId.isEmpty == false { byOrder[s.orderId, default: []].append(s) }
            }
            return byOrder
        }
        func units(_ shipments: [ShipmentCreated]?) -> Int { (shipments ?? []).flatMap(\.lines).reduce(0) { $0 + $1.quantity } }

        // Two orders of the scarce SKU wait for stock, the first placed first.
        let first = scenario.canonical("first", lines: [(scarce, 2, 1_000)])
        try await Task.sleep(for: .milliseconds(20))
        let second = scenario.canonical("second", lines: [(scarce, 2, 1_000)])
        var pickup = scenario.canonical("pickup", lines: [(inStore, 1, 1_000)])
        pickup.pickupLocation = "STORE-1"
        let early = scenario.canonical("preorder", lines: [(preorder, 1, 1_000)])
        try await scenario.produce(try [first, second, pickup, early].map { try scenario.inbound($0) })
        let waiting = try await waitUntil(timeout: .seconds(120)) {
            let backordered = Set(try await scenario.events(OrderBackordered.topic).compactMap { if case .orderBackordered(let b) = $0.event { b.orderId } else { nil } })
            return backordered.isSuperset(of: [id(first), id(second)])
        }
        try #require(waiting, "both backordered")

        // The supplier's 3 units and a new order for 1 arrive together: the waiting orders come first.
        let racer = scenario.canonical("racer", lines: [(scarce, 1, 1_000)])
        try await scenario.produce([stock(scarce, "WH-1", 3, sequence: 2, mode: .delta), try scenario.inbound(racer)])
        let filled = try await waitUntil(timeout: .seconds(120)) {
            let s = try await shipped()
            return units(s[id(first)]) == 2 && units(s[id(second)]) == 1
        }
        try #require(filled, "the first filled whole, the second with what was left")
        #expect(units(try await shipped()[id(racer)]) == 0, "the new order waits behind them")
        try await scenario.produce([stock(scarce, "WH-1", 2, sequence: 3, mode: .delta)])

        // The pick-up order: the store holds it, the customer collects it.
        let asked = try await waitUntil(timeout: .seconds(60)) {
            try await scenario.events(FulfilmentRequested.topic).contains { if case .fulfilmentRequested(let r) = $0.event { r.orderId == id(pickup) } else { false } }
        }
        try #require(asked, "the store asked to hold the pick-up order")
        func answer(_ kind: FulfilmentUpdateKind) -> Event {
            FulfilmentUpdate(updateId: "\(run)-\(kind.rawValue)", orderId: id(pickup), location: "STORE-1", kind: kind, occurredAt: Date()).event
        }
        try await scenario.produce([answer(.readyForPickup)])
        let held = try await waitUntil(timeout: .seconds(60)) { try await shipped()[id(pickup)] != nil }
        try #require(held, "a pick-up hand-over")
        try await scenario.produce([answer(.pickedUp)])

        let settled = try await waitUntil(timeout: .seconds(120)) {
            let s = try await shipped()
            guard units(s[id(second)]) == 2, units(s[id(racer)]) == 1, s[id(early)] != nil else { return false }
            return try await scenario.events(ShipmentDelivered.topic).contains { if case .shipmentDelivered(let d) = $0.event { d.orderId == id(pickup) } else { false } }
        }
        let final = try await shipped()
        let levels = try await scenario.finalLevels()
        try await workers.stop()
        #expect(settled, "every order shipped in the end: \(final.mapValues(units))")
        #expect(units(final[id(first)]) == 2 && (final[id(first)]?.count ?? 0) == 1)
        #expect((final[id(second)]?.count ?? 0) == 2, "the second filled in two parcels, each with its own id")
        #expect(Set(final[id(second)]?.map(\.shipmentId) ?? []).count == 2)
        #expect(levels[scarce]?.locations.first { $0.location == "WH-1" }.map { ($0.onHand, $0.reserved) } ?? (-1, -1) == (0, 0), "never oversold: 5 units, 5 shipped")
        #expect(levels[scarce]?.waitingHead == nil, "nobody waits any more")
        let preShipment = try #require(final[id(early)]?.first)
        #expect(preShipment.createdAt >= launch, "the pre-order shipped on its launch date, not before (\(preShipment.createdAt) vs \(launch))")
        let handover = try #require(final[id(pickup)]?.first)
        #expect(handover.carrier == PickupHandover.carrier && handover.location == "STORE-1")
    }
}

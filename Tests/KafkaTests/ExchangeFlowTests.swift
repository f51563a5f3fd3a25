import Contracts
import Fleet
import Foundation
import Kafka
import OrderFleetTesting
import Testing
import Workers

/// Exchanges end to end on a real broker, through the runners of intake, payment,
/// inventory, allocation, shipping and returns: the replacement is placed as a linked
/// order, reserved at authorization, held until the return is received, then shipped; the
/// price difference is refunded (cheaper) or captured on the customer's authorization
/// (dearer); a replacement without stock is refunded instead. One of the serialized
/// pipeline tests: stage runners share consumer groups (`oms.<stage>`) on the shared broker.
extension PipelineTests {
    @Test("exchanges end to end: even, cheaper and dearer replacements reserved at authorization, shipped once the return is received, the difference refunded or captured; out of stock refunded instead")
    func exchangesEndToEnd() async throws {
        let scenario = try await PipelineScenario.make(rules: """
            locations:
              - {id: WH-1, type: warehouse, country: US}
            """)
        try await scenario.fixture.cluster.ensureTopics([
            ShipmentCreated.topic, ShipmentIndexEntry.topic, CommitInventory.topic, CapturePayment.topic, ShippingState.topic,
            ShipmentDelivered.topic, ReturnRequested.topic, ReturnAuthorized.topic, ReturnsState.topic,
        ])
        let run = scenario.run
        let sku = { (name: String) in "\(run)-\(name)" }
        let prices: [String: Int64] = ["A": 2_000, "A2": 2_000, "C": 2_500, "D": 1_500, "E": 2_000]
        try await scenario.produce(
            prices.keys.sorted().map { name in
                CatalogProduct(
                    sku: sku(name), title: name, weightGrams: 500, dimensions: Dimensions(lengthMm: 1, widthMm: 1, heightMm: 1), blockedCountries: [],
                    hazmat: false, prices: [RegionPrice(region: "US", price: Money(minorUnits: prices[name]!, currency: .usd))]
                ).event
            }
            + ["A", "A2", "C", "D"].map { AdjustInventory(sku: sku($0), location: "WH-1", mode: .absolute, quantity: 10, source: "test", sourceSequence: 1).event })

        func runner(_ stage: some Stage) -> StageRunner<some Stage> {
            StageRunner(stage: stage, configuration: scenario.fixture.configuration(), logger: TestCluster.logger)
        }
        let workers = RunningWorkers([
            runner(IntakeStage(rules: scenario.rules.intake)), runner(PaymentStage(rules: scenario.rules.payment)),
            runner(FraudVelocityStage(rules: scenario.rules.payment)), runner(InventoryStage()), runner(AllocationStage(rules: scenario.rules)),
            runner(ShippingStage(rules: scenario.rules)), runner(ReturnsStage(rules: scenario.rules)),
        ])

        // Four orders of one A each (20.00 + 5.00 shipping), shipped and delivered.
        let names = ["even", "cheaper", "dearer", "nostock"]
        let orders = names.map { scenario.canonical($0, lines: [(sku("A"), 1, 2_000)]) }
        try await scenario.produce(try orders.map { try scenario.inbound($0) })
        let ids = orders.map { DeterministicID.orderID(channel: $0.channel, externalOrderID: $0.externalOrderId) }
        func shipments() async throws -> [String: [ShipmentCreated]] {
            var byOrder: [String: [ShipmentCreated]] = [:]
            for envelope in try await scenario.events(ShipmentCreated.topic) {
                if case .shipmentCreated(let s) = envelope.event { byOrder[s.orderId, default: []].append(s) }
            }
            return byOrder
        }
        let shipped = try await waitUntil(timeout: .seconds(120)) { let s = try await shipments(); return ids.allSatisfy { s[$0] != nil } }
        try #require(shipped, "every order shipped")
        let firstShipments = try await shipments()
        try await scenario.produce(ids.map { id in
            let parcel = firstShipments[id]![0]
            return ShipmentDelivered(orderId: id, shipmentId: parcel.shipmentId, carrier: parcel.carrier, trackingNumber: parcel.trackingNumber, rawStatus: "delivered", deliveredAt: Date()).event
        })

        // The exchanges: A for A2 (even), for D (5.00 cheaper), for C (5.00 dearer, the
        // difference authorized), for E (no stock: refunded instead).
        let difference = PaymentAuthorization(status: .authorized, amount: Money(minorUnits: 500, currency: .usd), reference: "diff-\(run)")
        let wanted = ["A2", "D", "C", "E"]
        let requests = zip(ids, wanted).map { id, replacement in
            ReturnRequested(
                orderId: id, returnId: "r-\(id.prefix(8))", lines: [ReturnLine(lineId: "l0", sku: sku("A"), quantity: 1, reason: "wrong_size", exchangeSku: sku(replacement))],
                requestedAt: Date().addingTimeInterval(60), differencePayment: replacement == "C" ? difference : nil)
        }
        // The delivery is read before the request; a request read first waits for it.
        try await scenario.produce(requests.map(\.event))

        func placedReplacements() async throws -> [String: OrderPlaced] {
            var byOriginal: [String: OrderPlaced] = [:]
            for envelope in try await scenario.events(OrderPlaced.topic) {
                if case .orderPlaced(let o) = envelope.event, let link = o.exchangeOf, ids.contains(link.orderId) { byOriginal[link.orderId] = o }
            }
            return byOriginal
        }
        func allocatedOrders() async throws -> Set<String> {
            Set(try await scenario.events(OrderAllocated.topic).compactMap { if case .orderAllocated(let a) = $0.event { a.orderId } else { nil } })
        }
        let reserved = try await waitUntil(timeout: .seconds(120)) {
            let placed = try await placedReplacements()
            guard placed.count == 3 else { return false }
            return try await allocatedOrders().isSuperset(of: placed.values.map(\.orderId))
        }
        try #require(reserved, "three replacements placed and reserved at authorization (the fourth has no stock)")
        let replacements = try await placedReplacements()
        let heldShipments = try await shipments()
        #expect(replacements.values.allSatisfy { heldShipments[$0.orderId] == nil }, "reserved, not shipped before the return arrives")

        // The returns arrive.
        try await scenario.produce(requests.map { request in
            ReceiveReturn(
                orderId: request.orderId, returnId: request.returnId,
                lines: [ReceivedReturnLine(lineId: "l0", sku: sku("A"), quantity: 1, disposition: .restock, location: "WH-1")], receivedAt: Date().addingTimeInterval(120)
            ).event
        })
        func refunds() async throws -> [RefundPayment] {
            try await scenario.events(CapturePayment.topic).compactMap { if case .refundPayment(let r) = $0.event, ids.contains(r.orderId) { r } else { nil } }
        }
        let settled = try await waitUntil(timeout: .seconds(120)) {
            let s = try await shipments()
            guard replacements.values.allSatisfy({ s[$0.orderId] != nil }) else { return false }
            guard try await refunds().count >= 2 else { return false }
            let levels = try await scenario.finalLevels()
            return ["A", "A2", "C", "D"].allSatisfy { levels[sku($0)]?.locations.first?.reserved == 0 } && levels[sku("A")]?.locations.first?.onHand == 10
        }
        let finalShipments = try await shipments()
        let paidBack = try await refunds()
        let captures = try await scenario.events(CapturePayment.topic).compactMap { if case .capturePayment(let c) = $0.event { c } else { nil } }
        let authorized = try await scenario.events(ReturnAuthorized.topic)
        let levels = try await scenario.finalLevels()
        try await workers.stop()
        #expect(settled, "replacements shipped, refunds asked, nothing left reserved: \(levels.mapValues { $0.locations.map { ($0.onHand, $0.reserved) } })")

        for (index, id) in ids.prefix(3).enumerated() {
            let replacement = try #require(replacements[id], "\(names[index]): a replacement order")
            let parcels = finalShipments[replacement.orderId] ?? []
            #expect(parcels.count == 1 && parcels.first?.lines.map(\.sku) == [sku(wanted[index])], "\(names[index]): one replacement parcel of \(wanted[index])")
        }
        #expect(paidBack.filter { $0.orderId == ids[0] }.isEmpty, "even: no money moves")
        #expect(paidBack.filter { $0.orderId == ids[1] }.map(\.amount.minorUnits) == [500], "cheaper: the difference refunded")
        #expect(paidBack.filter { $0.orderId == ids[1] }.first?.reason.code == "exchange_difference")
        #expect(paidBack.filter { $0.orderId == ids[2] }.isEmpty, "dearer: nothing refunded")
        let dearer = try #require(replacements[ids[2]])
        #expect(captures.filter { $0.orderId == dearer.orderId }.map(\.amount.minorUnits) == [500], "dearer: the difference captured when the replacement ships")
        #expect(captures.filter { $0.orderId == dearer.orderId }.first?.authorizationReference == "diff-\(run)")
        let paidReplacements = Set([ids[0], ids[1]].compactMap { replacements[$0]?.orderId })
        #expect(!captures.contains { paidReplacements.contains($0.orderId) }, "nothing to capture on paid replacements")
        #expect(paidBack.filter { $0.orderId == ids[3] }.map(\.amount.minorUnits) == [2_000], "no stock: the returned unit refunded")
        #expect(authorized.contains { if case .exchangeReplacedByRefund(let e) = $0.event { e.orderId == ids[3] } else { false } })
        #expect(replacements[ids[3]] == nil)
        #expect(levels[sku("A")]?.locations.first?.onHand == 10, "every returned A restocked")
        for (name, shippedOne) in [("A2", true), ("C", true), ("D", true)] where shippedOne {
            #expect(levels[sku(name)]?.locations.first?.onHand == 9, "\(name): one replacement shipped")
        }
    }
}

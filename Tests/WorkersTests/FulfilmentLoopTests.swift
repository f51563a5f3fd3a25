import Contracts
import Foundation
import Testing
import Workers

private typealias F = PipelineFixtures

/// The fulfilment loop with the real stages and no broker: allocation, inventory,
/// fulfilment, shipping and the view, each in a ``StageDriver``, their outputs routed to
/// every stage that reads the topic and inventory's levels fed to allocation's table.
/// A confirming location (`fulfilment: request`) gets a request and ships only what it
/// packed; a short pick writes the count down and is re-sourced from a second location;
/// a rejection is re-sourced without touching the count; silence raises an SLA alert and
/// is withdrawn and re-sourced; a pick-up order is held for the customer and collected;
/// a cancel withdraws the request and a late packed answer ships nothing.
@Suite struct FulfilmentLoopTests {
    static let rules = BusinessRules(
        locations: [
            StockLocation(id: "WH-A", type: .warehouse, country: "US", fulfilment: .request),
            StockLocation(id: "WH-B", type: .warehouse, country: "US"),
            StockLocation(id: "STORE-1", type: .store, country: "US", fulfilment: .request),
        ],
        zones: [Zone(country: "US", distances: ["WH-A": 10, "WH-B": 20, "STORE-1": 5])],
        fulfilment: FulfilmentRequestRules(acceptWithinSeconds: 600, shipWithinSeconds: 3_600, withdrawAfterSeconds: 1_200))

    /// The stages of the loop, wired as the fleet wires them.
    struct Loop {
        var allocation = StageDriver(stage: AllocationStage(rules: FulfilmentLoopTests.rules))
        var inventory = StageDriver(stage: InventoryStage())
        var fulfilment = StageDriver(stage: FulfilmentStage(rules: FulfilmentLoopTests.rules))
        var shipping = StageDriver(stage: ShippingStage(rules: FulfilmentLoopTests.rules))
        var view = StageDriver(stage: OrderViewStage(rules: NotificationRules()))
        /// Every event any stage wrote, in order.
        var written: [Event] = []
        var sequence = 0
        var clock = F.now

        init(stock: [String: [LocationStock]]) {
            let catalog = Dictionary(uniqueKeysWithValues: ["SKU-A", "SKU-B"].map { ($0, Event.catalogProduct(F.shippingProduct($0, weightGrams: 400))) })
            allocation.tables[CatalogProduct.topic] = catalog
            shipping.tables[CatalogProduct.topic] = catalog
            for (sku, stocks) in stock {
                // Stock arrives as counts, through inventory itself.
                for stock in stocks {
                    send(AdjustInventory(sku: sku, location: stock.location, mode: .absolute, quantity: stock.onHand, source: "test", sourceSequence: 1).event)
                }
            }
        }

        /// Delivers `event` and everything it causes, breadth first.
        mutating func send(_ event: Event) {
            var queue = [event]
            while !queue.isEmpty {
                let next = queue.removeFirst()
                sequence += 1
                let envelope = Envelope(id: "e-\(sequence)", source: "oms/test", time: clock, event: next)
                for output in deliver(envelope) {
                    written.append(output)
                    queue.append(output)
                }
            }
        }

        /// Runs every stage's timers at `time`, and what they cause.
        mutating func tick(at time: Date) {
            clock = time
            let results = fulfilment.tick(now: time)
            for result in results {
                for output in result.outputs {
                    written.append(output.envelope.event)
                    send(output.envelope.event)
                }
            }
        }

        private mutating func deliver(_ envelope: Envelope) -> [Event] {
            let topic = envelope.topic
            var outputs: [StepResult] = []
            if allocation.stage.inputTopics.contains(topic) { outputs.append(allocation.handle(envelope, now: clock)) }
            if inventory.stage.inputTopics.contains(topic) {
                let result = inventory.handle(envelope, now: clock)
                for record in result.stateRecords {
                    if case .inventoryLevel(let level)? = record.envelope?.event { allocation.tables[InventoryLevel.topic, default: [:]][level.sku] = level.event }
                }
                outputs.append(result)
            }
            if fulfilment.stage.inputTopics.contains(topic) { outputs.append(fulfilment.handle(envelope, now: clock)) }
            if shipping.stage.inputTopics.contains(topic) { outputs.append(shipping.handle(envelope, now: clock)) }
            if view.stage.inputTopics.contains(topic) { outputs.append(view.handle(envelope, now: clock)) }
            for result in outputs {
                if case .failed(let failure) = result.kind { Issue.record("\(envelope.type) failed: \(failure)") }
            }
            return outputs.flatMap { $0.outputs.map(\.envelope.event) }
        }

        /// Places and approves `placed`.
        mutating func place(_ placed: OrderPlaced) {
            send(placed.event)
            send(PaymentApproved(orderId: placed.orderId, amount: placed.totals.total, reasons: [], decidedAt: clock).event)
        }

        /// A location's answer.
        mutating func answer(
            _ orderId: String, _ location: String, _ kind: FulfilmentUpdateKind, lines: [LineQuantity]? = nil, parcels: [PackedParcel]? = nil,
            carrier: String? = nil, trackingNumber: String? = nil
        ) {
            sequence += 1
            send(FulfilmentUpdate(
                updateId: "u-\(sequence)", orderId: orderId, location: location, kind: kind, lines: lines, parcels: parcels, carrier: carrier,
                trackingNumber: trackingNumber, occurredAt: clock
            ).event)
        }

        func stock(_ sku: String, _ location: String) -> LocationStock? {
            guard case .inventoryLevel(let level)? = inventory.value(sku) else { return nil }
            return level.locations.first { $0.location == location }
        }

        func all<T>(_ pick: (Event) -> T?) -> [T] { written.compactMap(pick) }
        var shipments: [ShipmentCreated] { all { if case .shipmentCreated(let e) = $0 { e } else { nil } } }
        var requests: [FulfilmentRequested] { all { if case .fulfilmentRequested(let e) = $0 { e } else { nil } } }
        var shorts: [FulfilmentShort] { all { if case .fulfilmentShort(let e) = $0 { e } else { nil } } }
        var withdrawals: [FulfilmentWithdrawn] { all { if case .fulfilmentWithdrawn(let e) = $0 { e } else { nil } } }
        var notifications: [NotificationKind] { all { if case .notification(let e) = $0 { e.kind } else { nil } } }
        func view(_ orderId: String) -> OrderView? { if case .orderView(let v)? = view.value(orderId) { v } else { nil } }
    }

    let placed = F.placed(F.order(lines: [F.line("1", "SKU-A", quantity: 2)]))
    var orderId: String { placed.orderId }

    @Test func aConfirmingLocationIsAskedAndShipsOnlyWhatItPacked() throws {
        var loop = Loop(stock: ["SKU-A": [F.stock("WH-A", onHand: 5), F.stock("WH-B", onHand: 5)]])
        loop.place(placed)
        let request = try #require(loop.requests.first)
        #expect(loop.requests.count == 1)
        #expect(request.location == "WH-A" && request.mode == .warehouse && request.lines == [F.shipmentLine("1", "SKU-A", 2)])
        #expect(request.acceptBy == F.now.addingTimeInterval(600) && request.shipBy == F.now.addingTimeInterval(3_600))
        #expect(loop.shipments.isEmpty, "nothing ships before the location packs")
        #expect(loop.view(orderId)?.fulfilment?.first?.status == .requested)

        loop.answer(orderId, "WH-A", .accepted)
        loop.answer(orderId, "WH-A", .picked, lines: [LineQuantity(lineId: "1", quantity: 2)])
        loop.answer(orderId, "WH-A", .packed, parcels: [PackedParcel(weightGrams: 1_250, lengthCm: 30, widthCm: 20, heightCm: 10)])
        let shipment = try #require(loop.shipments.first)
        #expect(loop.shipments.count == 1)
        #expect(shipment.location == "WH-A" && shipment.lines == [F.shipmentLine("1", "SKU-A", 2)])
        #expect(shipment.parcels == [PackedParcel(weightGrams: 1_250, lengthCm: 30, widthCm: 20, heightCm: 10)])
        #expect(loop.stock("SKU-A", "WH-A") == F.stock("WH-A", onHand: 3, sequence: 1), "committed on shipment")
        #expect(loop.view(orderId)?.fulfilment?.map(\.status) == [.packed])
        #expect(loop.shorts.isEmpty)

        // A packed answer sent again ships nothing more.
        loop.answer(orderId, "WH-A", .packed, parcels: [PackedParcel(weightGrams: 1_250)])
        #expect(loop.shipments.count == 1)
    }

    @Test func aShortPickWritesTheCountDownAndIsReSourcedFromASecondLocation() throws {
        var loop = Loop(stock: ["SKU-A": [F.stock("WH-A", onHand: 5), F.stock("WH-B", onHand: 5)]])
        loop.place(placed)
        loop.answer(orderId, "WH-A", .picked, lines: [LineQuantity(lineId: "1", quantity: 1)])

        let short = try #require(loop.shorts.first)
        #expect(loop.shorts.count == 1)
        #expect(short.cause == .shortPick && short.lines == [F.shipmentLine("1", "SKU-A", 1)])
        // The missing unit is not there: on hand comes down with the reservation.
        #expect(loop.stock("SKU-A", "WH-A") == F.stock("WH-A", onHand: 4, reserved: 1, sequence: 1))
        // WH-B ships directly: its unit leaves at once.
        #expect(loop.shipments.map(\.location) == ["WH-B"])
        #expect(loop.shipments.first?.lines == [F.shipmentLine("1", "SKU-A", 1)])
        #expect(loop.requests.count == 1, "WH-A is not asked twice")

        loop.answer(orderId, "WH-A", .packed, parcels: [PackedParcel(weightGrams: 600)])
        #expect(loop.shipments.map(\.location) == ["WH-B", "WH-A"])
        #expect(loop.shipments.last?.lines == [F.shipmentLine("1", "SKU-A", 1)])
        #expect(loop.stock("SKU-A", "WH-A") == F.stock("WH-A", onHand: 3, sequence: 1))
        #expect(loop.stock("SKU-A", "WH-B") == F.stock("WH-B", onHand: 4, sequence: 1))
        #expect(loop.view(orderId)?.status == .shipped)
    }

    @Test func aShortPickNothingElseHasIsBackordered() throws {
        var loop = Loop(stock: ["SKU-A": [F.stock("WH-A", onHand: 2)]])
        loop.place(placed)
        loop.answer(orderId, "WH-A", .picked, lines: [LineQuantity(lineId: "1", quantity: 1)])
        let backordered = loop.all { if case .orderPartiallyAllocated(let e) = $0 { e } else { nil } }
        #expect(backordered.count == 1)
        #expect(backordered.first?.backordered == [BackorderedLine(lineId: "1", sku: "SKU-A", quantity: 1)])
        #expect(backordered.first?.allocations == [F.allocation("1", "SKU-A", "WH-A", 1)])
        #expect(loop.stock("SKU-A", "WH-A") == F.stock("WH-A", onHand: 1, reserved: 1, sequence: 1))
    }

    @Test func aRejectionIsReSourcedWithoutTouchingTheCount() throws {
        var loop = Loop(stock: ["SKU-A": [F.stock("WH-A", onHand: 5), F.stock("WH-B", onHand: 5)]])
        loop.place(placed)
        loop.answer(orderId, "WH-A", .rejected)
        #expect(loop.shorts.map(\.cause) == [.rejected])
        #expect(loop.stock("SKU-A", "WH-A") == F.stock("WH-A", onHand: 5, sequence: 1))
        #expect(loop.shipments.map(\.location) == ["WH-B"])
        #expect(loop.shipments.first?.lines == [F.shipmentLine("1", "SKU-A", 2)])
        #expect(loop.view(orderId)?.fulfilment?.map(\.status) == [.withdrawn])
        // A packed answer after the rejection is too late: nothing more ships.
        loop.answer(orderId, "WH-A", .packed, parcels: [PackedParcel(weightGrams: 600)])
        #expect(loop.shipments.count == 1)
    }

    @Test func aSilentLocationIsAlertedThenWithdrawnAndReSourced() throws {
        var loop = Loop(stock: ["SKU-A": [F.stock("WH-A", onHand: 5), F.stock("WH-B", onHand: 5)]])
        loop.place(placed)
        loop.tick(at: F.now.addingTimeInterval(599))
        #expect(loop.all { if case .fulfilmentOverdue(let e) = $0 { e } else { nil } }.isEmpty)

        loop.tick(at: F.now.addingTimeInterval(600))
        let alerts = loop.all { if case .fulfilmentOverdue(let e) = $0 { e } else { nil } }
        #expect(alerts.map(\.rule) == ["accept"])
        #expect(alerts.first?.withdrawAt == F.now.addingTimeInterval(1_800))
        loop.tick(at: F.now.addingTimeInterval(900))
        #expect(loop.all { if case .fulfilmentOverdue(let e) = $0 { e } else { nil } }.count == 1, "one alert per rule")
        #expect(loop.shipments.isEmpty)

        loop.tick(at: F.now.addingTimeInterval(1_800))
        #expect(loop.withdrawals.map(\.reason.code) == ["fulfilment_sla_missed"])
        #expect(loop.shorts.map(\.cause) == [.withdrawn])
        #expect(loop.shipments.map(\.location) == ["WH-B"])
        #expect(loop.stock("SKU-A", "WH-A") == F.stock("WH-A", onHand: 5, sequence: 1), "released, count untouched")

        loop.tick(at: F.now.addingTimeInterval(9_000))
        #expect(loop.withdrawals.count == 1, "withdrawn once")
        #expect(loop.shipments.count == 1)
    }

    @Test func anAcceptedRequestNotShippedByItsShipByTimeIsWithdrawn() throws {
        var loop = Loop(stock: ["SKU-A": [F.stock("WH-A", onHand: 5), F.stock("WH-B", onHand: 5)]])
        loop.place(placed)
        loop.answer(orderId, "WH-A", .accepted)
        loop.tick(at: F.now.addingTimeInterval(3_600))
        #expect(loop.all { if case .fulfilmentOverdue(let e) = $0 { e.rule } else { nil } } == ["ship"])
        loop.tick(at: F.now.addingTimeInterval(4_800))
        #expect(loop.withdrawals.count == 1)
        #expect(loop.shipments.map(\.location) == ["WH-B"])
    }

    @Test func aPickupOrderIsHeldAtTheStoreAndCollected() throws {
        let pickup = F.placed(F.order(lines: [F.line("1", "SKU-A", quantity: 1)], pickupLocation: "STORE-1"))
        var fresh = Loop(stock: ["SKU-A": [F.stock("STORE-1", onHand: 3)]])
        fresh.place(pickup)
        let request = try #require(fresh.requests.first)
        #expect(request.mode == .pickup && request.location == "STORE-1" && request.shipTo == nil)
        fresh.answer(pickup.orderId, "STORE-1", .readyForPickup)
        let held = try #require(fresh.shipments.first)
        #expect(held.carrier == PickupHandover.carrier)
        #expect(held.trackingNumber == PickupHandover.code(orderId: pickup.orderId, location: "STORE-1"))
        #expect(fresh.notifications.contains(.readyForPickup))
        #expect(!fresh.notifications.contains(.shipped), "the customer is not told a parcel left")

        fresh.answer(pickup.orderId, "STORE-1", .pickedUp)
        #expect(fresh.view(pickup.orderId)?.status == .delivered)
        #expect(fresh.view(pickup.orderId)?.fulfilment?.map(\.status) == [.pickedUp])
        #expect(fresh.stock("SKU-A", "STORE-1") == F.stock("STORE-1", onHand: 2, sequence: 1))
    }

    @Test func aCancelWithdrawsTheRequestAndALatePackedAnswerShipsNothing() throws {
        var loop = Loop(stock: ["SKU-A": [F.stock("WH-A", onHand: 5)]])
        loop.place(placed)
        loop.answer(orderId, "WH-A", .accepted)
        loop.send(CancelOrder(orderId: orderId, requestedBy: "customer", reason: Reason(code: "changed_mind", message: "no"), requestedAt: F.now).event)
        #expect(loop.withdrawals.map(\.reason.code) == ["order_cancelled"])
        loop.answer(orderId, "WH-A", .packed, parcels: [PackedParcel(weightGrams: 600)])
        #expect(loop.shipments.isEmpty)
        #expect(loop.stock("SKU-A", "WH-A") == F.stock("WH-A", onHand: 5, sequence: 1))
        #expect(loop.view(orderId)?.fulfilment?.map(\.status) == [.cancelled])
    }

    @Test func aLocationThatShipsUnderItsOwnLabelKeepsItsTrackingNumber() throws {
        var loop = Loop(stock: ["SKU-A": [F.stock("WH-A", onHand: 5)]])
        loop.place(placed)
        loop.answer(orderId, "WH-A", .shipped, parcels: [PackedParcel(weightGrams: 900)], carrier: "ups", trackingNumber: "1Z999")
        let shipment = try #require(loop.shipments.first)
        #expect(shipment.carrier == "ups" && shipment.trackingNumber == "1Z999")
        let index = loop.all { if case .shipmentIndexEntry(let e) = $0 { e } else { nil } }
        #expect(index.map(\.trackingNumber) == ["1Z999"], "carrier pushes for the location's number join the shipment")
    }
}

/// The fulfilment stage's decisions as pure functions: the split of a location's report
/// into found and missing units, and answers that cannot be applied.
@Suite struct FulfilmentMachineTests {
    let rules = FulfilmentLoopTests.rules

    @Test func aReportNeverAddsUnitsAndALineLeftOutWasNotFound() {
        let asked = [F.shipmentLine("1", "SKU-A", 2), F.shipmentLine("2", "SKU-B", 1)]
        let split = FulfilmentMachine.split(asked, reported: [LineQuantity(lineId: "1", quantity: 5)])
        #expect(split.found == [F.shipmentLine("1", "SKU-A", 2)])
        #expect(split.missing == [F.shipmentLine("2", "SKU-B", 1)])
    }

    @Test func anAnswerForARequestThatDoesNotExistIsRejectedWithItsReason() {
        let update = FulfilmentUpdate(updateId: "u1", orderId: "o-1", location: "WH-B", kind: .accepted, occurredAt: F.now)
        #expect(throws: StageFailure.rejected("order o-1 has no fulfilment request at WH-B")) {
            try FulfilmentMachine.advance(nil, orderId: "o-1", on: update.event, rules: rules, now: F.now)
        }
    }

    @Test func locationsThatShipDirectlyNeverGetARequest() throws {
        let decision = OrderAllocated(orderId: "o-1", allocations: [F.allocation("1", "SKU-A", "WH-B", 2)], decidedAt: F.now)
        let state = FulfilmentState(orderId: "o-1", placed: true, waiting: [], requests: [], cancelled: false, updatedAt: F.now)
        let step = try FulfilmentMachine.advance(state, orderId: "o-1", on: decision.event, rules: rules, now: F.now)
        #expect(step.outputs.isEmpty)
        #expect(step.state?.requests.isEmpty == true)
    }

    @Test func anAllocationReadBeforeTheOrderWaitsForIt() throws {
        let placed = F.placed(F.order(lines: [F.line("1", "SKU-A", quantity: 2)]))
        let decision = OrderAllocated(orderId: placed.orderId, allocations: [F.allocation("1", "SKU-A", "WH-A", 2)], decidedAt: F.now)
        let waiting = try FulfilmentMachine.advance(nil, orderId: placed.orderId, on: decision.event, rules: rules, now: F.now)
        #expect(waiting.outputs.isEmpty)
        let step = try FulfilmentMachine.advance(waiting.state, orderId: placed.orderId, on: placed.event, rules: rules, now: F.now)
        #expect(step.outputs.compactMap { if case .fulfilmentRequested(let e) = $0 { e.location } else { nil } } == ["WH-A"])
    }
}

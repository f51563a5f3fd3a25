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

        init(stock: [String: [LocationStock]], rules: BusinessRules = FulfilmentLoopTests.rules, products: [CatalogProduct] = []) {
            allocation = StageDriver(stage: AllocationStage(rules: rules))
            var catalog = Dictionary(uniqueKeysWithValues: ["SKU-A", "SKU-B"].map { ($0, Event.catalogProduct(F.shippingProduct($0, weightGrams: 400))) })
            for product in products { catalog[product.sku] = product.event }
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
            let results = fulfilment.tick(now: time) + allocation.tick(now: time)
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
        #expect(loop.notifications.filter { $0 == .orderChanged }.count == 1, "one message for the change, not one per step")
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
        #expect(loop.notifications.filter { $0 == .orderChanged }.count == 1)
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
        #expect(!loop.notifications.contains(.orderChanged), "a withdrawal is not the customer's business")

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

    @Test func aReplacementPackedBeforeItsReturnArrivedShipsWhenTheReturnDoes() throws {
        var loop = Loop(stock: ["SKU-A": [F.stock("WH-A", onHand: 5)]])
        var order = F.order(externalOrderId: "R-1", lines: [F.line("1", "SKU-A", quantity: 1)])
        order.exchangeOf = ExchangeLink(orderId: "original", returnId: "r-1", holdUntilReturned: true, credits: [])
        let replacement = F.placed(order)
        loop.place(replacement)
        loop.answer(replacement.orderId, "WH-A", .packed, parcels: [PackedParcel(weightGrams: 500)])
        #expect(loop.shipments.isEmpty, "held until the return arrives")
        loop.send(ShipReplacement(orderId: replacement.orderId, originalOrderId: "original", returnId: "r-1", requestedAt: F.now).event)
        #expect(loop.shipments.map(\.location) == ["WH-A"])
        #expect(loop.shipments.first?.parcels == [PackedParcel(weightGrams: 500)], "shipped as the location packed it")
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

/// Backorders fill themselves: allocation tells inventory what each backordered line
/// waits for (`WaitForStock`), and inventory, the one writer of the SKU, reserves arriving
/// stock for the waiting lines first, in fill order, before any new order can take it.
@Suite struct BackorderFillTests {
    typealias Loop = FulfilmentLoopTests.Loop

    func order(_ name: String, quantity: Int, minutesAfter: Double, service: ServiceLevel = .standard) -> OrderPlaced {
        var order = F.order(externalOrderId: name, lines: [F.line("1", "SKU-A", quantity: quantity)], placedAt: F.placedAt.addingTimeInterval(minutesAfter * 60))
        order.serviceLevel = service
        return F.placed(order)
    }

    func shipped(_ loop: Loop, _ orderId: String) -> Int {
        loop.shipments.filter { $0.orderId == orderId }.flatMap(\.lines).reduce(0) { $0 + $1.quantity }
    }

    @Test func arrivingStockFillsBackordersFirstPlacedFirstAndNewOrdersWaitBehindThem() throws {
        var loop = Loop(stock: ["SKU-A": [F.stock("WH-B", onHand: 0)]])
        let first = order("B-1", quantity: 2, minutesAfter: 0)
        let second = order("B-2", quantity: 2, minutesAfter: 1)
        loop.place(second)  // read first, placed later: placement decides, not arrival
        loop.place(first)
        let waits = loop.all { if case .waitForStock(let w) = $0 { w } else { nil } }
        #expect(Set(waits.map(\.orderId)) == [first.orderId, second.orderId])
        #expect(waits.allSatisfy { $0.locations == ["WH-A", "WH-B"] && $0.quantity == 2 })

        loop.send(AdjustInventory(sku: "SKU-A", location: "WH-B", mode: .absolute, quantity: 3, source: "test", sourceSequence: 2).event)
        #expect(shipped(loop, first.orderId) == 2, "the first placed is filled whole")
        #expect(shipped(loop, second.orderId) == 1, "the next gets what is left")

        // A new order now finds nothing free: it waits behind the second.
        let third = order("B-3", quantity: 1, minutesAfter: 5)
        loop.place(third)
        #expect(shipped(loop, third.orderId) == 0)
        guard case .inventoryLevel(let level)? = loop.inventory.value("SKU-A") else {
            Issue.record("no level")
            return
        }
        let inventory = loop.inventory
        let queue = InventoryLedger.waitingLines(of: level) { key in if case .waitingLine(let line)? = inventory.value(key) { line } else { nil } }
        #expect(queue.map(\.orderId) == [second.orderId, third.orderId])
        #expect(level.waitingLines == 2)
        #expect(level.locations.first { $0.location == "WH-B" }.map(InventoryLedger.available) == 0, "never oversold")

        loop.send(RestockInventory(orderId: "returned", returnId: "r-1", sku: "SKU-A", location: "WH-B", quantity: 2).event)
        #expect(shipped(loop, second.orderId) == 2)
        #expect(shipped(loop, third.orderId) == 1)
        let secondParcels = loop.shipments.filter { $0.orderId == second.orderId }
        #expect(secondParcels.count == 2 && Set(secondParcels.map(\.shipmentId)).count == 2, "a second parcel from the same location has its own id")
        #expect(loop.view(second.orderId)?.status == .shipped)
        guard case .inventoryLevel(let after)? = loop.inventory.value("SKU-A") else { return }
        #expect(after.waitingHead == nil && after.waitingLines == nil, "nobody waits any more")
        #expect(after.locations.first { $0.location == "WH-B" } == F.stock("WH-B", onHand: 0, sequence: 2), "everything shipped and committed")
    }

    /// One SKU's level and its records, as inventory's changelog would hold them.
    struct Ledger {
        var level: InventoryLevel
        var records: [String: Event] = [:]

        init(_ stocks: [LocationStock]) { level = InventoryLevel(sku: "SKU-A", locations: stocks, updatedAt: F.now) }

        @discardableResult
        mutating func apply(_ command: Event) throws -> InventoryLedger.Change {
            let records = records
            let change = try InventoryLedger.apply(
                command, to: &level,
                reservation: { key in if case .inventoryReservation(let r)? = records[key] { r } else { nil } },
                waiting: { key in if case .waitingLine(let w)? = records[key] { w } else { nil } }, commandId: "c", now: F.now)
            for record in change.reservationChanges {
                switch record {
                case .put(let value): self.records[record.key] = value
                case .delete(let key): self.records[key] = nil
                }
            }
            return change
        }

        var waiting: [String] {
            let records = records
            return InventoryLedger.waitingLines(of: level) { key in if case .waitingLine(let w)? = records[key] { w } else { nil } }.map(\.orderId)
        }
    }

    @Test func aFasterPaidServiceIsFilledFirstWhenTheRuleSaysSo() throws {
        var ledger = Ledger([F.stock("WH-1", onHand: 0)])
        let standard = WaitForStock(orderId: "o-std", lineId: "1", sku: "SKU-A", quantity: 1, locations: ["WH-1"], priority: BackorderFillOrder.serviceLevel.rank(.standard), placedAt: F.placedAt)
        let express = WaitForStock(
            orderId: "o-exp", lineId: "1", sku: "SKU-A", quantity: 1, locations: ["WH-1"], priority: BackorderFillOrder.serviceLevel.rank(.nextDay),
            placedAt: F.placedAt.addingTimeInterval(3_600))
        let late = WaitForStock(
            orderId: "o-late", lineId: "1", sku: "SKU-A", quantity: 1, locations: ["WH-1"], priority: BackorderFillOrder.serviceLevel.rank(.standard),
            placedAt: F.placedAt.addingTimeInterval(7_200))
        for command in [standard.event, late.event, express.event] { try ledger.apply(command) }
        #expect(ledger.waiting == ["o-exp", "o-std", "o-late"], "next day before standard, though placed later; then first placed")
        #expect(ledger.level.waitingLines == 3)
        let change = try ledger.apply(AdjustInventory(sku: "SKU-A", location: "WH-1", mode: .delta, quantity: 1, source: "wms", sourceSequence: 1).event)
        #expect(change.fills.map(\.orderId) == ["o-exp"])
        #expect(change.fills.first?.outcome == .backorderFilled)
        #expect(ledger.waiting == ["o-std", "o-late"])
        #expect(ledger.level.locations.first?.reserved == 1)
        #expect(ledger.records.values.filter { if case .inventoryReservation = $0 { true } else { false } }.count == 1, "the filled units are a reservation of their own")
        // A line that waits for fewer units keeps its place.
        var fewer = late
        fewer.quantity = 1
        try ledger.apply(fewer.event)
        #expect(ledger.waiting == ["o-std", "o-late"])
    }

    @Test func aLineWaitsOnlyForItsLocationsAndStopsWaitingAtZero() throws {
        var ledger = Ledger([F.stock("STORE-1", onHand: 0), F.stock("WH-1", onHand: 0)])
        let pickup = WaitForStock(orderId: "o-pu", lineId: "1", sku: "SKU-A", quantity: 1, locations: ["STORE-1"], priority: 0, placedAt: F.placedAt)
        let anywhere = WaitForStock(orderId: "o-any", lineId: "1", sku: "SKU-A", quantity: 1, locations: ["WH-1", "STORE-1"], priority: 0, placedAt: F.placedAt.addingTimeInterval(60))
        for command in [pickup.event, anywhere.event] { try ledger.apply(command) }
        let warehouse = try ledger.apply(AdjustInventory(sku: "SKU-A", location: "WH-1", mode: .absolute, quantity: 1, source: "wms", sourceSequence: 1).event)
        #expect(warehouse.fills.map(\.orderId) == ["o-any"], "the pick-up order waits for its store")
        var stopped = pickup
        stopped.quantity = 0
        try ledger.apply(stopped.event)
        #expect(ledger.level.waitingHead == nil && ledger.waiting.isEmpty)
        #expect(!ledger.records.values.contains { if case .waitingLine = $0 { true } else { false } }, "the record is deleted")
        let store = try ledger.apply(AdjustInventory(sku: "SKU-A", location: "STORE-1", mode: .absolute, quantity: 1, source: "pos", sourceSequence: 1).event)
        #expect(store.fills.isEmpty, "nobody waits for the store any more")
    }

    @Test func aFillForALineThatNoLongerWaitsIsGivenBack() throws {
        var loop = Loop(stock: ["SKU-A": [F.stock("WH-B", onHand: 0)]])
        let placed = order("B-9", quantity: 2, minutesAfter: 0)
        loop.place(placed)
        loop.send(CancelOrder(orderId: placed.orderId, requestedBy: "customer", reason: Reason(code: "changed_mind", message: "no"), requestedAt: F.now).event)
        let stops = loop.all { if case .waitForStock(let w) = $0, w.quantity == 0 { w } else { nil } }
        #expect(stops.map(\.orderId) == [placed.orderId], "a cancel stops the wait")
        loop.send(AdjustInventory(sku: "SKU-A", location: "WH-B", mode: .absolute, quantity: 2, source: "test", sourceSequence: 2).event)
        #expect(loop.shipments.isEmpty)
        #expect(loop.stock("SKU-A", "WH-B") == F.stock("WH-B", onHand: 2, sequence: 2), "nothing held for a cancelled order")
    }
}

/// Pre-orders: a SKU with a future launch date and `preorder: true` may be ordered; its
/// stock is reserved (or waits) at once and the order is released to ship on the launch
/// date, complete (`wait`) or its launched lines first (`ship_available`).
@Suite struct PreorderTests {
    typealias Loop = FulfilmentLoopTests.Loop
    static let launch = F.now.addingTimeInterval(F.days(2))

    static var preorderProduct: CatalogProduct {
        var product = F.shippingProduct("SKU-P", weightGrams: 300)
        product.launchDate = launch
        product.preorder = true
        return product
    }

    static func rules(_ partial: PreorderPartial) -> BusinessRules {
        var rules = FulfilmentLoopTests.rules
        rules.sourcing.preorderPartial = partial
        return rules
    }

    let mixed = F.placed(F.order(lines: [F.line("1", "SKU-A", quantity: 1), F.line("2", "SKU-P", quantity: 1)]))

    @Test func intakeTakesAPreorderAndRefusesAnUnlaunchedSKUThatIsNone() {
        var plain = Self.preorderProduct
        plain.preorder = nil
        let order = F.order(lines: [F.line("1", "SKU-P", quantity: 1)])
        #expect(IntakeStage.validate(order, rules: IntakeRules(), product: { _ in Self.preorderProduct }).isEmpty)
        #expect(IntakeStage.validate(order, rules: IntakeRules(), product: { _ in plain }).map(\.code) == ["sku_not_launched"])
    }

    @Test func aPreorderIsReservedAtOnceAndReleasedToShipOnItsLaunchDate() throws {
        var loop = Loop(stock: ["SKU-A": [F.stock("WH-B", onHand: 5)], "SKU-P": [F.stock("WH-B", onHand: 5)]], rules: Self.rules(.wait), products: [Self.preorderProduct])
        loop.place(mixed)
        #expect(loop.stock("SKU-P", "WH-B")?.reserved == 1, "reserved at once")
        #expect(loop.shipments.isEmpty, "nothing ships before the launch")
        #expect(loop.all { if case .orderAllocated(let e) = $0 { e } else { nil } }.isEmpty, "the decision is held back")
        loop.tick(at: Self.launch.addingTimeInterval(-1))
        #expect(loop.shipments.isEmpty)
        loop.tick(at: Self.launch)
        #expect(loop.shipments.count == 1)
        #expect(loop.shipments.first?.lines.map(\.sku) == ["SKU-A", "SKU-P"], "shipped complete on the launch date")
        loop.tick(at: Self.launch.addingTimeInterval(3_600))
        #expect(loop.shipments.count == 1, "released once")
    }

    @Test func withShipAvailableTheLaunchedLinesShipFirst() throws {
        var loop = Loop(
            stock: ["SKU-A": [F.stock("WH-B", onHand: 5)], "SKU-P": [F.stock("WH-B", onHand: 5)]], rules: Self.rules(.shipAvailable),
            products: [Self.preorderProduct])
        loop.place(mixed)
        #expect(loop.shipments.flatMap(\.lines).map(\.sku) == ["SKU-A"])
        loop.tick(at: Self.launch)
        #expect(loop.shipments.count == 2)
        #expect(loop.shipments.last?.lines.map(\.sku) == ["SKU-P"])
        #expect(loop.view(mixed.orderId)?.status == .shipped)
    }

    @Test func aPreorderWithoutStockWaitsAndShipsWhenStockAndLaunchHaveBothCome() throws {
        var loop = Loop(stock: ["SKU-P": [F.stock("WH-B", onHand: 0)]], rules: Self.rules(.wait), products: [Self.preorderProduct])
        let only = F.placed(F.order(lines: [F.line("1", "SKU-P", quantity: 2)]))
        loop.place(only)
        loop.tick(at: Self.launch)
        #expect(loop.shipments.isEmpty, "launched, but no stock: it waits as a backorder")
        loop.send(AdjustInventory(sku: "SKU-P", location: "WH-B", mode: .absolute, quantity: 2, source: "test", sourceSequence: 2).event)
        #expect(loop.shipments.flatMap(\.lines).map(\.quantity) == [2])
    }
}

/// `oms fulfilment import`: a vendor's file of answers, CSV rows grouped by update id or a
/// JSON array; a wrong answer refuses the whole file, naming its line.
@Suite struct FulfilmentFileTests {
    func parse(_ text: String, json: Bool = false) throws(DataImport.Failure) -> [FulfilmentUpdate] {
        try DataImport.fulfilmentUpdates(Data(text.utf8), json: json, now: F.now)
    }

    @Test func rowsWithOneUpdateIdMakeOneAnswer() throws {
        let updates = try parse("""
            update_id,order_id,location,kind,line_id,quantity,weight_grams,carrier,tracking_number
            v-1,o-1,SUP-ACME,picked,1,2,,,
            v-1,o-1,SUP-ACME,picked,2,0,,,
            v-2,o-1,SUP-ACME,shipped,,,900,ups,1Z1
            v-2,o-1,SUP-ACME,shipped,,,400,,
            """)
        #expect(updates.count == 2)
        #expect(updates[0].kind == .picked && updates[0].lines == [LineQuantity(lineId: "1", quantity: 2), LineQuantity(lineId: "2", quantity: 0)])
        #expect(updates[1].kind == .shipped && updates[1].carrier == "ups" && updates[1].trackingNumber == "1Z1")
        #expect(updates[1].parcels == [PackedParcel(weightGrams: 900), PackedParcel(weightGrams: 400)])
        #expect(updates.allSatisfy { $0.occurredAt == F.now })
        #expect(updates[0].derivedEventId == FulfilmentUpdate(updateId: "v-1", orderId: "x", location: "SUP-ACME", kind: .accepted, occurredAt: F.now).derivedEventId,
                "the id is the location's and the update's: the same answer by webhook or file is one")
    }

    @Test func aWrongAnswerRefusesTheFileNamingItsLine() {
        let untracked = #expect(throws: DataImport.Failure.self) {
            try parse("""
                update_id,order_id,location,kind,weight_grams
                v-1,o-1,SUP-ACME,shipped,900
                """)
        }
        #expect(untracked?.description == "line 2: update v-1: a shipped answer needs carrier and trackingNumber (the location's own label)")
        let mixed = #expect(throws: DataImport.Failure.self) {
            try parse("""
                update_id,order_id,location,kind
                v-1,o-1,SUP-ACME,accepted
                v-1,o-1,SUP-ACME,rejected
                """)
        }
        #expect(mixed?.description == "line 3: update v-1 was accepted for o-1 at SUP-ACME on line 2")
        #expect(throws: DataImport.Failure.self) { try parse("update_id,order_id,location,kind\nv-1,o-1,SUP-ACME,lost\n") }
        #expect(throws: DataImport.Failure.self) { try parse(#"[{"updateId": "v", "orderId": "o", "location": "L", "kind": "picked", "occurredAt": "2026-03-01T12:00:00Z"}]"#, json: true) }
    }
}

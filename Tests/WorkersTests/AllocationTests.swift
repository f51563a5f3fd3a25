import Contracts
import Foundation
import Testing
import Workers

private typealias F = PipelineFixtures

/// Allocation's per-order state machine (`AllocationMachine.advance` against a fake
/// snapshot) and `AllocationStage` through `StageDriver` with the level and catalog
/// tables: placed and approved in either order plan and send reserve commands; all
/// reserved allocates; refusals re-plan with the availability inventory reported, at most
/// `maxReplans` times, then the backorder policy decides (backorder, cancel_lines,
/// hold_order releasing what it holds); a declined order is remembered as cancelled; an accepted cancel
/// (`OrderCancelled`, decided by shipping) releases reserved and planned units, and
/// reservations confirmed after it; the `CancelOrder` command itself is not allocation's;
/// repeated results change nothing.
@Suite struct AllocationTests {
    static let locations = [
        StockLocation(id: "WH-1", type: .warehouse, country: "US"),
        StockLocation(id: "WH-2", type: .warehouse, country: "US"),
        StockLocation(id: "WH-3", type: .warehouse, country: "US"),
    ]

    static func rules(maxShipments: Int = 2, maxReplans: Int = 2, policy: BackorderPolicy = .backorder) -> BusinessRules {
        BusinessRules(
            sourcing: SourcingRules(maxShipments: maxShipments, maxReplans: maxReplans, backorderPolicy: policy), locations: locations,
            zones: [Zone(country: "US", distances: ["WH-1": 10, "WH-2": 20, "WH-3": 30])])
    }

    /// Two lines: 2 × SKU-A and 1 × SKU-B.
    let placed = F.placed(F.order(lines: [F.line("1", "SKU-A", quantity: 2), F.line("2", "SKU-B", quantity: 1)]))
    var orderId: String { placed.orderId }
    var approved: Event { PaymentApproved(orderId: orderId, amount: placed.totals.total, reasons: [], decidedAt: F.now).event }
    var declined: Event { PaymentDeclined(orderId: orderId, amount: placed.totals.total, reasons: [], decidedAt: F.now).event }
    /// A cancel accepted by shipping (allocation no longer reads the CancelOrder command).
    var cancel: Event {
        OrderCancelled(orderId: orderId, requestedBy: "customer", reason: Reason(code: "changed_mind", message: "no longer needed"), cancelledAt: F.now).event
    }

    /// One unit of line 1 cancelled, as shipping accepts it for a held order.
    var cut: Event {
        OrderLinesCancelled(
            orderId: orderId, changeId: "cut-1", lines: [ShipmentLine(lineId: "1", sku: "SKU-A", quantity: 1)], amount: F.money(1_000),
            requestedBy: "operator", reason: Reason(code: "customer_request", message: "one less"), cancelledAt: F.now
        ).event
    }

    func alloc(_ line: String, _ sku: String, _ location: String, _ quantity: Int) -> LineAllocation {
        LineAllocation(lineId: line, sku: sku, location: location, quantity: quantity)
    }

    func reserveCommand(_ a: LineAllocation) -> Event {
        ReserveInventory(orderId: orderId, lineId: a.lineId, sku: a.sku, location: a.location, quantity: a.quantity).event
    }

    func releaseCommand(_ a: LineAllocation, _ reason: String) -> Event {
        ReleaseInventory(orderId: orderId, lineId: a.lineId, sku: a.sku, location: a.location, quantity: a.quantity, reason: reason).event
    }

    /// What inventory is told a line waits for: nearest location first, first placed first filled.
    func waitCommand(_ lineId: String, _ sku: String, _ quantity: Int) -> Event {
        WaitForStock(orderId: orderId, lineId: lineId, sku: sku, quantity: quantity, locations: ["WH-1", "WH-2", "WH-3"], priority: 0, placedAt: F.placedAt).event
    }

    func reserved(_ a: LineAllocation) -> Event {
        InventoryResult(orderId: orderId, lineId: a.lineId, sku: a.sku, location: a.location, quantity: a.quantity, outcome: .reserved, commandId: "cmd").event
    }

    func refused(_ a: LineAllocation, available: Int) -> Event {
        InventoryResult(
            orderId: orderId, lineId: a.lineId, sku: a.sku, location: a.location, quantity: a.quantity, outcome: .refused, available: available,
            commandId: "cmd"
        ).event
    }

    /// Plenty of both SKUs at WH-1 only.
    let stocked = FakeSnapshot(free: ["SKU-A": ["WH-1": 10], "SKU-B": ["WH-1": 10]])

    /// Feeds events one after the other, returning the last step and every output.
    func run(_ events: [Event], from start: AllocationState? = nil, rules: BusinessRules = rules(), snapshot: FakeSnapshot) -> (state: AllocationState?, outputs: [[Event]]) {
        var state = start
        var outputs: [[Event]] = []
        for event in events {
            let step = AllocationMachine.advance(state, on: event, rules: rules, now: F.now, snapshot: snapshot)
            state = step.state
            outputs.append(step.outputs)
        }
        return (state, outputs)
    }

    // MARK: Placed and approved

    @Test func placedOrderWaitsForPayment() throws {
        let step = AllocationMachine.advance(nil, on: placed.event, rules: Self.rules(), now: F.now, snapshot: stocked)
        #expect(step.outputs == [])
        let state = try #require(step.state)
        #expect(state.orderId == orderId)
        #expect(state.status == .awaitingPayment)
        #expect(state.attempt == 0)
        #expect(state.lines == [ShipmentLine(lineId: "1", sku: "SKU-A", quantity: 2), ShipmentLine(lineId: "2", sku: "SKU-B", quantity: 1)])
        #expect(state.destinationCountry == F.country("US"))
        #expect(state.destinationPostalCode == "11201")
    }

    @Test func placedThenApprovedSendsReserveCommands() throws {
        let (state, outputs) = run([placed.event, approved], snapshot: stocked)
        let plannedAllocations = [alloc("1", "SKU-A", "WH-1", 2), alloc("2", "SKU-B", "WH-1", 1)]
        #expect(outputs == [[], plannedAllocations.map(reserveCommand)])
        let s = try #require(state)
        #expect(s.status == .reserving)
        #expect(s.attempt == 1)
        #expect(s.planned == plannedAllocations)
        #expect(s.reserved == [])
    }

    @Test func approvedBeforePlacedAlsoWorks() throws {
        let first = AllocationMachine.advance(nil, on: approved, rules: Self.rules(), now: F.now, snapshot: stocked)
        #expect(first.outputs == [])
        #expect(first.state?.status == .awaitingOrder)
        #expect(first.state?.lines == [])

        let (state, outputs) = run([approved, placed.event], snapshot: stocked)
        let (inOrder, inOrderOutputs) = run([placed.event, approved], snapshot: stocked)
        #expect(outputs.last == inOrderOutputs.last, "the same commands whichever came first")
        #expect(state?.planned == inOrder?.planned)
        #expect(state?.status == .reserving)
        #expect(state?.destinationPostalCode == "11201")
    }

    @Test func releasedHoldCountsAsApproval() {
        let released = PaymentReleased(orderId: orderId, amount: placed.totals.total, reasons: [], releasedBy: "ops", decidedAt: F.now).event
        let (state, outputs) = run([placed.event, released], snapshot: stocked)
        #expect(state?.status == .reserving)
        #expect(outputs.last?.count == 2)
    }

    @Test func repeatedPlacedOrApprovedDoesNotPlanAgain() {
        let (state, outputs) = run([placed.event, approved, approved, placed.event], snapshot: stocked)
        #expect(outputs.map(\.count) == [0, 2, 0, 0])
        #expect(state?.attempt == 1)
    }

    // MARK: Results

    @Test func allReservedAllocatesTheOrder() throws {
        let a = alloc("1", "SKU-A", "WH-1", 2)
        let b = alloc("2", "SKU-B", "WH-1", 1)
        // Answers in the other order than asked: the decision waits for both.
        let (state, outputs) = run([placed.event, approved, reserved(b), reserved(a)], snapshot: stocked)
        #expect(outputs[2] == [], "one answer is still missing")
        #expect(outputs[3] == [OrderAllocated(orderId: orderId, allocations: [a, b], decidedAt: F.now).event], "allocations sorted by line")
        let s = try #require(state)
        #expect(s.status == .allocated)
        #expect(s.planned == [])
        #expect(s.reserved == [a, b])
        #expect(s.backordered == [])
    }

    @Test func nothingInStockAppliesThePolicyAtOnce() throws {
        let (state, outputs) = run([placed.event, approved], snapshot: FakeSnapshot())
        try #require(outputs[1].count == 3)
        #expect(Array(outputs[1].dropFirst()) == [waitCommand("1", "SKU-A", 2), waitCommand("2", "SKU-B", 1)], "both lines wait for stock")
        guard case .orderBackordered(let backordered) = outputs[1][0] else {
            Issue.record("expected OrderBackordered, got \(outputs[1])")
            return
        }
        #expect(backordered.lines == [BackorderedLine(lineId: "1", sku: "SKU-A", quantity: 2), BackorderedLine(lineId: "2", sku: "SKU-B", quantity: 1)])
        #expect(backordered.policy == .backorder)
        #expect(F.codes(backordered.reasons) == ["insufficient_stock"])
        #expect(state?.status == .backordered)
        #expect(state?.policy == .backorder)
        #expect(state?.attempt == 1)
    }

    @Test func refusalReplansWithTheObservedAvailability() throws {
        let placedA = F.placed(F.order(lines: [F.line("1", "SKU-A", quantity: 2)]))
        let approvedA = PaymentApproved(orderId: placedA.orderId, amount: placedA.totals.total, reasons: [], decidedAt: F.now).event
        // The snapshot is stale: WH-1 claims 5 but has 1 left.
        let snapshot = FakeSnapshot(free: ["SKU-A": ["WH-1": 5, "WH-2": 1, "WH-3": 1]])
        let refusal = InventoryResult(orderId: placedA.orderId, lineId: "1", sku: "SKU-A", location: "WH-1", quantity: 2, outcome: .refused, available: 1, commandId: "c").event
        let (state, outputs) = run([placedA.event, approvedA, refusal], snapshot: snapshot)
        #expect(outputs[1] == [ReserveInventory(orderId: placedA.orderId, lineId: "1", sku: "SKU-A", location: "WH-1", quantity: 2).event])
        // Re-planned with WH-1 at 1: one unit there and one at the next nearest.
        #expect(outputs[2] == [
            ReserveInventory(orderId: placedA.orderId, lineId: "1", sku: "SKU-A", location: "WH-1", quantity: 1).event,
            ReserveInventory(orderId: placedA.orderId, lineId: "1", sku: "SKU-A", location: "WH-2", quantity: 1).event,
        ])
        let s = try #require(state)
        #expect(s.attempt == 2)
        #expect(s.status == .reserving)
        #expect(s.observed == [StockObservation(sku: "SKU-A", location: "WH-1", available: 1)])
    }

    @Test func replanAvoidsTheLocationWhereTheLineAlreadyHoldsUnits() throws {
        let placedA = F.placed(F.order(lines: [F.line("1", "SKU-A", quantity: 2)]))
        let approvedA = PaymentApproved(orderId: placedA.orderId, amount: placedA.totals.total, reasons: [], decidedAt: F.now).event
        func result(_ location: String, _ outcome: InventoryOutcome) -> Event {
            InventoryResult(orderId: placedA.orderId, lineId: "1", sku: "SKU-A", location: location, quantity: 1, outcome: outcome, available: outcome == .refused ? 0 : nil, commandId: "c").event
        }
        func command(_ location: String) -> Event {
            ReserveInventory(orderId: placedA.orderId, lineId: "1", sku: "SKU-A", location: location, quantity: 1).event
        }
        // The snapshot does not show this order's own reservation at WH-1, nor that WH-2 is empty.
        let snapshot = FakeSnapshot(free: ["SKU-A": ["WH-1": 1, "WH-2": 1, "WH-3": 1]])
        let (state, outputs) = run([placedA.event, approvedA, result("WH-1", .reserved), result("WH-2", .refused)], snapshot: snapshot)
        #expect(outputs[1] == [command("WH-1"), command("WH-2")])
        #expect(outputs[2] == [])
        // WH-1 still looks free and already ships, but the line holds a reservation there
        // (a second reserve would only be answered with the first): WH-3 it is.
        #expect(outputs[3] == [command("WH-3")])
        #expect(state?.reserved == [alloc("1", "SKU-A", "WH-1", 1)])
        #expect(state?.planned == [alloc("1", "SKU-A", "WH-3", 1)])

        let (final, last) = run([result("WH-3", .reserved)], from: state, snapshot: snapshot)
        #expect(last[0] == [OrderAllocated(orderId: placedA.orderId, allocations: [alloc("1", "SKU-A", "WH-1", 1), alloc("1", "SKU-A", "WH-3", 1)], decidedAt: F.now).event])
        #expect(final?.status == .allocated)
    }

    @Test func replansAreBoundedByMaxReplans() throws {
        let placedA = F.placed(F.order(lines: [F.line("1", "SKU-A", quantity: 1)]))
        let approvedA = PaymentApproved(orderId: placedA.orderId, amount: placedA.totals.total, reasons: [], decidedAt: F.now).event
        // The snapshot keeps claiming stock at three places; inventory refuses every time
        // but reports units free, so each round plans again.
        let snapshot = FakeSnapshot(free: ["SKU-A": ["WH-1": 9, "WH-2": 9, "WH-3": 9]])
        func refusal(_ location: String) -> Event {
            InventoryResult(orderId: placedA.orderId, lineId: "1", sku: "SKU-A", location: location, quantity: 1, outcome: .refused, available: 5, commandId: "c").event
        }
        for maxReplans in 0...2 {
            var state = run([placedA.event, approvedA], rules: Self.rules(maxReplans: maxReplans), snapshot: snapshot).state
            var rounds = 1
            while let s = state, s.status == .reserving, let asked = s.planned.first {
                #expect(s.planned.count == 1)
                let step = AllocationMachine.advance(s, on: refusal(asked.location), rules: Self.rules(maxReplans: maxReplans), now: F.now, snapshot: snapshot)
                state = step.state
                if state?.status == .reserving { rounds += 1 }
                if rounds > 10 { break }
            }
            #expect(rounds == maxReplans + 1, "one plan and \(maxReplans) re-plans")
            #expect(state?.attempt == maxReplans + 1)
            #expect(state?.status == .backordered)
        }
    }

    @Test func backorderPolicyAllocatesWhatItCanAndBackordersTheRest() throws {
        let snapshot = FakeSnapshot(free: ["SKU-A": ["WH-1": 2], "SKU-B": ["WH-1": 1]])
        let a = alloc("1", "SKU-A", "WH-1", 2)
        let b = alloc("2", "SKU-B", "WH-1", 1)
        let (state, outputs) = run([placed.event, approved, reserved(a), refused(b, available: 0)], snapshot: snapshot)
        #expect(outputs[3] == [
            OrderPartiallyAllocated(orderId: orderId, allocations: [a], backordered: [BackorderedLine(lineId: "2", sku: "SKU-B", quantity: 1)], policy: .backorder, decidedAt: F.now).event,
            waitCommand("2", "SKU-B", 1),
        ])
        #expect(state?.status == .partiallyAllocated)
        #expect(state?.reserved == [a])
        #expect(state?.backordered == [BackorderedLine(lineId: "2", sku: "SKU-B", quantity: 1)])
        #expect(state?.attempt == 2, "a re-plan was tried and found nothing")
    }

    @Test func cancelLinesPolicyCancelsWhatCannotBeSourced() throws {
        let rules = Self.rules(policy: .cancelLines)
        let snapshot = FakeSnapshot(free: ["SKU-A": ["WH-1": 2], "SKU-B": ["WH-1": 1]])
        let a = alloc("1", "SKU-A", "WH-1", 2)
        let b = alloc("2", "SKU-B", "WH-1", 1)
        let (partial, outputs) = run([placed.event, approved, reserved(a), refused(b, available: 0)], rules: rules, snapshot: snapshot)
        guard case .orderPartiallyAllocated(let decision)? = outputs[3].first else {
            Issue.record("expected OrderPartiallyAllocated, got \(outputs[3])")
            return
        }
        #expect(decision.policy == .cancelLines)
        #expect(decision.allocations == [a])
        #expect(partial?.status == .partiallyAllocated)

        let (none, noneOutputs) = run([placed.event, approved], rules: rules, snapshot: FakeSnapshot())
        guard case .orderBackordered(let all)? = noneOutputs[1].first else {
            Issue.record("expected OrderBackordered, got \(noneOutputs[1])")
            return
        }
        #expect(all.policy == .cancelLines)
        #expect(none?.status == .cancelled, "with nothing sourced, the whole order is cancelled")
    }

    @Test func holdOrderPolicyReleasesWhatItHolds() throws {
        let snapshot = FakeSnapshot(free: ["SKU-A": ["WH-1": 2], "SKU-B": ["WH-1": 1]])
        let a = alloc("1", "SKU-A", "WH-1", 2)
        let b = alloc("2", "SKU-B", "WH-1", 1)
        let (state, outputs) = run([placed.event, approved, reserved(a), refused(b, available: 0)], rules: Self.rules(policy: .holdOrder), snapshot: snapshot)
        let allLines = [BackorderedLine(lineId: "1", sku: "SKU-A", quantity: 2), BackorderedLine(lineId: "2", sku: "SKU-B", quantity: 1)]
        try #require(outputs[3].count == 4)
        #expect(outputs[3][0] == releaseCommand(a, "order held until complete"))
        #expect(Array(outputs[3].suffix(2)) == [waitCommand("1", "SKU-A", 2), waitCommand("2", "SKU-B", 1)], "the whole order waits for stock")
        guard case .orderBackordered(let held) = outputs[3][1] else {
            Issue.record("expected OrderBackordered, got \(outputs[3][1])")
            return
        }
        #expect(held.lines == allLines, "the whole order waits")
        #expect(held.policy == .holdOrder)
        #expect(state?.status == .backordered)
        #expect(state?.reserved == [])
        #expect(state?.backordered == allLines)
    }

    @Test func repeatedResultsChangeNothing() throws {
        let a = alloc("1", "SKU-A", "WH-1", 2)
        let b = alloc("2", "SKU-B", "WH-1", 1)
        let (waiting, _) = run([placed.event, approved, reserved(a)], snapshot: stocked)
        let again = AllocationMachine.advance(waiting, on: reserved(a), rules: Self.rules(), now: F.now, snapshot: stocked)
        #expect(again.outputs == [], "a repeated answer for a kept reservation is not released")
        #expect(again.state == waiting)

        let (done, _) = run([reserved(b)], from: waiting, snapshot: stocked)
        #expect(done?.status == .allocated)
        for repeated in [reserved(a), reserved(b), refused(b, available: 0)] {
            let step = AllocationMachine.advance(done, on: repeated, rules: Self.rules(), now: F.now, snapshot: stocked)
            #expect(step.outputs == [])
            #expect(step.state == done)
        }
    }

    @Test func resultsForUnknownOrdersAndOtherOutcomesAreIgnored() {
        let unknown = AllocationMachine.advance(nil, on: reserved(alloc("1", "SKU-A", "WH-1", 2)), rules: Self.rules(), now: F.now, snapshot: stocked)
        #expect(unknown.state == nil)
        #expect(unknown.outputs == [])

        let (waiting, _) = run([placed.event, approved], snapshot: stocked)
        let released = InventoryResult(orderId: orderId, lineId: "1", sku: "SKU-A", location: "WH-1", quantity: 2, outcome: .released, commandId: "c").event
        let step = AllocationMachine.advance(waiting, on: released, rules: Self.rules(), now: F.now, snapshot: stocked)
        #expect(step.state == waiting)
        #expect(step.outputs == [])
    }

    // MARK: Decline and cancel

    @Test func declinedOrderIsRememberedAsCancelled() {
        let step = run([placed.event, declined], snapshot: stocked)
        #expect(step.state?.status == .cancelled)
        #expect(step.outputs.last == [])
        #expect(run([approved, declined], snapshot: stocked).state?.status == .cancelled, "awaiting the order")
        // What is read after the decline (a held order's line cut, the order) starts nothing.
        #expect(run([placed.event, declined, cut], snapshot: stocked).state?.status == .cancelled)
        #expect(run([approved, declined, placed.event], snapshot: stocked).state?.status == .cancelled)

        // Once allocating, a decline (which cannot happen after an approval) changes nothing.
        let (reserving, _) = run([placed.event, approved], snapshot: stocked)
        let late = AllocationMachine.advance(reserving, on: declined, rules: Self.rules(), now: F.now, snapshot: stocked)
        #expect(late.state == reserving)
    }

    @Test func declineAfterOnlyALineCutIsRememberedSoTheOrderNeverWaits() {
        // A held order cut by an operator, then cancelled (declined), both read before the
        // order itself: found by AllocationInventoryInterleavingTests.
        let (state, outputs) = run([cut, declined, placed.event], snapshot: stocked)
        #expect(state?.status == .cancelled, "not waiting for a payment decision that was already read")
        #expect(outputs.flatMap { $0 }.isEmpty)
    }

    @Test func anAnswerReadBeforeTheReplayedPlanIsCountedNotReleased() throws {
        // At least once: a restarted worker's restored state predates its plan, and the
        // answer to that plan is read before the replayed approval.
        let a = alloc("1", "SKU-A", "WH-1", 2)
        let (early, outputs) = run([placed.event, reserved(a)], snapshot: stocked)
        let state = try #require(early)
        #expect(state.status == .awaitingPayment)
        #expect(state.reserved == [a])
        #expect(outputs.last == [], "nothing released")
        let (planned, more) = run([approved], from: state, snapshot: stocked)
        let commands = (more.last ?? []).compactMap { if case .reserveInventory(let c) = $0 { c } else { nil } }
        #expect(commands.map(\.lineId) == ["2"], "only the line not yet held is asked for")
        #expect(planned?.status == .reserving)
        #expect(planned?.reserved == [a])
        let declined = run([declined], from: state, snapshot: stocked)
        #expect(declined.state?.status == .cancelled && declined.state?.reserved == [])
        #expect(declined.outputs.last?.count == 1, "a decline gives the counted reservation back")
    }

    @Test func cancelReleasesReservedAndPlannedUnits() throws {
        let a = alloc("1", "SKU-A", "WH-1", 2)
        let b = alloc("2", "SKU-B", "WH-1", 1)
        let (waiting, _) = run([placed.event, approved, reserved(a)], snapshot: stocked)
        let step = AllocationMachine.advance(waiting, on: cancel, rules: Self.rules(), now: F.now, snapshot: stocked)
        #expect(step.outputs == [releaseCommand(a, "order cancelled"), releaseCommand(b, "order cancelled")])
        let s = try #require(step.state)
        #expect(s.status == .cancelled)
        #expect(s.reserved == [])
        #expect(s.planned == [])

        // The reservation that was still planned is confirmed after the cancel: given back.
        let late = AllocationMachine.advance(s, on: reserved(b), rules: Self.rules(), now: F.now, snapshot: stocked)
        #expect(late.outputs == [releaseCommand(b, "not needed any more")])
        #expect(late.state == s)
        let refusedLate = AllocationMachine.advance(s, on: refused(b, available: 0), rules: Self.rules(), now: F.now, snapshot: stocked)
        #expect(refusedLate.outputs == [])

        let twice = AllocationMachine.advance(s, on: cancel, rules: Self.rules(), now: F.now, snapshot: stocked)
        #expect(twice.outputs == [], "a second cancel releases nothing")
    }

    @Test func cancelAfterPartialAllocationReleasesWhatWasAllocated() {
        let snapshot = FakeSnapshot(free: ["SKU-A": ["WH-1": 2]])
        let a = alloc("1", "SKU-A", "WH-1", 2)
        let (partial, outputs) = run([placed.event, approved, reserved(a)], snapshot: snapshot)
        // SKU-B had no stock: only line 1 was asked for, and its answer decides the round.
        #expect(outputs[1] == [reserveCommand(a)])
        #expect(partial?.status == .partiallyAllocated)
        let step = AllocationMachine.advance(partial, on: cancel, rules: Self.rules(), now: F.now, snapshot: snapshot)
        #expect(step.outputs == [releaseCommand(a, "order cancelled"), waitCommand("2", "SKU-B", 0)], "line 2 stops waiting")
        #expect(step.state?.status == .cancelled)
    }

    @Test func cancelBeforeAllocationIsRememberedAndLaterEventsAreIgnored() {
        let (state, outputs) = run([cancel, placed.event, approved, reserved(alloc("1", "SKU-A", "WH-1", 2))], snapshot: stocked)
        #expect(outputs[0] == [])
        #expect(outputs[1] == [])
        #expect(outputs[2] == [], "no reservation for a cancelled order")
        #expect(outputs[3] == [releaseCommand(alloc("1", "SKU-A", "WH-1", 2), "not needed any more")])
        #expect(state?.status == .cancelled)

        let (waiting, _) = run([placed.event, cancel, approved], snapshot: stocked)
        #expect(waiting?.status == .cancelled)
        #expect(waiting?.planned == [])
    }

    // MARK: AllocationStage through StageDriver

    func driver(rules: BusinessRules = rules()) -> StageDriver<AllocationStage> {
        var driver = StageDriver(stage: AllocationStage(rules: rules))
        driver.tables[InventoryLevel.topic] = [
            // WH-1: 5 on hand, 1 reserved, 1 safety → 3 free; WH-2: 10 free.
            "SKU-A": F.level("SKU-A", [F.stock("WH-1", onHand: 5, reserved: 1, safety: 1), F.stock("WH-2", onHand: 10)]).event,
            "SKU-B": F.level("SKU-B", [F.stock("WH-2", onHand: 1)]).event,
        ]
        driver.tables[CatalogProduct.topic] = ["SKU-A": F.product("SKU-A").event, "SKU-B": F.product("SKU-B").event]
        return driver
    }

    @Test func stagePlansFromTheLevelTableAndKeepsStatePerOrder() throws {
        var driver = driver()
        let first = driver.handle(F.envelope("e-1", placed.event), now: F.now)
        #expect(first.outputs.isEmpty)
        #expect(first.stateRecords.map(\.key) == [orderId])

        let later = F.now.addingTimeInterval(30)
        let second = driver.handle(F.envelope("e-2", approved), offset: 1, now: later)
        // Only WH-2 holds both SKUs.
        let a = alloc("1", "SKU-A", "WH-2", 2)
        let b = alloc("2", "SKU-B", "WH-2", 1)
        #expect(second.outputs.map(\.envelope.event) == [reserveCommand(a), reserveCommand(b)])
        #expect(second.outputs.map(\.topic) == [ReserveInventory.topic, ReserveInventory.topic])
        #expect(second.outputs.map(\.envelope.key) == ["SKU-A", "SKU-B"], "commands go to the SKU's partition")
        guard case .allocationState(let state)? = driver.value(orderId) else {
            Issue.record("no allocation state")
            return
        }
        #expect(state.status == .reserving)
        #expect(state.updatedAt == later)

        _ = driver.handle(F.envelope("e-3", reserved(a)), offset: 2, now: later)
        let done = driver.handle(F.envelope("e-4", reserved(b)), offset: 3, now: later)
        #expect(done.outputs.map(\.topic) == [OrderAllocated.topic])
        #expect(done.outputs.first?.envelope.event == OrderAllocated(orderId: orderId, allocations: [a, b], decidedAt: later).event)

        let repeated = driver.handle(F.envelope("e-5", reserved(b)), offset: 4, now: later)
        #expect(repeated.outputs.isEmpty)
        #expect(repeated.stateRecords.isEmpty, "an unchanged state is not rewritten")
    }

    @Test func stageUsesTheFreeUnitsOfTheLevel() throws {
        var driver = driver()
        let small = F.placed(F.order(externalOrderId: "W-2", lines: [F.line("1", "SKU-A", quantity: 3)]))
        _ = driver.handle(F.envelope("e-1", small.event), now: F.now)
        let approve = PaymentApproved(orderId: small.orderId, amount: small.totals.total, reasons: [], decidedAt: F.now).event
        let result = driver.handle(F.envelope("e-2", approve), offset: 1, now: F.now)
        // WH-1 has exactly 3 free (5 − 1 reserved − 1 safety) and is nearer.
        #expect(F.events(result) == [ReserveInventory(orderId: small.orderId, lineId: "1", sku: "SKU-A", location: "WH-1", quantity: 3).event])

        let big = F.placed(F.order(externalOrderId: "W-3", lines: [F.line("1", "SKU-A", quantity: 4)]))
        _ = driver.handle(F.envelope("e-3", big.event), offset: 2, now: F.now)
        let approveBig = PaymentApproved(orderId: big.orderId, amount: big.totals.total, reasons: [], decidedAt: F.now).event
        #expect(F.events(driver.handle(F.envelope("e-4", approveBig), offset: 3, now: F.now))
            == [ReserveInventory(orderId: big.orderId, lineId: "1", sku: "SKU-A", location: "WH-2", quantity: 4).event])
    }

    @Test func stageKeepsADeclinedOrderAsCancelled() {
        var driver = driver()
        _ = driver.handle(F.envelope("e-1", placed.event), now: F.now)
        let result = driver.handle(F.envelope("e-2", declined), offset: 1, now: F.now)
        #expect(result.stateRecords.count == 1)
        #expect(result.stateRecords.first?.key == orderId)
        guard case .allocationState(let state)? = driver.value(orderId) else {
            Issue.record("no state kept for the declined order")
            return
        }
        #expect(state.status == .cancelled && state.reserved.isEmpty)
    }

    @Test func declineBeforeTheOrderIsRememberedSoTheOrderNeverWaits() {
        var driver = driver()
        let early = driver.handle(F.envelope("e-1", declined), now: F.now)
        #expect(early.stateRecords.count == 1)
        guard case .allocationState(let state)? = driver.value(orderId) else {
            Issue.record("no state kept for the declined order")
            return
        }
        #expect(state.status == .cancelled)
        let late = driver.handle(F.envelope("e-2", placed.event), offset: 1, now: F.now)
        #expect(late.outputs.isEmpty && late.stateRecords.isEmpty, "the order read after its decline is ignored")
    }

    @Test func stageIgnoresHoldsAndRejectedCancelsAndRejectsOthers() {
        var driver = driver()
        let held = PaymentHeld(orderId: orderId, amount: placed.totals.total, reasons: [], decidedAt: F.now).event
        // Shares the cancellations topic with OrderCancelled.
        let refused = CancelRejected(orderId: orderId, requestedBy: "customer", reasons: [], rejectedAt: F.now).event
        for (index, event) in [held, refused].enumerated() {
            let result = driver.handle(F.envelope("i-\(index)", event), offset: Int64(index), now: F.now)
            #expect(result.kind == .processed)
            #expect(result.outputs.isEmpty)
            #expect(result.stateRecords.isEmpty)
        }
        let wrong = driver.handle(F.envelope("w", F.level("SKU-A", []).event), offset: 5, now: F.now)
        guard case .rejected? = F.failure(wrong) else {
            Issue.record("allocation does not read levels as input: \(wrong.kind)")
            return
        }
    }

    @Test func stageReadsAcceptedCancelsNotTheCommand() {
        let stage = AllocationStage(rules: Self.rules())
        #expect(stage.inputTopics.contains(OrderCancelled.topic))
        #expect(!stage.inputTopics.contains(CancelOrder.topic), "shipping decides cancels")

        var driver = driver()
        _ = driver.handle(F.envelope("e-1", placed.event), now: F.now)
        _ = driver.handle(F.envelope("e-2", approved), offset: 1, now: F.now)
        let command = CancelOrder(orderId: orderId, requestedBy: "customer", reason: Reason(code: "x", message: "x"), requestedAt: F.now).event
        let result = driver.handle(F.envelope("e-3", command), offset: 2, now: F.now)
        guard case .rejected? = F.failure(result) else {
            Issue.record("a CancelOrder command must not release anything: \(result.kind)")
            return
        }
        let accepted = driver.handle(F.envelope("e-4", cancel), offset: 3, now: F.now)
        #expect(accepted.outputs.map(\.topic) == [ReleaseInventory.topic, ReleaseInventory.topic], "the planned units are given back")
        guard case .allocationState(let state)? = driver.value(orderId) else {
            Issue.record("no allocation state")
            return
        }
        #expect(state.status == .cancelled)
    }
}

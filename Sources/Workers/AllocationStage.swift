import Contracts
import Foundation

/// Sources approved orders. It plans from its snapshot of every SKU's level (the whole
/// oms.inventory.levels, a global table), sends reserve commands to inventory (the only
/// writer of stock, which may refuse: the snapshot can be stale), gathers the results,
/// re-plans a bounded number of times around refusals, and then decides: allocated, or
/// the backorder policy for what is missing. Its progress per order is an
/// `AllocationState` in oms.allocation.state.
///
/// It reads the placed order itself (for lines and destination) next to the payment
/// decision; either may come first. A cancel (accepted by shipping, which alone knows
/// whether a shipment exists) releases every reservation, including ones confirmed
/// after the cancel.
public struct AllocationStage: Stage {
    /// `allocation`.
    public let name = "allocation"
    /// Placed orders, payment decisions, reservation results, accepted cancels, units
    /// confirming locations will not ship.
    public let inputTopics = [OrderPlaced.topic, PaymentApproved.topic, InventoryResult.topic, OrderCancelled.topic, FulfilmentShort.topic]
    /// oms.allocation.state.
    public let changelogTopic: String? = AllocationState.topic
    /// The level snapshot and the catalog (drop-ship and ship-from-store flags).
    public let globalTables = [InventoryLevel.topic, CatalogProduct.topic]
    /// Locations, distances and sourcing rules.
    public let rules: BusinessRules

    /// Creates the stage.
    public init(rules: BusinessRules) {
        self.rules = rules
    }

    /// Held pre-orders are looked for as often as fulfilment SLAs (`fulfilment.checkIntervalSeconds`).
    public var tickInterval: Duration? { .seconds(rules.fulfilment.checkIntervalSeconds) }

    /// Held pre-orders whose launch date came: their decisions, once each.
    public func tick(now: Date, state: KeyedState) -> [TimerFiring] {
        var firings: [TimerFiring] = []
        state.forEach { _, value in
            guard case .allocationState(let order) = value, let step = AllocationMachine.launch(order, now: now), var next = step.state else { return }
            next.updatedAt = now
            firings.append(TimerFiring(
                id: "launch/\(order.orderId)/\(RFC3339.format(order.launchAt ?? now))",
                outcome: StageOutcome(outputs: step.outputs.map { StageOutput($0) }, stateChanges: [.put(next.event)])))
        }
        return firings.sorted { $0.id < $1.id }
    }

    /// Advances the order's allocation by one event.
    public func process(_ input: StageInput, state: StageState) throws(StageFailure) -> StageOutcome {
        let orderId: String
        switch input.event {
        case .orderPlaced(let e): orderId = e.orderId
        case .paymentApproved(let e): orderId = e.orderId
        case .paymentReleased(let e): orderId = e.orderId
        case .paymentDeclined(let e): orderId = e.orderId
        case .paymentHeld: return .none
        case .inventoryResult(let e): orderId = e.orderId
        case .orderCancelled(let e): orderId = e.orderId
        case .orderLinesCancelled(let e): orderId = e.orderId
        case .shippingAddressChanged(let e): orderId = e.orderId
        case .fulfilmentShort(let e): orderId = e.orderId
        case .cancelRejected, .orderChangeRejected, .fulfilmentProgressed, .fulfilmentPacked: return .none
        default: throw .rejected("allocation does not handle \(input.envelope.type)")
        }
        var current: AllocationState?
        if case .allocationState(let stored) = state.value(orderId) { current = stored }
        let snapshot = Snapshot(state: state)
        let step = AllocationMachine.advance(current, on: input.event, rules: rules, now: input.now, snapshot: snapshot)
        var outcome = StageOutcome(outputs: step.outputs.map { StageOutput($0) })
        switch (current, step.state) {
        case (_, var next?) where next != current:
            next.updatedAt = input.now
            outcome.stateChanges = [.put(next.event)]
        case (.some, nil): outcome.stateChanges = [.delete(key: orderId)]
        default: break
        }
        return outcome
    }

    /// The global tables as the planner needs them.
    private struct Snapshot: AllocationSnapshot {
        let state: StageState
        func available(sku: String, location: String) -> Int {
            guard case .inventoryLevel(let level) = state.table(InventoryLevel.topic, key: sku),
                let stock = level.locations.first(where: { $0.location == location })
            else { return 0 }
            return InventoryLedger.available(stock)
        }
        func product(_ sku: String) -> CatalogProduct? {
            if case .catalogProduct(let product) = state.table(CatalogProduct.topic, key: sku) { return product }
            return nil
        }
    }
}

/// What allocation reads besides its own state: free stock and products.
public protocol AllocationSnapshot {
    /// Free units (on hand − reserved − safety) of `sku` at `location` in the snapshot.
    func available(sku: String, location: String) -> Int
    /// The catalog entry of `sku`.
    func product(_ sku: String) -> CatalogProduct?
}

/// Allocation's state machine per order, as a pure function.
public enum AllocationMachine {
    /// The next state (nil: forget the order) and the events to emit.
    public struct Step: Sendable, Hashable {
        /// The order's state after the event.
        public var state: AllocationState?
        /// Commands and decisions to publish.
        public var outputs: [Event]
    }

    /// Applies one event to an order's allocation state; a pre-order's decision is held
    /// back until its launch date (``holdingPreorders(_:rules:now:snapshot:)``).
    public static func advance(
        _ current: AllocationState?, on event: Event, rules: BusinessRules, now: Date, snapshot: some AllocationSnapshot
    ) -> Step {
        holdingPreorders(apply(current, on: event, rules: rules, now: now, snapshot: snapshot), rules: rules, now: now, snapshot: snapshot)
    }

    /// Whether `event` is an allocation decision.
    private static func isDecision(_ event: Event) -> Bool {
        switch event {
        case .orderAllocated, .orderPartiallyAllocated, .orderBackordered: true
        default: false
        }
    }

    /// A decision for an order with lines not launched yet is held back until the last
    /// launch date (the reservations stay); with `preorderPartial: ship_available` the
    /// launched lines' reservations are released to ship at once, the rest listed as
    /// waiting.
    static func holdingPreorders(_ step: Step, rules: BusinessRules, now: Date, snapshot: some AllocationSnapshot) -> Step {
        guard var state = step.state, step.outputs.contains(where: isDecision) else { return step }
        let launches = Dictionary(state.lines.compactMap { line in
            snapshot.product(line.sku)?.launchDate.flatMap { $0 > now ? (line.lineId, $0) : nil }
        }, uniquingKeysWith: max)
        guard let launch = launches.values.max() else {
            state.launchAt = nil
            return Step(state: state, outputs: step.outputs)
        }
        state.launchAt = launch
        var outputs = step.outputs.filter { !isDecision($0) }
        if rules.sourcing.preorderPartial == .shipAvailable {
            let ready = state.reserved.filter { launches[$0.lineId] == nil }
            let held = state.lines.filter { launches[$0.lineId] != nil }.map { BackorderedLine(lineId: $0.lineId, sku: $0.sku, quantity: $0.quantity) }
            if !ready.isEmpty {
                outputs.append(OrderPartiallyAllocated(
                    orderId: state.orderId, allocations: ready, backordered: state.backordered.filter { launches[$0.lineId] == nil } + held,
                    policy: state.policy ?? .backorder, decidedAt: now
                ).event)
            }
        }
        return Step(state: state, outputs: outputs)
    }

    /// A held pre-order whose launch date came: its decision as the state has it.
    public static func launch(_ state: AllocationState, now: Date) -> Step? {
        guard let launchAt = state.launchAt, launchAt <= now else { return nil }
        var next = state
        next.launchAt = nil
        let decision: Event?
        switch state.status {
        case .allocated: decision = OrderAllocated(orderId: state.orderId, allocations: state.reserved, decidedAt: now).event
        case .partiallyAllocated:
            decision = OrderPartiallyAllocated(
                orderId: state.orderId, allocations: state.reserved, backordered: state.backordered, policy: state.policy ?? .backorder, decidedAt: now
            ).event
        case .backordered:
            decision = OrderBackordered(
                orderId: state.orderId, lines: state.backordered, policy: state.policy ?? .backorder, reasons: [insufficientStock(state.backordered)], decidedAt: now
            ).event
        case .reserving:
            // The round in flight decides, with the launch behind it.
            return nil
        default:
            decision = nil
        }
        return Step(state: next, outputs: decision.map { [$0] } ?? [])
    }

    private static func apply(
        _ current: AllocationState?, on event: Event, rules: BusinessRules, now: Date, snapshot: some AllocationSnapshot
    ) -> Step {
        switch event {
        case .orderPlaced(let order):
            let lines = linesLeft(order.lines.map { ShipmentLine(lineId: $0.lineId, sku: $0.sku, quantity: $0.quantity) }, cancelled: current?.cancelledLines)
            guard var state = current else {
                return Step(
                    state: AllocationState(
                        orderId: order.orderId, status: .awaitingPayment, attempt: 0, lines: lines,
                        destinationCountry: order.shippingAddress.country, destinationPostalCode: order.shippingAddress.postalCode,
                        pickupLocation: order.pickupLocation, planned: [], reserved: [], observed: [], backordered: [], updatedAt: now,
                        placedAt: order.placedAt, serviceLevel: order.serviceLevel),
                    outputs: [])
            }
            // Only a line cancel was read before the order: it still waits for payment.
            let onlyCancelRead = state.status == .awaitingPayment && state.lines.isEmpty
            guard state.status == .awaitingOrder || onlyCancelRead else { return Step(state: current, outputs: []) }
            state.lines = lines
            state.destinationCountry = order.shippingAddress.country
            state.destinationPostalCode = order.shippingAddress.postalCode
            state.pickupLocation = order.pickupLocation
            state.placedAt = order.placedAt
            state.serviceLevel = order.serviceLevel
            if onlyCancelRead { return Step(state: state, outputs: []) }
            return plan(state, rules: rules, now: now, snapshot: snapshot)

        case .orderLinesCancelled(let change):
            let step = cancelLines(current, change: change, now: now)
            guard let after = step.state else { return step }
            return Step(state: after, outputs: step.outputs + waits(after, before: current?.backordered ?? [], rules: rules, snapshot: snapshot))

        case .fulfilmentShort(let short):
            return reSource(current, short: short, rules: rules, now: now, snapshot: snapshot)

        case .shippingAddressChanged(let change):
            // Sourcing not started yet plans for the new address; reservations already
            // made stay where they are (shipping rates the parcel for the new address).
            guard var state = current, state.status == .awaitingPayment || state.status == .awaitingOrder else { return Step(state: current, outputs: []) }
            state.destinationCountry = change.shippingAddress.country
            state.destinationPostalCode = change.shippingAddress.postalCode
            return Step(state: state, outputs: [])

        case .paymentApproved(let decision):
            return approve(current, orderId: decision.orderId, rules: rules, now: now, snapshot: snapshot)
        case .paymentReleased(let decision):
            return approve(current, orderId: decision.orderId, rules: rules, now: now, snapshot: snapshot)

        case .paymentDeclined(let decision):
            // A declined order never allocates; a held one that is cancelled ends here too.
            guard let state = current else {
                // Declined before the order was read: remember, or the order would wait forever.
                return Step(
                    state: AllocationState(
                        orderId: decision.orderId, status: .cancelled, attempt: 0, lines: [], planned: [], reserved: [], observed: [],
                        backordered: [], updatedAt: now),
                    outputs: [])
            }
            guard state.status == .awaitingPayment || state.status == .awaitingOrder else { return Step(state: current, outputs: []) }
            // Remembered, not forgotten: a line cancel or the order itself may still be
            // read after the decline (topics are read side by side), and would otherwise
            // start a state that waits forever for a decision already read.
            var declined = state
            declined.status = .cancelled
            declined.reserved = []
            return Step(state: declined, outputs: state.reserved.map { release($0, orderId: state.orderId, reason: "payment declined", now: now) })

        case .orderCancelled(let command):
            guard var state = current else {
                // Cancelled before allocation heard of it: remember, so later events are ignored.
                return Step(
                    state: AllocationState(
                        orderId: command.orderId, status: .cancelled, attempt: 0, lines: [], planned: [], reserved: [], observed: [],
                        backordered: [], updatedAt: now),
                    outputs: [])
            }
            guard state.status != .cancelled else { return Step(state: current, outputs: []) }
            let releases = (state.reserved + state.planned).map { release($0, orderId: state.orderId, reason: "order cancelled", now: now) }
            let waited = state.backordered
            state.status = .cancelled
            state.reserved = []
            state.planned = []
            return Step(state: state, outputs: releases + waits(state, before: waited, rules: rules, snapshot: snapshot))

        case .inventoryResult(let result) where result.outcome == .backorderFilled:
            return filled(current, result, now: now)

        case .inventoryResult(let result):
            guard var state = current else { return Step(state: nil, outputs: []) }
            guard result.outcome == .reserved || result.outcome == .refused else { return Step(state: current, outputs: []) }
            let isPlanned = state.planned.firstIndex { $0.lineId == result.lineId && $0.location == result.location && $0.sku == result.sku }
            if result.outcome == .reserved, state.status == .awaitingPayment || state.status == .awaitingOrder,
                !state.reserved.contains(where: { $0.lineId == result.lineId && $0.location == result.location })
            {
                // A reservation for a plan this state has not seen: at least once, a
                // restarted worker replays inputs from before its plan while the answers
                // to that plan are already in. Count it, so the replayed plan builds on it.
                state.reserved.append(LineAllocation(lineId: result.lineId, sku: result.sku, location: result.location, quantity: result.quantity))
                return Step(state: state, outputs: [])
            }
            guard state.status == .reserving, let index = isPlanned else {
                // Late or repeated: a reservation nobody waits for any more is given back,
                // unless the order counts it (a repeated answer to a kept reservation).
                let kept = state.reserved.contains { $0.lineId == result.lineId && $0.location == result.location && $0.sku == result.sku }
                if result.outcome == .reserved, !kept, result.quantity > 0 {
                    let stray = LineAllocation(lineId: result.lineId, sku: result.sku, location: result.location, quantity: result.quantity)
                    return Step(state: current, outputs: [release(stray, orderId: state.orderId, reason: "not needed any more", now: now)])
                }
                return Step(state: current, outputs: [])
            }
            let asked = state.planned.remove(at: index)
            if result.outcome == .reserved {
                state.reserved.append(LineAllocation(lineId: asked.lineId, sku: asked.sku, location: asked.location, quantity: result.quantity))
            } else {
                state.observed.removeAll { $0.sku == result.sku && $0.location == result.location }
                state.observed.append(StockObservation(sku: result.sku, location: result.location, available: result.available ?? 0))
            }
            guard state.planned.isEmpty else { return Step(state: state, outputs: []) }
            return decideRound(state, rules: rules, now: now, snapshot: snapshot)

        default:
            return Step(state: current, outputs: [])
        }
    }

    private static func approve(
        _ current: AllocationState?, orderId: String, rules: BusinessRules, now: Date, snapshot: some AllocationSnapshot
    ) -> Step {
        guard let state = current else {
            return Step(
                state: AllocationState(
                    orderId: orderId, status: .awaitingOrder, attempt: 0, lines: [], planned: [], reserved: [], observed: [],
                    backordered: [], updatedAt: now),
                outputs: [])
        }
        guard state.status == .awaitingPayment else { return Step(state: current, outputs: []) }
        if state.lines.isEmpty {
            // Only a line cancel was read so far: the order itself is still to come.
            var waiting = state
            waiting.status = .awaitingOrder
            return Step(state: waiting, outputs: [])
        }
        return plan(state, rules: rules, now: now, snapshot: snapshot)
    }

    /// Applies a line cancel shipping accepted: the lines ask for fewer units, backordered
    /// units go first, and reservations beyond what a line still asks for are released.
    private static func cancelLines(_ current: AllocationState?, change: OrderLinesCancelled, now: Date) -> Step {
        var state = current ?? AllocationState(
            orderId: change.orderId, status: .awaitingPayment, attempt: 0, lines: [], planned: [], reserved: [], observed: [], backordered: [],
            updatedAt: now)
        guard state.status != .cancelled, !state.hasRecorded(change.changeId) else { return Step(state: current, outputs: []) }
        state.record(change.changeId, lines: change.lines)
        state.lines = linesLeft(state.lines, cancelled: change.lines)
        for cancelled in change.lines {
            var cut = cancelled.quantity
            for index in state.backordered.indices where state.backordered[index].lineId == cancelled.lineId && cut > 0 {
                let units = min(cut, state.backordered[index].quantity)
                state.backordered[index].quantity -= units
                cut -= units
            }
        }
        state.backordered.removeAll { $0.quantity <= 0 }
        // While a round is out, its answers are still to come: the decision trims them.
        guard state.status != .reserving else { return Step(state: state, outputs: []) }
        let (trimmed, releases) = trimReservations(state, reason: "line cancelled", now: now)
        return Step(state: trimmed, outputs: releases)
    }

    /// Units a confirming location will not ship: released there (the count written
    /// down with them for a short pick), that location ruled out for their SKUs, and
    /// sourced again under the same rules with a fresh count of re-plans; what nothing
    /// has gets the backorder policy.
    private static func reSource(
        _ current: AllocationState?, short: FulfilmentShort, rules: BusinessRules, now: Date, snapshot: some AllocationSnapshot
    ) -> Step {
        let shortId = "short/\(short.requestId)/\(short.cause.rawValue)/" + short.lines.map { "\($0.lineId)x\($0.quantity)" }.joined(separator: ",")
        guard var state = current, state.status != .cancelled, !state.hasRecorded(shortId) else { return Step(state: current, outputs: []) }
        state.changeIds = (state.changeIds ?? []) + [shortId]
        var releases: [Event] = []
        for line in short.lines {
            var cut = line.quantity
            for index in state.reserved.indices where state.reserved[index].lineId == line.lineId && state.reserved[index].location == short.location && cut > 0 {
                var given = state.reserved[index]
                given.quantity = min(cut, given.quantity)
                var command = ReleaseInventory(
                    orderId: state.orderId, lineId: given.lineId, sku: given.sku, location: given.location, quantity: given.quantity,
                    reason: "\(short.cause.rawValue): \(short.reason.message)")
                if short.cause == .shortPick { command.notFound = true }
                releases.append(command.event)
                state.reserved[index].quantity -= given.quantity
                cut -= given.quantity
            }
            state.observed.removeAll { $0.sku == line.sku && $0.location == short.location }
            state.observed.append(StockObservation(sku: line.sku, location: short.location, available: 0))
        }
        state.reserved.removeAll { $0.quantity <= 0 }
        // A round in flight decides with the smaller reservation; otherwise plan again.
        guard state.status == .allocated || state.status == .partiallyAllocated || state.status == .backordered, !releases.isEmpty else {
            return Step(state: state, outputs: releases)
        }
        state.attempt = 0
        let step = plan(state, rules: rules, now: now, snapshot: snapshot)
        return Step(state: step.state, outputs: releases + step.outputs)
    }

    /// `lines` less `cancelled` units, lines with none left dropped.
    static func linesLeft(_ lines: [ShipmentLine], cancelled: [ShipmentLine]?) -> [ShipmentLine] {
        guard let cancelled, !cancelled.isEmpty else { return lines }
        let cut = unitsByLine(cancelled)
        return lines.compactMap { line in
            var line = line
            line.quantity -= cut[line.lineId, default: 0]
            return line.quantity > 0 ? line : nil
        }
    }

    /// Releases reservations beyond what each line asks for, from the last location
    /// first (shipping fills a line from the first, ``ShippingMachine``).
    static func trimReservations(_ state: AllocationState, reason: String, now: Date) -> (AllocationState, [Event]) {
        var state = state
        var releases: [Event] = []
        let wanted = unitsByLine(state.lines)
        for lineId in Set(state.reserved.map(\.lineId)).sorted() {
            var excess = state.reserved.filter { $0.lineId == lineId }.reduce(0) { $0 + $1.quantity } - wanted[lineId, default: 0]
            let indices = state.reserved.indices.filter { state.reserved[$0].lineId == lineId }.sorted { state.reserved[$0].location > state.reserved[$1].location }
            for index in indices where excess > 0 {
                var given = state.reserved[index]
                given.quantity = min(excess, given.quantity)
                releases.append(release(given, orderId: state.orderId, reason: reason, now: now))
                state.reserved[index].quantity -= given.quantity
                excess -= given.quantity
            }
        }
        state.reserved.removeAll { $0.quantity <= 0 }
        return (state, releases)
    }

    /// Units of each line not yet reserved.
    static func remaining(_ state: AllocationState) -> [ShipmentLine] {
        state.lines.compactMap { line in
            let held = state.reserved.filter { $0.lineId == line.lineId }.reduce(0) { $0 + $1.quantity }
            let left = line.quantity - held
            return left > 0 ? ShipmentLine(lineId: line.lineId, sku: line.sku, quantity: left) : nil
        }
    }

    /// Plans what is left and asks for it; decides at once when nothing can be asked.
    private static func plan(_ state: AllocationState, rules: BusinessRules, now: Date, snapshot: some AllocationSnapshot) -> Step {
        var state = state
        state.attempt += 1
        let request = SourcingPlanner.Request(
            demand: remaining(state), held: state.reserved, country: state.destinationCountry?.code,
            postalCode: state.destinationPostalCode, pickupLocation: state.pickupLocation)
        let observed = state.observed
        let plan = SourcingPlanner.plan(
            request, rules: rules,
            available: { sku, location in
                let seen = observed.first { $0.sku == sku && $0.location == location }?.available ?? Int.max
                return min(snapshot.available(sku: sku, location: location), seen)
            },
            product: snapshot.product)
        guard !plan.allocations.isEmpty else { return finish(state, missing: plan.missing, rules: rules, now: now, snapshot: snapshot) }
        state.status = .reserving
        state.planned = plan.allocations
        let commands = plan.allocations.map {
            ReserveInventory(orderId: state.orderId, lineId: $0.lineId, sku: $0.sku, location: $0.location, quantity: $0.quantity).event
        }
        return Step(state: state, outputs: commands)
    }

    /// Every answer of a round is in: done, plan again, or apply the policy.
    private static func decideRound(_ state: AllocationState, rules: BusinessRules, now: Date, snapshot: some AllocationSnapshot) -> Step {
        let missing = remaining(state)
        if missing.isEmpty { return finish(state, missing: [], rules: rules, now: now, snapshot: snapshot) }
        if state.attempt <= rules.sourcing.maxReplans { return plan(state, rules: rules, now: now, snapshot: snapshot) }
        return finish(state, missing: missing.map { BackorderedLine(lineId: $0.lineId, sku: $0.sku, quantity: $0.quantity) }, rules: rules, now: now, snapshot: snapshot)
    }

    /// The decision, once nothing more will be asked for, and what inventory must hold
    /// for the lines that now wait for stock (or no longer do).
    private static func finish(_ state: AllocationState, missing: [BackorderedLine], rules: BusinessRules, now: Date, snapshot: some AllocationSnapshot) -> Step {
        let step = decide(state, missing: missing, rules: rules, now: now)
        guard let after = step.state else { return step }
        return Step(state: after, outputs: step.outputs + waits(after, before: state.backordered, rules: rules, snapshot: snapshot))
    }

    /// The decision itself: allocated, or the backorder policy for what is missing.
    private static func decide(_ state: AllocationState, missing: [BackorderedLine], rules: BusinessRules, now: Date) -> Step {
        // Units cancelled while the round was out were reserved all the same.
        let cut = trimReservations(state, reason: "line cancelled", now: now)
        var state = cut.0
        let trimmed = cut.1
        state.planned = []
        let reserved = state.reserved.sorted { ($0.lineId, $0.location) < ($1.lineId, $1.location) }
        state.reserved = reserved
        if missing.isEmpty {
            state.status = .allocated
            state.backordered = []
            return Step(state: state, outputs: trimmed + [OrderAllocated(orderId: state.orderId, allocations: reserved, decidedAt: now).event])
        }
        let policy = rules.sourcing.backorderPolicy
        state.policy = policy
        let reason = insufficientStock(missing)
        switch policy {
        case .holdOrder:
            // Nothing ships until everything can: give back what was held.
            let all = state.lines.map { BackorderedLine(lineId: $0.lineId, sku: $0.sku, quantity: $0.quantity) }
            let releases = reserved.map { release($0, orderId: state.orderId, reason: "order held until complete", now: now) }
            state.reserved = []
            state.backordered = all
            state.status = .backordered
            return Step(state: state, outputs: trimmed + releases + [OrderBackordered(orderId: state.orderId, lines: all, policy: policy, reasons: [reason], decidedAt: now).event])
        case .backorder, .cancelLines:
            state.backordered = missing
            if reserved.isEmpty {
                state.status = policy == .backorder ? .backordered : .cancelled
                return Step(state: state, outputs: trimmed + [OrderBackordered(orderId: state.orderId, lines: missing, policy: policy, reasons: [reason], decidedAt: now).event])
            }
            state.status = .partiallyAllocated
            return Step(
                state: state,
                outputs: trimmed + [OrderPartiallyAllocated(orderId: state.orderId, allocations: reserved, backordered: missing, policy: policy, decidedAt: now).event])
        }
    }

    /// Backordered units inventory reserved as stock arrived: counted for their line (what
    /// the line no longer waits for is given back), then allocated, partly allocated,
    /// or, for `hold_order`, kept until the whole order is.
    private static func filled(_ current: AllocationState?, _ result: InventoryResult, now: Date) -> Step {
        let arrived = LineAllocation(lineId: result.lineId, sku: result.sku, location: result.location, quantity: result.quantity)
        guard var state = current, state.status != .cancelled, result.quantity > 0 else {
            let orderId = current?.orderId ?? result.orderId
            return Step(state: current, outputs: result.quantity > 0 ? [release(arrived, orderId: orderId, reason: "order no longer waits", now: now)] : [])
        }
        let waiting = state.backordered.filter { $0.lineId == result.lineId }.reduce(0) { $0 + $1.quantity }
        let taken = min(waiting, result.quantity)
        var outputs: [Event] = []
        if result.quantity > taken {
            var extra = arrived
            extra.quantity = result.quantity - taken
            outputs.append(release(extra, orderId: state.orderId, reason: "line no longer waits for these units", now: now))
        }
        guard taken > 0 else { return Step(state: state, outputs: outputs) }
        if let index = state.reserved.firstIndex(where: { $0.lineId == result.lineId && $0.location == result.location }) {
            state.reserved[index].quantity += taken
        } else {
            state.reserved.append(LineAllocation(lineId: result.lineId, sku: result.sku, location: result.location, quantity: taken))
            state.reserved.sort { ($0.lineId, $0.location) < ($1.lineId, $1.location) }
        }
        var cut = taken
        for index in state.backordered.indices where state.backordered[index].lineId == result.lineId && cut > 0 {
            let units = min(cut, state.backordered[index].quantity)
            state.backordered[index].quantity -= units
            cut -= units
        }
        state.backordered.removeAll { $0.quantity <= 0 }
        // A round in flight decides with it.
        guard state.status != .reserving else { return Step(state: state, outputs: outputs) }
        if state.backordered.isEmpty {
            state.status = .allocated
            outputs.append(OrderAllocated(orderId: state.orderId, allocations: state.reserved, decidedAt: now).event)
        } else if state.policy != .holdOrder {
            state.status = .partiallyAllocated
            outputs.append(OrderPartiallyAllocated(
                orderId: state.orderId, allocations: state.reserved, backordered: state.backordered, policy: state.policy ?? .backorder, decidedAt: now
            ).event)
        }
        return Step(state: state, outputs: outputs)
    }

    /// A `WaitForStock` for every line whose waiting units changed since `before`: what
    /// is backordered waits (not for `cancel_lines`, nor once the order is cancelled).
    static func waits(_ state: AllocationState, before: [BackorderedLine], rules: BusinessRules, snapshot: some AllocationSnapshot) -> [Event] {
        let waitsNow = state.status != .cancelled && state.policy != .cancelLines
        let old = Dictionary(before.map { ($0.lineId, $0.quantity) }, uniquingKeysWith: +)
        let new = waitsNow ? Dictionary(state.backordered.map { ($0.lineId, $0.quantity) }, uniquingKeysWith: +) : [:]
        let skus = Dictionary((before + state.backordered).map { ($0.lineId, $0.sku) }, uniquingKeysWith: { first, _ in first })
        return Set(old.keys).union(new.keys).sorted().compactMap { lineId in
            guard old[lineId, default: 0] != new[lineId, default: 0], let sku = skus[lineId] else { return nil }
            return WaitForStock(
                orderId: state.orderId, lineId: lineId, sku: sku, quantity: new[lineId, default: 0],
                locations: fillLocations(sku: sku, state: state, rules: rules, product: snapshot.product(sku)),
                priority: rules.sourcing.backorderOrder.rank(state.serviceLevel), placedAt: state.placedAt ?? state.updatedAt
            ).event
        }
    }

    /// Where arriving stock may fill a line, nearest first: the pick-up store, the
    /// drop-ship supplier, or the locations sourcing may use for the SKU.
    static func fillLocations(sku: String, state: AllocationState, rules: BusinessRules, product: CatalogProduct?) -> [String] {
        if let pickup = state.pickupLocation { return [pickup] }
        if let supplier = product?.dropShipSupplier, rules.location(supplier)?.type == .dropShip { return [supplier] }
        return rules.locations
            .filter { SourcingPlanner.mayShip(from: $0, product: product) }
            .map { ($0.id, rules.distance(to: $0, country: state.destinationCountry?.code, postalCode: state.destinationPostalCode)) }
            .sorted { ($0.1, $0.0) < ($1.1, $1.0) }
            .map(\.0)
    }

    /// Why units are backordered.
    private static func insufficientStock(_ missing: [BackorderedLine]) -> Reason {
        Reason(code: "insufficient_stock", message: "no location has enough free stock for \(missing.map { "\($0.quantity) × \($0.sku)" }.joined(separator: ", "))")
    }

    private static func release(_ allocation: LineAllocation, orderId: String, reason: String, now: Date) -> Event {
        ReleaseInventory(
            orderId: orderId, lineId: allocation.lineId, sku: allocation.sku, location: allocation.location, quantity: allocation.quantity,
            reason: reason
        ).event
    }
}

import Contracts
import Foundation

/// The single writer of stock. Commands for a SKU all go to one partition of
/// oms.inventory.commands (keyed by SKU), so one instance applies them in order; a
/// reservation succeeds only if on hand − reserved − safety stock covers it, so no
/// interleaving of orders can oversell. Every change is written to oms.inventory.levels
/// (its changelog) in the transaction that consumes the command: the SKU's
/// `InventoryLevel`, and one `InventoryReservation` per open (order, line, location),
/// which makes reserve and release idempotent for that triple whatever their event ids.
public struct InventoryStage: Stage {
    /// `inventory`.
    public let name = "inventory"
    /// oms.inventory.commands.
    public let inputTopics = [ReserveInventory.topic]
    /// oms.inventory.levels.
    public let changelogTopic: String? = InventoryLevel.topic

    /// Creates the stage.
    public init() {}

    /// The event id plus what the command asks for: at least once, a stage that replays an
    /// input against older state may send a different command under an id it used before,
    /// which must not be skipped as a duplicate. A true duplicate has the same content.
    public func idempotencyKey(for input: Envelope) -> String {
        switch input.event {
        case .reserveInventory(let c): "\(input.id)/reserve/\(c.lineId)/\(c.location)/\(c.quantity)"
        case .releaseInventory(let c): "\(input.id)/release/\(c.lineId)/\(c.location)/\(c.quantity)"
        case .commitInventory(let c): "\(input.id)/commit/\(c.lineId)/\(c.location)/\(c.quantity)"
        case .waitForStock(let c): "\(input.id)/wait/\(c.lineId)/\(c.quantity)"
        default: input.id
        }
    }

    /// Applies one command.
    public func process(_ input: StageInput, state: StageState) throws(StageFailure) -> StageOutcome {
        let sku: String
        switch input.event {
        case .reserveInventory(let command): sku = command.sku
        case .releaseInventory(let command): sku = command.sku
        case .commitInventory(let command): sku = command.sku
        case .adjustInventory(let command): sku = command.sku
        case .restockInventory(let command): sku = command.sku
        case .waitForStock(let command): sku = command.sku
        default: throw .rejected("inventory does not handle \(input.envelope.type)")
        }
        var level: InventoryLevel
        if case .inventoryLevel(let stored) = state.value(sku) {
            level = stored
        } else {
            level = InventoryLevel(sku: sku, locations: [], updatedAt: input.now)
        }
        func reservation(_ key: String) -> InventoryReservation? {
            if case .inventoryReservation(let stored) = state.value(key) { return stored }
            return nil
        }
        let change = try InventoryLedger.apply(input.event, to: &level, reservation: reservation, commandId: input.envelope.id, now: input.now)
        var outcome = StageOutcome(outputs: ((change.result.map { [$0] } ?? []) + change.fills).map { StageOutput($0.event) })
        if change.levelChanged {
            level.updatedAt = input.now
            outcome.stateChanges.append(.put(level.event))
        }
        outcome.stateChanges += change.reservationChanges
        return outcome
    }
}

/// The inventory rules as pure functions over one SKU's level.
public enum InventoryLedger {
    /// What one command did.
    public struct Change: Sendable, Hashable {
        /// The result routed back to the order, if the command concerns one.
        public var result: InventoryResult?
        /// Backordered lines filled from the stock the command freed or brought, in fill order.
        public var fills: [InventoryResult] = []
        /// Whether the level changed (and must be written).
        public var levelChanged: Bool
        /// Reservation records written or deleted.
        public var reservationChanges: [StateChange]
    }

    /// The changelog key of the reservation of one (order, line, location).
    public static func reservationKey(sku: String, orderId: String, lineId: String, location: String) -> String {
        "\(sku)/\(orderId)/\(lineId)/\(location)"
    }

    /// Units that may still be promised: on hand − reserved − safety stock (never negative).
    public static func available(_ stock: LocationStock) -> Int {
        max(0, stock.onHand - stock.reserved - stock.safetyStock)
    }

    /// Applies `command` to `level`; `reservation` looks up open reservations by key.
    /// Stock the command frees or brings (a release, a count, a restock) and a line that
    /// starts waiting go to the waiting lines first, in fill order (``fill(_:reservation:commandId:now:)``).
    public static func apply(
        _ command: Event, to level: inout InventoryLevel, reservation: (String) -> InventoryReservation?, commandId: String, now: Date
    ) throws(StageFailure) -> Change {
        var change = try applyCommand(command, to: &level, reservation: reservation, commandId: commandId, now: now)
        switch command {
        case .releaseInventory, .adjustInventory, .restockInventory, .waitForStock: break
        default: return change
        }
        guard level.waiting?.isEmpty == false else { return change }
        // The fill must see what the command itself did to reservations.
        var own: [String: StateChange] = [:]
        for record in change.reservationChanges { own[record.key] = record }
        let filled = fill(&level, reservation: { key in
            guard let record = own[key] else { return reservation(key) }
            if case .put(.inventoryReservation(let kept)) = record { return kept }
            return nil
        }, commandId: commandId, now: now)
        guard !filled.results.isEmpty else { return change }
        change.fills = filled.results
        change.levelChanged = true
        for record in filled.reservations {
            let put = StateChange.put(record.event)
            own[put.key] = put
        }
        change.reservationChanges = own.keys.sorted().compactMap { own[$0] }
        return change
    }

    /// Reserves free stock for waiting lines, in their order (rank, then placement): each
    /// takes what its locations have free, nearest first, until it has all it misses.
    /// Inventory is the one writer of the SKU, so no new order can take the stock first.
    public static func fill(
        _ level: inout InventoryLevel, reservation: (String) -> InventoryReservation?, commandId: String, now: Date
    ) -> (results: [InventoryResult], reservations: [InventoryReservation]) {
        guard var waiting = level.waiting, !waiting.isEmpty else { return ([], []) }
        var results: [InventoryResult] = []
        var touched: [String: InventoryReservation] = [:]
        for index in waiting.indices {
            let locations = waiting[index].locations.isEmpty ? level.locations.map(\.location) : waiting[index].locations
            for location in locations {
                guard waiting[index].quantity > 0, let at = level.locations.firstIndex(where: { $0.location == location }) else { continue }
                let units = min(waiting[index].quantity, available(level.locations[at]))
                guard units > 0 else { continue }
                let line = waiting[index]
                level.locations[at].reserved += units
                waiting[index].quantity -= units
                let key = reservationKey(sku: level.sku, orderId: line.orderId, lineId: line.lineId, location: location)
                var record = touched[key] ?? reservation(key)
                    ?? InventoryReservation(sku: level.sku, orderId: line.orderId, lineId: line.lineId, location: location, quantity: 0, reservedAt: now)
                record.quantity += units
                touched[key] = record
                results.append(InventoryResult(
                    orderId: line.orderId, lineId: line.lineId, sku: level.sku, location: location, quantity: units, outcome: .backorderFilled,
                    commandId: commandId))
            }
        }
        waiting.removeAll { $0.quantity <= 0 }
        level.waiting = waiting.isEmpty ? nil : waiting
        return (results, touched.keys.sorted().compactMap { touched[$0] })
    }

    /// Where a waiting line goes among the others: by rank, then placement, then id.
    static func waitsBefore(_ a: WaitingLine, _ b: WaitingLine) -> Bool {
        (a.priority, a.placedAt, a.orderId, a.lineId) < (b.priority, b.placedAt, b.orderId, b.lineId)
    }

    private static func applyCommand(
        _ command: Event, to level: inout InventoryLevel, reservation: (String) -> InventoryReservation?, commandId: String, now: Date
    ) throws(StageFailure) -> Change {
        switch command {
        case .reserveInventory(let c):
            let key = reservationKey(sku: c.sku, orderId: c.orderId, lineId: c.lineId, location: c.location)
            func result(_ outcome: InventoryOutcome, _ quantity: Int, available: Int? = nil) -> InventoryResult {
                InventoryResult(
                    orderId: c.orderId, lineId: c.lineId, sku: c.sku, location: c.location, quantity: quantity, outcome: outcome,
                    available: available, commandId: commandId)
            }
            if let existing = reservation(key) {
                // Already held for this order line here: answer again, change nothing.
                return Change(result: result(.reserved, existing.quantity), levelChanged: false, reservationChanges: [])
            }
            let index = level.locations.firstIndex { $0.location == c.location }
            let free = index.map { available(level.locations[$0]) } ?? 0
            guard let index, c.quantity >= 1, free >= c.quantity else {
                return Change(result: result(.refused, c.quantity, available: free), levelChanged: false, reservationChanges: [])
            }
            level.locations[index].reserved += c.quantity
            let record = InventoryReservation(
                sku: c.sku, orderId: c.orderId, lineId: c.lineId, location: c.location, quantity: c.quantity, reservedAt: now)
            return Change(result: result(.reserved, c.quantity), levelChanged: true, reservationChanges: [.put(record.event)])

        case .releaseInventory(let c):
            let key = reservationKey(sku: c.sku, orderId: c.orderId, lineId: c.lineId, location: c.location)
            let result = InventoryResult(
                orderId: c.orderId, lineId: c.lineId, sku: c.sku, location: c.location, quantity: c.quantity, outcome: .released,
                available: nil, commandId: commandId)
            // Nothing held (never reserved, or released already): releasing again is a no-op.
            guard let existing = reservation(key), let index = level.locations.firstIndex(where: { $0.location == c.location }) else {
                return Change(result: result, levelChanged: false, reservationChanges: [])
            }
            let units = min(c.quantity, existing.quantity)
            level.locations[index].reserved = max(0, level.locations[index].reserved - units)
            // A short pick: the units are not there, so the count comes down with them.
            if c.notFound == true { level.locations[index].onHand = max(0, level.locations[index].onHand - units) }
            return Change(result: result, levelChanged: true, reservationChanges: [shrink(existing, by: units, key: key)])

        case .commitInventory(let c):
            let key = reservationKey(sku: c.sku, orderId: c.orderId, lineId: c.lineId, location: c.location)
            guard let existing = reservation(key), let index = level.locations.firstIndex(where: { $0.location == c.location }) else {
                // Committed before: at least once, a replay can find the reservation gone.
                // Shipping commits only confirmed reservations, so this is never stock lost.
                let result = InventoryResult(
                    orderId: c.orderId, lineId: c.lineId, sku: c.sku, location: c.location, quantity: 0, outcome: .committed,
                    available: nil, commandId: commandId)
                return Change(result: result, levelChanged: false, reservationChanges: [])
            }
            let units = min(c.quantity, existing.quantity)
            level.locations[index].reserved = max(0, level.locations[index].reserved - units)
            level.locations[index].onHand = max(0, level.locations[index].onHand - units)
            let result = InventoryResult(
                orderId: c.orderId, lineId: c.lineId, sku: c.sku, location: c.location, quantity: units, outcome: .committed,
                available: nil, commandId: commandId)
            return Change(result: result, levelChanged: true, reservationChanges: [shrink(existing, by: units, key: key)])

        case .adjustInventory(let c):
            let index = locationIndex(c.location, in: &level)
            var stock = level.locations[index]
            if let last = stock.lastSourceSequence, c.sourceSequence <= last {
                // Stale or repeated sync: a newer count already applied.
                return Change(result: nil, levelChanged: false, reservationChanges: [])
            }
            switch c.mode {
            case .absolute: stock.onHand = max(0, c.quantity)
            case .delta: stock.onHand = max(0, stock.onHand + c.quantity)
            }
            if let safety = c.safetyStock { stock.safetyStock = max(0, safety) }
            stock.lastSourceSequence = c.sourceSequence
            level.locations[index] = stock
            return Change(result: nil, levelChanged: true, reservationChanges: [])

        case .restockInventory(let c):
            let index = locationIndex(c.location, in: &level)
            level.locations[index].onHand += max(0, c.quantity)
            let result = InventoryResult(
                orderId: c.orderId, lineId: c.returnId, sku: c.sku, location: c.location, quantity: c.quantity, outcome: .restocked,
                available: nil, commandId: commandId)
            return Change(result: result, levelChanged: true, reservationChanges: [])

        case .waitForStock(let c):
            var waiting = (level.waiting ?? []).filter { !($0.orderId == c.orderId && $0.lineId == c.lineId) }
            if c.quantity > 0 {
                waiting.append(WaitingLine(orderId: c.orderId, lineId: c.lineId, quantity: c.quantity, locations: c.locations, priority: c.priority, placedAt: c.placedAt))
                waiting.sort(by: waitsBefore)
            }
            let changed = waiting != (level.waiting ?? [])
            level.waiting = waiting.isEmpty ? nil : waiting
            return Change(result: nil, levelChanged: changed, reservationChanges: [])

        default:
            throw .rejected("inventory does not handle \(command.payload)")
        }
    }

    private static func shrink(_ reservation: InventoryReservation, by units: Int, key: String) -> StateChange {
        var rest = reservation
        rest.quantity -= units
        return rest.quantity > 0 ? .put(rest.event) : .delete(key: key)
    }

    /// The index of `location` in the level, adding it (sorted by id) when new.
    private static func locationIndex(_ location: String, in level: inout InventoryLevel) -> Int {
        if let index = level.locations.firstIndex(where: { $0.location == location }) { return index }
        let stock = LocationStock(location: location, onHand: 0, reserved: 0, safetyStock: 0, lastSourceSequence: nil)
        let index = level.locations.firstIndex { $0.location > location } ?? level.locations.count
        level.locations.insert(stock, at: index)
        return index
    }
}

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
        func waiting(_ key: String) -> WaitingLine? {
            if case .waitingLine(let stored) = state.value(key) { return stored }
            return nil
        }
        let change = try InventoryLedger.apply(
            input.event, to: &level, reservation: reservation, waiting: waiting, commandId: input.envelope.id, now: input.now)
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
        /// Reservation and waiting-line records written or deleted.
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

    /// Applies `command` to `level`; `reservation` and `waiting` look up open
    /// reservations and waiting lines by key. Stock the command frees or brings (a
    /// release, a count, a restock) and a line that starts waiting go to the waiting
    /// lines first, in fill order (``fill(_:reservation:waiting:commandId:now:)``).
    public static func apply(
        _ command: Event, to level: inout InventoryLevel, reservation: (String) -> InventoryReservation?,
        waiting: @escaping (String) -> WaitingLine? = { _ in nil }, commandId: String, now: Date
    ) throws(StageFailure) -> Change {
        var change = try applyCommand(command, to: &level, reservation: reservation, waiting: waiting, commandId: commandId, now: now)
        switch command {
        case .releaseInventory, .adjustInventory, .restockInventory, .waitForStock: break
        default: return change
        }
        guard level.waitingHead != nil else { return change }
        // The fill must see what the command itself did to the records.
        var own: [String: StateChange] = [:]
        for record in change.reservationChanges { own[record.key] = record }
        let filled = fill(
            &level,
            reservation: { key in
                guard let record = own[key] else { return reservation(key) }
                if case .put(.inventoryReservation(let kept)) = record { return kept }
                return nil
            },
            waiting: { key in
                guard let record = own[key] else { return waiting(key) }
                if case .put(.waitingLine(let kept)) = record { return kept }
                return nil
            }, commandId: commandId, now: now)
        guard !filled.results.isEmpty else { return change }
        change.fills = filled.results
        change.levelChanged = true
        for record in filled.records { own[record.key] = record }
        change.reservationChanges = own.keys.sorted().compactMap { own[$0] }
        return change
    }

    /// Reserves free stock for waiting lines, in their order (rank, then placement): each
    /// takes what its locations have free, nearest first, until it has all it misses.
    /// Inventory is the one writer of the SKU, so no new order can take the stock first.
    public static func fill(
        _ level: inout InventoryLevel, reservation: (String) -> InventoryReservation?, waiting: @escaping (String) -> WaitingLine?, commandId: String, now: Date
    ) -> (results: [InventoryResult], records: [StateChange]) {
        var queue = WaitingQueue(lookup: waiting)
        var results: [InventoryResult] = []
        var touched: [String: InventoryReservation] = [:]
        for key in queue.keys(from: level.waitingHead) {
            guard var line = queue.line(key) else { continue }
            let before = line.quantity
            for location in line.locations.isEmpty ? level.locations.map(\.location) : line.locations {
                guard line.quantity > 0, let at = level.locations.firstIndex(where: { $0.location == location }) else { continue }
                let units = min(line.quantity, available(level.locations[at]))
                guard units > 0 else { continue }
                level.locations[at].reserved += units
                line.quantity -= units
                let reservationKey = reservationKey(sku: level.sku, orderId: line.orderId, lineId: line.lineId, location: location)
                var record = touched[reservationKey] ?? reservation(reservationKey)
                    ?? InventoryReservation(sku: level.sku, orderId: line.orderId, lineId: line.lineId, location: location, quantity: 0, reservedAt: now)
                record.quantity += units
                touched[reservationKey] = record
                results.append(InventoryResult(
                    orderId: line.orderId, lineId: line.lineId, sku: level.sku, location: location, quantity: units, outcome: .backorderFilled,
                    commandId: commandId))
            }
            if line.quantity <= 0 {
                queue.remove(key, from: &level)
            } else if line.quantity != before {
                queue.put(line)
            }
        }
        return (results, touched.keys.sorted().compactMap { touched[$0].map { StateChange.put($0.event) } } + queue.changes)
    }

    /// The lines waiting for `level`'s SKU, in fill order.
    public static func waitingLines(of level: InventoryLevel, lookup: @escaping (String) -> WaitingLine?) -> [WaitingLine] {
        let queue = WaitingQueue(lookup: lookup)
        return queue.keys(from: level.waitingHead).compactMap(queue.line)
    }

    /// Where a waiting line goes among the others: by rank, then placement, then id.
    static func waitsBefore(_ a: WaitingLine, _ b: WaitingLine) -> Bool {
        (a.priority, a.placedAt, a.orderId, a.lineId) < (b.priority, b.placedAt, b.orderId, b.lineId)
    }

    /// The waiting lines of one SKU, linked in fill order from its level's `waitingHead`,
    /// each a record of its own so the level stays small; reads see the changes not yet
    /// written.
    struct WaitingQueue {
        let lookup: (String) -> WaitingLine?
        private var changed: [String: WaitingLine?] = [:]

        init(lookup: @escaping (String) -> WaitingLine?) { self.lookup = lookup }

        func line(_ key: String) -> WaitingLine? {
            if let change = changed[key] { return change }
            return lookup(key)
        }

        /// The keys from `head` on, in fill order.
        func keys(from head: String?) -> [String] {
            var keys: [String] = []
            var next = head
            while let key = next, let line = line(key), keys.count <= 10_000_000 {
                keys.append(key)
                next = line.next
            }
            return keys
        }

        /// Writes `line` where it already is.
        mutating func put(_ line: WaitingLine) { changed[line.partitionKey] = line }

        /// Links `line` in after the lines that wait before it.
        mutating func insert(_ line: WaitingLine, into level: inout InventoryLevel) {
            var line = line
            let before = keys(from: level.waitingHead).last { key in self.line(key).map { waitsBefore($0, line) } ?? false }
            if let before, var previous = self.line(before) {
                line.next = previous.next
                previous.next = line.partitionKey
                changed[before] = previous
            } else {
                line.next = level.waitingHead
                level.waitingHead = line.partitionKey
            }
            changed[line.partitionKey] = line
            level.waitingLines = (level.waitingLines ?? 0) + 1
        }

        /// Unlinks and deletes the line at `key`.
        mutating func remove(_ key: String, from level: inout InventoryLevel) {
            let order = keys(from: level.waitingHead)
            guard let index = order.firstIndex(of: key) else { return }
            let next = line(key)?.next
            if index == 0 {
                level.waitingHead = next
            } else if var previous = line(order[index - 1]) {
                previous.next = next
                changed[order[index - 1]] = previous
            }
            changed[key] = .some(nil)
            let left = (level.waitingLines ?? 1) - 1
            level.waitingLines = left > 0 ? left : nil
        }

        var changes: [StateChange] {
            changed.keys.sorted().map { key in
                if case .some(.some(let line)) = changed[key] { return .put(line.event) }
                return .delete(key: key)
            }
        }
    }

    private static func applyCommand(
        _ command: Event, to level: inout InventoryLevel, reservation: (String) -> InventoryReservation?, waiting: @escaping (String) -> WaitingLine?,
        commandId: String, now: Date
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
            var queue = WaitingQueue(lookup: waiting)
            let wanted = WaitingLine(
                sku: c.sku, orderId: c.orderId, lineId: c.lineId, quantity: c.quantity, locations: c.locations, priority: c.priority, placedAt: c.placedAt)
            let existing = queue.line(wanted.partitionKey)
            if var kept = existing, c.quantity > 0, kept.priority == c.priority, kept.placedAt == c.placedAt {
                // Its place in the order stays: only what it waits for changes.
                guard kept.quantity != c.quantity || kept.locations != c.locations else { return Change(result: nil, levelChanged: false, reservationChanges: []) }
                kept.quantity = c.quantity
                kept.locations = c.locations
                queue.put(kept)
                return Change(result: nil, levelChanged: false, reservationChanges: queue.changes)
            }
            if existing != nil { queue.remove(wanted.partitionKey, from: &level) }
            if c.quantity > 0 { queue.insert(wanted, into: &level) }
            return Change(result: nil, levelChanged: existing != nil || c.quantity > 0, reservationChanges: queue.changes)

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

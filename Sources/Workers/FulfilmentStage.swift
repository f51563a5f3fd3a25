import Contracts
import Foundation

/// Whether a location confirms its work before anything ships from it.
public enum LocationHandoff: String, Sendable, Hashable, Codable {
    /// Shipping buys the label as soon as allocation reserves there: the location is
    /// trusted to pack what was reserved (the default).
    case direct
    /// A `FulfilmentRequested` goes to the location; shipping waits until it packs,
    /// ships or holds the goods for pick-up, and what it cannot find is re-sourced.
    case request
}

/// The SLAs of fulfilment requests (docs/RULES.md, *Fulfilment*).
public struct FulfilmentRequestRules: Sendable, Hashable, Codable {
    /// A location must accept a request within this.
    public var acceptWithinSeconds: Int
    /// A location must pack or ship within this of the request.
    public var shipWithinSeconds: Int
    /// After a missed SLA, the request is withdrawn and its units re-sourced this much later.
    public var withdrawAfterSeconds: Int
    /// How often the stage looks for missed SLAs.
    public var checkIntervalSeconds: Int

    /// Defaults: accept in 30 minutes, ship in a day, withdraw 2 hours after a miss,
    /// checked every 30 seconds.
    public init(acceptWithinSeconds: Int = 1_800, shipWithinSeconds: Int = 86_400, withdrawAfterSeconds: Int = 7_200, checkIntervalSeconds: Int = 30) {
        self.acceptWithinSeconds = acceptWithinSeconds
        self.shipWithinSeconds = shipWithinSeconds
        self.withdrawAfterSeconds = withdrawAfterSeconds
        self.checkIntervalSeconds = checkIntervalSeconds
    }

    private enum CodingKeys: String, CodingKey { case acceptWithinSeconds, shipWithinSeconds, withdrawAfterSeconds, checkIntervalSeconds }

    /// Decodes the rules; a missing key keeps its default.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = FulfilmentRequestRules()
        self.init(
            acceptWithinSeconds: try c.decodeIfPresent(Int.self, forKey: .acceptWithinSeconds) ?? d.acceptWithinSeconds,
            shipWithinSeconds: try c.decodeIfPresent(Int.self, forKey: .shipWithinSeconds) ?? d.shipWithinSeconds,
            withdrawAfterSeconds: try c.decodeIfPresent(Int.self, forKey: .withdrawAfterSeconds) ?? d.withdrawAfterSeconds,
            checkIntervalSeconds: try c.decodeIfPresent(Int.self, forKey: .checkIntervalSeconds) ?? d.checkIntervalSeconds)
    }

    func problems() -> [String] {
        var problems: [String] = []
        if acceptWithinSeconds < 1 { problems.append("fulfilment.acceptWithinSeconds: must be at least 1") }
        if shipWithinSeconds < 1 { problems.append("fulfilment.shipWithinSeconds: must be at least 1") }
        if withdrawAfterSeconds < 0 { problems.append("fulfilment.withdrawAfterSeconds: must not be negative") }
        if checkIntervalSeconds < 1 { problems.append("fulfilment.checkIntervalSeconds: must be at least 1") }
        return problems
    }
}

extension BusinessRules {
    /// Whether `location` confirms its work (unknown locations ship directly).
    public func handoff(at location: String) -> LocationHandoff { self.location(location)?.fulfilment ?? .direct }

    /// Whether any location confirms its work: without one, the fulfilment stage has nothing to do.
    var anyLocationConfirms: Bool { locations.contains { $0.fulfilment == .request } }
}

extension FulfilmentUpdate {
    /// What a location's answer lacks for its kind, or nil when it can be applied: the
    /// gateway answers 400 with it, `oms fulfilment import` refuses the file.
    public var problem: String? {
        if updateId.isEmpty { return "updateId must not be empty" }
        if orderId.isEmpty { return "orderId must not be empty" }
        if location.isEmpty { return "location must not be empty" }
        if let bad = lines?.first(where: { $0.quantity < 0 || $0.lineId.isEmpty }) {
            return "lines: line '\(bad.lineId)' needs a line id and a quantity of at least 0"
        }
        if let bad = parcels?.first(where: { $0.weightGrams < 1 }) { return "parcels: weightGrams must be at least 1 (got \(bad.weightGrams))" }
        switch kind {
        case .picked where lines == nil: return "a picked answer needs lines: the units found per line (a line left out was not found)"
        case .shipped where carrier?.isEmpty != false || trackingNumber?.isEmpty != false:
            return "a shipped answer needs carrier and trackingNumber (the location's own label)"
        case .packed where parcels?.isEmpty != false: return "a packed answer needs parcels with their weights: the label is bought from them"
        default: return nil
        }
    }

    /// The event id of a location's answer, from its location and update id: the same
    /// answer sent twice (by webhook or file) is one answer to the fulfilment stage.
    public var derivedEventId: String {
        DeterministicID.uuidV5(namespace: Self.answerNamespace, name: "\(location)|\(updateId)")
    }

    private static let answerNamespace = UUID(uuidString: "3b7d2c1e-8f4a-5e6b-9c0d-1a2b3c4d5e6f")!
}

/// The hand-over of a pick-up order at its store, as shipping and fulfilment both name it.
public enum PickupHandover {
    /// The carrier code of a pick-up "shipment".
    public static let carrier = "pickup"
    /// The pick-up code the customer shows at the store: stable for (order, store).
    public static func code(orderId: String, location: String) -> String {
        "PU-" + DeterministicID.uuidV5(namespace: ShippingMachine.shipmentNamespace, name: "pickup/\(orderId)/\(location)").prefix(8).uppercased()
    }
}

/// Sends what allocation reserved at confirming locations to them as fulfilment
/// requests, and turns their answers into the fleet's facts: packed (shipping makes the
/// shipment), short (allocation re-sources), ready for pick-up and picked up.
///
/// It is the one writer of a request's status, so an answer, a cancel and an SLA
/// withdrawal are decided in one order; a location's answer to a request it no longer
/// has (withdrawn, cancelled) changes nothing. Locations that ship directly
/// (``LocationHandoff/direct``) never meet this stage.
public struct FulfilmentStage: Stage {
    /// `fulfilment`.
    public let name = "fulfilment"
    /// Placed orders (the ship-to and service level), allocation decisions, location
    /// answers, accepted cancels.
    public let inputTopics = [OrderPlaced.topic, OrderAllocated.topic, FulfilmentUpdate.topic, OrderCancelled.topic]
    /// oms.fulfilment.state.
    public let changelogTopic: String? = FulfilmentState.topic
    /// Locations and the request SLAs.
    public let rules: BusinessRules

    /// Creates the stage.
    public init(rules: BusinessRules) {
        self.rules = rules
    }

    /// SLAs are counted in minutes and hours: a check every `fulfilment.checkIntervalSeconds` is on time.
    public var tickInterval: Duration? { .seconds(rules.fulfilment.checkIntervalSeconds) }

    /// Advances the order's requests by one event.
    public func process(_ input: StageInput, state: StageState) throws(StageFailure) -> StageOutcome {
        let orderId: String
        switch input.event {
        case .orderPlaced(let e): orderId = e.orderId
        case .orderAllocated(let e): orderId = e.orderId
        case .orderPartiallyAllocated(let e): orderId = e.orderId
        case .orderCancelled(let e): orderId = e.orderId
        case .fulfilmentUpdate(let e): orderId = e.orderId
        case .orderBackordered, .cancelRejected, .shippingAddressChanged, .orderLinesCancelled, .orderChangeRejected: return .none
        default: throw .rejected("fulfilment does not handle \(input.envelope.type)")
        }
        // Without a confirming location nothing is ever requested: keep no state at all.
        guard rules.anyLocationConfirms else {
            if case .fulfilmentUpdate(let update) = input.event { throw .rejected("no location confirms its work (rule locations[].fulfilment): update from \(update.location) has no request") }
            return .none
        }
        var current: FulfilmentState?
        if case .fulfilmentState(let stored) = state.value(orderId) { current = stored }
        let step = try FulfilmentMachine.advance(current, orderId: orderId, on: input.event, rules: rules, now: input.now)
        var outcome = StageOutcome(outputs: step.outputs.map { StageOutput($0) })
        if var next = step.state, next != current {
            next.updatedAt = input.now
            outcome.stateChanges = [.put(next.event)]
        }
        return outcome
    }

    /// Requests past their SLA: an alert once per rule, then the withdrawal.
    public func tick(now: Date, state: KeyedState) -> [TimerFiring] {
        var firings: [TimerFiring] = []
        state.forEach { _, value in
            guard case .fulfilmentState(let order) = value else { return }
            let step = FulfilmentMachine.enforceSLAs(order, rules: rules.fulfilment, now: now)
            guard var next = step.state, next != order else { return }
            next.updatedAt = now
            let id = "fulfilment-sla/\(order.orderId)/" + step.firedRules.joined(separator: ",")
            firings.append(TimerFiring(id: id, outcome: StageOutcome(outputs: step.outputs.map { StageOutput($0) }, stateChanges: [.put(next.event)])))
        }
        return firings.sorted { $0.id < $1.id }
    }
}

/// The fulfilment requests of one order, as a pure function.
public enum FulfilmentMachine {
    /// The order's next state and what to publish.
    public struct Step: Sendable, Hashable {
        /// State after the event (nil: unchanged and unknown).
        public var state: FulfilmentState?
        /// Requests, withdrawals, packed and short facts, progress, alerts.
        public var outputs: [Event]
        /// For a timer: which rules fired (`<requestId>/<rule>`), naming the firing.
        public var firedRules: [String] = []
    }

    /// Statuses in which the location still works on the request.
    static let open: Set<FulfilmentStatus> = [.requested, .accepted, .picked]

    /// Applies one event.
    public static func advance(_ current: FulfilmentState?, orderId: String, on event: Event, rules: BusinessRules, now: Date) throws(StageFailure) -> Step {
        var state = current ?? FulfilmentState(orderId: orderId, placed: false, waiting: [], requests: [], cancelled: false, updatedAt: now)
        switch event {
        case .orderPlaced(let order):
            guard !state.placed else { return Step(state: current, outputs: []) }
            state.placed = true
            state.serviceLevel = order.serviceLevel
            state.shipTo = order.shippingAddress
            state.pickupLocation = order.pickupLocation
            let waiting = state.waiting
            state.waiting = []
            return request(state, waiting, rules: rules, now: now)
        case .orderAllocated(let decision):
            return request(state, decision.allocations, rules: rules, now: now)
        case .orderPartiallyAllocated(let decision):
            return request(state, decision.allocations, rules: rules, now: now)
        case .orderCancelled:
            return cancel(state, now: now)
        case .fulfilmentUpdate(let update):
            return try answer(state, update, now: now)
        default:
            return Step(state: current, outputs: [])
        }
    }

    /// One request per confirming location for the units reserved there that no request
    /// covers yet: the first time, and again for units filled there from a backorder.
    private static func request(_ state: FulfilmentState, _ allocations: [LineAllocation], rules: BusinessRules, now: Date) -> Step {
        var state = state
        let confirming = allocations.filter { rules.handoff(at: $0.location) == .request }
        guard !confirming.isEmpty, !state.cancelled else { return Step(state: state, outputs: []) }
        guard state.placed else {
            // The decision came before the order (topics are read side by side).
            for allocation in confirming where !state.waiting.contains(allocation) { state.waiting.append(allocation) }
            return Step(state: state, outputs: [])
        }
        var outputs: [Event] = []
        for location in Set(confirming.map(\.location)).sorted() {
            let lines = uncovered(merged(confirming.filter { $0.location == location }.map { ShipmentLine(lineId: $0.lineId, sku: $0.sku, quantity: $0.quantity) }), at: location, in: state)
            guard !lines.isEmpty else { continue }
            let mode = mode(of: location, rules: rules, pickupLocation: state.pickupLocation)
            let sla = rules.fulfilment
            let earlier = state.requests.filter { $0.location == location }.count
            let record = FulfilmentRecord(
                requestId: earlier == 0 ? "\(state.orderId)/\(location)" : "\(state.orderId)/\(location)/\(earlier + 1)", location: location, mode: mode, status: .requested, lines: lines, requestedAt: now,
                acceptBy: now.addingTimeInterval(TimeInterval(sla.acceptWithinSeconds)), shipBy: now.addingTimeInterval(TimeInterval(sla.shipWithinSeconds)),
                updatedAt: now)
            state.requests.append(record)
            outputs.append(FulfilmentRequested(
                requestId: record.requestId, orderId: state.orderId, location: location, mode: mode, lines: lines,
                serviceLevel: state.serviceLevel ?? .standard, shipTo: mode == .pickup ? nil : state.shipTo, acceptBy: record.acceptBy,
                shipBy: record.shipBy, requestedAt: now
            ).event)
            outputs.append(progressed(state.orderId, record, now: now))
        }
        return Step(state: state, outputs: outputs)
    }

    /// `lines` (cumulative reservations at `location`) less what requests there already
    /// cover: all their units while open, what was packed once packed; a withdrawn
    /// request's units went back to allocation.
    private static func uncovered(_ lines: [ShipmentLine], at location: String, in state: FulfilmentState) -> [ShipmentLine] {
        var covered: [String: Int] = [:]
        for record in state.requests where record.location == location && record.status != .withdrawn && record.status != .cancelled {
            for line in record.picked ?? record.lines { covered[line.lineId, default: 0] += line.quantity }
        }
        return lines.compactMap { line in
            var left = line
            left.quantity -= covered[line.lineId, default: 0]
            return left.quantity > 0 ? left : nil
        }
    }

    /// How `location` fulfils: by its kind, and a store holding a pick-up order for it.
    static func mode(of location: String, rules: BusinessRules, pickupLocation: String?) -> FulfilmentMode {
        switch rules.location(location)?.type {
        case .store?: pickupLocation == location ? .pickup : .shipFromStore
        case .thirdPartyLogistics?: .thirdParty
        case .dropShip?: .dropShip
        case .warehouse?, nil: .warehouse
        }
    }

    /// A cancel accepted by shipping: every open request is withdrawn.
    private static func cancel(_ state: FulfilmentState, now: Date) -> Step {
        guard !state.cancelled else { return Step(state: state, outputs: []) }
        var state = state
        state.cancelled = true
        state.waiting = []
        var outputs: [Event] = []
        for index in state.requests.indices where open.contains(state.requests[index].status) {
            state.requests[index].status = .cancelled
            state.requests[index].updatedAt = now
            let record = state.requests[index]
            outputs.append(FulfilmentWithdrawn(
                requestId: record.requestId, orderId: state.orderId, location: record.location,
                reason: Reason(code: "order_cancelled", message: "the order was cancelled; put the goods back"), withdrawnAt: now
            ).event)
            outputs.append(progressed(state.orderId, record, now: now))
        }
        return Step(state: state, outputs: outputs)
    }

    /// A location's answer.
    private static func answer(_ state: FulfilmentState, _ update: FulfilmentUpdate, now: Date) throws(StageFailure) -> Step {
        let atLocation = state.requests.indices.filter { state.requests[$0].location == update.location }
        let chosen = update.requestId.map { id in atLocation.first { state.requests[$0].requestId == id } }
            ?? atLocation.last { open.contains(state.requests[$0].status) || state.requests[$0].status == .readyForPickup } ?? atLocation.last
        guard let index = chosen else {
            throw .rejected("order \(update.orderId) has no fulfilment request\(update.requestId.map { " " + $0 } ?? "") at \(update.location)")
        }
        var state = state
        var record = state.requests[index]
        var outputs: [Event] = []
        switch update.kind {
        case .accepted:
            guard record.status == .requested else { return Step(state: state, outputs: []) }
            record.status = .accepted
        case .rejected:
            guard open.contains(record.status) else { return Step(state: state, outputs: []) }
            let reason = update.reason ?? Reason(code: "location_rejected", message: "\(record.location) rejected the request")
            outputs.append(short(state.orderId, record, record.picked ?? record.lines, cause: .rejected, reason: reason, now: now))
            record.status = .withdrawn
        case .picked:
            guard record.status == .requested || record.status == .accepted else { return Step(state: state, outputs: []) }
            let (found, missing) = split(record.lines, reported: update.lines ?? [])
            if !missing.isEmpty {
                let reason = Reason(code: "short_pick", message: "\(record.location) found \(units(found)) of \(units(record.lines)) units")
                outputs.append(short(state.orderId, record, missing, cause: .shortPick, reason: reason, now: now))
            }
            record.picked = found
            record.status = found.isEmpty ? .withdrawn : .picked
        case .packed, .shipped, .readyForPickup:
            guard open.contains(record.status) else { return Step(state: state, outputs: []) }
            if update.kind == .shipped, update.carrier?.isEmpty != false || update.trackingNumber?.isEmpty != false {
                throw .rejected("a shipped update needs carrier and trackingNumber (\(record.requestId))")
            }
            if update.kind == .readyForPickup, record.mode != .pickup {
                throw .rejected("\(record.requestId) is not a pick-up order (mode \(record.mode.rawValue))")
            }
            let assigned = record.picked ?? record.lines
            let (packed, missing) = update.lines.map { split(assigned, reported: $0) } ?? (assigned, [])
            if !missing.isEmpty {
                let reason = Reason(code: "short_pick", message: "\(record.location) packed \(units(packed)) of \(units(assigned)) units")
                outputs.append(short(state.orderId, record, missing, cause: .shortPick, reason: reason, now: now))
            }
            guard !packed.isEmpty else {
                record.status = .withdrawn
                break
            }
            record.picked = packed
            record.status = switch update.kind {
            case .shipped: .shipped
            case .readyForPickup: .readyForPickup
            default: .packed
            }
            outputs.append(FulfilmentPacked(
                orderId: state.orderId, requestId: record.requestId, location: record.location, lines: packed,
                parcels: update.kind == .readyForPickup ? [] : update.parcels ?? [], carrier: update.kind == .shipped ? update.carrier : nil,
                service: update.kind == .shipped ? update.service : nil, trackingNumber: update.kind == .shipped ? update.trackingNumber : nil,
                pickup: update.kind == .readyForPickup ? true : nil, packedAt: now
            ).event)
        case .pickedUp:
            guard record.status == .readyForPickup else { return Step(state: state, outputs: []) }
            record.status = .pickedUp
            let code = PickupHandover.code(orderId: state.orderId, location: record.location)
            outputs.append(ShipmentDelivered(
                orderId: state.orderId, shipmentId: ShippingMachine.shipmentID(orderId: state.orderId, location: record.location),
                carrier: PickupHandover.carrier, trackingNumber: code, rawStatus: "picked_up", deliveredAt: update.occurredAt,
                message: "collected at \(record.location)"
            ).event)
        }
        record.updatedAt = now
        state.requests[index] = record
        outputs.append(progressed(state.orderId, record, now: now))
        return Step(state: state, outputs: outputs)
    }

    /// The SLA check of one order: an alert per missed rule, then the withdrawal of a
    /// request still open `withdrawAfterSeconds` after its miss.
    public static func enforceSLAs(_ state: FulfilmentState, rules: FulfilmentRequestRules, now: Date) -> Step {
        var state = state
        var outputs: [Event] = []
        var fired: [String] = []
        let grace = TimeInterval(rules.withdrawAfterSeconds)
        for index in state.requests.indices where open.contains(state.requests[index].status) {
            var record = state.requests[index]
            let deadlines: [(rule: String, due: Date, applies: Bool)] = [
                ("accept", record.acceptBy, record.status == .requested),
                ("ship", record.shipBy, true),
            ]
            var withdraw = false
            for deadline in deadlines where deadline.applies && now >= deadline.due {
                if now >= deadline.due.addingTimeInterval(grace) { withdraw = true }
                guard record.alerted?.contains(deadline.rule) != true else { continue }
                record.alerted = (record.alerted ?? []) + [deadline.rule]
                fired.append("\(record.requestId)/\(deadline.rule)")
                outputs.append(FulfilmentOverdue(
                    orderId: state.orderId, requestId: record.requestId, location: record.location, rule: deadline.rule, due: deadline.due,
                    withdrawAt: deadline.due.addingTimeInterval(grace), detectedAt: now
                ).event)
            }
            if withdraw {
                fired.append("\(record.requestId)/withdraw")
                let reason = Reason(code: "fulfilment_sla_missed", message: "\(record.location) did not \(record.status == .requested ? "accept" : "ship") in time; re-sourced")
                outputs.append(FulfilmentWithdrawn(requestId: record.requestId, orderId: state.orderId, location: record.location, reason: reason, withdrawnAt: now).event)
                outputs.append(short(state.orderId, record, record.picked ?? record.lines, cause: .withdrawn, reason: reason, now: now))
                record.status = .withdrawn
                outputs.append(progressed(state.orderId, record, now: now))
            }
            if record != state.requests[index] {
                record.updatedAt = now
                state.requests[index] = record
            }
        }
        return Step(state: state, outputs: outputs, firedRules: fired)
    }

    /// `asked` split by a location's report into what it has and what is missing; a
    /// line the report leaves out was not found, and a report never adds units.
    public static func split(_ asked: [ShipmentLine], reported: [LineQuantity]) -> (found: [ShipmentLine], missing: [ShipmentLine]) {
        var found: [ShipmentLine] = []
        var missing: [ShipmentLine] = []
        for line in asked {
            let have = min(line.quantity, max(0, reported.filter { $0.lineId == line.lineId }.reduce(0) { $0 + $1.quantity }))
            if have > 0 { found.append(ShipmentLine(lineId: line.lineId, sku: line.sku, quantity: have)) }
            if have < line.quantity { missing.append(ShipmentLine(lineId: line.lineId, sku: line.sku, quantity: line.quantity - have)) }
        }
        return (found, missing)
    }

    private static func short(_ orderId: String, _ record: FulfilmentRecord, _ lines: [ShipmentLine], cause: ShortfallCause, reason: Reason, now: Date) -> Event {
        FulfilmentShort(orderId: orderId, requestId: record.requestId, location: record.location, lines: lines, cause: cause, reason: reason, decidedAt: now).event
    }

    private static func progressed(_ orderId: String, _ record: FulfilmentRecord, now: Date) -> Event {
        FulfilmentProgressed(
            orderId: orderId, requestId: record.requestId, location: record.location, mode: record.mode, status: record.status,
            requestedAt: record.requestedAt, at: now, lines: record.picked ?? record.lines
        ).event
    }

    /// Lines with the same id added up, in line order.
    static func merged(_ lines: [ShipmentLine]) -> [ShipmentLine] {
        var merged: [ShipmentLine] = []
        for line in lines.sorted(by: { $0.lineId < $1.lineId }) {
            if let last = merged.indices.last, merged[last].lineId == line.lineId { merged[last].quantity += line.quantity } else { merged.append(line) }
        }
        return merged
    }

    private static func units(_ lines: [ShipmentLine]) -> Int { lines.reduce(0) { $0 + $1.quantity } }
}

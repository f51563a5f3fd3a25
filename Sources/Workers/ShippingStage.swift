import Contracts
import Digests
import Foundation

/// Makes labels: the seam to a carrier's API (EasyPost, a carrier's own).
///
/// ``Stage/process(_:state:)`` must be deterministic, so a connector must return the
/// same label for the same request (a real connector keys its API call on the
/// shipment id, which carriers accept as an idempotency reference).
public protocol CarrierConnector: Sendable {
    /// A label for one parcel.
    func label(for request: LabelRequest) -> CarrierLabel
}

/// What a label is bought for.
public struct LabelRequest: Sendable, Hashable {
    /// The shipment (or return) id; the same id gives the same label.
    public var parcelId: String
    /// Carrier code.
    public var carrier: String
    /// Carrier service.
    public var service: String
    /// Parcel weight.
    public var weightGrams: Int

    /// Creates a request.
    public init(parcelId: String, carrier: String, service: String, weightGrams: Int) {
        self.parcelId = parcelId
        self.carrier = carrier
        self.service = service
        self.weightGrams = weightGrams
    }
}

/// A bought label.
public struct CarrierLabel: Sendable, Hashable {
    /// The carrier's tracking number.
    public var trackingNumber: String
    /// Where the label document is.
    public var labelRef: String

    /// Creates a label.
    public init(trackingNumber: String, labelRef: String) {
        self.trackingNumber = trackingNumber
        self.labelRef = labelRef
    }
}

/// The built-in connector: tracking numbers derived from the parcel id, so a replay
/// issues the same number. For demos, tests and brands that print their own labels.
public struct DeterministicCarrierConnector: CarrierConnector {
    /// Creates the connector.
    public init() {}

    /// `<CARRIER>` plus 16 digits of SHA-256(carrier, parcel id).
    public func label(for request: LabelRequest) -> CarrierLabel {
        let digest = Digests.sha256(Array("\(request.carrier)\u{1F}\(request.parcelId)".utf8))
        let digits = digest.prefix(8).map { String(format: "%02d", Int($0) % 100) }.joined()
        let prefix = request.carrier.uppercased().filter { $0.isLetter || $0.isNumber }.prefix(4)
        let number = "\(prefix)\(digits)"
        return CarrierLabel(trackingNumber: number, labelRef: "label://\(request.carrier)/\(number).pdf")
    }
}

/// The carrier choice for one parcel.
public struct CarrierChoice: Sendable, Hashable {
    /// The chosen rate.
    public var rate: CarrierRate
    /// Its delivery estimate.
    public var estimatedDelivery: Date
    /// No rate met the promise; this is the fastest.
    public var atRisk: Bool

    /// The cheapest rate for `zone` and `weightGrams` whose estimate (`now` + transit
    /// days) is not after `promise`, fewer transit days breaking price ties; if none
    /// meets it, the fastest (then cheapest), at risk. Nil if no rate serves the parcel.
    public static func choose(rates: [CarrierRate], zone: String, weightGrams: Int, hazmat: Bool, promise: Date, now: Date) -> CarrierChoice? {
        let serving = rates.filter { rate in
            (rate.zones?.contains(zone) ?? true) && weightGrams <= rate.maxWeightGrams && (!hazmat || rate.hazmat)
        }
        func estimate(_ rate: CarrierRate) -> Date { now.addingTimeInterval(TimeInterval(rate.transitDays) * 86_400) }
        let meeting = serving.filter { estimate($0) <= promise }
        if let best = meeting.min(by: { ($0.price, $0.transitDays, $0.carrier, $0.service) < ($1.price, $1.transitDays, $1.carrier, $1.service) }) {
            return CarrierChoice(rate: best, estimatedDelivery: estimate(best), atRisk: false)
        }
        guard let fastest = serving.min(by: { ($0.transitDays, $0.price, $0.carrier, $0.service) < ($1.transitDays, $1.price, $1.carrier, $1.service) })
        else { return nil }
        return CarrierChoice(rate: fastest, estimatedDelivery: estimate(fastest), atRisk: true)
    }
}

/// Ships allocated orders and decides cancellations.
///
/// For the units a location has not shipped yet it creates one shipment: carrier and
/// service from the rate table (``CarrierChoice``), a label from the
/// ``CarrierConnector``, an index entry so tracking can join carrier pushes, a commit of
/// each reservation (inventory) and a capture of the shipped units' worth
/// (``OrderAmounts``; the shipping charge goes with the first shipment). A location that
/// confirms its work (``LocationHandoff/request``) ships what it packed instead, with the
/// parcels' weight, its own label, or a pick-up hand-over.
///
/// It is also the one place that decides a cancel, because it is the one writer of
/// "a shipment exists": a cancel is accepted only while no shipment exists (then
/// `OrderCancelled`, which allocation and payment act on, and a void of the
/// authorization), else rejected with the reason. Later allocations of a cancelled
/// order are not shipped; allocation releases their reservations. For the same reason
/// it decides address changes and line cancels (``OrderChanges``).
///
/// An exchange's replacement reserved at authorization (``Exchanges``) keeps its
/// allocations waiting until `ShipReplacement` says the return arrived.
public struct ShippingStage: Stage {
    /// `shipping`.
    public let name = "shipping"
    /// Placed orders, allocation decisions, order commands, what confirming locations packed.
    public let inputTopics = [OrderPlaced.topic, OrderAllocated.topic, CancelOrder.topic, FulfilmentPacked.topic]
    /// oms.shipping.state.
    public let changelogTopic: String? = ShippingState.topic
    /// The catalog, for weights and dangerous goods.
    public let globalTables = [CatalogProduct.topic]
    /// Rates, promises and locations.
    public let rules: BusinessRules
    /// Label maker.
    public let connector: any CarrierConnector

    /// Creates the stage.
    public init(rules: BusinessRules, connector: any CarrierConnector = DeterministicCarrierConnector()) {
        self.rules = rules
        self.connector = connector
    }

    /// Records the order, ships allocations, decides cancels.
    public func process(_ input: StageInput, state: StageState) throws(StageFailure) -> StageOutcome {
        let orderId: String
        switch input.event {
        case .orderPlaced(let e): orderId = e.orderId
        case .orderAllocated(let e): orderId = e.orderId
        case .orderPartiallyAllocated(let e): orderId = e.orderId
        case .cancelOrder(let e): orderId = e.orderId
        case .updateShippingAddress(let e): orderId = e.orderId
        case .cancelOrderLines(let e): orderId = e.orderId
        case .shipReplacement(let e): orderId = e.orderId
        case .fulfilmentPacked(let e): orderId = e.orderId
        case .orderBackordered, .releaseHold, .fulfilmentProgressed, .fulfilmentShort: return .none
        default: throw .rejected("shipping does not handle \(input.envelope.type)")
        }
        var current: ShippingState?
        if case .shippingState(let stored) = state.value(orderId) { current = stored }
        let product: (String) -> CatalogProduct? = { sku in
            if case .catalogProduct(let product) = state.table(CatalogProduct.topic, key: sku) { return product }
            return nil
        }
        let step = ShippingMachine.advance(current, orderId: orderId, on: input.event, rules: rules, connector: connector, product: product, now: input.now)
        var outcome = StageOutcome(outputs: step.outputs.map { StageOutput($0) })
        if var next = step.state, next != current {
            next.updatedAt = input.now
            outcome.stateChanges = [.put(next.event)]
        }
        return outcome
    }
}

/// Shipping's decisions per order, as a pure function.
public enum ShippingMachine {
    /// The order's next state and what to publish.
    public struct Step: Sendable, Hashable {
        /// State after the event.
        public var state: ShippingState?
        /// Shipments, index entries, inventory commits, payment commands, cancel outcomes.
        public var outputs: [Event]
    }

    /// Applies one event.
    public static func advance(
        _ current: ShippingState?, orderId: String, on event: Event, rules: BusinessRules, connector: any CarrierConnector,
        product: (String) -> CatalogProduct?, now: Date
    ) -> Step {
        var state = current ?? ShippingState(orderId: orderId, lines: [], waiting: [], shipments: [], cancelled: false, updatedAt: now)
        switch event {
        case .orderPlaced(let order):
            guard state.totals == nil else { return Step(state: current, outputs: []) }
            state.lines = order.lines
            state.totals = order.totals
            state.destination = order.shippingAddress
            state.serviceLevel = order.serviceLevel
            state.promisedDeliveryDate = order.promisedDeliveryDate
            state.placedAt = order.placedAt
            state.authorizationReference = order.payment.reference
            state.channel = order.channel
            if order.payment.status == .captured { state.paidAtCheckout = true }
            if order.exchangeOf?.holdUntilReturned == true, state.replacementReleased != true { state.awaitingReturn = true }
            if state.cancelled {
                // Cancelled before the order was read: the void waited for its reference.
                let reason = Reason(code: "order_cancelled", message: "order cancelled before shipment")
                return Step(state: state, outputs: release(state, reason: reason, now: now))
            }
            return shipHeld(state, rules: rules, connector: connector, product: product, now: now)
        case .fulfilmentPacked(let packed):
            guard state.packedRequests?.contains(packed.requestId) != true else { return Step(state: current, outputs: []) }
            let units = PackedUnits(
                requestId: packed.requestId, location: packed.location, lines: packed.lines, parcels: packed.parcels, carrier: packed.carrier, service: packed.service,
                trackingNumber: packed.trackingNumber, pickup: packed.pickup)
            guard state.totals != nil, state.awaitingReturn != true else {
                // Packed before shipping read the order, or a replacement packed before its
                // return arrived: it ships when the order is read, or the return.
                if state.packed?.contains(units) != true { state.packed = (state.packed ?? []) + [units] }
                return Step(state: state, outputs: [])
            }
            return ship(state, packed: units, rules: rules, connector: connector, product: product, now: now)
        case .orderAllocated(let decision):
            return ship(state, decision.allocations, rules: rules, connector: connector, product: product, now: now)
        case .orderPartiallyAllocated(let decision):
            return ship(state, decision.allocations, rules: rules, connector: connector, product: product, now: now)
        case .cancelOrder(let command):
            if state.cancelled {
                let reason = Reason(code: "already_cancelled", message: "order \(orderId) is already cancelled")
                return Step(state: current, outputs: [CancelRejected(orderId: orderId, requestedBy: command.requestedBy, reasons: [reason], rejectedAt: now).event])
            }
            if let first = state.shipments.first {
                let reason = Reason(
                    code: "already_shipped",
                    message: "shipment \(first.shipmentId) from \(first.location) exists (\(state.shipments.count) in all); return the items instead")
                return Step(state: current, outputs: [CancelRejected(orderId: orderId, requestedBy: command.requestedBy, reasons: [reason], rejectedAt: now).event])
            }
            state.cancelled = true
            state.waiting = []
            let cancelled = OrderCancelled(orderId: orderId, requestedBy: command.requestedBy, reason: command.reason, cancelledAt: now)
            guard state.totals != nil else {
                // The order itself is not read yet: the void goes when it is, with its reference.
                return Step(state: state, outputs: [cancelled.event])
            }
            return Step(state: state, outputs: [cancelled.event] + release(state, reason: command.reason, now: now))
        case .updateShippingAddress(let command):
            return OrderChanges.changeAddress(state, command: command, product: product, now: now)
        case .cancelOrderLines(let command):
            return OrderChanges.cancelLines(state, command: command, rule: rules.shipping.lineCancelShipping, now: now)
        case .shipReplacement:
            guard state.replacementReleased != true else { return Step(state: current, outputs: []) }
            state.replacementReleased = true
            guard state.awaitingReturn == true else { return Step(state: state, outputs: []) }
            state.awaitingReturn = nil
            return shipHeld(state, rules: rules, connector: connector, product: product, now: now)
        default:
            return Step(state: current, outputs: [])
        }
    }

    /// Ships what waited: allocations and packed answers read before the order, or held
    /// for a replacement's return.
    private static func shipHeld(
        _ state: ShippingState, rules: BusinessRules, connector: any CarrierConnector, product: (String) -> CatalogProduct?, now: Date
    ) -> Step {
        var state = state
        let waiting = state.waiting
        let packed = state.packed ?? []
        state.waiting = []
        state.packed = nil
        var step = ship(state, waiting, rules: rules, connector: connector, product: product, now: now)
        for units in packed {
            let next = ship(step.state ?? state, packed: units, rules: rules, connector: connector, product: product, now: now)
            step = Step(state: next.state, outputs: step.outputs + next.outputs)
        }
        return step
    }

    /// What a cancel before any shipment does to the money: an authorization is voided;
    /// an order paid at checkout is refunded in full; one that cost nothing (an even
    /// exchange's replacement) needs nothing.
    static func release(_ state: ShippingState, reason: Reason, now: Date) -> [Event] {
        if state.paidAtCheckout == true, let total = state.totals?.total {
            guard total.minorUnits > 0 else { return [] }
            return [OrderChanges.refund(state, total, reason: reason, now: now)]
        }
        return [VoidPayment(orderId: state.orderId, authorizationReference: state.authorizationReference, reason: reason, requestedAt: now, channel: state.channel).event]
    }

    /// Ships what a confirming location packed (or shipped itself, or holds for pick-up).
    private static func ship(
        _ state: ShippingState, packed: PackedUnits, rules: BusinessRules, connector: any CarrierConnector, product: (String) -> CatalogProduct?, now: Date
    ) -> Step {
        let allocations = packed.lines.map { LineAllocation(lineId: $0.lineId, sku: $0.sku, location: packed.location, quantity: $0.quantity) }
        return ship(state, allocations, packed: packed, rules: rules, connector: connector, product: product, now: now)
    }

    /// Creates a shipment per location for the allocations not shipped yet. Without
    /// `packed`, only locations that ship directly are shipped from: a confirming one
    /// ships when it has packed.
    private static func ship(
        _ state: ShippingState, _ allocations: [LineAllocation], packed: PackedUnits? = nil, rules: BusinessRules, connector: any CarrierConnector,
        product: (String) -> CatalogProduct?, now: Date
    ) -> Step {
        var state = state
        if state.cancelled { return Step(state: state, outputs: []) }
        guard let totals = state.totals, let destination = state.destination, let placedAt = state.placedAt, state.awaitingReturn != true else {
            // The decision came before the order itself (topics are read side by side), or
            // the replacement waits for its return: kept as it came, to ship then.
            if let packed {
                if state.packed?.contains(packed) != true { state.packed = (state.packed ?? []) + [packed] }
            } else {
                for allocation in allocations where !state.waiting.contains(allocation) { state.waiting.append(allocation) }
            }
            return Step(state: state, outputs: [])
        }
        let allocations = packed == nil ? allocations.filter { rules.handoff(at: $0.location) == .direct } : allocations
        // A repeated decision must not ship twice: allocations are cumulative, so only units
        // beyond what a location shipped are new (a backorder filled there later ships
        // again). What a location packed is new once per request.
        let fresh = shippable(packed == nil ? unshipped(allocations, state: state) : allocations, state: state)
        if let packed { state.packedRequests = (state.packedRequests ?? []) + [packed.requestId] }
        guard !fresh.isEmpty else { return Step(state: state, outputs: []) }
        let amounts = OrderAmounts(lines: state.lines, totals: totals)
        let promise = state.promisedDeliveryDate
            ?? placedAt.addingTimeInterval(TimeInterval(rules.shipping.promiseDays[(state.serviceLevel ?? .standard).rawValue] ?? 7) * 86_400)
        var outputs: [Event] = []
        for location in Set(fresh.map(\.location)).sorted() {
            let parts = fresh.filter { $0.location == location }.sorted { $0.lineId < $1.lineId }
            let lines = parts.map { ShipmentLine(lineId: $0.lineId, sku: $0.sku, quantity: $0.quantity) }
            let shipmentId = shipmentID(orderId: state.orderId, location: location, earlier: state.shipments.filter { $0.location == location }.count)
            let weighed = packed?.parcels.reduce(0) { $0 + $1.weightGrams } ?? 0
            let weight = weighed > 0 ? weighed : lines.reduce(0) { $0 + (product($1.sku)?.weightGrams ?? 0) * $1.quantity }
            let hazmat = lines.contains { product($0.sku)?.hazmat ?? false }
            let site = rules.location(location)
            let distance = site.map { rules.distance(to: $0, country: destination.country.code, postalCode: destination.postalCode) } ?? 5_000
            let zone = rules.shipping.zone(from: site, country: destination.country.code, distanceKm: distance)
            let choice = CarrierChoice.choose(rates: rules.shipping.rates, zone: zone, weightGrams: weight, hazmat: hazmat, promise: promise, now: now)
                // No rate serves the zone and weight: the fastest that may carry it (dangerous
                // goods only with a hazmat service), at risk, so operators see the flag.
                ?? fallback(rules.shipping.rates, hazmat: hazmat, now: now)
            let handover = handover(packed, orderId: state.orderId, location: location, choice: choice, now: now)
            let label = handover?.label
                ?? connector.label(for: LabelRequest(parcelId: shipmentId, carrier: choice.rate.carrier, service: choice.rate.service, weightGrams: weight))
            var capture = amounts.value(of: lines, after: OrderChanges.countedUnits(state))
            if state.shipments.isEmpty { capture += amounts.shipping }
            let carrier = handover?.carrier ?? choice.rate.carrier
            outputs.append(ShipmentCreated(
                shipmentId: shipmentId, orderId: state.orderId, location: location, carrier: carrier, service: handover?.service ?? choice.rate.service,
                trackingNumber: label.trackingNumber, labelRef: label.labelRef, lines: lines, promisedDate: promise,
                estimatedDelivery: handover?.estimatedDelivery ?? choice.estimatedDelivery, atRisk: handover == nil ? choice.atRisk : false, createdAt: now,
                parcels: packed.map(\.parcels)
            ).event)
            outputs.append(ShipmentIndexEntry(
                carrier: carrier, trackingNumber: label.trackingNumber, shipmentId: shipmentId, orderId: state.orderId,
                promisedDate: promise, shippedAt: now
            ).event)
            for part in parts {
                outputs.append(CommitInventory(
                    orderId: state.orderId, shipmentId: shipmentId, lineId: part.lineId, sku: part.sku, location: location, quantity: part.quantity
                ).event)
            }
            // An order paid at checkout has nothing left to capture.
            if state.paidAtCheckout != true {
                outputs.append(CapturePayment(
                    orderId: state.orderId, shipmentId: shipmentId, amount: Money(minorUnits: capture, currency: amounts.currency),
                    authorizationReference: state.authorizationReference, requestedAt: now, channel: state.channel
                ).event)
            }
            state.shipments.append(ParcelRecord(shipmentId: shipmentId, location: location, lines: lines))
        }
        // The shipping charge is taken now: the share of units cancelled before goes back.
        if rules.shipping.lineCancelShipping == .share, state.paidAtCheckout != true, state.cancelledLines?.isEmpty == false {
            let due = OrderChanges.shippingShareDue(&state)
            if due > 0 {
                let reason = Reason(code: OrderChanges.lineCancelRefund, message: "the shipping charge's share of units cancelled before the first shipment")
                outputs.append(OrderChanges.refund(state, Money(minorUnits: due, currency: amounts.currency), reason: reason, now: now))
            }
        }
        return Step(state: state, outputs: outputs)
    }

    /// Each allocation less what its location already shipped of its line.
    private static func unshipped(_ allocations: [LineAllocation], state: ShippingState) -> [LineAllocation] {
        var shipped: [String: Int] = [:]
        for parcel in state.shipments {
            for line in parcel.lines { shipped["\(line.lineId)\u{0}\(parcel.location)", default: 0] += line.quantity }
        }
        return allocations.compactMap { allocation in
            var left = allocation
            left.quantity -= shipped["\(allocation.lineId)\u{0}\(allocation.location)", default: 0]
            return left.quantity > 0 ? left : nil
        }
    }

    /// The allocations cut to the units still to ship: cancelled or shipped units are
    /// not, even when their reservation was decided before the cancel (allocation
    /// releases them). Lines are filled location by location, in location order.
    private static func shippable(_ allocations: [LineAllocation], state: ShippingState) -> [LineAllocation] {
        var left = OrderChanges.unitsLeft(state)
        var kept: [LineAllocation] = []
        for allocation in allocations.sorted(by: { ($0.location, $0.lineId) < ($1.location, $1.lineId) }) {
            let units = min(allocation.quantity, left[allocation.lineId, default: 0])
            guard units > 0 else { continue }
            left[allocation.lineId, default: 0] -= units
            var part = allocation
            part.quantity = units
            kept.append(part)
        }
        return kept
    }

    /// A label the OMS does not buy: the location's own (it shipped itself), or the
    /// pick-up hand-over at a store.
    private struct Handover {
        var carrier: String
        var service: String
        var label: CarrierLabel
        var estimatedDelivery: Date
    }

    private static func handover(_ packed: PackedUnits?, orderId: String, location: String, choice: CarrierChoice, now: Date) -> Handover? {
        guard let packed else { return nil }
        if packed.pickup == true {
            let code = PickupHandover.code(orderId: orderId, location: location)
            return Handover(
                carrier: PickupHandover.carrier, service: "in_store", label: CarrierLabel(trackingNumber: code, labelRef: "pickup://\(location)/\(code)"),
                estimatedDelivery: now)
        }
        guard let carrier = packed.carrier, let number = packed.trackingNumber else { return nil }
        return Handover(
            carrier: carrier, service: packed.service ?? "standard", label: CarrierLabel(trackingNumber: number, labelRef: "location://\(location)/\(number)"),
            estimatedDelivery: choice.estimatedDelivery)
    }

    /// The id of a shipment from `location` after `earlier` ones from there: UUIDv5 of
    /// (order, location), and of (order, location, n) for the n-th, stable across replays.
    public static func shipmentID(orderId: String, location: String, earlier: Int = 0) -> String {
        DeterministicID.uuidV5(namespace: shipmentNamespace, name: earlier == 0 ? "\(orderId)/\(location)" : "\(orderId)/\(location)/\(earlier + 1)")
    }

    private static func fallback(_ rates: [CarrierRate], hazmat: Bool, now: Date) -> CarrierChoice {
        let allowed = rates.filter { !hazmat || $0.hazmat }
        let rate = (allowed.isEmpty ? rates : allowed).min { ($0.transitDays, $0.price) < ($1.transitDays, $1.price) } ?? ShippingRules.defaultRates[0]
        return CarrierChoice(rate: rate, estimatedDelivery: now.addingTimeInterval(TimeInterval(rate.transitDays) * 86_400), atRisk: true)
    }

    /// Namespace of shipment ids: UUIDv5 of (order, location), stable across replays.
    static let shipmentNamespace = UUID(uuidString: "6f1c1f5e-2b1a-5d7e-9a53-0d6b5a0c4e11")!
}

import Contracts
import Foundation

/// Joins carrier pushes to shipments and turns them into order events.
///
/// A push (already normalized by a carrier adapter at the gateway) is looked up in
/// oms.shipments.index, a global table every instance follows. A number the index
/// does not know is retried (the index entry may still be on its way: shipping writes
/// it before any carrier can know the number, but the table is followed in the
/// background) and then dead-lettered with the reason. A push far outside the window
/// around the indexed shipment's date belongs to a reuse of the number and is
/// dead-lettered too, never attached to the old order.
///
/// Per parcel (its state, keyed like the input by carrier and number) it keeps the
/// newest status and the integration's recent event ids: duplicates and updates older
/// than the newest are dropped (carriers retry and send out of order). It emits
/// `TrackingUpdated`, `ShipmentDelivered` once, and `ShipmentDelayed` once when the
/// carrier's estimate passes the promised date.
public struct TrackingStage: Stage {
    /// `tracking`.
    public let name = "tracking"
    /// oms.tracking.inbound.
    public let inputTopics = [CarrierTrackingUpdate.topic]
    /// oms.tracking.state.
    public let changelogTopic: String? = TrackingState.topic
    /// The shipment index.
    public let globalTables = [ShipmentIndexEntry.topic]
    /// The tracking window.
    public let rules: ShippingRules

    /// Creates the stage.
    public init(rules: ShippingRules) {
        self.rules = rules
    }

    /// Joins, dedupes and emits.
    public func process(_ input: StageInput, state: StageState) throws(StageFailure) -> StageOutcome {
        guard case .carrierTrackingUpdate(let update) = input.event else {
            throw .rejected("tracking reads \(CarrierTrackingUpdate.eventType) only, not \(input.envelope.type)")
        }
        let key = update.partitionKey
        guard case .shipmentIndexEntry(let entry) = state.table(ShipmentIndexEntry.topic, key: key) else {
            throw .retryable("unknown tracking number \(update.carrier)/\(update.trackingNumber): no shipment in \(ShipmentIndexEntry.topic) has it")
        }
        var current: TrackingState?
        if case .trackingState(let stored) = state.value(key) { current = stored }
        let step = try TrackingMachine.advance(current, update: update, entry: entry, rules: rules, now: input.now)
        var outcome = StageOutcome(outputs: step.outputs.map { StageOutput($0) })
        if let next = step.state, next != current { outcome.stateChanges = [.put(next.event)] }
        return outcome
    }
}

/// Tracking's per-parcel logic, as a pure function.
public enum TrackingMachine {
    /// The parcel's next state and the events to emit.
    public struct Step: Sendable, Hashable {
        /// State after the update.
        public var state: TrackingState?
        /// Tracking events.
        public var outputs: [Event]
    }

    /// How many integration event ids are remembered per parcel for dedupe.
    static let rememberedEventIds = 32

    /// Applies one carrier update for the parcel `entry` indexes.
    public static func advance(
        _ current: TrackingState?, update: CarrierTrackingUpdate, entry: ShipmentIndexEntry, rules: ShippingRules, now: Date
    ) throws(StageFailure) -> Step {
        let earliest = entry.shippedAt.addingTimeInterval(-86_400)
        let latest = entry.shippedAt.addingTimeInterval(TimeInterval(rules.trackingWindowDays) * 86_400)
        guard update.occurredAt >= earliest, update.occurredAt <= latest else {
            throw .rejected(
                "tracking number \(update.carrier)/\(update.trackingNumber) belongs to shipment \(entry.shipmentId) of order \(entry.orderId) shipped at \(RFC3339.format(entry.shippedAt)); an update at \(RFC3339.format(update.occurredAt)) is outside its \(rules.trackingWindowDays)-day window (a reused number?)")
        }
        // The index may have moved on to a newer parcel with the same number: start afresh.
        let state = current.flatMap { $0.shipmentId == entry.shipmentId ? $0 : nil }
        if let id = update.externalEventId, state?.recentEventIds.contains(id) == true {
            return Step(state: current, outputs: [])
        }
        if let known = state {
            // Older than what is known, or the same status at the same time again: drop.
            if update.occurredAt < known.occurredAt || (update.occurredAt == known.occurredAt && update.status == known.status) {
                return Step(state: remember(update.externalEventId, in: known), outputs: [])
            }
        }
        var next = state ?? TrackingState(
            carrier: update.carrier, trackingNumber: update.trackingNumber, shipmentId: entry.shipmentId, orderId: entry.orderId,
            status: update.status, occurredAt: update.occurredAt, recentEventIds: [], delivered: false, delayed: false)
        next.status = update.status
        next.occurredAt = update.occurredAt
        next = remember(update.externalEventId, in: next)
        var outputs: [Event] = [
            TrackingUpdated(
                orderId: entry.orderId, shipmentId: entry.shipmentId, carrier: update.carrier, trackingNumber: update.trackingNumber,
                status: update.status, rawStatus: update.rawStatus, occurredAt: update.occurredAt, location: update.location,
                message: update.message, estimatedDelivery: update.estimatedDelivery
            ).event
        ]
        if update.status == .delivered, !next.delivered {
            next.delivered = true
            outputs.append(ShipmentDelivered(
                orderId: entry.orderId, shipmentId: entry.shipmentId, carrier: update.carrier, trackingNumber: update.trackingNumber,
                rawStatus: update.rawStatus, deliveredAt: update.occurredAt, location: update.location, message: update.message
            ).event)
        }
        if !next.delivered, !next.delayed, let estimate = update.estimatedDelivery, estimate > entry.promisedDate {
            next.delayed = true
            outputs.append(ShipmentDelayed(
                orderId: entry.orderId, shipmentId: entry.shipmentId, carrier: update.carrier, trackingNumber: update.trackingNumber,
                status: update.status, rawStatus: update.rawStatus, promisedDate: entry.promisedDate, estimatedDelivery: estimate, detectedAt: now
            ).event)
        }
        return Step(state: next, outputs: outputs)
    }

    private static func remember(_ id: String?, in state: TrackingState) -> TrackingState {
        guard let id, !state.recentEventIds.contains(id) else { return state }
        var state = state
        state.recentEventIds.append(id)
        if state.recentEventIds.count > rememberedEventIds { state.recentEventIds.removeFirst(state.recentEventIds.count - rememberedEventIds) }
        return state
    }
}

import Contracts
import Foundation

/// Turns what happened to an order into commands to tell the channel it came from: a
/// shipment left (with carrier and tracking), the order was cancelled, money was refunded.
///
/// Per order (oms.channels.state) it remembers the channel and the channel's order id
/// from the placed order, and which facts it has told, so each fact becomes exactly one
/// `ChannelUpdate` whatever the replays. A fact read before its placed order (the
/// topics are read side by side) waits in the state and is told when the order is read.
/// The channel connector performs the commands; a channel without a sync configured is
/// recorded there as skipped.
public struct ChannelSyncStage: Stage {
    /// `channel-sync`.
    public let name = "channel-sync"
    /// Placed orders, shipments, cancellations and payment commands (for refunds).
    public let inputTopics = [OrderPlaced.topic, ShipmentCreated.topic, OrderCancelled.topic, RefundPayment.topic]
    /// oms.channels.state.
    public let changelogTopic: String? = ChannelSyncState.topic

    /// Creates the stage.
    public init() {}

    /// Folds the input into the order's sync state and emits what is new to tell.
    public func process(_ input: StageInput, state: StageState) throws(StageFailure) -> StageOutcome {
        guard let (orderId, fact) = ChannelSync.fact(in: input.envelope) else {
            if ChannelSync.ignored(input.event) { return .none }
            throw .rejected("channel-sync does not handle \(input.envelope.type)")
        }
        var current: ChannelSyncState?
        if case .channelSyncState(let stored) = state.value(orderId) { current = stored }
        let step = ChannelSync.advance(current, orderId: orderId, placed: input.event, fact: fact)
        var outcome = StageOutcome(outputs: step.commands.map { StageOutput($0.event) })
        if let next = step.state, next != current { outcome.stateChanges = [.put(next.event)] }
        return outcome
    }
}

/// Channel sync's rules, as pure functions.
public enum ChannelSync {
    /// What one step of an order's sync state comes to.
    public struct Step: Sendable, Hashable {
        /// The new state; nil when nothing changed.
        public var state: ChannelSyncState?
        /// Commands to publish.
        public var commands: [ChannelUpdate]
    }

    /// The order an input is about and the fact it tells (nil for the placed order itself,
    /// which only teaches the state where the order came from).
    static func fact(in envelope: Envelope) -> (orderId: String, fact: ChannelFact?)? {
        switch envelope.event {
        case .orderPlaced(let e):
            return (e.orderId, nil)
        case .shipmentCreated(let e):
            return (e.orderId, ChannelFact(
                id: "ship/\(e.shipmentId)", action: .ship, shipmentId: e.shipmentId, carrier: e.carrier,
                trackingNumber: e.trackingNumber, lines: e.lines, at: e.createdAt))
        case .orderCancelled(let e):
            return (e.orderId, ChannelFact(id: "cancel", action: .cancel, lines: [], reason: e.reason.code, at: e.cancelledAt))
        case .refundPayment(let e):
            // A return's refund is identified by the return; a goodwill refund by its event.
            return (e.orderId, ChannelFact(
                id: "refund/\(e.returnId ?? envelope.id)", action: .refund, lines: [], amount: e.amount,
                reason: e.reason.code, at: e.requestedAt))
        default:
            return nil
        }
    }

    /// Inputs of the stage's topics that tell a channel nothing (refused cancels,
    /// captures, voids).
    static func ignored(_ event: Event) -> Bool {
        switch event {
        case .cancelRejected, .capturePayment, .voidPayment, .shippingAddressChanged, .orderLinesCancelled, .orderChangeRejected: true
        default: false
        }
    }

    /// The state after one input and the commands it causes.
    public static func advance(_ current: ChannelSyncState?, orderId: String, placed: Event, fact: ChannelFact?) -> Step {
        var state = current ?? ChannelSyncState(orderId: orderId, told: [], pending: [])
        if case .orderPlaced(let order) = placed, state.channel == nil {
            state.channel = order.channel
            // An exchange's replacement is the OMS's own order: its channel never saw it,
            // so none of its facts are told (the original order's refunds are).
            state.externalOrderId = order.exchangeOf == nil ? order.externalOrderId : nil
        }
        var facts = state.channel == nil ? [] : state.pending
        if state.channel != nil { state.pending = [] }
        if let fact, !state.told.contains(fact.id), !state.pending.contains(where: { $0.id == fact.id }) {
            if state.channel == nil { state.pending.append(fact) } else { facts.append(fact) }
        }
        var commands: [ChannelUpdate] = []
        if let channel = state.channel, let externalOrderId = state.externalOrderId {
            for fact in facts {
                state.told.append(fact.id)
                commands.append(ChannelUpdate(orderId: orderId, channel: channel, externalOrderId: externalOrderId, fact: fact))
            }
        }
        return Step(state: state == current ? nil : state, commands: commands)
    }
}

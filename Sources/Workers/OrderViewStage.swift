import Contracts
import Foundation

/// Folds every event of an order into one `OrderView` (oms.orders.state, which is
/// this stage's changelog and what `oms orders` and the gateway serve) and tells the
/// customer what happened (oms.notifications), each message once.
///
/// The status is derived from what the view holds, not from the last event, so events
/// read in another order (topics are read side by side) give the same view. A timer
/// sends the review invitation a configured time after the last delivery.
public struct OrderViewStage: Stage {
    /// `view`.
    public let name = "view"
    /// Every order-keyed outcome topic.
    public let inputTopics = [
        OrderPlaced.topic, OrderRejected.topic, PaymentApproved.topic, OrderAllocated.topic, OrderCancelled.topic, ShipmentCreated.topic,
        TrackingUpdated.topic, ReturnAuthorized.topic, CapturePayment.topic, PaymentCaptured.topic, FulfilmentProgressed.topic,
    ]
    /// oms.orders.state.
    public let changelogTopic: String? = OrderView.topic
    /// Notification rules.
    public let rules: NotificationRules

    /// Creates the stage.
    public init(rules: NotificationRules) {
        self.rules = rules
    }

    /// Checks for due review invitations this often.
    public var tickInterval: Duration? { .seconds(rules.checkIntervalSeconds) }

    /// Folds one event.
    public func process(_ input: StageInput, state: StageState) throws(StageFailure) -> StageOutcome {
        guard let orderId = OrderViewFolder.orderId(of: input.event) else {
            throw .rejected("view does not handle \(input.envelope.type)")
        }
        var current: OrderView?
        if case .orderView(let stored) = state.value(orderId) { current = stored }
        let step = OrderViewFolder.fold(current, orderId: orderId, envelope: input.envelope, rules: rules, now: input.now)
        var outcome = StageOutcome(outputs: step.notifications.map { StageOutput($0.event) })
        if let next = step.view, next != current { outcome.stateChanges = [.put(next.event)] }
        return outcome
    }

    /// Review invitations that are due.
    public func tick(now: Date, state: KeyedState) -> [TimerFiring] {
        guard let delay = rules.reviewInvitationDelaySeconds else { return [] }
        var firings: [TimerFiring] = []
        state.forEach { _, value in
            guard case .orderView(var view) = value, view.status == .delivered, let delivered = view.deliveredAt,
                delivered.addingTimeInterval(TimeInterval(delay)) <= now, !view.notificationsSent.contains("review_invitation")
            else { return }
            view.notificationsSent.append("review_invitation")
            view.updatedAt = now
            let note = Contracts.Notification(
                orderId: view.orderId, kind: .reviewInvitation, recipientEmail: view.customerEmail,
                data: ["externalOrderId": view.externalOrderId, "channel": view.channel], recipientPhone: view.customerPhone, createdAt: now)
            firings.append(TimerFiring(id: "review/\(view.orderId)", outcome: StageOutcome(outputs: [StageOutput(note.event)], stateChanges: [.put(view.event)])))
        }
        return firings.sorted { $0.id < $1.id }
    }
}

/// The order view's fold, as a pure function.
public enum OrderViewFolder {
    /// The view after one event and the notifications it causes.
    public struct Step: Sendable, Hashable {
        /// The new view (nil: the event changes nothing).
        public var view: OrderView?
        /// Messages to send.
        public var notifications: [Contracts.Notification]
    }

    /// The order an event belongs to, for the events the view folds.
    public static func orderId(of event: Event) -> String? {
        switch event {
        case .orderPlaced(let e): e.orderId
        case .orderRejected(let e): e.orderId
        case .paymentApproved(let e): e.orderId
        case .paymentDeclined(let e): e.orderId
        case .paymentHeld(let e): e.orderId
        case .paymentReleased(let e): e.orderId
        case .orderAllocated(let e): e.orderId
        case .orderPartiallyAllocated(let e): e.orderId
        case .orderBackordered(let e): e.orderId
        case .orderCancelled(let e): e.orderId
        case .cancelRejected(let e): e.orderId
        case .shippingAddressChanged(let e): e.orderId
        case .orderLinesCancelled(let e): e.orderId
        case .orderChangeRejected(let e): e.orderId
        case .shipmentCreated(let e): e.orderId
        case .trackingUpdated(let e): e.orderId
        case .shipmentDelivered(let e): e.orderId
        case .shipmentDelayed(let e): e.orderId
        case .returnAuthorized(let e): e.orderId
        case .returnRejected(let e): e.orderId
        case .returnReceived(let e): e.orderId
        case .orderAppeased(let e): e.orderId
        case .appeasementRejected(let e): e.orderId
        case .returnNeedsReview(let e): e.orderId
        case .returnExpired(let e): e.orderId
        case .exchangeReplacedByRefund(let e): e.orderId
        case .capturePayment(let e): e.orderId
        case .refundPayment(let e): e.orderId
        case .voidPayment(let e): e.orderId
        case .paymentCaptured(let e): e.orderId
        case .paymentCaptureFailed(let e): e.orderId
        case .paymentRefunded(let e): e.orderId
        case .paymentRefundFailed(let e): e.orderId
        case .paymentVoided(let e): e.orderId
        case .paymentVoidFailed(let e): e.orderId
        case .fulfilmentProgressed(let e): e.orderId
        case .fulfilmentShort(let e): e.orderId
        case .fulfilmentPacked(let e): e.orderId
        default: nil
        }
    }

    /// Folds the event in `envelope` into `current`.
    public static func fold(_ current: OrderView?, orderId: String, envelope: Envelope, rules: NotificationRules, now: Date) -> Step {
        if let current, current.history.contains(where: { $0.eventId == envelope.id }) { return Step(view: nil, notifications: []) }
        var view = current ?? OrderView(
            orderId: orderId, channel: "", externalOrderId: "", status: .placed, currency: currency(of: envelope.event) ?? .usd, lines: [],
            payments: [], shipments: [], tracking: [], returns: [], history: [], lineProgress: [], statusSince: envelope.time, notificationsSent: [],
            updatedAt: now)
        var notes: [Note] = []
        guard apply(envelope, to: &view, notes: &notes, rules: rules) else { return Step(view: nil, notifications: []) }
        record(envelope, in: &view, now: now)
        let notifications = notify(notes, &view, now: now)
        return Step(view: view, notifications: notifications)
    }

    /// A message the event calls for, sent once per key.
    private struct Note {
        let key: String
        let kind: NotificationKind
        let data: [String: String]
    }

    /// Folds the event's facts into `view` and notes what to tell the customer; false for
    /// an event the view does not show.
    private static func apply(_ envelope: Envelope, to view: inout OrderView, notes: inout [Note], rules: NotificationRules) -> Bool {
        switch envelope.event {
        case .orderPlaced(let order):
            placed(order, into: &view)
        case .orderRejected(let rejected):
            view.channel = rejected.channel
            view.externalOrderId = rejected.externalOrderId
        case .paymentApproved, .paymentReleased:
            notes.append(Note(key: "confirmed", kind: .confirmed, data: [:]))
        case .orderAllocated(let decision):
            allocate(&view, decision.allocations)
        case .orderPartiallyAllocated(let decision):
            allocate(&view, decision.allocations)
        case .orderCancelled:
            notes.append(Note(key: "cancelled", kind: .cancelled, data: [:]))
        case .shippingAddressChanged(let change):
            // City and country only: the message says where, the customer knows the rest.
            let place = "\(change.shippingAddress.city), \(change.shippingAddress.country.code)"
            notes.append(Note(key: "changed/\(envelope.id)", kind: .orderChanged, data: ["change": "address", "shipTo": place]))
        case .orderLinesCancelled(let change):
            for line in change.lines { progress(&view, line.lineId, sku: line.sku) { $0.cancelled = ($0.cancelled ?? 0) + line.quantity } }
            let items = change.lines.map { "\($0.quantity) × \($0.sku)" }.joined(separator: ", ")
            notes.append(Note(key: "changed/\(change.changeId)", kind: .orderChanged, data: ["change": "lines", "cancelledItems": items, "amount": "\(change.amount)"]))
        case .shipmentCreated, .trackingUpdated, .shipmentDelivered, .shipmentDelayed:
            carried(envelope.event, into: &view, notes: &notes, rules: rules)
        case .returnAuthorized, .exchangeReplacedByRefund, .returnRejected, .returnNeedsReview, .returnExpired, .returnReceived:
            returned(envelope.event, into: &view, notes: &notes)
        case .capturePayment, .refundPayment, .voidPayment, .paymentCaptured, .paymentCaptureFailed, .paymentRefunded, .paymentRefundFailed,
            .paymentVoided, .paymentVoidFailed:
            paid(envelope, into: &view, notes: &notes)
        case .orderAppeased(let appeased) where appeased.storeCredit == true:
            view.storeCredit = Money(minorUnits: (view.storeCredit?.minorUnits ?? 0) + appeased.amount.minorUnits, currency: appeased.amount.currency)
            notes.append(Note(key: "store_credit/\(appeased.appeasementId)", kind: .storeCredit, data: ["amount": "\(appeased.amount)"]))
        case .fulfilmentProgressed(let progress):
            fulfilled(progress, into: &view)
        case .fulfilmentShort(let short) where short.cause != .withdrawn:
            // One message per request that came up short, however many steps re-sourcing takes.
            let items = short.lines.map { "\($0.quantity) × \($0.sku)" }.joined(separator: ", ")
            notes.append(Note(key: "changed/short/\(short.requestId)", kind: .orderChanged, data: ["change": "split", "splitItems": items]))
        case .paymentDeclined, .paymentHeld, .orderBackordered, .fulfilmentShort, .cancelRejected, .orderAppeased, .appeasementRejected, .orderChangeRejected:
            // On the timeline only: an appeasement's money is its RefundPayment's entry.
            break
        default:
            return false
        }
        return true
    }

    /// The placed order's facts: channel, amounts, lines, customer, promise, authorization.
    private static func placed(_ order: OrderPlaced, into view: inout OrderView) {
        view.channel = order.channel
        view.externalOrderId = order.externalOrderId
        view.currency = order.currency
        view.totals = order.totals
        view.lines = order.lines
        view.customerEmail = order.customer.email
        view.customerPhone = order.shippingAddress.phone.flatMap { $0.isEmpty ? nil : $0 }
        // A shipment read first may have brought the promise shipping worked out.
        view.promisedDeliveryDate = order.promisedDeliveryDate ?? view.promisedDeliveryDate
        view.replacesOrderId = order.exchangeOf?.orderId
        for line in order.lines {
            progress(&view, line.lineId, sku: line.sku) { $0.ordered = line.quantity }
        }
        view.payments.insert(PaymentEntry(kind: .authorization, amount: order.payment.amount, at: order.placedAt, reference: order.payment.reference), at: 0)
    }

    /// A confirming location's request, as it stands.
    private static func fulfilled(_ progress: FulfilmentProgressed, into view: inout OrderView) {
        var requests = view.fulfilment ?? []
        let summary = FulfilmentSummary(
            requestId: progress.requestId, location: progress.location, mode: progress.mode, lines: progress.lines, status: progress.status,
            requestedAt: progress.requestedAt, updatedAt: progress.at)
        if let index = requests.firstIndex(where: { $0.requestId == progress.requestId }) {
            // Records can be read out of order across replays: the later move wins.
            if requests[index].updatedAt <= progress.at { requests[index] = summary }
        } else {
            requests.append(summary)
        }
        view.fulfilment = requests
    }

    /// Shipments and what the carrier says of them.
    private static func carried(_ event: Event, into view: inout OrderView, notes: inout [Note], rules: NotificationRules) {
        switch event {
        case .shipmentCreated(let shipment):
            shipped(shipment, into: &view, notes: &notes, rules: rules)
        case .trackingUpdated(let update):
            view.tracking.append(TrackingEntry(shipmentId: update.shipmentId, status: update.status, rawStatus: update.rawStatus, at: update.occurredAt, message: update.message))
            guard let index = view.shipments.firstIndex(where: { $0.shipmentId == update.shipmentId }), view.shipments[index].status != .delivered else { return }
            if update.status == .delivered {
                markDelivered(&view, index, at: update.occurredAt)
            } else {
                view.shipments[index].status = update.status
            }
            if let estimate = update.estimatedDelivery { view.shipments[index].estimatedDelivery = estimate }
            if update.status == .outForDelivery {
                notes.append(Note(key: "out_for_delivery/\(update.shipmentId)", kind: .outForDelivery, data: ["trackingNumber": update.trackingNumber]))
            }
        case .shipmentDelivered(let delivery):
            guard let index = view.shipments.firstIndex(where: { $0.shipmentId == delivery.shipmentId }) else { return }
            markDelivered(&view, index, at: delivery.deliveredAt)
            notes.append(Note(
                key: "delivered/\(delivery.shipmentId)", kind: .delivered,
                data: ["trackingNumber": delivery.trackingNumber, "deliveredAt": RFC3339.format(delivery.deliveredAt)]))
        case .shipmentDelayed(let delay):
            guard view.shipments.contains(where: { $0.shipmentId == delay.shipmentId }) else { return }
            notes.append(Note(
                key: "delayed/\(delay.shipmentId)", kind: .delayed,
                data: ["trackingNumber": delay.trackingNumber, "estimatedDelivery": RFC3339.format(delay.estimatedDelivery)]))
        default:
            break
        }
    }

    /// A new shipment, with the tracking read before it (topics are read side by side).
    private static func shipped(_ shipment: ShipmentCreated, into view: inout OrderView, notes: inout [Note], rules: NotificationRules) {
        // The promise shipping worked out, when the channel gave none (SLA watch uses it).
        if view.promisedDeliveryDate == nil { view.promisedDeliveryDate = shipment.promisedDate }
        if !view.shipments.contains(where: { $0.shipmentId == shipment.shipmentId }) {
            view.shipments.append(ShipmentSummary(
                shipmentId: shipment.shipmentId, location: shipment.location, carrier: shipment.carrier, trackingNumber: shipment.trackingNumber,
                status: .preTransit, lines: shipment.lines, estimatedDelivery: shipment.estimatedDelivery))
            for line in shipment.lines { progress(&view, line.lineId, sku: line.sku) { $0.shipped += line.quantity } }
            let index = view.shipments.count - 1
            let early = view.tracking.filter { $0.shipmentId == shipment.shipmentId }
            if let latest = early.max(by: { $0.at < $1.at }) { view.shipments[index].status = latest.status }
            if early.contains(where: { $0.status == .outForDelivery }) {
                notes.append(Note(key: "out_for_delivery/\(shipment.shipmentId)", kind: .outForDelivery, data: ["trackingNumber": shipment.trackingNumber]))
            }
            if let delivered = early.first(where: { $0.status == .delivered }) {
                view.shipments[index].status = .preTransit
                markDelivered(&view, index, at: delivered.at)
                notes.append(Note(
                    key: "delivered/\(shipment.shipmentId)", kind: .delivered,
                    data: ["trackingNumber": shipment.trackingNumber, "deliveredAt": RFC3339.format(delivered.at)]))
            }
        }
        if shipment.carrier == PickupHandover.carrier {
            // Held at the store: the customer comes with the pick-up code.
            notes.append(Note(key: "ready_for_pickup/\(shipment.shipmentId)", kind: .readyForPickup, data: [
                "store": shipment.location, "pickupCode": shipment.trackingNumber,
            ]))
            return
        }
        notes.append(Note(key: "shipped/\(shipment.shipmentId)", kind: .shipped, data: [
            "carrier": shipment.carrier, "trackingNumber": shipment.trackingNumber,
            "trackingUrl": rules.trackingLink(carrier: shipment.carrier, trackingNumber: shipment.trackingNumber),
            "estimatedDelivery": RFC3339.format(shipment.estimatedDelivery),
        ]))
    }

    /// Returns and exchanges: each return's status, lines and outcome.
    private static func returned(_ event: Event, into view: inout OrderView, notes: inout [Note]) {
        switch event {
        case .returnAuthorized(let ret):
            upsertReturn(&view, ret.returnId) {
                $0.status = .authorized
                $0.rma = ret.rma
                $0.lines = ret.lines.map { ShipmentLine(lineId: $0.lineId, sku: $0.sku, quantity: $0.quantity) }
                $0.exchangeOrderId = ret.exchange?.exchangeOrderId
            }
        case .exchangeReplacedByRefund(let ended):
            var rma = ""
            upsertReturn(&view, ended.returnId) {
                $0.exchangeOutcome = .refund
                rma = $0.rma ?? ""
            }
            notes.append(Note(key: "exchange_refund/\(ended.returnId)", kind: .exchangeRefund, data: ["rma": rma, "reasonText": ended.reason.message]))
        case .returnRejected(let ret):
            upsertReturn(&view, ret.returnId) { $0.status = .rejected }
        case .returnNeedsReview(let ret):
            upsertReturn(&view, ret.returnId) { $0.status = .review }
        case .returnExpired(let ret):
            var first = false
            upsertReturn(&view, ret.returnId) {
                // A parcel received meanwhile (topics are read side by side) stays received.
                guard $0.status == .authorized else { return }
                first = true
                $0.status = .expired
            }
            if first {
                notes.append(Note(key: "return_expired/\(ret.returnId)", kind: .returnExpired, data: ["rma": ret.rma, "expiresAt": RFC3339.format(ret.expiresAt)]))
            }
        case .returnReceived(let ret):
            let lines = ret.lines.map { ShipmentLine(lineId: $0.lineId, sku: $0.sku, quantity: $0.quantity) }
            var first = false
            upsertReturn(&view, ret.returnId) {
                first = $0.status != .received
                $0.status = .received
                $0.rma = ret.rma
                $0.lines = lines
            }
            if first { for line in lines { progress(&view, line.lineId, sku: line.sku) { $0.returned += line.quantity } } }
        default:
            break
        }
    }

    /// Money asked for and what the payment provider did with it.
    private static func paid(_ envelope: Envelope, into view: inout OrderView, notes: inout [Note]) {
        switch envelope.event {
        case .capturePayment(let capture):
            view.payments.append(PaymentEntry(kind: .capture, amount: capture.amount, at: capture.requestedAt, reference: capture.shipmentId))
        case .refundPayment(let refund):
            view.payments.append(PaymentEntry(kind: .refund, amount: refund.amount, at: refund.requestedAt, reference: refund.returnId))
            // A replacement's return refunding the credit it was paid with is no return of this order.
            if let returnId = refund.returnId, refund.reason.code != Exchanges.creditRefundCode {
                upsertReturn(&view, returnId) { $0.refund = Money(minorUnits: ($0.refund?.minorUnits ?? 0) + refund.amount.minorUnits, currency: refund.amount.currency) }
            }
            if refund.reason.code != OrderChanges.lineCancelRefund {
                notes.append(Note(key: "refunded/\(refund.returnId ?? envelope.id)", kind: .refunded, data: ["amount": "\(refund.amount)"]))
            }
        case .voidPayment(let void):
            view.payments.append(PaymentEntry(kind: .void, amount: Money(minorUnits: 0, currency: view.currency), at: void.requestedAt, reference: void.authorizationReference))
        default:
            if let entry = paymentOutcome(envelope.event, currency: view.currency) { view.payments.append(entry) }
            view.paymentHold = PaymentHold.after(envelope.event, current: view.paymentHold)
        }
    }

    /// The status the view now amounts to, and the event on its timeline.
    private static func record(_ envelope: Envelope, in view: inout OrderView, now: Date) {
        let status = derivedStatus(view, adding: envelope.type.name)
        if status != view.status || view.history.isEmpty {
            view.statusSince = envelope.time
            view.status = status
        }
        view.history.append(HistoryEntry(eventId: envelope.id, eventType: envelope.type.description, at: envelope.time, status: status, note: changeNote(envelope.event)))
        view.updatedAt = now
    }

    /// The notes not sent before, as notifications; each key is remembered on the view.
    private static func notify(_ notes: [Note], _ view: inout OrderView, now: Date) -> [Contracts.Notification] {
        var notifications: [Contracts.Notification] = []
        for note in notes where !view.notificationsSent.contains(note.key) {
            view.notificationsSent.append(note.key)
            var data = note.data
            data["externalOrderId"] = view.externalOrderId
            notifications.append(Contracts.Notification(
                orderId: view.orderId, kind: note.kind, recipientEmail: view.customerEmail, data: data, recipientPhone: view.customerPhone, createdAt: now))
        }
        return notifications
    }

    /// The status the view's contents amount to; `latest` is the type name of the event
    /// being folded (not in the history yet).
    public static func derivedStatus(_ view: OrderView, adding latest: String) -> OrderStatus {
        let seen = Set(view.history.map { EventTypeName.of($0.eventType) } + [latest])
        if seen.contains(OrderRejected.eventType.name) { return .rejected }
        if seen.contains(OrderCancelled.eventType.name) { return .cancelled }
        let total = view.lineProgress.reduce(into: (allocated: 0, shipped: 0, delivered: 0, returned: 0)) {
            // Units cancelled after their reservation was decided will not ship.
            let line = $1
            $0.allocated += line.cancelled.map { min(line.allocated, max(0, line.ordered - $0)) } ?? line.allocated
            $0.shipped += $1.shipped
            $0.delivered += $1.delivered
            $0.returned += $1.returned
        }
        if total.returned > 0 { return total.returned >= total.delivered ? .returned : .partiallyReturned }
        if view.returns.contains(where: { $0.status == .authorized }) { return .returnRequested }
        if total.shipped > 0 {
            if total.shipped < total.allocated { return .partiallyShipped }
            let allDelivered = !view.shipments.isEmpty && view.shipments.allSatisfy { $0.status == .delivered }
            return allDelivered && total.delivered >= total.shipped ? .delivered : .shipped
        }
        // The latest allocation decision or payment decision, in the order they were folded.
        let decisions = view.history.map { EventTypeName.of($0.eventType) } + [latest]
        if let allocation = decisions.last(where: { allocationStatuses[$0] != nil }) { return allocationStatuses[allocation]! }
        if let payment = decisions.last(where: { paymentStatuses[$0] != nil }) { return paymentStatuses[payment]! }
        return .placed
    }

    /// Who asked for a change and why, for the timeline; nil for events that are not
    /// changes to the order.
    static func changeNote(_ event: Event) -> String? {
        func refused(_ reasons: [Reason]) -> String { reasons.map { "\($0.code): \($0.message)" }.joined(separator: "; ") }
        return switch event {
        case .orderCancelled(let e): "by \(e.requestedBy): \(e.reason.code) (\(e.reason.message))"
        case .cancelRejected(let e): "by \(e.requestedBy), refused: \(refused(e.reasons))"
        case .shippingAddressChanged(let e): "by \(e.requestedBy): ship to \(e.shippingAddress.city), \(e.shippingAddress.country.code)"
        case .orderLinesCancelled(let e):
            "by \(e.requestedBy): \(e.lines.map { "\($0.quantity) × line \($0.lineId)" }.joined(separator: ", ")) cancelled (\(e.amount)), \(e.reason.code)"
        case .orderChangeRejected(let e): "by \(e.requestedBy), \(e.change.rawValue) change refused: \(refused(e.reasons))"
        case .orderAppeased(let e): "by \(e.requestedBy) (\(e.role)): \(e.amount)\(e.storeCredit == true ? " as store credit" : ""), \(e.reason.code)"
        case .appeasementRejected(let e): "appeasement \(e.appeasementId) refused: \(refused(e.reasons))"
        case .paymentReleased(let e): "by \(e.releasedBy): hold released"
        case .fulfilmentShort(let e): "\(e.location), \(e.cause.rawValue): \(e.lines.map { "\($0.quantity) × \($0.sku)" }.joined(separator: ", ")) re-sourced (\(e.reason.message))"
        case .exchangeReplacedByRefund(let e): "exchange of return \(e.returnId) refunded instead: \(e.reason.code) (\(e.reason.message))"
        default: nil
        }
    }

    private static let allocationStatuses: [String: OrderStatus] = [
        OrderAllocated.eventType.name: .allocated, OrderPartiallyAllocated.eventType.name: .partiallyAllocated,
        OrderBackordered.eventType.name: .backordered,
    ]
    private static let paymentStatuses: [String: OrderStatus] = [
        PaymentApproved.eventType.name: .approved, PaymentReleased.eventType.name: .approved, PaymentHeld.eventType.name: .held,
        PaymentDeclined.eventType.name: .declined,
    ]

    /// What the payment provider did, as the view's money movement.
    static func paymentOutcome(_ event: Event, currency: CurrencyCode) -> PaymentEntry? {
        let none = Money(minorUnits: 0, currency: currency)
        return switch event {
        case .paymentCaptured(let e): PaymentEntry(kind: .captured, amount: e.amount, at: e.capturedAt, reference: e.providerReference)
        case .paymentCaptureFailed(let e):
            PaymentEntry(kind: .captureFailed, amount: e.amount, at: e.failedAt, reference: e.shipmentId, note: "\(e.failure.rawValue): \(e.message)")
        case .paymentRefunded(let e): PaymentEntry(kind: .refunded, amount: e.amount, at: e.refundedAt, reference: e.providerReference)
        case .paymentRefundFailed(let e):
            PaymentEntry(kind: .refundFailed, amount: e.amount, at: e.failedAt, reference: e.returnId, note: "\(e.failure.rawValue): \(e.message)")
        case .paymentVoided(let e): PaymentEntry(kind: .voided, amount: none, at: e.voidedAt, reference: e.providerReference)
        case .paymentVoidFailed(let e): PaymentEntry(kind: .voidFailed, amount: none, at: e.failedAt, note: "\(e.failure.rawValue): \(e.message)")
        default: nil
        }
    }

    private static func currency(of event: Event) -> CurrencyCode? {
        switch event {
        case .paymentApproved(let e): e.amount.currency
        case .paymentDeclined(let e): e.amount.currency
        case .paymentHeld(let e): e.amount.currency
        case .paymentReleased(let e): e.amount.currency
        case .capturePayment(let e): e.amount.currency
        case .refundPayment(let e): e.amount.currency
        case .paymentCaptured(let e): e.amount.currency
        case .paymentRefunded(let e): e.amount.currency
        default: nil
        }
    }

    private static func allocate(_ view: inout OrderView, _ allocations: [LineAllocation]) {
        var byLine: [String: (sku: String, quantity: Int)] = [:]
        for allocation in allocations { byLine[allocation.lineId, default: (allocation.sku, 0)].quantity += allocation.quantity }
        for (lineId, entry) in byLine.sorted(by: { $0.key < $1.key }) {
            progress(&view, lineId, sku: entry.sku) { $0.allocated = max($0.allocated, entry.quantity) }
        }
    }

    /// Counts a shipment's units delivered, once, whichever of tracking's two events
    /// (the `delivered` update or `ShipmentDelivered`) comes first.
    private static func markDelivered(_ view: inout OrderView, _ index: Int, at: Date) {
        guard view.shipments[index].status != .delivered else { return }
        view.shipments[index].status = .delivered
        for line in view.shipments[index].lines { progress(&view, line.lineId, sku: line.sku) { $0.delivered += line.quantity } }
        if view.shipments.allSatisfy({ $0.status == .delivered }) { view.deliveredAt = max(view.deliveredAt ?? at, at) }
    }

    private static func progress(_ view: inout OrderView, _ lineId: String, sku: String, _ change: (inout LineProgress) -> Void) {
        if let index = view.lineProgress.firstIndex(where: { $0.lineId == lineId }) {
            change(&view.lineProgress[index])
        } else {
            var entry = LineProgress(lineId: lineId, sku: sku, ordered: 0, allocated: 0, shipped: 0, delivered: 0, returned: 0)
            change(&entry)
            view.lineProgress.append(entry)
        }
    }

    private static func upsertReturn(_ view: inout OrderView, _ returnId: String, _ change: (inout ReturnSummary) -> Void) {
        if let index = view.returns.firstIndex(where: { $0.returnId == returnId }) {
            change(&view.returns[index])
        } else {
            var entry = ReturnSummary(returnId: returnId, status: .authorized, lines: [])
            change(&entry)
            view.returns.append(entry)
        }
    }
}

/// `oms.order.placed` from `oms.order.placed.v1`.
enum EventTypeName {
    static func of(_ ceType: String) -> String {
        guard let dot = ceType.range(of: ".v", options: .backwards) else { return ceType }
        return String(ceType[..<dot.lowerBound])
    }
}

/// The order waits for an operator while a shipment's capture has failed for good: the
/// money for goods that left was not taken (docs/OPERATIONS.md, *Payments*).
enum PaymentHold {
    /// The hold after a payment outcome: set by a failed capture (its code is the
    /// failure class, its message names the shipment and the command to act on), lifted
    /// when that shipment is captured after all.
    static func after(_ event: Event, current: Reason?) -> Reason? {
        switch event {
        case .paymentCaptureFailed(let failed):
            let remedy = failed.failure == .authorizationExpired
                ? "re-authorize it (POST /v1/ops/payments/\(failed.commandId)/reauthorize) or collect the money otherwise"
                : "retry it (POST /v1/ops/payments/\(failed.commandId)/retry) or collect the money otherwise"
            return Reason(
                code: failed.failure.rawValue,
                message: "\(prefix(failed.shipmentId))capture of \(failed.amount) failed (\(failed.message)); \(remedy)")
        case .paymentCaptured(let captured):
            guard let current, current.message.hasPrefix(prefix(captured.shipmentId)) else { return current }
            return nil
        default:
            return current
        }
    }

    private static func prefix(_ shipmentId: String) -> String { "shipment \(shipmentId): " }
}

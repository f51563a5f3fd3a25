import Contracts
import Foundation

/// Authorizes returns, receives them, restocks and refunds.
///
/// Per order (its state in oms.returns.state) it remembers the order's lines and
/// amounts, the shipments and which were delivered, and the returns so far. A
/// `ReturnRequested` is authorized only for delivered units not already returned or
/// on their way back, within the channel's return window after the delivery; every
/// failed check is a reason of the `ReturnRejected`. An authorized return gets an RMA,
/// a label from the ``CarrierConnector`` and an index entry, so that the return
/// parcel's tracking flows through the tracking stage like any shipment's.
///
/// The return parcel's delivery (a `ShipmentDelivered` whose shipment id is the return
/// id) or a warehouse's `ReceiveReturn` marks it received: units are restocked at the
/// receiving location (or written off, by reason) and a refund of exactly what those
/// units were paid (``OrderAmounts``) is requested.
///
/// A request for units that are shipped but whose delivery this stage has not read yet
/// (the customer may see it first) waits in the state and is decided when it is read.
///
/// A line may ask for an exchange instead of money back (``Exchanges``): the replacement
/// is a linked order this stage places through intake, and for a replacement order it
/// reads that order's backorder and cancel to end the exchange on the original order.
public struct ReturnsStage: Stage {
    /// `returns`.
    public let name = "returns"
    /// Placed orders, shipments, tracking events, return requests and receipts.
    public let inputTopics = [OrderPlaced.topic, ShipmentCreated.topic, ShipmentDelivered.topic, ReturnRequested.topic, OrderLinesCancelled.topic, OrderAllocated.topic]
    /// The catalog, for each line's category (its return window) and replacements; stock
    /// levels, for whether a replacement is in stock.
    public let globalTables = [CatalogProduct.topic, InventoryLevel.topic]
    /// oms.returns.state.
    public let changelogTopic: String? = ReturnsState.topic
    /// Windows, dispositions, locations.
    public let rules: BusinessRules
    /// Return label maker.
    public let connector: any CarrierConnector

    /// Creates the stage.
    public init(rules: BusinessRules, connector: any CarrierConnector = DeterministicCarrierConnector()) {
        self.rules = rules
        self.connector = connector
    }

    /// Looks for expired RMAs every `returns.checkIntervalSeconds` (a minute unless set):
    /// they expire by the day, so a minute late is on time.
    public var tickInterval: Duration? { .seconds(rules.returns.checkIntervalSeconds) }

    /// RMAs past their expiry whose parcel was not received: `expired`, once each, and
    /// the customer is told (by the view). A parcel that still comes goes to review.
    public func tick(now: Date, state: KeyedState) -> [TimerFiring] {
        var firings: [TimerFiring] = []
        state.forEach { _, value in
            guard case .returnsState(let returns) = value else { return }
            let step = ReturnsMachine.expire(returns, now: now)
            guard let next = step.state else { return }
            let id = "rma-expiry/\(returns.orderId)/" + step.outputs.compactMap { if case .returnExpired(let e) = $0 { e.returnId } else { nil } }.joined(separator: ",")
            firings.append(TimerFiring(id: id, outcome: StageOutcome(outputs: step.outputs.map { StageOutput($0) }, stateChanges: [.put(next.event)])))
        }
        return firings.sorted { $0.id < $1.id }
    }

    /// Folds order facts, decides requests, handles receipts.
    public func process(_ input: StageInput, state: StageState) throws(StageFailure) -> StageOutcome {
        let orderId: String
        switch input.event {
        case .orderPlaced(let e): orderId = e.orderId
        case .shipmentCreated(let e): orderId = e.orderId
        case .shipmentDelivered(let e): orderId = e.orderId
        case .returnRequested(let e): orderId = e.orderId
        case .receiveReturn(let e): orderId = e.orderId
        case .appeaseOrder(let e): orderId = e.orderId
        case .approveReturnRefund(let e): orderId = e.orderId
        case .orderLinesCancelled(let e): orderId = e.orderId
        case .orderCancelled(let e): orderId = e.orderId
        case .shippingAddressChanged(let e): orderId = e.orderId
        case .orderBackordered(let e): orderId = e.orderId
        case .replacementCancelled(let e): orderId = e.orderId
        case .trackingUpdated, .shipmentDelayed, .cancelRejected, .orderChangeRejected, .orderAllocated, .orderPartiallyAllocated: return .none
        default: throw .rejected("returns does not handle \(input.envelope.type)")
        }
        var current: ReturnsState?
        if case .returnsState(let stored) = state.value(orderId) { current = stored }
        let product = { (sku: String) -> CatalogProduct? in
            if case .catalogProduct(let product) = state.table(CatalogProduct.topic, key: sku) { return product }
            return nil
        }
        let available = { (sku: String) -> Int in
            guard case .inventoryLevel(let level) = state.table(InventoryLevel.topic, key: sku) else { return 0 }
            return level.locations.reduce(0) { $0 + InventoryLedger.available($1) }
        }
        let step = try ReturnsMachine.advance(
            current, orderId: orderId, on: input.event, rules: rules, connector: connector, now: input.now, product: product, available: available)
        var outcome = StageOutcome(outputs: step.outputs.map { StageOutput($0) })
        if var next = step.state, next != current {
            next.updatedAt = input.now
            outcome.stateChanges = [.put(next.event)]
        }
        return outcome
    }
}

/// The returns logic per order, as a pure function.
public enum ReturnsMachine {
    /// The order's next state and what to publish.
    public struct Step: Sendable, Hashable {
        /// State after the event.
        public var state: ReturnsState?
        /// Return events, index entries, restocks and refunds.
        public var outputs: [Event]
    }

    /// Applies one event.
    public static func advance(
        _ current: ReturnsState?, orderId: String, on event: Event, rules: BusinessRules, connector: any CarrierConnector, now: Date,
        product: (String) -> CatalogProduct? = { _ in nil }, available: (String) -> Int = { _ in 0 }
    ) throws(StageFailure) -> Step {
        var state = current ?? ReturnsState(orderId: orderId, lines: [], shipments: [], returns: [], refunded: [], updatedAt: now)
        switch event {
        case .orderPlaced(let order):
            guard state.totals == nil else { return Step(state: current, outputs: []) }
            state.channel = order.channel
            state.authorizationReference = order.payment.reference
            state.lines = order.lines
            state.totals = order.totals
            state.country = order.shippingAddress.country.code
            state.customer = order.customer
            if state.shippingAddress == nil { state.shippingAddress = order.shippingAddress }
            state.serviceLevel = order.serviceLevel
            state.exchangeOf = order.exchangeOf
            // The terms of the day of purchase: a product moved to another category later
            // does not change the window of orders already placed.
            let categories = order.lines.reduce(into: [String: String]()) { $0[$1.lineId] = product($1.sku)?.category }
            state.categories = categories.isEmpty ? nil : categories
            if let reason = state.cancelledBeforeOrder, let link = order.exchangeOf {
                // The replacement's cancel was read first: the original order hears of it now.
                return Step(state: state, outputs: [replacementCancelled(link, orderId: orderId, reason: reason, now: now)])
            }
            return Step(state: state, outputs: [])
        case .shippingAddressChanged(let change):
            // A replacement goes where the order goes now.
            state.shippingAddress = change.shippingAddress
            return Step(state: state, outputs: [])
        case .orderBackordered:
            // A replacement without stock: unless the rule waits, it is cancelled, and its
            // cancel (shipping decides: it may have shipped meanwhile) ends the exchange.
            guard state.exchangeOf != nil, rules.returns.exchanges.outOfStock != .wait else { return Step(state: current, outputs: []) }
            return Step(state: current, outputs: [CancelOrder(
                orderId: orderId, requestedBy: "returns",
                reason: Reason(code: "replacement_out_of_stock", message: "no stock for the replacement: the returned units are refunded instead"),
                requestedAt: now).event])
        case .orderCancelled(let cancelled):
            guard let link = state.exchangeOf else {
                if state.totals == nil, state.cancelledBeforeOrder == nil {
                    // Perhaps a replacement whose order this stage has not read yet.
                    state.cancelledBeforeOrder = cancelled.reason
                    return Step(state: state, outputs: [])
                }
                return Step(state: current, outputs: [])
            }
            return Step(state: current, outputs: [replacementCancelled(link, orderId: orderId, reason: cancelled.reason, now: now)])
        case .replacementCancelled(let ended):
            return endExchange(state, ended, now: now)
        case .shipmentCreated(let shipment):
            if let index = state.shipments.firstIndex(where: { $0.shipmentId == shipment.shipmentId }) {
                guard state.shipments[index].lines.isEmpty else { return Step(state: current, outputs: []) }
                state.shipments[index].location = shipment.location
                state.shipments[index].lines = shipment.lines
            } else {
                state.shipments.append(ParcelRecord(shipmentId: shipment.shipmentId, location: shipment.location, lines: shipment.lines))
            }
            return Step(state: state, outputs: [])
        case .orderLinesCancelled(let change):
            guard !state.hasRecorded(change.changeId) else { return Step(state: current, outputs: []) }
            state.record(change.changeId, lines: change.lines)
            return Step(state: state, outputs: [])
        case .shipmentDelivered(let delivery):
            if let index = state.shipments.firstIndex(where: { $0.shipmentId == delivery.shipmentId }) {
                guard state.shipments[index].deliveredAt == nil else { return Step(state: current, outputs: []) }
                state.shipments[index].deliveredAt = delivery.deliveredAt
                return decideWaiting(state, rules: rules, connector: connector, product: product, available: available, now: now)
            }
            guard let ret = state.returns.first(where: { $0.returnId == delivery.shipmentId }) else {
                // A delivery of a shipment this stage has not read yet cannot happen in
                // order; out of order, remember it so the shipment finds it.
                state.shipments.append(ParcelRecord(shipmentId: delivery.shipmentId, location: "", lines: [], deliveredAt: delivery.deliveredAt))
                return Step(state: state, outputs: [])
            }
            let location = rules.returns.receivingLocation ?? originLocation(of: ret, in: state)
            let received = ret.lines.map { line in
                ReceivedReturnLine(
                    lineId: line.lineId, sku: line.sku, quantity: line.quantity,
                    disposition: rules.returns.writeOffReasons.contains(line.reason) ? .writeOff : .restock, location: location)
            }
            return try receive(state, returnId: ret.returnId, lines: received, at: delivery.deliveredAt, now: now)
        case .receiveReturn(let receipt):
            return try receive(state, returnId: receipt.returnId, lines: receipt.lines, at: receipt.receivedAt, now: now)
        case .returnRequested(let request):
            if state.returns.contains(where: { $0.returnId == request.returnId }) { return Step(state: current, outputs: []) }
            let reasons = eligibility(of: request, state: state, rules: rules.returns)
            if !reasons.isEmpty, awaitsDelivery(request, reasons: reasons, state: state) {
                // The customer saw the delivery (the view or the carrier told them) before
                // this stage read it: wait for it rather than refuse.
                state.returns.append(ReturnRecord(
                    returnId: request.returnId, status: .awaitingDelivery, rma: "", carrier: "", trackingNumber: "", lines: request.lines,
                    expiresAt: request.requestedAt, differencePayment: request.differencePayment))
                return Step(state: state, outputs: [])
            }
            guard reasons.isEmpty else {
                return Step(state: current, outputs: [ReturnRejected(orderId: orderId, returnId: request.returnId, reasons: reasons, rejectedAt: now).event])
            }
            return decide(state, request, rules: rules, connector: connector, product: product, available: available, now: now)
        case .appeaseOrder(let request):
            return try appease(state, request, rules: rules.returns.appeasements, now: now)
        case .approveReturnRefund(let approval):
            return try approve(state, approval, now: now)
        default:
            return Step(state: current, outputs: [])
        }
    }

    /// Grants or refuses an appeasement, once per id: granted, it is refunded without a
    /// return (`RefundPayment` with no return id, whose reason names the appeasement), or
    /// given as store credit (the grant alone). Both count against the same limits.
    private static func appease(_ state: ReturnsState, _ request: AppeaseOrder, rules: AppeasementRules, now: Date) throws(StageFailure) -> Step {
        guard state.appeasements?.contains(request.appeasementId) != true else { return Step(state: state, outputs: []) }
        guard state.totals != nil else {
            throw .rejected("appeasement \(request.appeasementId) read before order \(state.orderId): replay it once the order is placed")
        }
        var state = state
        state.appeasements = (state.appeasements ?? []) + [request.appeasementId]
        let problems = appeasementProblems(request, state: state, rules: rules)
        guard problems.isEmpty else {
            return Step(state: state, outputs: [
                AppeasementRejected(orderId: state.orderId, appeasementId: request.appeasementId, reasons: problems, rejectedAt: now).event,
            ])
        }
        state.appeased = Money(minorUnits: (state.appeased?.minorUnits ?? 0) + request.amount.minorUnits, currency: request.amount.currency)
        let granted = OrderAppeased(
            orderId: state.orderId, appeasementId: request.appeasementId, amount: request.amount, reason: request.reason, requestedBy: request.requestedBy,
            role: request.role, lineId: request.lineId, decidedAt: now, storeCredit: request.storeCredit)
        // Store credit is no money back: the CRM feed carries it to the brand's systems.
        if request.storeCredit == true { return Step(state: state, outputs: [granted.event]) }
        let refund = RefundPayment(
            orderId: state.orderId, amount: request.amount,
            reason: Reason(code: "appeasement", message: "\(request.reason.code): \(request.reason.message) (\(request.requestedBy), \(request.role), \(request.appeasementId))"),
            requestedAt: now, channel: state.channel, authorizationReference: state.authorizationReference)
        return Step(state: state, outputs: [granted.event, refund.event])
    }

    /// Why an appeasement cannot be granted (empty: it can): the amount must be positive
    /// and in the order's currency, within the role's limit, the order's limit and what
    /// is left paid (the total less returned units refunded, cancelled units and earlier
    /// appeasements),
    /// and, for a line, within that line's worth.
    public static func appeasementProblems(_ request: AppeaseOrder, state: ReturnsState, rules: AppeasementRules) -> [Reason] {
        guard let totals = state.totals else { return [Reason(code: "unknown_order", message: "order \(state.orderId) is not known yet")] }
        let amount = request.amount
        let currency = totals.total.currency
        guard amount.currency == currency else {
            return [Reason(code: "currency_mismatch", message: "the order is in \(currency.code), the appeasement in \(amount.currency.code)")]
        }
        guard amount.minorUnits > 0 else { return [Reason(code: "not_positive", message: "an appeasement gives back more than nothing")] }
        var reasons: [Reason] = []
        let money = { (minor: Int64) in Money(minorUnits: minor, currency: currency) }
        if let limits = rules.perRole[request.role] {
            let limit = limits[currency.code] ?? 0
            if amount.minorUnits > limit {
                reasons.append(Reason(code: "above_role_limit", message: "\(amount) is above the \(request.role) limit of \(money(limit)) per appeasement"))
            }
        } else {
            reasons.append(Reason(code: "unknown_role", message: "role '\(request.role)' has no appeasement limit (roles: \(rules.perRole.keys.sorted().joined(separator: ", ")))"))
        }
        let before = state.appeased?.minorUnits ?? 0
        let orderLimit = rules.perOrder[currency.code] ?? 0
        if before + amount.minorUnits > orderLimit {
            reasons.append(Reason(code: "above_order_limit", message: "\(money(before)) given before and \(amount) now is above the order's limit of \(money(orderLimit))"))
        }
        let amounts = OrderAmounts(lines: state.lines, totals: totals)
        let left = totals.total.minorUnits - amounts.value(of: state.refunded + (state.cancelledLines ?? []), after: [:]) - before
        if amount.minorUnits > left {
            reasons.append(Reason(code: "above_paid", message: "\(amount) is above the \(money(max(left, 0))) left paid on the order"))
        }
        if let lineId = request.lineId {
            if let line = state.lines.first(where: { $0.lineId == lineId }) {
                let worth = amounts.value(lineId: lineId, units: line.quantity, after: 0)
                if amount.minorUnits > worth {
                    reasons.append(Reason(code: "above_line", message: "\(amount) is above line \(lineId)'s worth of \(money(worth))"))
                }
            } else {
                reasons.append(Reason(code: "unknown_line", message: "order \(state.orderId) has no line '\(lineId)'"))
            }
        }
        return reasons
    }


    /// Whether a refused request only lacks deliveries of units already shipped.
    private static func awaitsDelivery(_ request: ReturnRequested, reasons: [Reason], state: ReturnsState) -> Bool {
        guard reasons.allSatisfy({ ["not_delivered", "quantity_exceeds_delivered"].contains($0.code) }) else { return false }
        let shipped = unitsByLine(state.shipments.filter { $0.deliveredAt == nil }.flatMap(\.lines))
        return request.lines.allSatisfy { shipped[$0.lineId, default: 0] > 0 }
    }

    /// Decides the requests that waited for a delivery, now that one was read.
    private static func decideWaiting(
        _ state: ReturnsState, rules: BusinessRules, connector: any CarrierConnector, product: (String) -> CatalogProduct?, available: (String) -> Int,
        now: Date
    ) -> Step {
        var state = state
        var outputs: [Event] = []
        for record in state.returns where record.status == .awaitingDelivery {
            state.returns.removeAll { $0.returnId == record.returnId }
            let request = ReturnRequested(
                orderId: state.orderId, returnId: record.returnId, lines: record.lines, requestedAt: record.expiresAt, differencePayment: record.differencePayment)
            let reasons = eligibility(of: request, state: state, rules: rules.returns)
            if reasons.isEmpty {
                let step = decide(state, request, rules: rules, connector: connector, product: product, available: available, now: now)
                state = step.state ?? state
                outputs += step.outputs
            } else if awaitsDelivery(request, reasons: reasons, state: state) {
                state.returns.append(record)
            } else {
                outputs.append(ReturnRejected(orderId: state.orderId, returnId: record.returnId, reasons: reasons, rejectedAt: now).event)
            }
        }
        return Step(state: state, outputs: outputs)
    }

    /// Decides an eligible request: a plain return, or an exchange (``Exchanges``)
    /// authorized, refused, or authorized as a plain return when the rule says so.
    private static func decide(
        _ state: ReturnsState, _ request: ReturnRequested, rules: BusinessRules, connector: any CarrierConnector,
        product: (String) -> CatalogProduct?, available: (String) -> Int, now: Date
    ) -> Step {
        switch Exchanges.decide(request, state: state, rules: rules.returns.exchanges, product: product, available: available) {
        case .none:
            return authorize(state, request, rules: rules, connector: connector)
        case .rejected(let problems):
            return Step(state: state, outputs: [ReturnRejected(orderId: state.orderId, returnId: request.returnId, reasons: problems, rejectedAt: now).event])
        case .refundInstead(let reason):
            var plain = request
            plain.lines = request.lines.map { var line = $0; line.exchangeSku = nil; return line }
            let step = authorize(state, plain, rules: rules, connector: connector)
            return Step(state: step.state, outputs: step.outputs + [
                ExchangeReplacedByRefund(orderId: state.orderId, returnId: request.returnId, exchangeOrderId: nil, reason: reason, decidedAt: now).event,
            ])
        case .exchange(let terms):
            return authorize(state, request, rules: rules, connector: connector, exchange: terms, now: now)
        }
    }

    /// Ends an exchange without a replacement: a placed replacement is cancelled (which
    /// releases its reservation). Empty when it had ended already.
    private static func endWithoutReplacement(_ state: inout ReturnsState, at index: Int, reason: Reason, now: Date) -> [Event] {
        let ret = state.returns[index]
        guard let terms = ret.exchange, ret.exchangeOutcome == nil else { return [] }
        state.returns[index].exchangeOutcome = .refund
        guard ret.replacementPlaced == true else { return [] }
        return [CancelOrder(orderId: terms.exchangeOrderId, requestedBy: "returns", reason: reason, requestedAt: now).event]
    }

    /// The replacement order of an exchange was cancelled (or refused): the exchange ends
    /// in a refund, once. Released and cancelled before it shipped, its credit, already
    /// taken from the returned units, is refunded now; else the returned units are
    /// refunded when they arrive.
    private static func endExchange(_ state: ReturnsState, _ ended: ReplacementCancelled, now: Date) -> Step {
        var state = state
        guard let index = state.returns.firstIndex(where: { $0.returnId == ended.returnId }), let terms = state.returns[index].exchange,
            terms.exchangeOrderId == ended.exchangeOrderId, state.returns[index].exchangeOutcome != .refund
        else { return Step(state: state, outputs: []) }
        let released = state.returns[index].exchangeOutcome == .replacement
        state.returns[index].exchangeOutcome = .refund
        var outputs: [Event] = [
            ExchangeReplacedByRefund(orderId: state.orderId, returnId: ended.returnId, exchangeOrderId: ended.exchangeOrderId, reason: ended.reason, decidedAt: now).event,
        ]
        if released {
            let reason = Reason(code: "exchange_cancelled", message: "return \(state.returns[index].rma): the replacement was cancelled (\(ended.reason.code))")
            outputs += Exchanges.refunds(terms.credits, of: state.orderId, returnId: ended.returnId, reason: reason, now: now).map(\.event)
        }
        return Step(state: state, outputs: outputs)
    }

    /// The original order's side of a replacement's cancel, keyed by the original order.
    private static func replacementCancelled(_ link: ExchangeLink, orderId: String, reason: Reason, now: Date) -> Event {
        ReplacementCancelled(orderId: link.orderId, returnId: link.returnId, exchangeOrderId: orderId, reason: reason, at: now).event
    }

    /// Authorizes a request: RMA, return label, index entry for the return parcel; for an
    /// exchange reserved at authorization, the replacement order too.
    private static func authorize(
        _ state: ReturnsState, _ request: ReturnRequested, rules: BusinessRules, connector: any CarrierConnector, exchange: ExchangeTerms? = nil,
        now: Date = .distantPast
    ) -> Step {
        var state = state
        let orderId = state.orderId
        let rma = "RMA-" + DeterministicID.uuidV5(namespace: ShippingMachine.shipmentNamespace, name: "rma/\(orderId)/\(request.returnId)")
                .prefix(8).uppercased()
            let label = connector.label(for: LabelRequest(parcelId: request.returnId, carrier: rules.returns.carrier, service: "return", weightGrams: 0))
            let expires = request.requestedAt.addingTimeInterval(TimeInterval(rules.returns.rmaValidDays) * 86_400)
            var record = ReturnRecord(
                returnId: request.returnId, status: .authorized, rma: rma, carrier: rules.returns.carrier, trackingNumber: label.trackingNumber,
                lines: request.lines, expiresAt: expires, exchange: exchange)
            var outputs: [Event] = [
                ReturnAuthorized(
                    orderId: orderId, returnId: request.returnId, rma: rma, labelRef: label.labelRef, carrier: rules.returns.carrier,
                    trackingNumber: label.trackingNumber, lines: request.lines, expiresAt: expires, exchange: exchange
                ).event,
                ShipmentIndexEntry(
                    carrier: rules.returns.carrier, trackingNumber: label.trackingNumber, shipmentId: request.returnId, orderId: orderId,
                    promisedDate: expires, shippedAt: request.requestedAt, returnId: request.returnId
                ).event,
            ]
            if let exchange, exchange.reserveAt == .authorization,
                let placement = Exchanges.placement(terms: exchange, returnId: request.returnId, state: state, hold: true, now: now)
            {
                record.replacementPlaced = true
                outputs.append(placement)
            }
            state.returns.append(record)
            return Step(state: state, outputs: outputs)
    }

    /// Every reason a request cannot be authorized; empty when it can.
    public static func eligibility(of request: ReturnRequested, state: ReturnsState, rules: ReturnRules) -> [Reason] {
        guard state.totals != nil else {
            return [Reason(code: "order_unknown", message: "order \(state.orderId) is not known to returns")]
        }
        if request.lines.isEmpty { return [Reason(code: "no_lines", message: "the request names no lines")] }
        var reasons: [Reason] = []
        let delivered = state.shipments.filter { $0.deliveredAt != nil }
        let deliveredUnits = unitsByLine(delivered.flatMap(\.lines))
        let pending = state.returns.filter { $0.status != .awaitingDelivery }.flatMap(\.lines)
            .reduce(into: [String: Int]()) { $0[$1.lineId, default: 0] += $1.quantity }
        let asked = request.lines.reduce(into: [String: Int]()) { $0[$1.lineId, default: 0] += $1.quantity }
        for (lineId, quantity) in asked.sorted(by: { $0.key < $1.key }) {
            let days = rules.window(channel: state.channel, country: state.country, category: state.categories?[lineId])
            let window = TimeInterval(days) * 86_400
            guard let line = state.lines.first(where: { $0.lineId == lineId }) else {
                reasons.append(Reason(code: "line_unknown", message: "line \(lineId) is not in the order"))
                continue
            }
            if let sku = request.lines.first(where: { $0.lineId == lineId })?.sku, sku != line.sku {
                reasons.append(Reason(code: "sku_mismatch", message: "line \(lineId) is \(line.sku), not \(sku)"))
            }
            let deliveredCount = deliveredUnits[lineId, default: 0]
            let already = pending[lineId, default: 0]
            if deliveredCount == 0 {
                reasons.append(Reason(code: "not_delivered", message: "no unit of line \(lineId) has been delivered"))
            } else if quantity > deliveredCount - already {
                let message = already > 0
                    ? "line \(lineId): \(quantity) asked, \(deliveredCount) delivered of which \(already) already returned or on the way back"
                    : "line \(lineId): \(quantity) asked, \(deliveredCount) delivered"
                reasons.append(Reason(code: already > 0 ? "already_returned" : "quantity_exceeds_delivered", message: message))
            }
            // The window runs from the delivery of the line's last delivered parcel.
            let lastDelivery = delivered.filter { $0.lines.contains { $0.lineId == lineId } }.compactMap(\.deliveredAt).max()
            if let lastDelivery, request.requestedAt > lastDelivery.addingTimeInterval(window) {
                reasons.append(Reason(
                    code: "window_passed",
                    message: "line \(lineId) was delivered \(RFC3339.format(lastDelivery)); returns close after \(days) days"))
            }
        }
        return reasons
    }

    /// Marks a return received: restock or write off each line, refund its worth.
    private static func receive(_ state: ReturnsState, returnId: String, lines: [ReceivedReturnLine], at: Date, now: Date) throws(StageFailure) -> Step {
        var state = state
        guard let index = state.returns.firstIndex(where: { $0.returnId == returnId && $0.status != .awaitingDelivery }) else {
            throw .rejected("return \(returnId) of order \(state.orderId) was never authorized")
        }
        guard ![.received, .review].contains(state.returns[index].status) else { return Step(state: state, outputs: []) }
        let ret = state.returns[index]
        for line in lines {
            let authorized = ret.lines.filter { $0.lineId == line.lineId }.reduce(0) { $0 + $1.quantity }
            let counted = lines.filter { $0.lineId == line.lineId }.reduce(0) { $0 + $1.quantity }
            if counted > authorized {
                throw .rejected("return \(returnId): \(counted) units of line \(line.lineId) received, \(authorized) authorized")
            }
        }
        // Units that did not arrive are no longer on their way back: they may be asked again.
        state.returns[index].lines = lines.map { line in
            ReturnLine(lineId: line.lineId, sku: line.sku, quantity: line.quantity, reason: ret.lines.first { $0.lineId == line.lineId }?.reason ?? "")
        }
        var outputs: [Event] = [ReturnReceived(orderId: state.orderId, returnId: returnId, rma: ret.rma, lines: lines, receivedAt: at).event]
        for line in lines where line.disposition == .restock {
            outputs.append(RestockInventory(orderId: state.orderId, returnId: returnId, sku: line.sku, location: line.location, quantity: line.quantity).event)
        }
        var returned = lines.map { ShipmentLine(lineId: $0.lineId, sku: $0.sku, quantity: $0.quantity) }
        if at > ret.expiresAt, let totals = state.totals, !returned.isEmpty {
            // Too late for a refund without a look: an operator approves it, or not. Too
            // late for an exchange too: its refund waits the same way.
            let late = Reason(code: "rma_expired", message: "received \(RFC3339.format(at)), after RMA \(ret.rma) expired \(RFC3339.format(ret.expiresAt))")
            outputs += endWithoutReplacement(&state, at: index, reason: late, now: now)
            state.returns[index].status = .review
            let worth = Exchanges.valueSources(of: returned, in: state).reduce(0) { $0 + $1.amount.minorUnits }
            outputs.append(ReturnNeedsReview(
                orderId: state.orderId, returnId: returnId, rma: ret.rma, amount: Money(minorUnits: worth, currency: totals.total.currency),
                reason: late, at: now).event)
            return Step(state: state, outputs: outputs)
        }
        state.returns[index].status = .received
        if let terms = ret.exchange, ret.exchangeOutcome == nil {
            let exchanged = ret.lines.filter { $0.exchangeSku != nil }.map { ShipmentLine(lineId: $0.lineId, sku: $0.sku, quantity: $0.quantity) }
            let arrived = unitsByLine(returned)
            if unitsByLine(exchanged).allSatisfy({ arrived[$0.key, default: 0] >= $0.value }) {
                outputs += exchange(&state, at: index, terms: terms, exchanged: exchanged, now: now)
                returned = remove(exchanged, from: returned)
            } else {
                let reason = Reason(code: "partially_received", message: "return \(ret.rma): not every unit to exchange arrived")
                outputs += endWithoutReplacement(&state, at: index, reason: reason, now: now)
                outputs.append(ExchangeReplacedByRefund(orderId: state.orderId, returnId: returnId, exchangeOrderId: terms.exchangeOrderId, reason: reason, decidedAt: now).event)
            }
        }
        outputs += refund(&state, returnId: returnId, rma: ret.rma, returned: returned, now: now).map(\.event)
        return Step(state: state, outputs: outputs)
    }

    /// The exchange goes ahead: the exchanged units' money moves to the replacement (they
    /// count as gone from this order), a cheaper replacement's difference is refunded, and
    /// the replacement is released (or, reserved only now, placed).
    private static func exchange(_ state: inout ReturnsState, at index: Int, terms: ExchangeTerms, exchanged: [ShipmentLine], now: Date) -> [Event] {
        let ret = state.returns[index]
        state.returns[index].exchangeOutcome = .replacement
        add(exchanged, to: &state.refunded)
        let reason = Reason(code: "exchange_difference", message: "return \(ret.rma): the replacement costs \(terms.difference) less")
        var outputs = Exchanges.refunds(terms.differenceRefunds, of: state.orderId, returnId: ret.returnId, reason: reason, now: now).map(\.event)
        if ret.replacementPlaced == true {
            outputs.append(ShipReplacement(orderId: terms.exchangeOrderId, originalOrderId: state.orderId, returnId: ret.returnId, requestedAt: now).event)
        } else if let placement = Exchanges.placement(terms: terms, returnId: ret.returnId, state: state, hold: false, now: now) {
            state.returns[index].replacementPlaced = true
            outputs.append(placement)
        }
        return outputs
    }

    /// `lines` less `taken`, line by line.
    private static func remove(_ taken: [ShipmentLine], from lines: [ShipmentLine]) -> [ShipmentLine] {
        var left = unitsByLine(taken)
        return lines.compactMap { line in
            var line = line
            let take = min(line.quantity, left[line.lineId, default: 0])
            left[line.lineId, default: 0] -= take
            line.quantity -= take
            return line.quantity > 0 ? line : nil
        }
    }

    /// Adds units to a per-line count.
    private static func add(_ lines: [ShipmentLine], to counted: inout [ShipmentLine]) {
        for line in lines {
            if let i = counted.firstIndex(where: { $0.lineId == line.lineId }) {
                counted[i].quantity += line.quantity
            } else {
                counted.append(line)
            }
        }
    }

    /// Expires the order's authorized returns whose RMA is past at `now`; nil state when
    /// none is.
    public static func expire(_ state: ReturnsState, now: Date) -> Step {
        var state = state
        var outputs: [Event] = []
        for index in state.returns.indices where state.returns[index].status == .authorized && state.returns[index].expiresAt <= now {
            state.returns[index].status = .expired
            let ret = state.returns[index]
            // Its replacement's reservation is released (the customer is told of the expiry).
            outputs += endWithoutReplacement(&state, at: index, reason: Reason(code: "rma_expired", message: "RMA \(ret.rma) expired"), now: now)
            outputs.append(ReturnExpired(
                orderId: state.orderId, returnId: ret.returnId, rma: ret.rma,
                lines: ret.lines.map { ShipmentLine(lineId: $0.lineId, sku: $0.sku, quantity: $0.quantity) }, expiresAt: ret.expiresAt, expiredAt: now
            ).event)
        }
        guard !outputs.isEmpty else { return Step(state: nil, outputs: []) }
        state.updatedAt = now
        return Step(state: state, outputs: outputs)
    }

    /// An operator's approval of a late return's refund: refunded now, once.
    private static func approve(_ state: ReturnsState, _ approval: ApproveReturnRefund, now: Date) throws(StageFailure) -> Step {
        var state = state
        guard let index = state.returns.firstIndex(where: { $0.returnId == approval.returnId }) else {
            throw .rejected("return \(approval.returnId) of order \(state.orderId) is unknown")
        }
        let ret = state.returns[index]
        if ret.status == .received { return Step(state: state, outputs: []) }
        guard ret.status == .review else {
            throw .rejected("return \(approval.returnId) is \(ret.status.rawValue): only a return received after its RMA expired waits for approval")
        }
        state.returns[index].status = .received
        let returned = ret.lines.map { ShipmentLine(lineId: $0.lineId, sku: $0.sku, quantity: $0.quantity) }
        let refunds = refund(&state, returnId: ret.returnId, rma: ret.rma, returned: returned, now: now, approvedBy: approval.approvedBy)
        return Step(state: state, outputs: refunds.map(\.event))
    }

    /// The refunds of returned units: what they were paid, counted after the units of
    /// their lines already refunded (``OrderAmounts``), back to the payments that hold it
    /// (``Exchanges/valueSources(of:in:)``: for a replacement, partly the original
    /// order's); records them as refunded.
    private static func refund(
        _ state: inout ReturnsState, returnId: String, rma: String, returned: [ShipmentLine], now: Date, approvedBy: String? = nil
    ) -> [RefundPayment] {
        guard state.totals != nil, !returned.isEmpty else { return [] }
        let sources = Exchanges.valueSources(of: returned, in: state)
        add(returned, to: &state.refunded)
        let units = returned.map { "\($0.quantity) × \($0.sku)" }.joined(separator: ", ")
        let reason = Reason(code: "returned", message: "return \(rma): \(units)" + (approvedBy.map { ", late, approved by \($0)" } ?? ""))
        return Exchanges.refunds(sources, of: state.orderId, returnId: returnId, reason: reason, now: now)
    }

    /// Where the returned units were shipped from (the first parcel that had them).
    private static func originLocation(of ret: ReturnRecord, in state: ReturnsState) -> String {
        let lineIds = Set(ret.lines.map(\.lineId))
        return state.shipments.first { parcel in parcel.lines.contains { lineIds.contains($0.lineId) } }?.location ?? state.shipments.first?.location ?? "unknown"
    }
}

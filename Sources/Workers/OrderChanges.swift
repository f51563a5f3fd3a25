import Contracts
import Foundation

/// Shipping's decisions on changes to an order in flight: a new ship-to address and
/// cancelled units of lines. Shipping decides them because it alone knows whether a
/// label was bought or a unit shipped, and it reads every order command in order with
/// the allocations it ships, so a change and a shipment never both win.
///
/// - An address change is accepted while no label is bought for the order (after
///   that the parcel goes where its label says), for a complete address in the same
///   country (taxes and duties were worked out for it) that every SKU of the order may
///   ship to. Later shipments go to it and are rated for it.
/// - A line cancel is accepted for units neither shipped nor cancelled already; a
///   request for more is refused whole, naming each line. Cancelled units are never
///   shipped or captured; an order paid at checkout is refunded their worth. A cancel
///   of every unit of an order that has not shipped is a cancel of the order.
enum OrderChanges {
    /// Decides an address change.
    static func changeAddress(
        _ state: ShippingState, command: UpdateShippingAddress, product: (String) -> CatalogProduct?, now: Date
    ) -> ShippingMachine.Step {
        // A channel repeats the address in every update: the same address is no change.
        if state.destination == command.shippingAddress, !state.cancelled { return ShippingMachine.Step(state: nil, outputs: []) }
        if fromChannelTooEarly(state, requestedBy: command.requestedBy) { return ShippingMachine.Step(state: nil, outputs: []) }
        let problems = addressProblems(state, address: command.shippingAddress, product: product)
        guard problems.isEmpty else {
            return ShippingMachine.Step(state: nil, outputs: [
                OrderChangeRejected(
                    orderId: state.orderId, change: .address, requestedBy: command.requestedBy, reasons: problems, rejectedAt: now
                ).event,
            ])
        }
        var state = state
        state.destination = command.shippingAddress
        let changed = ShippingAddressChanged(
            orderId: state.orderId, shippingAddress: command.shippingAddress, requestedBy: command.requestedBy, changedAt: now)
        return ShippingMachine.Step(state: state, outputs: [changed.event])
    }

    /// Why `address` may not replace the order's ship-to address; empty when it may.
    static func addressProblems(_ state: ShippingState, address: Address, product: (String) -> CatalogProduct?) -> [Reason] {
        if let refusal = tooLate(state) { return [refusal] }
        if let first = state.shipments.first {
            return [Reason(
                code: "label_bought",
                message: "a label was bought for shipment \(first.shipmentId) from \(first.location): it goes to the address on its label; ask the carrier to redirect it")]
        }
        var reasons = AddressRules.problems(address).map { Reason(code: "address_incomplete", message: "shipping address: \($0)") }
        if let old = state.destination?.country, old != address.country {
            reasons.append(Reason(
                code: "country_changed",
                message: "the order ships to \(old.code) and its taxes were worked out for it: cancel it and order again to ship to \(address.country.code)"))
        }
        for line in state.lines where product(line.sku)?.blockedCountries.contains(address.country) == true {
            reasons.append(Reason(code: "destination_blocked", message: "line \(line.lineId) (\(line.sku)): SKU may not ship to \(address.country.code)"))
        }
        return reasons
    }

    /// Decides a line cancel.
    static func cancelLines(_ state: ShippingState, command: CancelOrderLines, rule: LineCancelShipping, now: Date) -> ShippingMachine.Step {
        if state.hasRecorded(command.changeId) || fromChannelTooEarly(state, requestedBy: command.requestedBy) {
            return ShippingMachine.Step(state: nil, outputs: [])
        }
        let requested = Dictionary(command.lines.map { ($0.lineId, $0.quantity) }, uniquingKeysWith: +)
        var problems = tooLate(state).map { [$0] } ?? lineProblems(state, requested: requested)
        if command.lines.isEmpty { problems.append(Reason(code: "no_lines", message: "the request names no line")) }
        guard problems.isEmpty, let totals = state.totals else {
            return ShippingMachine.Step(state: nil, outputs: [
                OrderChangeRejected(
                    orderId: state.orderId, change: .lines, changeId: command.changeId, requestedBy: command.requestedBy, reasons: problems,
                    rejectedAt: now
                ).event,
            ])
        }
        var state = state
        let amounts = OrderAmounts(lines: state.lines, totals: totals)
        let counted = countedUnits(state)
        let lines = state.lines.compactMap { line in
            requested[line.lineId].map { ShipmentLine(lineId: line.lineId, sku: line.sku, quantity: $0) }
        }
        state.record(command.changeId, lines: lines)
        if state.shipments.isEmpty, unitsLeft(state).isEmpty {
            // Nothing shipped and nothing left: the order is cancelled, with its money.
            state.cancelled = true
            state.waiting = []
            let cancelled = OrderCancelled(orderId: state.orderId, requestedBy: command.requestedBy, reason: command.reason, cancelledAt: now)
            return ShippingMachine.Step(state: state, outputs: [cancelled.event] + ShippingMachine.release(state, reason: command.reason, now: now))
        }
        let worth = Money(minorUnits: amounts.value(of: lines, after: counted), currency: amounts.currency)
        var outputs = [
            OrderLinesCancelled(
                orderId: state.orderId, changeId: command.changeId, lines: lines, amount: worth, requestedBy: command.requestedBy,
                reason: command.reason, cancelledAt: now
            ).event,
        ]
        // An authorization is simply captured for less; money taken at checkout goes back.
        // The shipping share (if the rule gives it) goes back once the charge was taken.
        let reason = Reason(code: lineCancelRefund, message: "\(command.changeId): \(command.reason.code): \(command.reason.message)")
        let charged = state.paidAtCheckout == true || !state.shipments.isEmpty
        let shipping = rule == .share && charged ? shippingShareDue(&state) : 0
        let back = (state.paidAtCheckout == true ? worth.minorUnits : 0) + shipping
        if back > 0 { outputs.append(refund(state, Money(minorUnits: back, currency: amounts.currency), reason: reason, now: now)) }
        return ShippingMachine.Step(state: state, outputs: outputs)
    }

    /// Money going back to the order's payment for cancelled units.
    static func refund(_ state: ShippingState, _ amount: Money, reason: Reason, now: Date) -> Event {
        RefundPayment(
            orderId: state.orderId, amount: amount, reason: reason, requestedAt: now, channel: state.channel, authorizationReference: state.authorizationReference
        ).event
    }

    /// The cancelled units' share of the shipping charge not refunded yet, now recorded as
    /// refunded: the charge × their worth ÷ the goods' worth, counted over every unit
    /// cancelled so far, so that shares of several cancels add up without a lost cent.
    static func shippingShareDue(_ state: inout ShippingState) -> Int64 {
        guard let totals = state.totals else { return 0 }
        let amounts = OrderAmounts(lines: state.lines, totals: totals)
        let goods = amounts.lineTotals.values.reduce(0, +)
        guard goods > 0, amounts.shipping > 0 else { return 0 }
        let cancelled = amounts.value(of: state.cancelledLines ?? [], after: [:])
        let share = goods.dividingFullWidth(amounts.shipping.multipliedFullWidth(by: cancelled)).quotient
        let due = share - (state.shippingRefunded ?? 0)
        guard due > 0 else { return 0 }
        state.shippingRefunded = share
        return due
    }

    /// The reason code of a line cancel's refund: the customer hears of it in the
    /// `order_changed` message, not in a second `refunded` one.
    static let lineCancelRefund = "line_cancelled"

    /// Units of each line that are shipped or cancelled: what captures and cancels
    /// have counted, so each unit's worth is counted once (``OrderAmounts``).
    static func countedUnits(_ state: ShippingState) -> [String: Int] {
        unitsByLine(state.shipments.flatMap(\.lines) + (state.cancelledLines ?? []))
    }

    /// Units of each line neither shipped nor cancelled (lines with none left omitted).
    static func unitsLeft(_ state: ShippingState) -> [String: Int] {
        let counted = countedUnits(state)
        var left: [String: Int] = [:]
        for line in state.lines {
            let units = line.quantity - counted[line.lineId, default: 0]
            if units > 0 { left[line.lineId, default: 0] += units }
        }
        return left
    }

    /// A channel's edit read before the order itself (its `orders/updated` often follows
    /// `orders/create` at once): passed over, not refused, since the channel repeats the
    /// order's whole state in its next update.
    private static func fromChannelTooEarly(_ state: ShippingState, requestedBy: String) -> Bool {
        state.totals == nil && requestedBy.hasPrefix("channel:")
    }

    /// A refusal that comes before looking at the change: the order is cancelled, or
    /// shipping has not read it yet.
    private static func tooLate(_ state: ShippingState) -> Reason? {
        if state.cancelled { return Reason(code: "order_cancelled", message: "order \(state.orderId) is cancelled") }
        if state.totals == nil {
            return Reason(code: "order_not_ready", message: "order \(state.orderId) is not known to shipping yet; ask again in a moment")
        }
        return nil
    }

    /// Every line the request may not cancel as asked.
    private static func lineProblems(_ state: ShippingState, requested: [String: Int]) -> [Reason] {
        let shipped = unitsByLine(state.shipments.flatMap(\.lines))
        let cancelled = unitsByLine(state.cancelledLines ?? [])
        var reasons: [Reason] = []
        for (lineId, quantity) in requested.sorted(by: { $0.key < $1.key }) {
            guard let line = state.lines.first(where: { $0.lineId == lineId }) else {
                reasons.append(Reason(
                    code: "unknown_line", message: "order \(state.orderId) has no line '\(lineId)' (lines: \(state.lines.map(\.lineId).joined(separator: ", ")))"))
                continue
            }
            if quantity < 1 {
                reasons.append(Reason(code: "quantity_invalid", message: "line \(lineId): quantity \(quantity) is not a positive integer"))
                continue
            }
            let (sent, gone) = (shipped[lineId, default: 0], cancelled[lineId, default: 0])
            let left = line.quantity - sent - gone
            guard quantity > left else { continue }
            let code = sent > 0 ? "already_shipped" : "more_than_left"
            let remedy = sent > 0 ? "; return the shipped units instead" : ""
            reasons.append(Reason(
                code: code,
                message: "line \(lineId): \(line.quantity) ordered, \(sent) shipped, \(gone) cancelled: at most \(left) can be cancelled, not \(quantity)\(remedy)"))
        }
        return reasons
    }
}

/// A per-order state that remembers the line cancels applied to it, by change id, so a
/// replayed or repeated change is applied once: shipping's, allocation's and returns'.
protocol LineCancelRecord {
    /// Change ids applied.
    var changeIds: [String]? { get set }
    /// Units cancelled so far.
    var cancelledLines: [ShipmentLine]? { get set }
}

extension LineCancelRecord {
    /// Whether the change `id` was applied already.
    func hasRecorded(_ id: String) -> Bool { changeIds?.contains(id) == true }

    /// Remembers the change `id` and its cancelled units.
    mutating func record(_ id: String, lines: [ShipmentLine]) {
        changeIds = (changeIds ?? []) + [id]
        cancelledLines = (cancelledLines ?? []) + lines
    }
}

extension ShippingState: LineCancelRecord {}
extension AllocationState: LineCancelRecord {}
extension ReturnsState: LineCancelRecord {}

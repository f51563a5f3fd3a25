import Contracts
import Foundation

/// The order-keyed half of the payment check: checks the channel's authorization and
/// the fraud rules that need only the order, and hands the facts to
/// ``FraudVelocityStage`` re-keyed by customer (one writer per customer is what makes a
/// velocity count exact under any number of instances). It also keeps the held orders
/// (from the decisions it reads back) so operators can release or cancel them through
/// oms.orders.commands.
public struct PaymentStage: Stage {
    /// `payment`.
    public let name = "payment"
    /// Placed orders, operator commands, the decisions (to learn which orders are held)
    /// and accepted cancels.
    public let inputTopics = [OrderPlaced.topic, ReleaseHold.topic, PaymentHeld.topic, OrderCancelled.topic]
    /// Held orders, keyed by order id.
    public let changelogTopic: String? = HeldOrder.topic
    /// The rules.
    public let rules: PaymentRules

    /// Creates the stage.
    public init(rules: PaymentRules) {
        self.rules = rules
    }

    /// Screens placed orders; records holds; releases or cancels held orders.
    public func process(_ input: StageInput, state: StageState) throws(StageFailure) -> StageOutcome {
        switch input.event {
        case .orderPlaced(let order):
            return .emit(Self.screen(order, rules: rules).event)
        case .paymentHeld(let decision):
            let held = HeldOrder(orderId: decision.orderId, amount: decision.amount, reasons: decision.reasons, heldAt: decision.decidedAt)
            return StageOutcome(stateChanges: [.put(held.event)])
        case .releaseHold(let command):
            guard case .heldOrder(let held) = state.value(command.orderId) else {
                throw .rejected("order \(command.orderId) is not held for review, so there is nothing to release")
            }
            let released = PaymentReleased(
                orderId: held.orderId, amount: held.amount, reasons: held.reasons, releasedBy: command.releasedBy,
                decidedAt: input.now)
            return StageOutcome(outputs: [StageOutput(released.event)], stateChanges: [.delete(key: command.orderId)])
        case .orderCancelled(let cancelled):
            // A held order that is cancelled ends its review declined; shipping, which
            // accepted the cancel, voids the authorization.
            guard case .heldOrder(let held) = state.value(cancelled.orderId) else { return .none }
            let declined = PaymentDeclined(
                orderId: held.orderId, amount: held.amount,
                reasons: held.reasons + [Reason(code: "cancelled_in_review", message: "cancelled by \(cancelled.requestedBy): \(cancelled.reason.message)")],
                decidedAt: input.now)
            return StageOutcome(outputs: [StageOutput(declined.event)], stateChanges: [.delete(key: cancelled.orderId)])
        case .paymentApproved, .paymentDeclined, .paymentReleased, .updateShippingAddress, .cancelOrder, .cancelRejected, .cancelOrderLines,
            .shippingAddressChanged, .orderLinesCancelled, .orderChangeRejected, .shipReplacement:
            return .none
        default:
            throw .rejected("payment does not handle \(input.envelope.type)")
        }
    }

    /// The authorization and order-only fraud checks of one order.
    public static func screen(_ order: OrderPlaced, rules: PaymentRules) -> PaymentScreening {
        var decline: [Reason] = []
        var hold: [Reason] = []
        let total = order.totals.total
        let authorization = order.payment
        switch authorization.status {
        case .pending: decline.append(Reason(code: "authorization_missing", message: "the channel has not authorized payment yet"))
        case .voided: decline.append(Reason(code: "authorization_voided", message: "the authorization was voided"))
        case .authorized, .captured, .partiallyCaptured: break
        }
        if authorization.amount.currency != total.currency {
            decline.append(Reason(
                code: "authorization_currency",
                message: "authorized in \(authorization.amount.currency.code), order is in \(total.currency.code)"))
        } else if authorization.status != .pending, authorization.status != .voided, authorization.amount.minorUnits < total.minorUnits {
            decline.append(Reason(
                code: "authorization_insufficient", message: "authorized \(authorization.amount), order total is \(total)"))
        }
        if let limit = rules.holdAboveMinorUnits[total.currency.code], total.minorUnits > limit {
            hold.append(Reason(
                code: "amount_above_threshold",
                message: "total \(total) is above the review threshold \(Money(minorUnits: limit, currency: total.currency))"))
        }
        if rules.holdOnCountryMismatch, let billing = order.billingAddress, billing.country != order.shippingAddress.country {
            hold.append(Reason(
                code: "country_mismatch",
                message: "billing country \(billing.country.code) differs from shipping country \(order.shippingAddress.country.code)"))
        }
        let postal = (order.shippingAddress.postalCode ?? "").uppercased().filter { !$0.isWhitespace }
        if !postal.isEmpty,
            let risky = rules.riskyPostcodes.first(where: {
                $0.country == order.shippingAddress.country.code && postal.hasPrefix($0.prefix.uppercased().filter { !$0.isWhitespace })
            })
        {
            hold.append(Reason(code: "risky_postcode", message: "shipping postal code is in the risky area \(risky.country) \(risky.prefix)"))
        }
        return PaymentScreening(
            orderId: order.orderId, customerKey: customerKey(order), amount: total, placedAt: order.placedAt,
            declineReasons: decline, holdReasons: hold)
    }

    /// Who the velocity rule counts: the email (normalized), else the channel's customer
    /// id, else the order alone (a guest without email cannot be tracked). An exchange's
    /// replacement is no new purchase: it counts alone.
    public static func customerKey(_ order: OrderPlaced) -> String {
        if order.exchangeOf != nil { return "order:\(order.orderId)" }
        if let email = order.customer.email?.trimmingCharacters(in: .whitespaces).lowercased(), !email.isEmpty {
            return "email:\(email)"
        }
        if let id = order.customer.id, !id.isEmpty { return "customer:\(order.channel)/\(id)" }
        return "order:\(order.orderId)"
    }
}

/// The customer-keyed half of the payment check: counts each customer's orders in the
/// velocity window (state in oms.payments.velocity) and makes the decision: declined
/// when the authorization failed, held when any fraud rule fired, else approved. Every
/// decision carries its reasons.
public struct FraudVelocityStage: Stage {
    /// `fraud-velocity`.
    public let name = "fraud-velocity"
    /// oms.payments.screening, keyed by customer.
    public let inputTopics = [PaymentScreening.topic]
    /// Each customer's recent orders.
    public let changelogTopic: String? = CustomerVelocity.topic
    /// The rules.
    public let rules: PaymentRules

    /// Creates the stage.
    public init(rules: PaymentRules) {
        self.rules = rules
    }

    /// Counts the order and decides.
    public func process(_ input: StageInput, state: StageState) throws(StageFailure) -> StageOutcome {
        guard case .paymentScreening(let screening) = input.event else {
            throw .rejected("fraud-velocity reads \(PaymentScreening.eventType) only, not \(input.envelope.type)")
        }
        var previous: CustomerVelocity?
        if case .customerVelocity(let velocity) = state.value(screening.customerKey) { previous = velocity }
        let (decision, velocity) = Self.decide(screening, previous: previous, rules: rules, now: input.now)
        return StageOutcome(outputs: [StageOutput(decision)], stateChanges: velocity.map { [.put($0.event)] } ?? [])
    }

    /// The decision for one screening and the customer's updated window (nil when the
    /// velocity rule is off).
    public static func decide(
        _ screening: PaymentScreening, previous: CustomerVelocity?, rules: PaymentRules, now: Date
    ) -> (decision: Event, velocity: CustomerVelocity?) {
        var hold = screening.holdReasons
        var updated: CustomerVelocity?
        if let rule = rules.velocity {
            let window = TimeInterval(rule.windowSeconds)
            var recent = previous?.recent ?? []
            if !recent.contains(where: { $0.orderId == screening.orderId }) {
                recent.append(VelocityEntry(orderId: screening.orderId, placedAt: screening.placedAt))
                recent.sort { ($0.placedAt, $0.orderId) < ($1.placedAt, $1.orderId) }
            }
            // Count by the orders' own times, so a late-arriving order counts the same.
            let inWindow = recent.filter { abs($0.placedAt.timeIntervalSince(screening.placedAt)) < window }.count
            if inWindow > rule.maxOrders {
                hold.append(Reason(
                    code: "velocity",
                    message: "\(inWindow) orders from this customer within \(rule.windowSeconds) s (limit \(rule.maxOrders))"))
            }
            // Only entries that can still fall in a window of a future order are kept.
            let newest = recent.last?.placedAt ?? screening.placedAt
            recent.removeAll { newest.timeIntervalSince($0.placedAt) >= window }
            updated = CustomerVelocity(customerKey: screening.customerKey, recent: recent, updatedAt: now)
        }
        let decision: Event
        if !screening.declineReasons.isEmpty {
            decision = PaymentDeclined(orderId: screening.orderId, amount: screening.amount, reasons: screening.declineReasons + hold, decidedAt: now).event
        } else if !hold.isEmpty {
            decision = PaymentHeld(orderId: screening.orderId, amount: screening.amount, reasons: hold, decidedAt: now).event
        } else {
            decision = PaymentApproved(orderId: screening.orderId, amount: screening.amount, reasons: [], decidedAt: now).event
        }
        return (decision, updated)
    }
}

import Contracts
import Foundation

/// The first half of the CRM feed: re-keys each order view by its customer, so that the
/// `customers` stage folds every order of one customer in one partition.
///
/// Stateless. A view without an e-mail address names no customer and is skipped (the
/// feed knows customers by address, across channels).
public struct CustomerFactsStage: Stage {
    /// `customer-facts`.
    public let name = "customer-facts"
    /// oms.orders.state.
    public let inputTopics = [OrderView.topic]
    /// None: the view is the state.
    public let changelogTopic: String? = nil

    /// Creates the stage.
    public init() {}

    /// The view's order as its customer's fact.
    public func process(_ input: StageInput, state: StageState) throws(StageFailure) -> StageOutcome {
        guard case .orderView(let view) = input.event else {
            throw .rejected("customer-facts reads \(OrderView.eventType) only, not \(input.envelope.type)")
        }
        guard let fact = CustomerTimelines.fact(from: view) else { return .none }
        return .emit(fact.event)
    }
}

/// The second half of the CRM feed: folds a customer's order facts into the timeline that
/// `GET /v1/customers/{id}` serves and the brand's CRM reads from oms.customers.state
/// (compacted, keyed by customer; the stage's changelog).
public struct CustomerTimelineStage: Stage {
    /// `customers`.
    public let name = "customers"
    /// oms.customers.facts.
    public let inputTopics = [CustomerOrderFact.topic]
    /// oms.customers.state.
    public let changelogTopic: String? = CustomerTimeline.topic

    /// Creates the stage.
    public init() {}

    /// Folds the fact into its customer's timeline.
    public func process(_ input: StageInput, state: StageState) throws(StageFailure) -> StageOutcome {
        guard case .customerOrderFact(let fact) = input.event else {
            throw .rejected("customers reads \(CustomerOrderFact.eventType) only, not \(input.envelope.type)")
        }
        var current: CustomerTimeline?
        if case .customerTimeline(let stored) = state.value(fact.customerId) { current = stored }
        guard let next = CustomerTimelines.fold(current, fact: fact, now: input.now) else { return .none }
        return StageOutcome(stateChanges: [.put(next.event)])
    }
}

/// The CRM feed's rules, as pure functions.
public enum CustomerTimelines {
    /// How many orders a timeline lists; older ones are only counted (``CustomerTimeline/older``),
    /// which bounds the record whatever the customer's history.
    public static let keptOrders = 200

    private static let namespace = UUID(uuidString: "8c1d0a3e-5b7f-5e21-9a4c-2f6e8d0b1c37")!

    /// The address as the feed compares it: trimmed and lower-case; nil when empty.
    public static func normalized(email: String?) -> String? {
        guard let email = email?.trimmingCharacters(in: .whitespacesAndNewlines).lowercased(), !email.isEmpty else { return nil }
        return email
    }

    /// The customer id of an address: a name-based UUID, so that keys, URLs and logs
    /// carry no address.
    public static func customerId(email: String) -> String {
        DeterministicID.uuidV5(namespace: namespace, name: normalized(email: email) ?? email)
    }

    /// The view's order as a fact of its customer; nil without an address.
    public static func fact(from view: OrderView) -> CustomerOrderFact? {
        guard let email = normalized(email: view.customerEmail) else { return nil }
        let refunds = view.payments.filter { $0.kind == .refund }.map(\.amount.minorUnits).reduce(0, +)
        let order = CustomerOrder(
            orderId: view.orderId, channel: view.channel, externalOrderId: view.externalOrderId, status: view.status,
            currency: view.currency, total: view.totals?.total, refunded: refunds == 0 ? nil : Money(minorUnits: refunds, currency: view.currency),
            storeCredit: view.storeCredit,
            returns: view.returns.map { CustomerReturn(returnId: $0.returnId, status: $0.status, refund: $0.refund) },
            notifications: view.notificationsSent, placedAt: view.history.first?.at ?? view.statusSince, updatedAt: view.updatedAt)
        return CustomerOrderFact(customerId: customerId(email: email), email: email, order: order)
    }

    /// The timeline after `fact`; nil when it changes nothing (a fact seen before, or
    /// older than what the timeline shows of its order: replays and redeliveries).
    ///
    /// An order placed before every one of a full timeline's orders is not listed: it may
    /// be one that dropped out, already counted in ``CustomerTimeline/older``.
    public static func fold(_ current: CustomerTimeline?, fact: CustomerOrderFact, now: Date) -> CustomerTimeline? {
        let order = fact.order
        var orders = current?.orders ?? []
        var older = current?.older ?? CustomerTotals(orders: 0, returns: 0, notifications: 0, value: [])
        if let index = orders.firstIndex(where: { $0.orderId == order.orderId }) {
            guard orders[index] != order, orders[index].updatedAt <= order.updatedAt else { return nil }
            orders[index] = order
        } else {
            if orders.count >= keptOrders, let oldest = orders.last, isNewer(oldest, than: order) { return nil }
            orders.insert(order, at: orders.firstIndex(where: { isNewer(order, than: $0) }) ?? orders.endIndex)
            while orders.count > keptOrders { older = older + totals([orders.removeLast()]) }
        }
        return CustomerTimeline(
            customerId: fact.customerId, email: fact.email, orders: orders, lifetime: older + totals(orders), older: older,
            firstOrderAt: min(current?.firstOrderAt ?? order.placedAt, order.placedAt),
            lastOrderAt: max(current?.lastOrderAt ?? order.placedAt, order.placedAt), updatedAt: now)
    }

    /// What `orders` add up to.
    public static func totals(_ orders: [CustomerOrder]) -> CustomerTotals {
        CustomerTotals(
            orders: orders.count, returns: orders.map(\.returns.count).reduce(0, +), notifications: orders.map(\.notifications.count).reduce(0, +),
            value: sum(orders.compactMap(value)), storeCredit: nonEmpty(sum(orders.compactMap(\.storeCredit))))
    }

    /// Nil for no amounts, so timelines without store credit carry no field.
    static func nonEmpty(_ amounts: [Money]) -> [Money]? { amounts.isEmpty ? nil : amounts }

    /// What an order is worth to the brand: its total less refunds; nothing when it was
    /// rejected, declined or cancelled (no money was kept).
    public static func value(of order: CustomerOrder) -> Money? {
        guard let total = order.total, ![.rejected, .declined, .cancelled].contains(order.status) else { return nil }
        return Money(minorUnits: total.minorUnits - (order.refunded?.minorUnits ?? 0), currency: total.currency)
    }

    /// Newest placed first; the order id breaks ties so that the list is the same
    /// whatever order the facts came in.
    private static func isNewer(_ a: CustomerOrder, than b: CustomerOrder) -> Bool {
        (a.placedAt, a.orderId) > (b.placedAt, b.orderId)
    }

    /// Amounts added up per currency, sorted by currency code.
    public static func sum(_ amounts: [Money]) -> [Money] {
        var byCurrency: [CurrencyCode: Int64] = [:]
        for amount in amounts { byCurrency[amount.currency, default: 0] += amount.minorUnits }
        return byCurrency.map { Money(minorUnits: $1, currency: $0) }.sorted { $0.currency.code < $1.currency.code }
    }
}

extension CustomerTotals {
    /// Both sets of orders together.
    static func + (lhs: CustomerTotals, rhs: CustomerTotals) -> CustomerTotals {
        CustomerTotals(
            orders: lhs.orders + rhs.orders, returns: lhs.returns + rhs.returns, notifications: lhs.notifications + rhs.notifications,
            value: CustomerTimelines.sum(lhs.value + rhs.value),
            storeCredit: CustomerTimelines.nonEmpty(CustomerTimelines.sum((lhs.storeCredit ?? []) + (rhs.storeCredit ?? []))))
    }
}

import Contracts
import Foundation

/// Exchanges: a return whose lines ask for a replacement (`ReturnLine.exchangeSku`)
/// instead of money back.
///
/// The replacement is a linked order of its own (`<orderId>/exchange/<returnId>` on the
/// same channel, `exchangeOf` naming the return), placed through intake like any order,
/// so it is validated, screened, reserved, sourced, shipped, tracked and invoiced by the
/// stages that do so for every order. The returned units' worth pays for it as a credit
/// (the replacement lines' discount); a dearer replacement charges the difference to an
/// authorization the customer gave with the request, a cheaper one refunds the rest when
/// the return is received. Shipping is the one judge of "shipped or cancelled", so an
/// exchange ends exactly once: the replacement ships, or it is cancelled (out of stock,
/// by an operator, the RMA expired) and the returned units are refunded instead.
public enum Exchanges {
    /// What a return request's exchange lines come to.
    public enum Decision: Sendable, Hashable {
        /// No line asks for an exchange.
        case none
        /// The exchange can be made on these terms.
        case exchange(ExchangeTerms)
        /// No stock for the replacement and the rule says refund: a plain return.
        case refundInstead(Reason)
        /// The replacement cannot be made; every reason.
        case rejected([Reason])
    }

    /// The channel order id of the replacement for `returnId` of `orderId`.
    public static func externalOrderId(orderId: String, returnId: String) -> String { "\(orderId)/exchange/\(returnId)" }

    /// Decides the exchange lines of a request already eligible as a return: the
    /// replacement SKUs must be sellable to the ship-to country at a price in the order's
    /// currency; without stock the rule decides; a dearer replacement needs the
    /// difference authorized.
    public static func decide(
        _ request: ReturnRequested, state: ReturnsState, rules: ExchangeRules, product: (String) -> CatalogProduct?, available: (String) -> Int
    ) -> Decision {
        let asked = request.lines.filter { $0.exchangeSku != nil }
        guard !asked.isEmpty, let totals = state.totals else { return .none }
        let currency = totals.total.currency
        var reasons: [Reason] = []
        var priced: [(line: ReturnLine, original: OrderLine, price: Money)] = []
        for line in asked {
            guard let sku = line.exchangeSku, let original = state.lines.first(where: { $0.lineId == line.lineId }) else { continue }
            let label = "line \(line.lineId): replacement \(sku)"
            guard let item = product(sku) else {
                reasons.append(Reason(code: "replacement_unknown", message: "\(label) is not in the catalog"))
                continue
            }
            if item.sellable == false { reasons.append(Reason(code: "replacement_not_sellable", message: "\(label) is not sellable")) }
            if let country = state.country, item.blockedCountries.contains(where: { $0.code == country }) {
                reasons.append(Reason(code: "replacement_blocked", message: "\(label) may not ship to \(country)"))
            }
            guard let price = item.prices.first(where: { $0.price.currency == currency })?.price else {
                reasons.append(Reason(code: "replacement_no_price", message: "\(label) has no price in \(currency.code)"))
                continue
            }
            priced.append((line, original, price))
        }
        if state.shippingAddress == nil {
            reasons.append(Reason(code: "order_details_missing", message: "the order's ship-to address is not known to returns (an order read before exchanges existed)"))
        }
        guard reasons.isEmpty else { return .rejected(reasons) }

        let needed = priced.reduce(into: [String: Int]()) { $0[$1.line.exchangeSku ?? "", default: 0] += $1.line.quantity }
        let short = needed.keys.sorted().filter { available($0) < needed[$0, default: 0] }
        if !short.isEmpty, rules.outOfStock != .wait {
            let reason = Reason(code: "replacement_out_of_stock", message: "no stock for \(short.joined(separator: ", ")): \(rules.outOfStock == .refund ? "refunded instead" : "the exchange is refused")")
            return rules.outOfStock == .refund ? .refundInstead(reason) : .rejected([reason])
        }

        // Price the replacement lines: list price, and the returned line's tax scaled by
        // the price (the same tax class, the same rate).
        var lines: [OrderLine] = []
        var grosses: [Int64] = []
        for (index, item) in priced.enumerated() {
            let quantity = item.line.quantity
            let base = item.original.unitPrice.minorUnits
            let tax = base > 0
                ? item.original.tax.minorUnits * Int64(quantity) * item.price.minorUnits / (Int64(max(item.original.quantity, 1)) * base)
                : 0
            let line = OrderLine(
                lineId: "x\(index + 1)", sku: item.line.exchangeSku!, quantity: quantity, unitPrice: item.price, discount: .zero(currency),
                tax: Money(minorUnits: tax, currency: currency))
            lines.append(line)
            grosses.append(item.price.minorUnits * Int64(quantity) + (totals.taxIncluded ? 0 : tax))
        }
        let gross = grosses.reduce(0, +)
        let returned = asked.map { ShipmentLine(lineId: $0.lineId, sku: $0.sku, quantity: $0.quantity) }
        let sources = valueSources(of: returned, in: state)
        let worth = sources.reduce(0) { $0 + $1.amount.minorUnits }
        let difference = gross - worth
        if difference > 0 {
            let payment = request.differencePayment
            let usable = payment.map { [.authorized, .captured].contains($0.status) && $0.amount.currency == currency && $0.amount.minorUnits >= difference } ?? false
            if !usable {
                return .rejected([Reason(
                    code: "difference_unpaid",
                    message: "the replacement costs \(Money(minorUnits: difference, currency: currency)) more than the returned units' worth; authorize it (differencePayment)")])
            }
        }
        // What the returned units were paid pays for the replacement; a cheaper one leaves
        // the rest to refund, taken from the order's own payment first.
        let (refunds, credits) = split(sources, taking: max(0, -difference))
        let credit = credits.reduce(0) { $0 + $1.amount.minorUnits }
        for (index, share) in proportional(credit, weights: grosses).enumerated() {
            lines[index].discount = Money(minorUnits: share, currency: currency)
        }
        return .exchange(ExchangeTerms(
            exchangeOrderId: DeterministicID.orderID(
                channel: state.channel ?? "", externalOrderID: externalOrderId(orderId: state.orderId, returnId: request.returnId)),
            lines: lines, difference: Money(minorUnits: difference, currency: currency), credits: credits, differenceRefunds: refunds,
            differencePayment: difference > 0 ? request.differencePayment : nil, reserveAt: rules.reserveAt))
    }

    /// Where the money of `units` of the order sits: what the order's own payment took
    /// for them (``OrderAmounts``, after the units already refunded or exchanged), then,
    /// for a replacement order, their share of each credit it was paid with. Amounts of
    /// zero are left out.
    public static func valueSources(of units: [ShipmentLine], in state: ReturnsState) -> [ExchangeCredit] {
        guard let totals = state.totals else { return [] }
        let before = unitsByLine(state.refunded)
        let own = OrderAmounts(lines: state.lines, totals: totals).value(of: units, after: before)
        var sources = [ExchangeCredit(orderId: state.orderId, channel: state.channel, authorizationReference: state.authorizationReference, amount: Money(minorUnits: own, currency: totals.total.currency))]
        if let link = state.exchangeOf {
            // A credit is spread evenly over the replacement's units; counting by the
            // units already gone makes the shares add up to the credit exactly.
            let all = state.lines.reduce(0) { $0 + $1.quantity }
            let gone = state.refunded.reduce(0) { $0 + $1.quantity }
            let count = units.reduce(0) { $0 + $1.quantity }
            for credit in link.credits {
                let upTo = { (n: Int) in all > 0 ? credit.amount.minorUnits * Int64(min(n, all)) / Int64(all) : 0 }
                var share = credit
                share.amount.minorUnits = upTo(gone + count) - upTo(gone)
                sources.append(share)
            }
        }
        return merged(sources).filter { $0.amount.minorUnits > 0 }
    }

    /// The refunds of `sources`: one `RefundPayment` per payment the money sits on (the
    /// order itself, or the orders whose credit paid for this replacement).
    /// A refund to another order's payment than `orderId`'s (a credit coming back) has
    /// the reason code ``creditRefundCode``.
    public static func refunds(_ sources: [ExchangeCredit], of orderId: String, returnId: String?, reason: Reason, now: Date) -> [RefundPayment] {
        sources.filter { $0.amount.minorUnits > 0 }.map { source in
            RefundPayment(
                orderId: source.orderId, returnId: returnId, amount: source.amount,
                reason: source.orderId == orderId ? reason : Reason(code: creditRefundCode, message: "\(reason.message) (paid with this order's credit)"),
                requestedAt: now, channel: source.channel, authorizationReference: source.authorizationReference)
        }
    }

    /// Reason code of a refund to an order whose credit paid for a replacement that was
    /// returned for money: the return id is the replacement's, not this order's.
    public static let creditRefundCode = "exchange_credit_returned"

    /// The replacement order of an exchange, as the canonical order intake places.
    public static func replacementOrder(terms: ExchangeTerms, returnId: String, state: ReturnsState, hold: Bool, now: Date) -> CanonicalOrder? {
        guard let totals = state.totals, let address = state.shippingAddress else { return nil }
        let currency = totals.total.currency
        let subtotal = terms.lines.reduce(0) { $0 + $1.unitPrice.minorUnits * Int64($1.quantity) }
        let discount = terms.lines.reduce(0) { $0 + $1.discount.minorUnits }
        let tax = terms.lines.reduce(0) { $0 + $1.tax.minorUnits }
        let total = subtotal - discount + (totals.taxIncluded ? 0 : tax)
        let money = { (minor: Int64) in Money(minorUnits: minor, currency: currency) }
        // Nothing left to pay: the order arrives paid (no capture, no void).
        let payment = terms.differencePayment ?? PaymentAuthorization(status: .captured, amount: money(0), reference: nil)
        return CanonicalOrder(
            channel: state.channel ?? "", externalOrderId: externalOrderId(orderId: state.orderId, returnId: returnId),
            customer: state.customer ?? Customer(id: nil, email: nil), lines: terms.lines, shipping: ShippingCharge(method: "exchange", amount: money(0)),
            totals: OrderTotals(subtotal: money(subtotal), discount: money(discount), shipping: money(0), tax: money(tax), total: money(total), taxIncluded: totals.taxIncluded),
            currency: currency, shippingAddress: address, billingAddress: nil, payment: payment, placedAt: now, promisedDeliveryDate: nil,
            serviceLevel: state.serviceLevel ?? .standard, pickupLocation: nil,
            exchangeOf: ExchangeLink(orderId: state.orderId, returnId: returnId, holdUntilReturned: hold, credits: terms.credits))
    }

    /// The replacement order as the inbound record intake reads.
    public static func placement(terms: ExchangeTerms, returnId: String, state: ReturnsState, hold: Bool, now: Date) -> Event? {
        guard let order = replacementOrder(terms: terms, returnId: returnId, state: state, hold: hold, now: now),
            let payload = try? EventCodec.encode(order)
        else { return nil }
        return InboundChannelOrder(channel: order.channel, format: .canonical, externalOrderId: order.externalOrderId, payload: Data(payload), receivedAt: now).event
    }

    /// `amount` taken from `sources` in their order (the first part), and what is left.
    static func split(_ sources: [ExchangeCredit], taking amount: Int64) -> (taken: [ExchangeCredit], left: [ExchangeCredit]) {
        var rest = amount
        var taken: [ExchangeCredit] = []
        var left: [ExchangeCredit] = []
        for source in sources {
            let part = min(rest, source.amount.minorUnits)
            rest -= part
            var took = source
            took.amount.minorUnits = part
            var kept = source
            kept.amount.minorUnits -= part
            if part > 0 { taken.append(took) }
            if kept.amount.minorUnits > 0 { left.append(kept) }
        }
        return (taken, left)
    }

    /// `amount` split in proportion to `weights`, the last one taking the rounding.
    static func proportional(_ amount: Int64, weights: [Int64]) -> [Int64] {
        let sum = weights.reduce(0, +)
        guard sum > 0, !weights.isEmpty else { return weights.map { _ in 0 } }
        var shares = weights.map { amount * $0 / sum }
        shares[shares.count - 1] += amount - shares.reduce(0, +)
        return shares
    }

    /// Sources of the same order's payment added together, in first-seen order.
    static func merged(_ sources: [ExchangeCredit]) -> [ExchangeCredit] {
        var out: [ExchangeCredit] = []
        for source in sources {
            if let i = out.firstIndex(where: { $0.orderId == source.orderId && $0.authorizationReference == source.authorizationReference }) {
                out[i].amount.minorUnits += source.amount.minorUnits
            } else {
                out.append(source)
            }
        }
        return out
    }
}

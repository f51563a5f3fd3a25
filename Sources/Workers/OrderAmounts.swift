import Contracts
import Foundation

/// What each unit of an order is worth to the customer, so that captures and refunds
/// add up to exactly what was paid: captures of every unit plus shipping equal the
/// order total, and a return refunds the same amounts those units were captured for.
///
/// The goods part of the total (total − shipping charge) is split over the lines in
/// proportion to each line's own amount (price × quantity − line discount, plus line
/// tax unless prices include it), the rest going to the largest remainders; so
/// order-level discounts and taxes are shared out too. Within a line, the first `n`
/// units are worth `floor(lineTotal × n / quantity)`: any split of the line into
/// shipments or returns adds up to the line total, and rounding never loses a cent.
public struct OrderAmounts: Sendable, Hashable {
    /// Each line's share of the goods total, by line id, in minor units.
    public let lineTotals: [String: Int64]
    /// Ordered units per line.
    public let quantities: [String: Int]
    /// The shipping charge, captured with the first shipment.
    public let shipping: Int64
    /// The currency of every amount.
    public let currency: CurrencyCode

    /// Computes the amounts of an order.
    public init(lines: [OrderLine], totals: OrderTotals) {
        currency = totals.total.currency
        shipping = totals.shipping.minorUnits
        quantities = Dictionary(lines.map { ($0.lineId, $0.quantity) }, uniquingKeysWith: +)
        let goods = max(0, totals.total.minorUnits - totals.shipping.minorUnits)
        let bases = lines.map { line in
            max(0, line.unitPrice.minorUnits * Int64(line.quantity) - line.discount.minorUnits + (totals.taxIncluded ? 0 : line.tax.minorUnits))
        }
        let weightSum = bases.reduce(0, +)
        let weights = weightSum > 0 ? bases : lines.map { Int64($0.quantity) }
        let totalWeight = max(1, weights.reduce(0, +))
        // Full-width products: goods × weight overflows Int64 for large orders.
        let parts = weights.map { totalWeight.dividingFullWidth(goods.multipliedFullWidth(by: $0)) }
        var shares = parts.map(\.quotient)
        var left = goods - shares.reduce(0, +)
        // Largest remainders first; ties by line order, so the split is deterministic.
        let order = weights.indices.sorted { a, b in
            parts[a].remainder != parts[b].remainder ? parts[a].remainder > parts[b].remainder : a < b
        }
        var index = 0
        while left > 0, !order.isEmpty {
            shares[order[index % order.count]] += 1
            left -= 1
            index += 1
        }
        var totalsByLine: [String: Int64] = [:]
        for (line, share) in zip(lines, shares) { totalsByLine[line.lineId, default: 0] += share }
        lineTotals = totalsByLine
    }

    /// The worth of `count` units of a line after `before` of its units were already
    /// counted (shipped or refunded).
    public func value(lineId: String, units count: Int, after before: Int) -> Int64 {
        guard let total = lineTotals[lineId], let quantity = quantities[lineId], quantity > 0 else { return 0 }
        let from = min(max(before, 0), quantity)
        let to = min(from + max(count, 0), quantity)
        let upTo = { (units: Int) in Int64(quantity).dividingFullWidth(total.multipliedFullWidth(by: Int64(units))).quotient }
        return upTo(to) - upTo(from)
    }

    /// The worth of `lines` after `counted` units per line id were already counted.
    public func value(of lines: [ShipmentLine], after counted: [String: Int]) -> Int64 {
        var seen = counted
        var sum: Int64 = 0
        for line in lines {
            sum += value(lineId: line.lineId, units: line.quantity, after: seen[line.lineId, default: 0])
            seen[line.lineId, default: 0] += line.quantity
        }
        return sum
    }
}

/// Units per line id in a list of shipment or return lines.
func unitsByLine(_ lines: [ShipmentLine]) -> [String: Int] {
    lines.reduce(into: [:]) { $0[$1.lineId, default: 0] += $1.quantity }
}

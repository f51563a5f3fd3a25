import Contracts

/// Exact integer arithmetic on minor units: rounding a ratio, splitting a total into parts.
///
/// Everything here works on non-negative amounts (invoices and credit notes both carry
/// positive amounts, UBL's convention), and products go through double-width integers so
/// that `amount × rate` cannot overflow before it is divided.
enum MinorUnits {
    /// `value × numerator / denominator` as a quotient and remainder, exact.
    static func scale(_ value: Int64, by numerator: Int64, over denominator: Int64) throws(InvoicingError) -> (quotient: Int64, remainder: Int64) {
        guard value >= 0, numerator >= 0, denominator > 0 else {
            throw .arithmetic("cannot scale \(value) by \(numerator)/\(denominator): negative amount or zero divisor")
        }
        // Non-negative, so unsigned: the 128-bit product divides exactly and only the
        // quotient has to fit back into Int64.
        let divisor = UInt64(denominator)
        let product = UInt64(value).multipliedFullWidth(by: UInt64(numerator))
        guard product.high < divisor else { throw .arithmetic("\(value) × \(numerator) / \(denominator) overflows") }
        let (quotient, remainder) = divisor.dividingFullWidth(product)
        guard let result = Int64(exactly: quotient) else { throw .arithmetic("\(value) × \(numerator) / \(denominator) overflows") }
        return (result, Int64(remainder))
    }

    /// `value × numerator / denominator` rounded half-up (half away from zero: all amounts
    /// are non-negative here), the commercial rounding tax authorities use.
    static func roundHalfUp(_ value: Int64, times numerator: Int64, over denominator: Int64) throws(InvoicingError) -> Int64 {
        let (quotient, remainder) = try scale(value, by: numerator, over: denominator)
        // remainder ≥ denominator / 2, written so that nothing can overflow.
        guard remainder >= denominator - remainder else { return quotient }
        guard quotient < Int64.max else { throw .arithmetic("\(value) × \(numerator) / \(denominator) overflows") }
        return quotient + 1
    }

    /// `total` split in proportion to `weights` by the largest-remainder method: each part is
    /// the floor of its exact share, and the units left over go one each to the parts with
    /// the largest fractional remainders (ties to the earlier part), so the parts sum to
    /// `total` exactly and none is more than one unit from its exact share.
    static func splitLargestRemainder(_ total: Int64, weights: [Int64]) throws(InvoicingError) -> [Int64] {
        let sum = try sum(weights)
        guard sum > 0 else {
            // Nothing to weigh by: the whole total goes to the first part, as there is no better claim.
            return weights.indices.map { $0 == 0 ? total : 0 }
        }
        var parts: [Int64] = []
        var remainders: [(index: Int, remainder: Int64)] = []
        for (index, weight) in weights.enumerated() {
            let (quotient, remainder) = try scale(total, by: weight, over: sum)
            parts.append(quotient)
            remainders.append((index, remainder))
        }
        var left = total - parts.reduce(0, +)
        for entry in remainders.sorted(by: { $0.remainder != $1.remainder ? $0.remainder > $1.remainder : $0.index < $1.index }) where left > 0 {
            parts[entry.index] += 1
            left -= 1
        }
        return parts
    }

    /// The sum of `amounts`, failing instead of trapping on overflow.
    static func sum(_ amounts: [Int64]) throws(InvoicingError) -> Int64 {
        var total: Int64 = 0
        for amount in amounts {
            let (next, overflow) = total.addingReportingOverflow(amount)
            guard !overflow else { throw .arithmetic("the amounts' sum does not fit in 64-bit minor units") }
            total = next
        }
        return total
    }

    /// The share of `total` that belongs to `quantity` units out of `ofQuantity`, when
    /// `before` units were already shared out in earlier documents.
    ///
    /// Cumulative rounding: the share is `round(total × (before + quantity) / of) −
    /// round(total × before / of)`. The documents are issued one at a time, so a
    /// largest-remainder split over all of them cannot be made up front; this one telescopes
    /// instead: however a line is split over shipments (or returns), its parts sum to
    /// `total` exactly, and each part is within one minor unit of its exact share.
    static func cumulativeShare(of total: Int64, quantity: Int, before: Int, ofQuantity: Int) throws(InvoicingError) -> Int64 {
        guard quantity >= 0, before >= 0, before + quantity <= ofQuantity, ofQuantity > 0 else {
            throw .quantity("cannot share \(quantity) after \(before) of \(ofQuantity) units")
        }
        let upTo = try roundHalfUp(total, times: Int64(before + quantity), over: Int64(ofQuantity))
        let upToBefore = try roundHalfUp(total, times: Int64(before), over: Int64(ofQuantity))
        return upTo - upToBefore
    }

    /// `minorUnits / quantity` as a decimal string with the currency's decimals plus up to
    /// four more, trailing zeros beyond the currency's trimmed: a unit price may need more
    /// precision than the currency (EN 16931 BT-146 allows it), so quantity × price matches
    /// the line amount.
    static func unitPrice(_ minorUnits: Int64, quantity: Int, exponent: Int) -> String {
        let extra = 4
        let magnitude = Int64(clamping: minorUnits.magnitude)
        let scaled = (try? roundHalfUp(magnitude, times: 10_000, over: Int64(max(quantity, 1)))) ?? 0
        var digits = String(scaled)
        let decimals = exponent + extra
        if digits.count <= decimals { digits = String(repeating: "0", count: decimals - digits.count + 1) + digits }
        digits.insert(".", at: digits.index(digits.endIndex, offsetBy: -decimals))
        // Trim the extra zeros the currency does not need, and the point if nothing is left after it.
        var trimmable = extra
        while trimmable > 0, digits.hasSuffix("0") {
            digits.removeLast()
            trimmable -= 1
        }
        if digits.hasSuffix(".") { digits.removeLast() }
        return (minorUnits < 0 ? "-" : "") + digits
    }
}

/// Why an invoice or credit note could not be computed.
public enum InvoicingError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A tax rate is missing from the table or the table is inconsistent.
    case taxTable(String)
    /// Quantities do not add up (more invoiced or credited than ordered).
    case quantity(String)
    /// The amounts cannot be computed (overflow, currency mismatch, negative amount).
    case arithmetic(String)
    /// The order's tax does not fit the supply (tax charged on a reverse-charge sale).
    case treatment(String)
    /// A credit note would credit more than the invoice still has un-credited.
    case overCredit(String)
    /// The document cannot be written or rendered.
    case rendering(String)

    /// The message, prefixed with what kind of problem it is.
    public var description: String {
        switch self {
        case .taxTable(let message): "tax table: \(message)"
        case .quantity(let message): "quantity: \(message)"
        case .arithmetic(let message): "arithmetic: \(message)"
        case .treatment(let message): "tax treatment: \(message)"
        case .overCredit(let message): "over-credit: \(message)"
        case .rendering(let message): "rendering: \(message)"
        }
    }
}

extension Money {
    /// Adds, turning the contract error into an invoicing one.
    func plus(_ other: Money) throws(InvoicingError) -> Money {
        do { return try adding(other) } catch { throw .arithmetic(error.description) }
    }

    /// Subtracts, turning the contract error into an invoicing one.
    func minus(_ other: Money) throws(InvoicingError) -> Money {
        do { return try subtracting(other) } catch { throw .arithmetic(error.description) }
    }
}

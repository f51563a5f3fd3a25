import Contracts
import Foundation

/// What a credit note credits.
public enum CreditAmount: Sendable, Hashable {
    /// Units returned per line id of the invoice: the lines' net and tax are credited pro rata.
    case returned([String: Int])
    /// A gross amount (an appeasement), split over the invoice's tax rates in proportion
    /// to their gross amounts.
    case amount(Money)
}

/// Builds credit notes against an issued invoice: pure, no I/O.
public enum CreditNoteBuilder {
    /// The credit note draft for `credit` against `invoice`, given the credit notes
    /// already issued against it (`earlier`), in the credit-note `series`.
    ///
    /// Amounts are positive (UBL credit notes carry positive amounts; the document type
    /// says they go the other way). Throws ``InvoicingError/overCredit(_:)`` when a line
    /// would be credited more units than it has left or the note would take the
    /// invoice's credited gross above its gross.
    public static func draft(
        against invoice: Invoice, earlier: [Invoice] = [], credit: CreditAmount, series: String, cause: String,
        issuedAt: Date, note: String? = nil
    ) throws(InvoicingError) -> Invoice {
        guard invoice.kind == .invoice else { throw .overCredit("\(invoice.number) is a credit note; credit the invoice it corrects") }
        let lines: [InvoiceLine]
        switch credit {
        case .returned(let quantities):
            lines = try returnedLines(invoice: invoice, earlier: earlier, quantities: quantities)
        case .amount(let amount):
            lines = try appeasementLines(invoice: invoice, amount: amount)
        }
        let totals = try TaxCalculator.totals(
            lines: lines, currency: invoice.currency, treatment: invoice.reverseCharge ? .reverseCharge : .destination,
            rounding: invoice.rounding)
        try checkRemaining(invoice: invoice, earlier: earlier, crediting: totals.grossTotal)
        return Invoice(
            invoiceId: "", number: "", kind: .creditNote, legalEntity: invoice.legalEntity, series: series, sequence: 0, issuedAt: issuedAt,
            orderId: invoice.orderId,
            cause: cause, correctedInvoice: invoice.number, seller: invoice.seller, buyer: invoice.buyer,
            currency: invoice.currency, pricesIncludeTax: invoice.pricesIncludeTax, rounding: invoice.rounding,
            reverseCharge: invoice.reverseCharge, lines: totals.lines, taxes: totals.taxes, netTotal: totals.netTotal,
            taxTotal: totals.taxTotal, grossTotal: totals.grossTotal, bookCurrency: invoice.bookCurrency,
            exchangeRate: invoice.exchangeRate, note: note)
    }

    /// Returned units: each line's share of the invoice line's net and tax, continuing
    /// after the units earlier notes credited, so a line credited in full credits exactly
    /// what it was invoiced.
    static func returnedLines(invoice: Invoice, earlier: [Invoice], quantities: [String: Int]) throws(InvoicingError) -> [InvoiceLine] {
        guard !quantities.isEmpty, quantities.values.allSatisfy({ $0 > 0 }) else {
            throw .quantity("a return credits at least one unit of at least one line")
        }
        for lineId in quantities.keys where !invoice.lines.contains(where: { $0.lineId == lineId }) {
            throw .quantity("invoice \(invoice.number) has no line \(lineId)")
        }
        var lines: [InvoiceLine] = []
        for original in invoice.lines {
            guard let quantity = quantities[original.lineId] else { continue }
            let before = earlier.filter { $0.kind == .creditNote && $0.correctedInvoice == invoice.number }
                .flatMap(\.lines).filter { $0.lineId == original.lineId }.reduce(0) { $0 + $1.quantity }
            guard before + quantity <= original.quantity else {
                throw .overCredit("line \(original.lineId) of \(invoice.number): \(quantity) units to credit, \(original.quantity - before) of \(original.quantity) left")
            }
            let net = try MinorUnits.cumulativeShare(of: original.netAmount.minorUnits, quantity: quantity, before: before, ofQuantity: original.quantity)
            let tax = try MinorUnits.cumulativeShare(of: original.taxAmount.minorUnits, quantity: quantity, before: before, ofQuantity: original.quantity)
            var line = original
            line.quantity = quantity
            line.netAmount = Money(minorUnits: net, currency: invoice.currency)
            line.taxAmount = Money(minorUnits: tax, currency: invoice.currency)
            line.unitPrice = Money(minorUnits: try MinorUnits.roundHalfUp(net, times: 1, over: Int64(quantity)), currency: invoice.currency)
            lines.append(line)
        }
        return lines
    }

    /// An appeasement: one line per tax rate of the invoice, carrying that rate's share
    /// of the gross amount (largest remainder), its tax taken out of it at the rate.
    static func appeasementLines(invoice: Invoice, amount: Money) throws(InvoicingError) -> [InvoiceLine] {
        guard amount.currency == invoice.currency else {
            throw .arithmetic("appeasement in \(amount.currency), invoice \(invoice.number) in \(invoice.currency)")
        }
        guard amount.minorUnits > 0 else { throw .quantity("an appeasement credits more than 0") }
        let weights = try invoice.taxes.map { subtotal throws(InvoicingError) in try MinorUnits.sum([subtotal.taxableAmount.minorUnits, subtotal.taxAmount.minorUnits]) }
        let parts = try MinorUnits.splitLargestRemainder(amount.minorUnits, weights: weights)
        var lines: [InvoiceLine] = []
        for (subtotal, gross) in zip(invoice.taxes, parts) where gross > 0 {
            let tax = try TaxCalculator.tax(of: gross, basisPoints: subtotal.taxRateBasisPoints, inclusive: true)
            let net = Money(minorUnits: gross - tax, currency: invoice.currency)
            lines.append(InvoiceLine(
                lineId: "appeasement-\(subtotal.taxCategory)-\(subtotal.taxRateBasisPoints)", sku: nil,
                description: "Goodwill credit", quantity: 1, unitPrice: net, netAmount: net,
                taxCategory: subtotal.taxCategory, taxRateBasisPoints: subtotal.taxRateBasisPoints,
                taxAmount: Money(minorUnits: tax, currency: invoice.currency)))
        }
        return lines
    }

    /// Throws unless `crediting` fits in what the invoice has not been credited yet.
    static func checkRemaining(invoice: Invoice, earlier: [Invoice], crediting: Money) throws(InvoicingError) {
        var credited = Money.zero(invoice.currency)
        for note in earlier where note.kind == .creditNote && note.correctedInvoice == invoice.number {
            credited = try credited.plus(note.grossTotal)
        }
        let left = try invoice.grossTotal.minus(credited)
        guard crediting.minorUnits <= left.minorUnits else {
            throw .overCredit("\(crediting) to credit on \(invoice.number), only \(left) of \(invoice.grossTotal) left un-credited")
        }
    }
}

import Contracts
import Foundation
import Mustache

/// The printable HTML of an invoice or credit note, from a Mustache template (default
/// `config/invoices/invoice.mustache`).
///
/// Every value goes through Mustache's `{{ }}` HTML escaping: names, addresses and item
/// descriptions come from customers and channels and must not become markup. A template
/// that uses the unescaped `{{{ }}}` or `{{& }}` forms is refused for that reason.
public enum InvoiceHTML {
    /// Where the stage looks when no template is named.
    public static let defaultTemplatePath = "config/invoices/invoice.mustache"

    /// The document rendered with `template` (the template's text).
    public static func render(_ invoice: Invoice, template: String) throws(InvoicingError) -> String {
        guard !template.contains("{{{"), !template.contains("{{&") else {
            throw .rendering("the invoice template uses unescaped output ({{{ }}} or {{& }}): every value must be escaped")
        }
        let compiled: MustacheTemplate
        do {
            compiled = try MustacheTemplate(string: template)
        } catch {
            throw .rendering("the invoice template does not parse: \(error)")
        }
        return compiled.render(values(invoice))
    }

    /// The values the template sees, all strings or lists of dictionaries of strings.
    static func values(_ invoice: Invoice) -> [String: Any] {
        var values: [String: Any] = [
            "title": invoice.kind == .invoice ? "Invoice" : "Credit note",
            "number": invoice.number,
            "issueDate": Root.day(invoice.issuedAt),
            "orderId": invoice.orderId,
            "currency": invoice.currency.code,
            "seller": party(invoice.seller),
            "buyer": party(invoice.buyer),
            "lines": invoice.lines.map { line -> [String: Any] in
                [
                    "description": line.description, "sku": line.sku ?? "", "quantity": String(line.quantity),
                    "unitPrice": MinorUnits.unitPrice(line.netAmount.minorUnits, quantity: line.quantity, exponent: line.netAmount.currency.minorUnitExponent),
                    "netAmount": line.netAmount.decimalString, "rate": UBLDocument.percent(line.taxRateBasisPoints),
                    "category": line.taxCategory,
                ]
            },
            "taxes": invoice.taxes.map { tax -> [String: Any] in
                [
                    "category": tax.taxCategory, "rate": UBLDocument.percent(tax.taxRateBasisPoints),
                    "taxable": tax.taxableAmount.decimalString, "tax": tax.taxAmount.decimalString,
                    "reason": tax.exemptionReason ?? "",
                ]
            },
            "netTotal": invoice.netTotal.decimalString,
            "taxTotal": invoice.taxTotal.decimalString,
            "grossTotal": invoice.grossTotal.decimalString,
        ]
        if let corrected = invoice.correctedInvoice { values["correctedInvoice"] = corrected }
        if invoice.reverseCharge { values["reverseCharge"] = true }
        if let note = invoice.note { values["note"] = note }
        if let book = invoice.bookCurrency, let rate = invoice.exchangeRate {
            values["bookCurrency"] = book.code
            values["exchangeRate"] = rate
        }
        return values
    }

    static func party(_ party: InvoiceParty) -> [String: Any] {
        var values: [String: Any] = ["name": party.name]
        if let taxId = party.taxId { values["taxId"] = taxId }
        if let address = party.address {
            values["addressLines"] = address.lines
            values["city"] = address.city
            values["postalCode"] = address.postalCode ?? ""
            values["region"] = address.region ?? ""
            values["country"] = address.country.code
        }
        return values
    }
}

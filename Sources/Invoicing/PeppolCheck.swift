import Foundation

/// A structural check of a UBL Invoice or CreditNote against the EN 16931 / Peppol BIS
/// Billing 3.0 rules that can be checked without code lists: mandatory elements (BR-01…
/// BR-16, BR-21…BR-27), the sums (BR-CO-10, 13…16), the VAT category rules for standard
/// rate (BR-S-*), reverse charge (BR-AE-*) and export (BR-G-*), the accounting currency
/// (BR-53) and one currency per document (PEPPOL-EN16931-R051).
///
/// It is not the official Schematron: it reads the document as any receiver would and
/// catches what this module could get wrong. Rules on allowances and charges (BR-AE-03/04,
/// 06/07 and their like) do not apply: these documents carry none.
public enum PeppolCheck {
    /// One broken rule.
    public struct Violation: Sendable, Hashable, CustomStringConvertible {
        /// The rule's id, e.g. `BR-CO-15`.
        public var rule: String
        /// What is wrong, with the values involved.
        public var message: String

        /// `BR-CO-15: ...`.
        public var description: String { "\(rule): \(message)" }
    }

    /// Every violation in `xml`; empty when the document passes.
    public static func check(_ xml: String) -> [Violation] {
        switch XMLNode.parse(xml) {
        case .failure(let failure):
            return [Violation(rule: "XML", message: "not well-formed: \(failure.message)")]
        case .success(let root):
            var check = Checker(root: root)
            check.run()
            return check.violations
        }
    }
}

/// One run of the check over a parsed document.
private struct Checker {
    let root: XMLNode
    let credit: Bool
    var violations: [PeppolCheck.Violation] = []

    init(root: XMLNode) {
        self.root = root
        self.credit = root.name == "CreditNote"
    }

    var lineName: String { credit ? "CreditNoteLine" : "InvoiceLine" }
    var lines: [XMLNode] { root.all(lineName) }
    var currency: String? { root.text("DocumentCurrencyCode") }
    /// The TaxTotal in the document currency (the one with subtotals).
    var documentTaxTotal: XMLNode? {
        root.all("TaxTotal").first { $0.child("TaxAmount")?.attributes["currencyID"] == currency } ?? root.child("TaxTotal")
    }
    var subtotals: [XMLNode] { documentTaxTotal?.all("TaxSubtotal") ?? [] }

    mutating func fail(_ rule: String, _ message: String) {
        violations.append(PeppolCheck.Violation(rule: rule, message: message))
    }

    mutating func require(_ rule: String, _ path: String, in node: XMLNode? = nil, _ what: String) {
        if (node ?? root).text(path) == nil { fail(rule, "\(what) (\(path)) is missing") }
    }

    mutating func run() {
        guard root.name == "Invoice" || root.name == "CreditNote" else {
            fail("UBL-ROOT", "the root element is \(root.name), not Invoice or CreditNote")
            return
        }
        checkMandatory()
        checkLines()
        checkSums()
        checkCategory("S", id: "BR-S")
        checkCategory("AE", id: "BR-AE")
        checkCategory("G", id: "BR-G")
        checkCurrencies()
    }

    // MARK: Mandatory elements

    mutating func checkMandatory() {
        require("BR-01", "CustomizationID", "specification identifier")
        require("BR-02", "ID", "invoice number")
        require("BR-03", "IssueDate", "issue date")
        if let date = root.text("IssueDate"), !Self.isDay(date) { fail("BR-03", "issue date '\(date)' is not yyyy-MM-dd") }
        require("BR-04", credit ? "CreditNoteTypeCode" : "InvoiceTypeCode", "type code")
        require("BR-05", "DocumentCurrencyCode", "currency code")
        let seller = "AccountingSupplierParty/Party"
        let buyer = "AccountingCustomerParty/Party"
        require("BR-06", "\(seller)/PartyLegalEntity/RegistrationName", "seller name")
        require("BR-07", "\(buyer)/PartyLegalEntity/RegistrationName", "buyer name")
        if root.at("\(seller)/PostalAddress") == nil { fail("BR-08", "seller postal address (\(seller)/PostalAddress) is missing") }
        require("BR-09", "\(seller)/PostalAddress/Country/IdentificationCode", "seller country code")
        if root.at("\(buyer)/PostalAddress") == nil { fail("BR-10", "buyer postal address (\(buyer)/PostalAddress) is missing") }
        require("BR-11", "\(buyer)/PostalAddress/Country/IdentificationCode", "buyer country code")
        require("BR-12", "LegalMonetaryTotal/LineExtensionAmount", "sum of line net amounts")
        require("BR-13", "LegalMonetaryTotal/TaxExclusiveAmount", "total without VAT")
        require("BR-14", "LegalMonetaryTotal/TaxInclusiveAmount", "total with VAT")
        require("BR-15", "LegalMonetaryTotal/PayableAmount", "amount due")
        if lines.isEmpty { fail("BR-16", "the document has no \(lineName)") }
        if subtotals.isEmpty { fail("BR-CO-18", "the tax total has no TaxSubtotal") }
        if credit, root.text("BillingReference/InvoiceDocumentReference/ID") == nil {
            fail("BR-55", "a credit note names no corrected invoice (BillingReference/InvoiceDocumentReference/ID)")
        }
    }

    mutating func checkLines() {
        let quantity = credit ? "CreditedQuantity" : "InvoicedQuantity"
        for (index, line) in lines.enumerated() {
            let label = "line \(line.text("ID") ?? "#\(index + 1)")"
            require("BR-21", "ID", in: line, "\(label) identifier")
            require("BR-22", quantity, in: line, "\(label) quantity")
            require("BR-24", "LineExtensionAmount", in: line, "\(label) net amount")
            require("BR-25", "Item/Name", in: line, "\(label) item name")
            require("BR-26", "Price/PriceAmount", in: line, "\(label) net price")
            if let price = Self.decimal(line.text("Price/PriceAmount")), price < 0 { fail("BR-27", "\(label) net price \(price) is negative") }
            require("BR-CO-04", "Item/ClassifiedTaxCategory/ID", in: line, "\(label) VAT category")
        }
    }

    // MARK: Sums

    mutating func checkSums() {
        let total = root.child("LegalMonetaryTotal")
        let lineSum = lines.compactMap { Self.decimal($0.text("LineExtensionAmount")) }.reduce(0, +)
        let lineExtension = Self.decimal(total?.text("LineExtensionAmount"))
        if let lineExtension, lineExtension != lineSum {
            fail("BR-CO-10", "sum of line net amounts is \(lineSum), LineExtensionAmount says \(lineExtension)")
        }
        let exclusive = Self.decimal(total?.text("TaxExclusiveAmount"))
        let allowances = Self.decimal(total?.text("AllowanceTotalAmount")) ?? 0
        let charges = Self.decimal(total?.text("ChargeTotalAmount")) ?? 0
        if let exclusive, let lineExtension, exclusive != lineExtension - allowances + charges {
            fail("BR-CO-13", "TaxExclusiveAmount \(exclusive) is not LineExtensionAmount \(lineExtension) − allowances + charges")
        }
        let taxAmount = Self.decimal(documentTaxTotal?.text("TaxAmount"))
        let subtotalSum = subtotals.compactMap { Self.decimal($0.text("TaxAmount")) }.reduce(0, +)
        if let taxAmount, taxAmount != subtotalSum {
            fail("BR-CO-14", "TaxTotal/TaxAmount \(taxAmount) is not the sum of the subtotals' tax, \(subtotalSum)")
        }
        let inclusive = Self.decimal(total?.text("TaxInclusiveAmount"))
        if let inclusive, let exclusive, inclusive != exclusive + (taxAmount ?? 0) {
            fail("BR-CO-15", "TaxInclusiveAmount \(inclusive) is not TaxExclusiveAmount \(exclusive) + tax \(taxAmount ?? 0)")
        }
        let payable = Self.decimal(total?.text("PayableAmount"))
        let prepaid = Self.decimal(total?.text("PrepaidAmount")) ?? 0
        let rounding = Self.decimal(total?.text("PayableRoundingAmount")) ?? 0
        if let payable, let inclusive, payable != inclusive - prepaid + rounding {
            fail("BR-CO-16", "PayableAmount \(payable) is not TaxInclusiveAmount \(inclusive) − prepaid + rounding")
        }
    }

    // MARK: VAT categories

    /// The rules each of S, AE and G has in the same numbering: -01 a subtotal exists,
    /// -02 the VAT ids, -05 the line rate, -08 the taxable amount per rate, -09 the tax,
    /// -10 the exemption reason.
    mutating func checkCategory(_ category: String, id: String) {
        let categoryLines = lines.filter { $0.text("Item/ClassifiedTaxCategory/ID") == category }
        let categorySubtotals = subtotals.filter { $0.text("TaxCategory/ID") == category }
        guard !categoryLines.isEmpty || !categorySubtotals.isEmpty else { return }
        if !categoryLines.isEmpty {
            if category == "S" ? categorySubtotals.isEmpty : categorySubtotals.count != 1 {
                fail("\(id)-01", "lines in category \(category) need \(category == "S" ? "a" : "exactly one") \(category) tax subtotal, found \(categorySubtotals.count)")
            }
            checkTaxIds(category, id: id)
        }
        for line in categoryLines {
            let rate = Self.decimal(line.text("Item/ClassifiedTaxCategory/Percent"))
            let label = "line \(line.text("ID") ?? "?")"
            if category == "S", (rate ?? 0) <= 0 { fail("\(id)-05", "\(label) in category S needs a rate above 0") }
            if category != "S", rate != 0 { fail("\(id)-05", "\(label) in category \(category) must have rate 0") }
        }
        for subtotal in categorySubtotals { checkSubtotal(subtotal, category: category, id: id, lines: categoryLines) }
    }

    mutating func checkTaxIds(_ category: String, id: String) {
        let sellerSchemes = root.at("AccountingSupplierParty/Party")?.all("PartyTaxScheme") ?? []
        let sellerVAT = sellerSchemes.contains { $0.text("TaxScheme/ID") == "VAT" && $0.text("CompanyID") != nil }
        let sellerAny = sellerSchemes.contains { $0.text("CompanyID") != nil }
        let representative = root.text("TaxRepresentativeParty/PartyTaxScheme/CompanyID") != nil
        switch category {
        case "S":
            if !sellerAny && !representative { fail("BR-S-02", "category S needs the seller's VAT id or tax registration (PartyTaxScheme/CompanyID)") }
        case "AE":
            if !sellerVAT && !representative { fail("BR-AE-02", "reverse charge needs the seller's VAT id (PartyTaxScheme with TaxScheme VAT)") }
            let buyer = root.at("AccountingCustomerParty/Party")
            let buyerVAT = buyer?.all("PartyTaxScheme").contains { $0.text("TaxScheme/ID") == "VAT" && $0.text("CompanyID") != nil } ?? false
            let buyerRegistration = buyer?.text("PartyLegalEntity/CompanyID") != nil
            if !buyerVAT && !buyerRegistration { fail("BR-AE-02", "reverse charge needs the buyer's VAT id (PartyTaxScheme with TaxScheme VAT)") }
        default:
            if !sellerVAT && !representative { fail("\(id)-02", "category \(category) needs the seller's VAT id (PartyTaxScheme with TaxScheme VAT)") }
        }
    }

    mutating func checkSubtotal(_ subtotal: XMLNode, category: String, id: String, lines: [XMLNode]) {
        let rate = Self.decimal(subtotal.text("TaxCategory/Percent"))
        let taxable = Self.decimal(subtotal.text("TaxableAmount")) ?? 0
        let tax = Self.decimal(subtotal.text("TaxAmount")) ?? 0
        let sameRate = lines.filter { Self.decimal($0.text("Item/ClassifiedTaxCategory/Percent")) == rate }
        let lineSum = sameRate.compactMap { Self.decimal($0.text("LineExtensionAmount")) }.reduce(0, +)
        if taxable != lineSum {
            fail("\(id)-08", "\(category) \(rate ?? 0) %: taxable amount \(taxable) is not the sum of its lines' net amounts, \(lineSum)")
        }
        let reason = subtotal.text("TaxCategory/TaxExemptionReason") ?? subtotal.text("TaxCategory/TaxExemptionReasonCode")
        if category == "S" {
            // Peppol's own test allows one currency unit of difference, as tax rounded per
            // line may drift from tax computed on the subtotal.
            let expected = taxable * (rate ?? 0) / 100
            if abs(tax - expected) > 1 { fail("\(id)-09", "S \(rate ?? 0) %: tax \(tax) is not taxable \(taxable) × rate (\(expected))") }
            if reason != nil { fail("\(id)-10", "S subtotal must not have an exemption reason") }
        } else {
            if tax != 0 { fail("\(id)-09", "\(category) subtotal tax must be 0, is \(tax)") }
            if reason == nil { fail("\(id)-10", "\(category) subtotal needs an exemption reason (TaxExemptionReason or code)") }
        }
    }

    // MARK: Currencies

    mutating func checkCurrencies() {
        guard let currency else { return }
        let taxCurrency = root.text("TaxCurrencyCode")
        if let taxCurrency {
            let inBook = root.all("TaxTotal").filter { $0.child("TaxAmount")?.attributes["currencyID"] == taxCurrency }
            if taxCurrency != currency, inBook.isEmpty {
                fail("BR-53", "TaxCurrencyCode is \(taxCurrency) but no TaxTotal/TaxAmount is given in it")
            }
        }
        var wrong: Set<String> = []
        func visit(_ node: XMLNode, underBookTotal: Bool) {
            if let id = node.attributes["currencyID"], id != currency, !(underBookTotal && id == taxCurrency) { wrong.insert("\(node.name)=\(id)") }
            for child in node.children {
                let bookTotal = child.name == "TaxTotal" && child.child("TaxAmount")?.attributes["currencyID"] == taxCurrency && taxCurrency != nil
                visit(child, underBookTotal: underBookTotal || bookTotal)
            }
        }
        visit(root, underBookTotal: false)
        if !wrong.isEmpty {
            fail("PEPPOL-EN16931-R051", "amounts not in the document currency \(currency): \(wrong.sorted().joined(separator: ", "))")
        }
    }

    // MARK: Values

    static func decimal(_ text: String?) -> Decimal? {
        guard let text, !text.isEmpty else { return nil }
        return Decimal(string: text, locale: Locale(identifier: "en_US_POSIX"))
    }

    static func isDay(_ text: String) -> Bool {
        let parts = text.split(separator: "-")
        return text.count == 10 && parts.count == 3 && parts.allSatisfy { $0.allSatisfy(\.isNumber) }
            && (1...12).contains(Int(parts[1]) ?? 0) && (1...31).contains(Int(parts[2]) ?? 0)
    }
}

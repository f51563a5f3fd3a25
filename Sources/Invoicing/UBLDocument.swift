import Contracts
import Foundation
import XMLCoder

/// Writes an ``Contracts/Invoice`` as a UBL 2.1 Invoice or CreditNote following Peppol BIS
/// Billing 3.0 (EN 16931).
///
/// Every amount is printed with its currency's exponent and a `currencyID`. Elements come
/// in the order of the UBL schema's `xsd:sequence`, which validators enforce, so each
/// aggregate below writes its children by hand rather than by synthesized `Codable`.
public enum UBLDocument {
    /// EN 16931 compliance with the Peppol BIS Billing 3.0 extension (BT-24).
    public static let customizationID = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
    /// Peppol billing process 01 (BT-23).
    public static let profileID = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
    /// UBL's common basic components.
    public static let cbcNamespace = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
    /// UBL's common aggregate components.
    public static let cacNamespace = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"

    /// The root namespace for `kind`.
    public static func rootNamespace(_ kind: InvoiceKind) -> String {
        kind == .invoice ? "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2" : "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
    }

    /// The document as UTF-8 XML.
    public static func xml(_ invoice: Invoice) throws(InvoicingError) -> String {
        let root = try Root(invoice)
        let encoder = XMLEncoder()
        encoder.outputFormatting = [.prettyPrinted]
        let name = invoice.kind == .invoice ? "Invoice" : "CreditNote"
        let attributes = ["xmlns": rootNamespace(invoice.kind), "xmlns:cac": cacNamespace, "xmlns:cbc": cbcNamespace]
        do {
            let data = try encoder.encode(root, withRootKey: name, rootAttributes: attributes, header: XMLHeader(version: 1.0, encoding: "UTF-8"))
            return String(decoding: data, as: UTF8.self)
        } catch {
            throw .rendering("UBL for \(invoice.number): \(error)")
        }
    }

    /// `basisPoints` as a percentage without needless decimals: 1900 → `19`, 550 → `5.5`.
    static func percent(_ basisPoints: Int) -> String {
        let whole = basisPoints / 100
        var fraction = String(format: "%02d", basisPoints % 100)
        while fraction.hasSuffix("0") { fraction.removeLast() }
        return fraction.isEmpty ? String(whole) : "\(whole).\(fraction)"
    }

    /// Whether `taxId` is a VAT identifier (BT-31: it starts with its country's prefix,
    /// BR-CO-09) rather than another tax registration (BT-32: ABN, US sales tax permit).
    static func isVATIdentifier(_ taxId: String, country: CountryCode?) -> Bool {
        let prefix = String(taxId.prefix(2))
        guard let country else { return false }
        return prefix == country.code || (country.code == "GR" && prefix == "EL")
    }
}

// MARK: - The XML model

/// A coding key that is whatever element name it is given.
struct Element: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ name: String) { stringValue = name }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// Writes children in the order given, skipping absent optionals.
extension KeyedEncodingContainer where Key == Element {
    mutating func put<Value: Encodable>(_ name: String, _ value: Value?) throws {
        if let value { try encode(value, forKey: Element(name)) }
    }
}

/// A value with one attribute (`currencyID`, `unitCode`, `schemeID`) and text content.
struct Attributed: Encodable, DynamicNodeEncoding {
    let attribute: String
    let attributeValue: String
    let value: String

    static func nodeEncoding(for key: any CodingKey) -> XMLEncoder.NodeEncoding {
        key.stringValue.isEmpty ? .element : .attribute
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Element.self)
        try container.encode(attributeValue, forKey: Element(attribute))
        // The empty key is XMLCoder's element text.
        try container.encode(value, forKey: Element(""))
    }

    static func amount(_ money: Money) -> Attributed {
        Attributed(attribute: "currencyID", attributeValue: money.currency.code, value: money.decimalString)
    }
}

/// An aggregate written from an ordered list of children.
struct Aggregate: Encodable {
    var children: [(String, any Encodable)] = []

    mutating func add(_ name: String, _ value: (any Encodable)?) {
        if let value { children.append((name, value)) }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Element.self)
        for (name, value) in children { try container.encode(value, forKey: Element(name)) }
    }

    static func with(_ name: String, _ value: any Encodable) -> Aggregate {
        var aggregate = Aggregate()
        aggregate.add(name, value)
        return aggregate
    }
}

/// The document's root element's children, built from an invoice.
struct Root: Encodable {
    let body: Aggregate

    init(_ invoice: Invoice) throws(InvoicingError) {
        let credit = invoice.kind == .creditNote
        var body = Aggregate()
        body.add("cbc:CustomizationID", UBLDocument.customizationID)
        body.add("cbc:ProfileID", UBLDocument.profileID)
        body.add("cbc:ID", invoice.number)
        body.add("cbc:IssueDate", Self.day(invoice.issuedAt))
        body.add(credit ? "cbc:CreditNoteTypeCode" : "cbc:InvoiceTypeCode", credit ? "381" : "380")
        body.add("cbc:Note", invoice.note)
        body.add("cbc:DocumentCurrencyCode", invoice.currency.code)
        body.add("cbc:TaxCurrencyCode", invoice.bookCurrency?.code)
        body.add("cbc:BuyerReference", invoice.orderId)
        if let corrected = invoice.correctedInvoice {
            body.add("cac:BillingReference", Aggregate.with("cac:InvoiceDocumentReference", Aggregate.with("cbc:ID", corrected)))
        }
        body.add("cac:AccountingSupplierParty", Aggregate.with("cac:Party", Self.party(invoice.seller)))
        body.add("cac:AccountingCustomerParty", Aggregate.with("cac:Party", Self.party(invoice.buyer)))
        body.add("cac:TaxTotal", Self.taxTotal(invoice))
        if let book = invoice.bookCurrency, let rate = invoice.exchangeRate {
            // BR-53: the tax total again in the accounting currency, without subtotals.
            let converted = try BookCurrency(currency: book, rate: rate).convert(invoice.taxTotal)
            body.add("cac:TaxTotal", Aggregate.with("cbc:TaxAmount", Attributed.amount(converted)))
        }
        body.add("cac:LegalMonetaryTotal", Self.monetaryTotal(invoice))
        for line in invoice.lines {
            body.add(credit ? "cac:CreditNoteLine" : "cac:InvoiceLine", Self.line(line, credit: credit))
        }
        self.body = body
    }

    func encode(to encoder: any Encoder) throws { try body.encode(to: encoder) }

    static func day(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? calendar.timeZone
        let parts = calendar.dateComponents([.year, .month, .day], from: date)
        return String(format: "%04d-%02d-%02d", parts.year ?? 1970, parts.month ?? 1, parts.day ?? 1)
    }

    /// Peppol electronic address schemes (EAS) of the VAT numbers we can name, by country.
    static let vatEndpointSchemes = [
        "DE": "9930", "FR": "9957", "NL": "9944", "IT": "9906", "ES": "9920", "AT": "9914", "IE": "9935", "GB": "9932",
        "BE": "9925", "PT": "9946", "LU": "9938", "PL": "9945", "SE": "9955", "DK": "9904", "FI": "9924", "GR": "9933",
    ]

    /// EndpointID, name, address, tax scheme, legal entity, contact, in UBL's order.
    static func party(_ party: InvoiceParty) -> Aggregate {
        var result = Aggregate()
        result.add("cbc:EndpointID", endpoint(party))
        result.add("cac:PartyName", Aggregate.with("cbc:Name", party.name))
        if let address = party.address { result.add("cac:PostalAddress", postalAddress(address)) }
        if let taxId = party.taxId, !taxId.isEmpty {
            var scheme = Aggregate()
            scheme.add("cbc:CompanyID", taxId)
            let vat = UBLDocument.isVATIdentifier(taxId, country: party.address?.country)
            scheme.add("cac:TaxScheme", Aggregate.with("cbc:ID", vat ? "VAT" : "TAX"))
            result.add("cac:PartyTaxScheme", scheme)
        }
        result.add("cac:PartyLegalEntity", Aggregate.with("cbc:RegistrationName", party.name))
        if let email = party.email { result.add("cac:Contact", Aggregate.with("cbc:ElectronicMail", email)) }
        return result
    }

    /// The party's electronic address: its VAT number where Peppol has a scheme for its
    /// country, else its email (EAS `EM`); none when it has neither.
    static func endpoint(_ party: InvoiceParty) -> Attributed? {
        if let taxId = party.taxId, let country = party.address?.country, UBLDocument.isVATIdentifier(taxId, country: country),
            let scheme = vatEndpointSchemes[country.code]
        {
            return Attributed(attribute: "schemeID", attributeValue: scheme, value: taxId)
        }
        if let email = party.email, !email.isEmpty { return Attributed(attribute: "schemeID", attributeValue: "EM", value: email) }
        return nil
    }

    static func postalAddress(_ address: Address) -> Aggregate {
        var result = Aggregate()
        result.add("cbc:StreetName", address.lines.first)
        result.add("cbc:AdditionalStreetName", address.lines.count > 1 ? address.lines[1] : nil)
        result.add("cbc:CityName", address.city)
        result.add("cbc:PostalZone", address.postalCode)
        result.add("cbc:CountrySubentity", address.region)
        result.add("cac:Country", Aggregate.with("cbc:IdentificationCode", address.country.code))
        return result
    }

    static func taxCategory(category: String, basisPoints: Int, reason: String?) -> Aggregate {
        var result = Aggregate()
        result.add("cbc:ID", category)
        // Outside the scope of tax (O) has no rate (BR-O-05); every other category has one.
        result.add("cbc:Percent", category == "O" ? nil : UBLDocument.percent(basisPoints))
        result.add("cbc:TaxExemptionReason", reason)
        result.add("cac:TaxScheme", Aggregate.with("cbc:ID", "VAT"))
        return result
    }

    static func taxTotal(_ invoice: Invoice) -> Aggregate {
        var result = Aggregate()
        result.add("cbc:TaxAmount", Attributed.amount(invoice.taxTotal))
        for subtotal in invoice.taxes {
            var entry = Aggregate()
            entry.add("cbc:TaxableAmount", Attributed.amount(subtotal.taxableAmount))
            entry.add("cbc:TaxAmount", Attributed.amount(subtotal.taxAmount))
            entry.add("cac:TaxCategory", taxCategory(category: subtotal.taxCategory, basisPoints: subtotal.taxRateBasisPoints, reason: subtotal.exemptionReason))
            result.add("cac:TaxSubtotal", entry)
        }
        return result
    }

    static func monetaryTotal(_ invoice: Invoice) -> Aggregate {
        var result = Aggregate()
        result.add("cbc:LineExtensionAmount", Attributed.amount(invoice.netTotal))
        result.add("cbc:TaxExclusiveAmount", Attributed.amount(invoice.netTotal))
        result.add("cbc:TaxInclusiveAmount", Attributed.amount(invoice.grossTotal))
        result.add("cbc:PayableAmount", Attributed.amount(invoice.grossTotal))
        return result
    }

    static func line(_ line: InvoiceLine, credit: Bool) -> Aggregate {
        var result = Aggregate()
        result.add("cbc:ID", line.lineId)
        result.add(credit ? "cbc:CreditedQuantity" : "cbc:InvoicedQuantity", Attributed(attribute: "unitCode", attributeValue: "C62", value: String(line.quantity)))
        result.add("cbc:LineExtensionAmount", Attributed.amount(line.netAmount))
        var item = Aggregate()
        item.add("cbc:Name", line.description)
        if let sku = line.sku { item.add("cac:SellersItemIdentification", Aggregate.with("cbc:ID", sku)) }
        item.add("cac:ClassifiedTaxCategory", taxCategory(category: line.taxCategory, basisPoints: line.taxRateBasisPoints, reason: nil))
        result.add("cac:Item", item)
        // The exact net unit price (more decimals than the currency if need be, BT-146), so
        // quantity × price is the line amount and not a rounded unit price times quantity.
        let price = MinorUnits.unitPrice(line.netAmount.minorUnits, quantity: line.quantity, exponent: line.netAmount.currency.minorUnitExponent)
        result.add("cac:Price", Aggregate.with("cbc:PriceAmount", Attributed(attribute: "currencyID", attributeValue: line.netAmount.currency.code, value: price)))
        return result
    }
}

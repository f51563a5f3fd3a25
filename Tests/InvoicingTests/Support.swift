import Contracts
import Foundation
@testable import Invoicing

/// Shared fixtures: the shipped tax table, parties, lines.
enum Fixture {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func table() throws -> TaxTable {
        try TaxTable.load(path: root.appendingPathComponent(TaxTable.defaultPath).path)
    }

    static func template() throws -> String {
        try String(contentsOf: root.appendingPathComponent(InvoiceHTML.defaultTemplatePath), encoding: .utf8)
    }

    static let issuedAt = Date(timeIntervalSince1970: 1_780_000_000)  // 2026-05-28

    static func country(_ code: String) throws -> CountryCode { try CountryCode(code) }

    static func address(_ country: String, region: String? = nil, city: String = "City") throws -> Address {
        Address(name: "Recipient", lines: ["Street 1"], city: city, region: region, postalCode: "12345", country: try CountryCode(country))
    }

    static func money(_ text: String, _ currency: CurrencyCode = .eur) throws -> Money { try Money.parse(text, currency: currency) }

    static func line(_ id: String, sku: String, quantity: Int, unit: String, discount: String = "0", tax: String = "0", currency: CurrencyCode = .eur) throws -> OrderLine {
        OrderLine(
            lineId: id, sku: sku, quantity: quantity, unitPrice: try money(unit, currency), discount: try money(discount, currency),
            tax: try money(tax, currency))
    }

    static func germanSeller() throws -> InvoiceParty {
        InvoiceParty(name: "OrderFleet GmbH", taxId: "DE123456789", address: try address("DE", city: "Berlin"), email: "billing@orderfleet.example")
    }

    static func request(
        seller: InvoiceParty, buyer: InvoiceParty, shipTo: Address, lines: [InvoicedQuantity], currency: CurrencyCode = .eur,
        inclusive: Bool, shipping: ShippingCharge? = nil, classes: [String: String] = [:], book: BookCurrency? = nil
    ) -> ShipmentInvoiceRequest {
        ShipmentInvoiceRequest(
            legalEntity: "of-de", series: "invoices", seller: seller, buyer: buyer, orderId: "ord-1", cause: "shipment:s1",
            issuedAt: issuedAt, shipTo: shipTo, lines: lines, shipping: shipping, currency: currency, pricesIncludeTax: inclusive,
            taxClass: { classes[$0] ?? "standard" }, bookCurrency: book)
    }

    static func number(_ draft: Invoice, prefix: String = "DE") -> Invoice {
        draft.numbered(
            sequence: 1, number: InvoiceNumber.format(prefix: prefix, sequence: 1, issuedAt: draft.issuedAt),
            invoiceId: "\(draft.legalEntity)/\(draft.series)/1")
    }
}

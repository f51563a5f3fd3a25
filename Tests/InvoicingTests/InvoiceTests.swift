import Contracts
import Foundation
import Testing
@testable import Invoicing

@Suite("Invoices")
struct InvoiceTests {
    @Test("EU B2B across borders: reverse charge, no tax, both VAT ids, checker passes")
    func reverseCharge() throws {
        let buyer = InvoiceParty(name: "Acheteur SARL", taxId: "FR12345678901", address: try Fixture.address("FR", city: "Paris"))
        let lines = [InvoicedQuantity(line: try Fixture.line("1", sku: "LAMP-01", quantity: 2, unit: "100.00"), quantity: 2)]
        let draft = try Invoice.draft(forShipment: 
            Fixture.request(seller: Fixture.germanSeller(), buyer: buyer, shipTo: Fixture.address("FR"), lines: lines, inclusive: false),
            table: Fixture.table())
        let invoice = Fixture.number(draft)
        #expect(invoice.reverseCharge)
        #expect(invoice.taxes == [TaxSubtotal(taxCategory: "AE", taxRateBasisPoints: 0, taxableAmount: try Fixture.money("200.00"), taxAmount: .zero(.eur), exemptionReason: "Reverse charge")])
        #expect(invoice.taxTotal == .zero(.eur))
        #expect(invoice.grossTotal == (try Fixture.money("200.00")))
        let xml = try UBLDocument.xml(invoice)
        #expect(xml.contains("<cbc:CompanyID>DE123456789</cbc:CompanyID>"))
        #expect(xml.contains("<cbc:CompanyID>FR12345678901</cbc:CompanyID>"))
        #expect(xml.contains("<cbc:TaxExemptionReason>Reverse charge</cbc:TaxExemptionReason>"))
        #expect(xml.contains("<cbc:ID>AE</cbc:ID>"))
        #expect(PeppolCheck.check(xml) == [])
    }

    /// 3 × 19.99 at 19 %, 2 × 4.99 food at 7 % less 1.00 discount, 4.95 shipping (19 %).
    static func germanConsumerInvoice() throws -> Invoice {
        let buyer = InvoiceParty(name: "Erika Mustermann", address: try Fixture.address("DE", city: "Köln"))
        let lines = [
            InvoicedQuantity(line: try Fixture.line("1", sku: "SHIRT", quantity: 3, unit: "19.99"), quantity: 3, description: "T-Shirt"),
            InvoicedQuantity(line: try Fixture.line("2", sku: "TEA", quantity: 2, unit: "4.99", discount: "1.00"), quantity: 2, description: "Tea"),
        ]
        let request = try Fixture.request(
            seller: Fixture.germanSeller(), buyer: buyer, shipTo: Fixture.address("DE"), lines: lines, inclusive: true,
            shipping: ShippingCharge(method: "DHL", amount: Fixture.money("4.95")), classes: ["TEA": "food"])
        return Fixture.number(try Invoice.draft(forShipment: request, table: Fixture.table()))
    }

    @Test("EU B2C tax-inclusive: exact cents, per-rate tax shared out by largest remainder")
    func germanConsumer() throws {
        let invoice = try Self.germanConsumerInvoice()
        #expect(invoice.rounding == .perInvoice)
        #expect(!invoice.reverseCharge)
        // 19 %: 64.92 gross → 10.37 tax (10.3654), split 9.58 / 0.79 over 59.97 and 4.95.
        #expect(invoice.lines.map(\.taxAmount.decimalString) == ["9.58", "0.59", "0.79"])
        #expect(invoice.lines.map(\.netAmount.decimalString) == ["50.39", "8.39", "4.16"])
        #expect(invoice.taxes.map(\.taxAmount.decimalString) == ["10.37", "0.59"])
        #expect(invoice.taxes.map(\.taxableAmount.decimalString) == ["54.55", "8.39"])
        #expect(invoice.netTotal.decimalString == "62.94")
        #expect(invoice.taxTotal.decimalString == "10.96")
        #expect(invoice.grossTotal.decimalString == "73.90")  // 59.97 + 8.98 + 4.95, what the customer paid
        #expect(try invoice.netTotal.adding(invoice.taxTotal) == invoice.grossTotal)
        let xml = try UBLDocument.xml(invoice)
        #expect(xml.contains("<cbc:TaxableAmount currencyID=\"EUR\">54.55</cbc:TaxableAmount>"))
        #expect(xml.contains("<cbc:Percent>19</cbc:Percent>"))
        #expect(PeppolCheck.check(xml) == [])
    }

    @Test("US: tax added per line at the state rate, totals exact, checker passes")
    func unitedStates() throws {
        let seller = InvoiceParty(name: "OrderFleet Inc.", taxId: "32012345678", address: try Fixture.address("US", region: "TX", city: "Austin"))
        let buyer = InvoiceParty(name: "Jane Doe", address: try Fixture.address("US", region: "TX", city: "Dallas"), email: "jane@example.com")
        let lines = [
            InvoicedQuantity(line: try Fixture.line("1", sku: "MUG", quantity: 2, unit: "10.00", currency: .usd), quantity: 2),
            InvoicedQuantity(line: try Fixture.line("2", sku: "PEN", quantity: 1, unit: "5.55", currency: .usd), quantity: 1),
        ]
        let request = try Fixture.request(
            seller: seller, buyer: buyer, shipTo: Fixture.address("US", region: "TX"), lines: lines, currency: .usd, inclusive: false,
            shipping: ShippingCharge(amount: Fixture.money("5.00", .usd)))
        let invoice = Fixture.number(try Invoice.draft(forShipment: request, table: Fixture.table()), prefix: "US")
        #expect(invoice.rounding == .perLine)
        // 6.25 %: 20.00 → 1.25, 5.55 → 0.346875 → 0.35, 5.00 → 0.3125 → 0.31.
        #expect(invoice.lines.map(\.taxAmount.decimalString) == ["1.25", "0.35", "0.31"])
        #expect(invoice.netTotal.decimalString == "30.55")
        #expect(invoice.taxTotal.decimalString == "1.91")
        #expect(invoice.grossTotal.decimalString == "32.46")
        let xml = try UBLDocument.xml(invoice)
        // A US sales tax permit is no VAT id: BT-32, scheme TAX. The buyer's endpoint is its email.
        #expect(xml.contains("<cbc:ID>TAX</cbc:ID>"))
        #expect(xml.contains("<cbc:EndpointID schemeID=\"EM\">jane@example.com</cbc:EndpointID>"))
        #expect(xml.contains("<cbc:Percent>6.25</cbc:Percent>"))
        #expect(PeppolCheck.check(xml) == [])
    }

    @Test("JPY has no minor unit; per-line and per-invoice rounding differ by one yen")
    func yenRounding() throws {
        let header = "country,region,tax_class,rate_bp,category,prices,rounding\n"
        let perLine = try TaxTable.parse(header + "JP,,standard,1000,S,inclusive,per_line", file: "line.csv")
        let perInvoice = try TaxTable.parse(header + "JP,,standard,1000,S,inclusive,per_invoice", file: "invoice.csv")
        let jp = try Fixture.country("JP")
        let lines = try (1...3).map { InvoicedQuantity(line: try Fixture.line("\($0)", sku: "ONIGIRI-\($0)", quantity: 1, unit: "105", currency: .jpy), quantity: 1) }
        let request = TaxRequest(lines: lines, currency: .jpy, pricesIncludeTax: true, shipToCountry: jp, sellerCountry: jp)
        let byLine = try TaxCalculator(table: perLine).compute(request)
        let byInvoice = try TaxCalculator(table: perInvoice).compute(request)
        // 105 × 10/110 = 9.545… → 10 on each line; 315 × 10/110 = 28.63… → 29 once.
        #expect(byLine.taxTotal.minorUnits == 30)
        #expect(byInvoice.taxTotal.minorUnits == 29)
        #expect(byInvoice.lines.map(\.taxAmount.minorUnits) == [10, 10, 9])
        for result in [byLine, byInvoice] {
            #expect(result.grossTotal.minorUnits == 315)
            #expect(result.netTotal.minorUnits + result.taxTotal.minorUnits == 315)
        }
        let invoice = Invoice(
            invoiceId: "", number: "", kind: .invoice, legalEntity: "of-jp", series: "invoices", sequence: 0, issuedAt: Fixture.issuedAt, orderId: "ord-jp", cause: "shipment:jp",
            seller: InvoiceParty(name: "OrderFleet KK", taxId: "T1234567890123", address: try Fixture.address("JP")),
            buyer: InvoiceParty(name: "Taro", address: try Fixture.address("JP")), currency: .jpy, pricesIncludeTax: true,
            rounding: byInvoice.rounding, reverseCharge: false, lines: byInvoice.lines, taxes: byInvoice.taxes,
            netTotal: byInvoice.netTotal, taxTotal: byInvoice.taxTotal, grossTotal: byInvoice.grossTotal)
        let xml = try UBLDocument.xml(Fixture.number(invoice, prefix: "JP"))
        #expect(xml.contains("<cbc:TaxAmount currencyID=\"JPY\">29</cbc:TaxAmount>"))
        #expect(PeppolCheck.check(xml) == [])
    }

    @Test("the channel's line tax is prorated over partial shipments and sums to the whole")
    func channelTaxProrated() throws {
        let line = try Fixture.line("1", sku: "BOOK", quantity: 3, unit: "33.33", tax: "15.97")
        let table = try Fixture.table()
        var taxes: [Int64] = []
        var gross: Int64 = 0
        for shipment in 0..<3 {
            let request = try Fixture.request(
                seller: Fixture.germanSeller(), buyer: InvoiceParty(name: "Max", address: Fixture.address("DE")), shipTo: Fixture.address("DE"),
                lines: [InvoicedQuantity(line: line, quantity: 1, alreadyInvoiced: shipment)], inclusive: true)
            let draft = try Invoice.draft(forShipment: request, table: table)
            taxes.append(draft.taxTotal.minorUnits)
            gross += draft.grossTotal.minorUnits
        }
        // round(15.97 × k/3) cumulated: 5.32, 10.65, 15.97.
        #expect(taxes == [532, 533, 532])
        #expect(taxes.reduce(0, +) == 1597)
        #expect(gross == 9999)
    }

    @Test("more units than ordered, or tax charged on a zero-rated supply, are errors")
    func invalidInputs() throws {
        let table = try Fixture.table()
        let line = try Fixture.line("1", sku: "BOOK", quantity: 2, unit: "10.00", tax: "1.60")
        let buyer = InvoiceParty(name: "Co", taxId: "FR12345678901", address: try Fixture.address("FR"))
        #expect(throws: InvoicingError.self) {
            try Invoice.draft(forShipment: 
                Fixture.request(seller: Fixture.germanSeller(), buyer: buyer, shipTo: Fixture.address("DE"),
                    lines: [InvoicedQuantity(line: line, quantity: 2, alreadyInvoiced: 1)], inclusive: true), table: table)
        }
        let error = #expect(throws: InvoicingError.self) {
            try Invoice.draft(forShipment: 
                Fixture.request(seller: Fixture.germanSeller(), buyer: buyer, shipTo: Fixture.address("FR"),
                    lines: [InvoicedQuantity(line: line, quantity: 2)], inclusive: false), table: table)
        }
        #expect(error?.description.contains("AE") == true)
    }

    @Test("exports from the EU are zero-rated G with a reason")
    func export() throws {
        let buyer = InvoiceParty(name: "Heidi", address: try Fixture.address("CH"))
        let request = try Fixture.request(
            seller: Fixture.germanSeller(), buyer: buyer, shipTo: Fixture.address("CH"),
            lines: [InvoicedQuantity(line: Fixture.line("1", sku: "SHIRT", quantity: 1, unit: "20.00"), quantity: 1)], inclusive: true)
        let invoice = Fixture.number(try Invoice.draft(forShipment: request, table: Fixture.table()))
        #expect(invoice.taxes.map(\.taxCategory) == ["G"])
        #expect(invoice.taxes.first?.exemptionReason == "Export outside the EU")
        #expect(invoice.grossTotal.decimalString == "20.00")
        #expect(PeppolCheck.check(try UBLDocument.xml(invoice)) == [])
    }

    @Test("a book currency adds TaxCurrencyCode and a second TaxTotal (BR-53)")
    func bookCurrency() throws {
        let buyer = InvoiceParty(name: "Erika", address: try Fixture.address("DE"))
        let request = try Fixture.request(
            seller: Fixture.germanSeller(), buyer: buyer, shipTo: Fixture.address("DE"),
            lines: [InvoicedQuantity(line: Fixture.line("1", sku: "SHIRT", quantity: 1, unit: "119.00", currency: .usd), quantity: 1)],
            currency: .usd, inclusive: true, book: BookCurrency(currency: .eur, rate: "0.8532"))
        let invoice = Fixture.number(try Invoice.draft(forShipment: request, table: Fixture.table()))
        #expect(invoice.bookCurrency == .eur)
        #expect(invoice.exchangeRate == "0.8532")
        let xml = try UBLDocument.xml(invoice)
        #expect(xml.contains("<cbc:TaxCurrencyCode>EUR</cbc:TaxCurrencyCode>"))
        // 19.00 USD tax × 0.8532 = 16.2108 → 16.21 EUR.
        #expect(xml.contains("<cbc:TaxAmount currencyID=\"EUR\">16.21</cbc:TaxAmount>"))
        #expect(xml.components(separatedBy: "<cac:TaxTotal>").count == 3)
        #expect(PeppolCheck.check(xml) == [])
        let withoutBookTotal = xml.replacingOccurrences(of: "<cbc:TaxAmount currencyID=\"EUR\">16.21</cbc:TaxAmount>", with: "")
        #expect(PeppolCheck.check(withoutBookTotal).map(\.rule).contains("BR-53"))
    }

    @Test("UBL elements come in schema order")
    func elementOrder() throws {
        let xml = try UBLDocument.xml(try Self.germanConsumerInvoice())
        let order = [
            "<cbc:CustomizationID>", "<cbc:ProfileID>", "<cbc:ID>DE-2026-000001", "<cbc:IssueDate>2026-05-28", "<cbc:InvoiceTypeCode>380",
            "<cbc:DocumentCurrencyCode>", "<cbc:BuyerReference>ord-1", "<cac:AccountingSupplierParty>", "<cac:AccountingCustomerParty>",
            "<cac:TaxTotal>", "<cac:LegalMonetaryTotal>", "<cac:InvoiceLine>",
        ]
        let positions = order.map { xml.range(of: $0)?.lowerBound }
        #expect(positions.allSatisfy { $0 != nil }, "\(xml)")
        let found = positions.compactMap { $0 }
        #expect(found == found.sorted())
        #expect(xml.contains("xmlns=\"urn:oasis:names:specification:ubl:schema:xsd:Invoice-2\""))
        #expect(xml.contains("<cbc:InvoicedQuantity unitCode=\"C62\">3</cbc:InvoicedQuantity>"))
    }
}

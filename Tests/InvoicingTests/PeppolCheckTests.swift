import Contracts
import Foundation
import Testing
@testable import Invoicing

@Suite("Peppol structural check")
struct PeppolCheckTests {
    func rules(_ xml: String) -> Set<String> { Set(PeppolCheck.check(xml).map(\.rule)) }

    @Test("a missing mandatory element is reported by its rule")
    func missingElements() throws {
        let xml = try UBLDocument.xml(try InvoiceTests.germanConsumerInvoice())
        #expect(rules(xml.replacingOccurrences(of: "<cbc:RegistrationName>OrderFleet GmbH</cbc:RegistrationName>", with: "")).contains("BR-06"))
        #expect(rules(xml.replacingOccurrences(of: "<cbc:DocumentCurrencyCode>EUR</cbc:DocumentCurrencyCode>", with: "")).contains("BR-05"))
        #expect(rules(xml.replacingOccurrences(of: "<cbc:IssueDate>2026-05-28</cbc:IssueDate>", with: "")).contains("BR-03"))
        #expect(rules(xml.replacingOccurrences(of: #"<cbc:PayableAmount currencyID="EUR">73.90</cbc:PayableAmount>"#, with: "")).contains("BR-15"))
        let noLines = try #require(xml.range(of: "<cac:InvoiceLine>")).lowerBound
        #expect(rules(String(xml[..<noLines]) + "</Invoice>").contains("BR-16"))
        #expect(rules("<Invoice><oops></Invoice>") == ["XML"])
    }

    @Test("broken sums are reported")
    func brokenSums() throws {
        let xml = try UBLDocument.xml(try InvoiceTests.germanConsumerInvoice())
        let lineTotal = xml.replacingOccurrences(of: #"<cbc:LineExtensionAmount currencyID="EUR">62.94</cbc:LineExtensionAmount>"#, with: #"<cbc:LineExtensionAmount currencyID="EUR">62.95</cbc:LineExtensionAmount>"#)
        #expect(rules(lineTotal).isSuperset(of: ["BR-CO-10", "BR-CO-13"]))
        let taxTotal = xml.replacingOccurrences(of: #"<cbc:TaxAmount currencyID="EUR">10.96</cbc:TaxAmount>"#, with: #"<cbc:TaxAmount currencyID="EUR">10.97</cbc:TaxAmount>"#)
        #expect(rules(taxTotal).isSuperset(of: ["BR-CO-14", "BR-CO-15"]))
        let taxable = xml.replacingOccurrences(of: #"<cbc:TaxableAmount currencyID="EUR">54.55</cbc:TaxableAmount>"#, with: #"<cbc:TaxableAmount currencyID="EUR">60.00</cbc:TaxableAmount>"#)
        #expect(rules(taxable).contains("BR-S-08"))
        let rate = xml.replacingOccurrences(of: #"<cbc:TaxAmount currencyID="EUR">10.37</cbc:TaxAmount>"#, with: #"<cbc:TaxAmount currencyID="EUR">2.37</cbc:TaxAmount>"#)
        #expect(rules(rate).contains("BR-S-09"))
        #expect(rules(xml.replacingOccurrences(of: #"currencyID="EUR">4.16"#, with: #"currencyID="USD">4.16"#)).contains("PEPPOL-EN16931-R051"))
    }

    @Test("reverse charge without the buyer's VAT id, or with tax, is reported")
    func reverseChargeDefects() throws {
        let buyer = InvoiceParty(name: "Acheteur SARL", taxId: "FR12345678901", address: try Fixture.address("FR"))
        let lines = [InvoicedQuantity(line: try Fixture.line("1", sku: "LAMP", quantity: 1, unit: "50.00"), quantity: 1)]
        var invoice = Fixture.number(try Invoice.draft(forShipment: 
            Fixture.request(seller: Fixture.germanSeller(), buyer: buyer, shipTo: Fixture.address("FR"), lines: lines, inclusive: false),
            table: Fixture.table()))
        #expect(PeppolCheck.check(try UBLDocument.xml(invoice)) == [])
        invoice.buyer.taxId = nil
        #expect(rules(try UBLDocument.xml(invoice)).contains("BR-AE-02"))
        invoice.buyer.taxId = "FR12345678901"
        invoice.taxes[0].exemptionReason = nil
        #expect(rules(try UBLDocument.xml(invoice)).contains("BR-AE-10"))
        let xml = try UBLDocument.xml(invoice)
        #expect(rules(xml.replacingOccurrences(of: "<cbc:Percent>0</cbc:Percent>", with: "<cbc:Percent>19</cbc:Percent>")).contains("BR-AE-05"))
    }

    @Test("a standard-rated invoice from a seller without any tax id breaks BR-S-02")
    func standardRateNeedsSellerTaxId() throws {
        var invoice = try InvoiceTests.germanConsumerInvoice()
        invoice.seller.taxId = nil
        #expect(rules(try UBLDocument.xml(invoice)).contains("BR-S-02"))
    }
}

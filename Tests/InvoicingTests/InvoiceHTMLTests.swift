import Contracts
import Testing
@testable import Invoicing

@Suite("Invoice HTML")
struct InvoiceHTMLTests {
    @Test("the document shows number, lines and totals, and escapes every value")
    func rendersEscaped() throws {
        var invoice = try InvoiceTests.germanConsumerInvoice()
        invoice.buyer.name = "<script>alert('x')</script> & Co"
        invoice.lines[0].description = "Shirt <b>bold</b>"
        let html = try InvoiceHTML.render(invoice, template: Fixture.template())
        #expect(html.contains("Invoice DE-2026-000001"))
        #expect(html.contains("73.90 EUR"))
        #expect(!html.contains("<script>"))
        #expect(html.contains("&lt;script&gt;"))
        #expect(!html.contains("<b>bold</b>"))
    }

    @Test("a template with unescaped output is refused")
    func refusesUnescaped() throws {
        let invoice = try InvoiceTests.germanConsumerInvoice()
        #expect(throws: InvoicingError.self) { try InvoiceHTML.render(invoice, template: "<p>{{{number}}}</p>") }
        #expect(throws: InvoicingError.self) { try InvoiceHTML.render(invoice, template: "<p>{{&number}}</p>") }
    }
}

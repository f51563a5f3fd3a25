import Contracts
import Fleet
import Foundation
import Invoicing
import Kafka
import OrderFleetTesting
import Testing

@testable import Gateway

/// The invoice endpoints over HTTP against a gateway on a broker: the printable HTML
/// (values escaped), the UBL XML (passing the Peppol structural rules) and an order's list.
@Suite("gateway invoices", .serialized)
struct GatewayInvoiceTests {
    static func invoice(orderId: String, number: String, buyer: String) -> Invoice {
        let usd = CurrencyCode.usd
        let address = Address(name: buyer, lines: ["1 Main St"], city: "New York", region: "NY", postalCode: "10001", country: try! CountryCode("US"))
        let line = InvoiceLine(
            lineId: "1", sku: "SKU-A", description: "SKU-A", quantity: 2, unitPrice: Money(minorUnits: 1_000, currency: usd),
            netAmount: Money(minorUnits: 2_000, currency: usd), taxCategory: "S", taxRateBasisPoints: 400, taxAmount: Money(minorUnits: 80, currency: usd))
        return Invoice(
            invoiceId: "us/invoices/7", number: number, kind: .invoice, legalEntity: "us", series: "invoices", sequence: 7, issuedAt: Date(),
            orderId: orderId, cause: "shipment:s-1",
            seller: InvoiceParty(name: "OrderFleet Demo Inc.", taxId: "NY-ST-1234567", address: address, email: "invoices@us.example"),
            buyer: InvoiceParty(name: buyer, address: address, email: "ada@example.com"), currency: usd, pricesIncludeTax: false, rounding: .perLine,
            reverseCharge: false, lines: [line],
            taxes: [TaxSubtotal(taxCategory: "S", taxRateBasisPoints: 400, taxableAmount: Money(minorUnits: 2_000, currency: usd), taxAmount: Money(minorUnits: 80, currency: usd))],
            netTotal: Money(minorUnits: 2_000, currency: usd), taxTotal: Money(minorUnits: 80, currency: usd), grossTotal: Money(minorUnits: 2_080, currency: usd))
    }

    @Test("an issued invoice is served as escaped HTML and as UBL that passes the Peppol checks, and listed under its order; token required")
    func invoices() async throws {
        try await GatewayHarness.with(stages: [], apiToken: GatewayTests.token) { harness in
            let orderId = TestCluster.uniqueName("order")
            let number = "US-2026-\(Int.random(in: 100_000...999_999))"
            let invoice = Self.invoice(orderId: orderId, number: number, buyer: "Ada <script>alert(1)</script>")
            let producer = try harness.cluster.producer()
            let envelope = Envelope(id: UUID().uuidString, source: "test", time: Date(), event: InvoiceIssued(orderId: orderId, invoice: invoice).event)
            _ = try await producer.send(try KafkaProducerMessage(envelope, topic: InvoiceIssued.topic))
            try await producer.close()

            #expect(try await waitUntil(timeout: .seconds(15)) { try await harness.get("/v1/invoices/\(number).xml").status == 200 })
            #expect(try await harness.get("/v1/invoices/\(number)", token: nil).status == 401)
            let html = try await harness.get("/v1/invoices/\(number)")
            #expect(html.status == 200 && html.header("Content-Type")?.hasPrefix("text/html") == true, "\(html.status) \(html.text)")
            #expect(html.text.contains(number) && html.text.contains("&lt;script&gt;") && !html.text.contains("<script>"))
            let xml = try await harness.get("/v1/invoices/\(number).xml")
            #expect(xml.status == 200 && xml.header("Content-Type") == "application/xml")
            #expect(xml.text.contains("<cbc:ID>\(number)</cbc:ID>"))
            #expect(PeppolCheck.check(xml.text).isEmpty, "\(PeppolCheck.check(xml.text))")
            let list = try await harness.get("/v1/orders/\(orderId)/invoices")
            let listed = try #require(try JSONSerialization.jsonObject(with: Data(list.text.utf8)) as? [[String: Any]])
            #expect(list.status == 200 && listed.count == 1 && listed.first?["number"] as? String == number, "\(list.text)")
            #expect(listed.first?["xml"] as? String == "/v1/invoices/\(number).xml" && listed.first?["kind"] as? String == "invoice")
            let unknown = try await harness.get("/v1/invoices/US-1999-000001")
            #expect(unknown.status == 404 && unknown.json["error"] as? String == "not_found")
        }
    }
}

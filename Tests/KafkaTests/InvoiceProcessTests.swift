import Contracts
import Fleet
import Foundation
import Kafka
import OrderFleetTesting
import Testing

@testable import oms

/// `oms worker invoice-numbering` as processes killed with -9 and restarted (at least once,
/// on the embedded broker) while invoice and credit-note requests flow: every series on
/// oms.invoices must still run 1…n with one document per cause.
@Suite("invoice numbering processes", .serialized)
struct InvoiceProcessTests {
    @Test("kill -9: numbers per series without a gap or a repeat, one document per cause, every request answered")
    func numberingUnderKills() async throws {
        let broker = try await EmbeddedBrokerProcess.start(topics: [])
        defer { broker.stop() }
        let fixture = FleetFixture(
            cluster: broker.cluster, input: InvoiceRequested.topic, output: InvoiceIssued.topic, partitions: 6)
        let fleet = WorkerFleet(
            fixture: fixture, stage: TestCluster.uniqueName("invoice-numbering"), mode: .atLeastOnce, staticMembership: false,
            arguments: ["worker", "invoice-numbering"], overrides: ["WORKER_BATCH_SIZE": "20", "WORKER_SESSION_TIMEOUT_MS": "10000"])
        defer { fleet.stopAll() }
        for instance in 0..<2 { try fleet.start(instance) }

        // 150 orders of two shipments each, for the two entities of config/rules.yaml; one
        // order in three refunded after, for less than its first invoice.
        var requests: [Envelope] = []
        for order in 0..<150 {
            let entity = order % 2 == 0 ? "eu" : "us"
            for shipment in 0..<2 {
                requests.append(Self.envelope(Self.request(entity: entity, order: "o-\(order)", shipment: "s-\(order)-\(shipment)", gross: 1_000 + Int64(order))))
            }
            if order % 3 == 0 {
                let credit = CreditNoteRequested(
                    legalEntity: entity, orderId: "o-\(order)", cause: "refund:r-\(order)", amount: Money(minorUnits: 500, currency: .usd), requestedAt: Date())
                requests.append(Self.envelope(credit.event))
            }
        }
        let all = requests
        let producing = Task {
            let producer = try fixture.cluster.producer()
            for request in all {
                try await producer.enqueue(try KafkaProducerMessage(request, topic: InvoiceRequested.topic))
                try await Task.sleep(for: .milliseconds(20))
            }
            try await producer.close()
        }
        let kills = try await fleet.killRandomly(for: .seconds(15), every: .seconds(3))
        try await producing.value
        #expect(kills >= 2)

        let expectedCauses = 150 * 2 + 50
        var documents: [String: Invoice] = [:]
        let done = try await waitUntil(timeout: .seconds(180)) {
            documents = [:]
            for message in try await fixture.readAll(InvoiceIssued.topic) {
                if case .invoiceIssued(let issued) = try Envelope.decode(message.eventRecord).event { documents[issued.invoice.invoiceId] = issued.invoice }
            }
            return Set(documents.values.map(\.cause)).count >= expectedCauses
        }
        #expect(done, "worker logs in \(fleet.directory.path)")
        fleet.stopAll()

        #expect(Set(documents.values.map(\.cause)).count == expectedCauses)
        #expect(documents.count == expectedCauses, "one document per cause: \(documents.count) documents for \(Set(documents.values.map(\.cause)).count) causes")
        for (series, issued) in Dictionary(grouping: documents.values, by: { "\($0.legalEntity)/\($0.series)" }) {
            let sequences = issued.map(\.sequence).sorted()
            #expect(sequences == Array(1...Int64(issued.count)), "\(series): \(sequences.count) documents numbered \(sequences.first ?? 0)…\(sequences.last ?? 0)")
            #expect(Set(issued.map(\.number)).count == issued.count, "\(series): a number used twice")
        }
        let notes = documents.values.filter { $0.kind == .creditNote }
        #expect(notes.count == 50 && notes.allSatisfy { $0.grossTotal.minorUnits == 500 && $0.correctedInvoice != nil })
        let letters = try await fixture.readAll(TopicCatalog.deadLetterTopic, partitions: 1)
        #expect(letters.isEmpty, "no request refused")
    }

    static func envelope(_ event: Event) -> Envelope {
        Envelope(id: UUID().uuidString, source: "test", time: Date(), event: event)
    }

    static func request(entity: String, order: String, shipment: String, gross: Int64) -> Event {
        let usd = CurrencyCode.usd
        let money = { (minor: Int64) in Money(minorUnits: minor, currency: usd) }
        let address = Address(name: "Ada", lines: ["1 Main St"], city: "New York", region: "NY", postalCode: "10001", country: try! CountryCode("US"))
        let line = InvoiceLine(
            lineId: "1", sku: "SKU-A", description: "SKU-A", quantity: 1, unitPrice: money(gross), netAmount: money(gross), taxCategory: "Z",
            taxRateBasisPoints: 0, taxAmount: money(0))
        let document = Invoice(
            invoiceId: "", number: "", kind: .invoice, legalEntity: entity, series: "invoices", sequence: 0, issuedAt: Date(), orderId: order,
            cause: "shipment:\(shipment)", seller: InvoiceParty(name: "Brand", address: address), buyer: InvoiceParty(name: "Ada", address: address),
            currency: usd, pricesIncludeTax: false, rounding: .perLine, reverseCharge: false, lines: [line],
            taxes: [TaxSubtotal(taxCategory: "Z", taxRateBasisPoints: 0, taxableAmount: money(gross), taxAmount: money(0))],
            netTotal: money(gross), taxTotal: money(0), grossTotal: money(gross))
        return InvoiceRequested(legalEntity: entity, orderId: order, document: document, requestedAt: Date()).event
    }
}

import Contracts
import Fleet
import Foundation
import Invoicing
import Kafka
import Logging

/// The demo's invoicing invariant: what oms.invoices must hold for the payments that
/// moved (oms.payments.outcomes).
enum DemoInvoices {
    /// What was issued and what the payments call for.
    struct Books {
        /// Issued documents by invoice id (the topic is compacted by it).
        var documents: [String: Invoice] = [:]
        /// Captured shipments (`shipment:<id>`) and their amounts.
        var captures: [String: Money] = [:]
        /// Settled refunds (`refund:<command id>`) and their amounts.
        var refunds: [String: Money] = [:]

        /// Causes with no document yet: a captured shipment not invoiced, a refund not
        /// credited in full.
        var missing: Int {
            let invoiced = Set(documents.values.filter { $0.kind == .invoice }.map(\.cause))
            var credited: [String: Int64] = [:]
            for note in documents.values where note.kind == .creditNote {
                credited[String(note.cause.prefix { $0 != "/" }), default: 0] += note.grossTotal.minorUnits
            }
            return captures.keys.filter { !invoiced.contains($0) }.count + refunds.filter { credited[$0.key] != $0.value.minorUnits }.count
        }
    }

    static func read(kafka: KafkaConfiguration, logger: Logger) async throws -> Books {
        var books = Books()
        for record in try await TopicScan.records(of: [InvoiceIssued.topic, PaymentCaptured.topic], kafka: kafka, logger: logger) {
            guard let envelope = try? Envelope.decode(record.eventRecord) else { continue }
            switch envelope.event {
            case .invoiceIssued(let issued): books.documents[issued.invoice.invoiceId] = issued.invoice
            case .paymentCaptured(let captured): books.captures["shipment:\(captured.shipmentId)"] = captured.amount
            case .paymentRefunded(let refund): books.refunds["refund:\(refund.commandId)"] = refund.amount
            default: break
            }
        }
        return books
    }

    /// Waits up to `timeout` for every capture to be invoiced and every refund credited;
    /// then the invariant: per series the numbers run 1…n without a gap or a repeat, one
    /// document per cause, each document's UBL passes the Peppol structural checks, and per
    /// currency invoices less credit notes equal money captured less refunded.
    static func invariant(kafka: KafkaConfiguration, logger: Logger, timeout: Duration) async -> DemoSummary.Invariant {
        let deadline = ContinuousClock.now + timeout
        var books = Books()
        repeat {
            if let read = try? await read(kafka: kafka, logger: logger) { books = read }
            if !books.captures.isEmpty, books.missing == 0 { break }
            try? await Task.sleep(for: .milliseconds(500))
        } while ContinuousClock.now < deadline
        var problems: [String] = []
        let bySeries = Dictionary(grouping: books.documents.values) { "\($0.legalEntity)/\($0.series)" }
        for (series, documents) in bySeries.sorted(by: { $0.key < $1.key }) {
            let sequences = documents.map(\.sequence).sorted()
            if sequences != Array(1...Int64(documents.count)) { problems.append("\(series): numbers \(sequences.first ?? 0)…\(sequences.last ?? 0) for \(documents.count) documents") }
            if Set(documents.map(\.number)).count != documents.count { problems.append("\(series): a number used twice") }
        }
        let causes = Dictionary(grouping: books.documents.values, by: \.cause).filter { $0.value.count > 1 }
        if !causes.isEmpty { problems.append("\(causes.count) causes with two documents, e.g. \(causes.keys.sorted()[0])") }
        var balance: [String: Int64] = [:]
        for document in books.documents.values {
            balance[document.currency.code, default: 0] += document.kind == .invoice ? document.grossTotal.minorUnits : -document.grossTotal.minorUnits
        }
        for money in books.captures.values { balance[money.currency.code, default: 0] -= money.minorUnits }
        for money in books.refunds.values { balance[money.currency.code, default: 0] += money.minorUnits }
        for (currency, difference) in balance.sorted(by: { $0.key < $1.key }) where difference != 0 {
            problems.append("\(currency): invoices − credit notes differ from captured − refunded by \(difference) minor units")
        }
        // Every document as UBL passes the Peppol BIS 3.0 structural rules.
        var invalid: [String] = []
        for document in books.documents.values.sorted(by: { $0.invoiceId < $1.invoiceId }) {
            do {
                let violations = PeppolCheck.check(try UBLDocument.xml(document))
                if !violations.isEmpty { invalid.append("\(document.number): \(violations.map(\.rule).joined(separator: ", "))") }
            } catch {
                invalid.append("\(document.number): \(error)")
            }
        }
        if !invalid.isEmpty { problems.append("\(invalid.count) documents fail the Peppol checks, e.g. \(invalid.prefix(3).joined(separator: "; "))") }
        let missing = books.missing
        if missing > 0 { problems.append("\(missing) captures or refunds without their documents") }
        let invoices = books.documents.values.filter { $0.kind == .invoice }.count
        let credits = books.documents.count - invoices
        let tax = books.documents.values.reduce(Int64(0)) { $0 + ($1.kind == .invoice ? 1 : -1) * $1.taxTotal.minorUnits }
        return DemoSummary.Invariant(
            name: "every captured shipment invoiced once, every refund credited, numbers gap-free",
            holds: problems.isEmpty && invoices > 0,
            detail: problems.isEmpty
                ? "\(invoices) invoices for \(books.captures.count) captured shipments, \(credits) credit notes for \(books.refunds.count) refunds, "
                    + "in \(bySeries.count) series numbered without gaps, each valid UBL (Peppol BIS 3.0 structure); invoices − credit notes = captured − refunded per currency; net tax \(tax) minor units"
                : problems.prefix(6).joined(separator: "; "))
    }
}

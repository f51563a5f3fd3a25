import Contracts
import Foundation
import Testing
@testable import Invoicing

@Suite("Credit notes")
struct CreditNoteTests {
    func numbered(_ draft: Invoice, _ sequence: Int64 = 1) -> Invoice {
        draft.numbered(
            sequence: sequence, number: InvoiceNumber.format(prefix: "DE-CN", sequence: sequence, issuedAt: draft.issuedAt),
            invoiceId: "\(draft.legalEntity)/\(draft.series)/\(sequence)")
    }

    @Test("a partial return credits the lines' share at the invoice's rates; returning the rest credits the remainder exactly")
    func partialReturn() throws {
        let invoice = try InvoiceTests.germanConsumerInvoice()
        let first = numbered(try CreditNoteBuilder.draft(
            against: invoice, credit: .returned(["1": 1]), series: "credit-notes", cause: "return:r1", issuedAt: Fixture.issuedAt))
        #expect(first.kind == .creditNote)
        #expect(first.correctedInvoice == invoice.number)
        // Line 1 was 50.39 net, 9.58 tax for 3 units: one unit is 16.80 + 3.19.
        #expect(first.lines.map(\.netAmount.decimalString) == ["16.80"])
        #expect(first.lines.map(\.taxAmount.decimalString) == ["3.19"])
        #expect(first.taxes.map(\.taxRateBasisPoints) == [1900])
        #expect(first.grossTotal.decimalString == "19.99")
        let second = numbered(try CreditNoteBuilder.draft(
            against: invoice, earlier: [first], credit: .returned(["1": 2]), series: "credit-notes", cause: "return:r2",
            issuedAt: Fixture.issuedAt), 2)
        #expect(first.lines[0].netAmount.minorUnits + second.lines[0].netAmount.minorUnits == invoice.lines[0].netAmount.minorUnits)
        #expect(first.lines[0].taxAmount.minorUnits + second.lines[0].taxAmount.minorUnits == invoice.lines[0].taxAmount.minorUnits)
        let xml = try UBLDocument.xml(second)
        #expect(xml.contains("<CreditNote"))
        #expect(xml.contains("<cbc:CreditNoteTypeCode>381</cbc:CreditNoteTypeCode>"))
        #expect(xml.contains("<cac:InvoiceDocumentReference>"))
        #expect(xml.contains("<cbc:CreditedQuantity unitCode=\"C62\">2</cbc:CreditedQuantity>"))
        #expect(PeppolCheck.check(xml) == [])
        // Nothing of line 1 is left.
        let error = #expect(throws: InvoicingError.self) {
            try CreditNoteBuilder.draft(against: invoice, earlier: [first, second], credit: .returned(["1": 1]), series: "credit-notes", cause: "return:r3", issuedAt: Fixture.issuedAt)
        }
        #expect(error?.description.hasPrefix("over-credit") == true)
    }

    @Test("an appeasement is split over the invoice's rates by largest remainder")
    func appeasement() throws {
        let invoice = try InvoiceTests.germanConsumerInvoice()
        let note = numbered(try CreditNoteBuilder.draft(
            against: invoice, credit: .amount(Fixture.money("10.00")), series: "credit-notes", cause: "refund:c1", issuedAt: Fixture.issuedAt))
        // 10.00 over 64.92 (19 %) and 8.98 (7 %): 8.7848 and 1.2151 → 8.78 and 1.22.
        #expect(note.lines.map { try! $0.netAmount.adding($0.taxAmount).decimalString } == ["8.78", "1.22"])
        #expect(note.lines.map(\.taxAmount.decimalString) == ["1.40", "0.08"])
        #expect(note.grossTotal.decimalString == "10.00")
        #expect(try note.netTotal.adding(note.taxTotal) == note.grossTotal)
        #expect(PeppolCheck.check(try UBLDocument.xml(note)) == [])
    }

    @Test("a credit note never exceeds what the invoice has left un-credited")
    func overCredit() throws {
        let invoice = try InvoiceTests.germanConsumerInvoice()
        let first = numbered(try CreditNoteBuilder.draft(
            against: invoice, credit: .amount(Fixture.money("70.00")), series: "credit-notes", cause: "refund:c1", issuedAt: Fixture.issuedAt))
        let error = #expect(throws: InvoicingError.self) {
            try CreditNoteBuilder.draft(
                against: invoice, earlier: [first], credit: .amount(Fixture.money("3.91")), series: "credit-notes", cause: "refund:c2",
                issuedAt: Fixture.issuedAt)
        }
        #expect(error?.description.contains("only 3.90 EUR of 73.90 EUR left") == true)
        _ = try CreditNoteBuilder.draft(
            against: invoice, earlier: [first], credit: .amount(Fixture.money("3.90")), series: "credit-notes", cause: "refund:c2",
            issuedAt: Fixture.issuedAt)
        #expect(throws: InvoicingError.self) {
            try CreditNoteBuilder.draft(against: invoice, credit: .returned(["9": 1]), series: "credit-notes", cause: "return:x", issuedAt: Fixture.issuedAt)
        }
    }
}

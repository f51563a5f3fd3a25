import Foundation
import Testing
@testable import Invoicing

/// The printed form of a number (the numbering itself is the `invoice-numbering` stage's,
/// Tests/WorkersTests/InvoicingStageTests.swift).
@Suite("Invoice numbering")
struct NumberingTests {
    @Test("numbers are prefix, year of issue and at least six digits")
    func format() {
        #expect(InvoiceNumber.format(prefix: "DE", sequence: 42, issuedAt: Fixture.issuedAt) == "DE-2026-000042")
        #expect(InvoiceNumber.format(prefix: "DE", sequence: 1_234_567, issuedAt: Fixture.issuedAt) == "DE-2026-1234567")
        // The UTC year: a document issued a minute before midnight UTC on 31 December is last year's.
        let newYearsEve = ISO8601DateFormatter().date(from: "2026-12-31T23:59:00Z")!
        #expect(InvoiceNumber.format(prefix: "US", sequence: 1, issuedAt: newYearsEve) == "US-2026-000001")
    }
}

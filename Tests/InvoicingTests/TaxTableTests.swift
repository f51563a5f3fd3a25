import Contracts
import Testing
@testable import Invoicing

@Suite("Tax table")
struct TaxTableTests {
    @Test("the shipped table loads and covers every country the brief names")
    func shippedTableLoads() throws {
        let table = try Fixture.table()
        for code in ["DE", "FR", "NL", "IT", "ES", "AT", "IE", "GB", "AU", "JP"] {
            #expect(try table.rules(for: Fixture.country(code)).pricesIncludeTax, "\(code) prices include tax")
        }
        for code in ["US", "CA"] {
            #expect(try !table.rules(for: Fixture.country(code)).pricesIncludeTax, "\(code) adds tax at checkout")
        }
        #expect(try table.rate(country: Fixture.country("DE"), region: nil, taxClass: "standard").basisPoints == 1900)
        #expect(try table.rate(country: Fixture.country("CA"), region: "ON", taxClass: "standard").basisPoints == 1300)
        #expect(try table.rate(country: Fixture.country("CA"), region: "QC", taxClass: "standard").basisPoints == 500)
        #expect(try table.rate(country: Fixture.country("US"), region: "OR", taxClass: "standard") == .init(category: "Z", basisPoints: 0))
    }

    @Test("lookup falls back: region+class, country+class, region standard, country standard")
    func lookupFallsBack() throws {
        let table = try Fixture.table()
        let de = try Fixture.country("DE")
        let us = try Fixture.country("US")
        #expect(try table.rate(country: de, region: "BY", taxClass: "books").basisPoints == 700)
        #expect(try table.rate(country: de, region: nil, taxClass: "garden").basisPoints == 1900)
        #expect(try table.rate(country: us, region: "TX", taxClass: "food") == .init(category: "Z", basisPoints: 0))
        #expect(try table.rate(country: us, region: "TX", taxClass: "books").basisPoints == 625)
        let missing = #expect(throws: InvoicingError.self) { try table.rate(country: us, region: "WA", taxClass: "books") }
        #expect(missing?.description.contains("US region WA, tax class 'books'") == true)
        #expect(throws: InvoicingError.self) { try table.rules(for: Fixture.country("BR")) }
    }

    @Test("parse errors name the line and the column", arguments: [
        ("DE,,standard,19%,S,inclusive,per_invoice", 2, "rate_bp"),
        ("DE,,standard,1900,X,inclusive,per_invoice", 2, "category"),
        ("XX,,standard,1900,S,inclusive,per_invoice", 2, "country"),
        ("DE,,standard,1900,S,included,per_invoice", 2, "prices"),
        ("DE,,standard,1900,S,inclusive,per_item", 2, "rounding"),
        ("DE,,zero,700,Z,inclusive,per_invoice", 2, "rate_bp"),
        ("DE,,standard,1900,S,inclusive,per_invoice\nDE,,standard,700,S,,", 3, "tax_class"),
        ("DE,,standard,1900,S,inclusive,per_invoice\nDE,,reduced,700,S,exclusive,", 3, "prices"),
        ("DE,,standard,1900,S,,per_invoice", 2, "prices"),
    ])
    func parseErrorsNameLineAndColumn(row: String, line: Int, column: String) {
        let text = "country,region,tax_class,rate_bp,category,prices,rounding\n" + row
        let error = #expect(throws: TaxTable.FileError.self) { try TaxTable.parse(text, file: "t.csv") }
        #expect(error?.line == line)
        #expect(error?.column == column)
        #expect(error?.description.hasPrefix("t.csv line \(line), column \(column): ") == true)
    }

    @Test("a wrong field count and a missing header are errors too")
    func structureErrors() {
        let short = #expect(throws: TaxTable.FileError.self) {
            try TaxTable.parse("# c\ncountry,region,tax_class,rate_bp,category,prices,rounding\nDE,,standard,1900", file: "t.csv")
        }
        #expect(short?.line == 3)
        let header = #expect(throws: TaxTable.FileError.self) { try TaxTable.parse("country,rate\n", file: "t.csv") }
        #expect(header?.line == 1)
    }
}

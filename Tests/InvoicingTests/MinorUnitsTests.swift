import Contracts
import Testing
@testable import Invoicing

@Suite("Minor-unit arithmetic")
struct MinorUnitsTests {
    @Test("largest remainder: parts sum to the total, leftovers to the largest remainders")
    func largestRemainder() throws {
        #expect(try MinorUnits.splitLargestRemainder(100, weights: [1, 1, 1]) == [34, 33, 33])
        #expect(try MinorUnits.splitLargestRemainder(1037, weights: [5997, 495]) == [958, 79])
        #expect(try MinorUnits.splitLargestRemainder(5, weights: [0, 0]) == [5, 0])
    }

    @Test("cumulative shares of a line add up to the whole however it is split")
    func cumulativeShares() throws {
        for split in [[1, 1, 1, 1, 1, 1, 1], [3, 4], [2, 2, 3], [7]] {
            var before = 0
            var total: Int64 = 0
            for quantity in split {
                total += try MinorUnits.cumulativeShare(of: 1001, quantity: quantity, before: before, ofQuantity: 7)
                before += quantity
            }
            #expect(total == 1001, "split \(split)")
        }
        #expect(throws: InvoicingError.self) { try MinorUnits.cumulativeShare(of: 100, quantity: 2, before: 6, ofQuantity: 7) }
    }

    @Test("half-up rounding, and overflow is an error, not a trap")
    func roundingAndOverflow() throws {
        #expect(try MinorUnits.roundHalfUp(5, times: 1, over: 2) == 3)
        #expect(try MinorUnits.roundHalfUp(4, times: 1, over: 3) == 1)
        #expect(try MinorUnits.roundHalfUp(Int64.max, times: 1, over: 1) == Int64.max)
        #expect(throws: InvoicingError.self) { try MinorUnits.roundHalfUp(Int64.max, times: 10, over: 1) }
        #expect(throws: InvoicingError.self) { try MinorUnits.sum([Int64.max, 1]) }
        #expect(MinorUnits.unitPrice(5039, quantity: 3, exponent: 2) == "16.796667")
        #expect(MinorUnits.unitPrice(105, quantity: 1, exponent: 0) == "105")
    }

    @Test("Canada: HST in Ontario, GST elsewhere, added per line")
    func canada() throws {
        let table = try Fixture.table()
        let ca = try Fixture.country("CA")
        let lines = [InvoicedQuantity(line: try Fixture.line("1", sku: "HAT", quantity: 1, unit: "19.99"), quantity: 1)]
        let ontario = try TaxCalculator(table: table).compute(
            TaxRequest(lines: lines, currency: .eur, pricesIncludeTax: false, shipToCountry: ca, shipToRegion: "ON", sellerCountry: ca))
        #expect(ontario.taxTotal.decimalString == "2.60")  // 19.99 × 13 % = 2.5987
        let alberta = try TaxCalculator(table: table).compute(
            TaxRequest(lines: lines, currency: .eur, pricesIncludeTax: false, shipToCountry: ca, shipToRegion: "AB", sellerCountry: ca))
        #expect(alberta.taxTotal.decimalString == "1.00")  // 5 % GST = 0.9995
        #expect(alberta.grossTotal.decimalString == "20.99")
    }
}

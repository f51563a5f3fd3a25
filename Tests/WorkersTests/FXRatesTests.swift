import Contracts
import Foundation
import Testing
import Workers

/// The FX rates table (`FXRates`): its file format and errors, the dated lookup, exact
/// conversion between minor units, and the base-currency columns and tables of
/// `ReportQuery`. Expected amounts are worked out by hand in the comments.
@Suite struct FXRatesTests {
    static let table = """
        # base: EUR
        # a comment and a blank line are ignored

        date,currency,rate
        2026-01-01,USD,0.85
        2026-03-01,USD,0.92
        2026-01-01,JPY,0.0055
        2026-01-01,GBP,1.125
        """

    static func rates(_ text: String = table) throws -> FXRates { try FXRates.parse(text, file: "fx.csv") }

    static func failure(_ text: String) -> String {
        do {
            _ = try FXRates.parse(text, file: "fx.csv")
            return "parsed"
        } catch {
            return error.description
        }
    }

    // MARK: The file

    @Test("a good file: base currency from the first line, comments, blank lines, CRLF, columns in any order")
    func parsesGoodFile() throws {
        let rates = try Self.rates()
        #expect(rates.base == .eur)
        #expect(rates.rate(for: .usd, on: "2026-03-01")?.value == Decimal(string: "0.92"))
        let crlf = try Self.rates("#base=JPY\r\ncurrency, rate ,DATE\r\nEUR,181.25,2026-01-01\r\n")
        #expect(crlf.base == .jpy)
        #expect(crlf.rate(for: .eur, on: "2026-01-01")?.value == Decimal(string: "181.25"))
    }

    @Test("errors name the file, the line and the column")
    func errors() {
        let header = "# base: EUR\ndate,currency,rate\n"
        #expect(Self.failure(header + "2026-01-01,USD,0.9\n2026-01-02,USD,abc\n") == "fx.csv line 4: rate 'abc' is not a number (digits with an optional '.', e.g. 0.8532)")
        for bad in ["12abc", "-1", "1e3", "", ".5", "1.", "1.2.3", "0x10"] {
            #expect(Self.failure(header + "2026-01-01,USD,\(bad)\n").hasPrefix("fx.csv line 3: rate '\(bad)' is not a number"), "\(bad)")
        }
        #expect(Self.failure(header + "2026-01-01,USD,0\n") == "fx.csv line 3: rate '0' must be greater than 0")
        #expect(Self.failure(header + "2026-01-01,USD,0.1234567890123456789\n").contains("more than 18 significant digits"))
        #expect(Self.failure(header + "2026-01-01,XYZ,1.2\n") == "fx.csv line 3: currency 'XYZ' is not a known ISO 4217 currency")
        #expect(Self.failure(header + "2026-01-01,usd,1.2\n") == "fx.csv line 3: currency 'usd' is not a known ISO 4217 currency")
        #expect(Self.failure(header + "2026-02-30,USD,1.2\n") == "fx.csv line 3: date '2026-02-30' is not a day (yyyy-MM-dd)")
        #expect(Self.failure(header + "2026-1-01,USD,1.2\n").contains("line 3: date '2026-1-01'"))
        #expect(Self.failure(header + "2026-01-01,USD\n") == "fx.csv line 3: expected 3 fields (date,currency,rate), found 2")
        #expect(Self.failure(header + "2026-01-01,EUR,1\n").hasPrefix("fx.csv line 3: currency EUR is the base currency"))
        #expect(Self.failure(header + "2026-01-01,USD,0.9\n\n2026-01-01,USD,0.91\n") == "fx.csv line 5: currency USD has a second rate on 2026-01-01 (the first is on line 3)")
        // The header is missing: the first data line is taken for a bad header.
        #expect(Self.failure("# base: EUR\n2026-01-01,USD,0.9\n") == "fx.csv line 2: expected the header 'date,currency,rate', found '2026-01-01,USD,0.9'")
        #expect(Self.failure("# base: EUR\n# only comments\n") == "fx.csv: no header line 'date,currency,rate'")
        #expect(Self.failure("date,currency,rate\n2026-01-01,USD,0.9\n") == "fx.csv line 1: the first line must name the base currency, e.g. '# base: EUR'")
        #expect(Self.failure("# base: EURO\ndate,currency,rate\n") == "fx.csv line 1: base currency 'EURO' is not a known ISO 4217 currency")
        #expect(throws: FXRates.FileError.self) { try FXRates.load(path: "/nonexistent/fx-rates.csv") }
    }

    @Test("the repository's config/fx-rates.csv parses and covers the demo's and the rules' currencies on every day of 2026")
    func repositoryFile() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let rates = try FXRates.load(path: root.appendingPathComponent(FXRates.defaultPath).path)
        #expect(rates.base == .eur)
        for code in ["USD", "EUR", "GBP", "CAD", "JPY", "CHF", "CNY", "SEK"] {
            let currency = try CurrencyCode(code)
            #expect(rates.rate(for: currency, on: "2026-01-01") != nil, "\(code)")
            #expect(rates.rate(for: currency, on: "2026-12-31") != nil, "\(code)")
        }
    }

    // MARK: Lookup

    @Test("a day takes the latest rate on or before it; before the first rate nothing converts; the base is 1")
    func lookup() throws {
        let rates = try Self.rates()
        #expect(rates.rate(for: .usd, on: "2026-02-28")?.date == "2026-01-01")
        #expect(rates.rate(for: .usd, on: "2026-02-28")?.value == Decimal(string: "0.85"))
        #expect(rates.rate(for: .usd, on: "2026-03-01")?.date == "2026-03-01", "a rate applies on its own day")
        #expect(rates.rate(for: .usd, on: "2027-06-30")?.date == "2026-03-01", "the last rate holds until a newer one")
        #expect(rates.rate(for: .usd, on: "2025-12-31") == nil)
        #expect(rates.rate(for: try CurrencyCode("CHF"), on: "2026-03-01") == nil, "a currency the file does not list")
        #expect(rates.rate(for: .eur, on: "1999-01-01")?.value == 1)
        #expect(rates.rate(for: .eur, on: "1999-01-01")?.date == nil)
        #expect(rates.convert(Money(minorUnits: 1_000, currency: .usd), on: "2025-12-31") == .notConverted(reason: "no USD rate on or before 2025-12-31"))
        #expect(rates.convert(Money(minorUnits: 1_234, currency: .eur), on: "1999-01-01") == .converted(Money(minorUnits: 1_234, currency: .eur), rate: try #require(rates.rate(for: .eur, on: "1999-01-01"))))
    }

    // MARK: Conversion

    static func converted(_ rates: FXRates, _ minorUnits: Int64, _ currency: CurrencyCode, on day: String = "2026-03-01") -> Int64? {
        if case .converted(let money, _) = rates.convert(Money(minorUnits: minorUnits, currency: currency), on: day) {
            #expect(money.currency == rates.base)
            return money.minorUnits
        }
        return nil
    }

    @Test("minor units convert with both currencies' exponents and half-even rounding")
    func conversion() throws {
        let eur = try Self.rates()
        let gbp = try CurrencyCode("GBP")
        // 10.00 USD × 0.92 = 9.20 EUR; before March at 0.85: 8.50 EUR.
        #expect(Self.converted(eur, 1_000, .usd) == 920)
        #expect(Self.converted(eur, 1_000, .usd, on: "2026-02-01") == 850)
        // JPY has no minor unit: 1000 JPY × 0.0055 = 5.50 EUR = 550 cents; 12345 JPY = 67.8975 EUR → 67.90.
        #expect(Self.converted(eur, 1_000, .jpy) == 550)
        #expect(Self.converted(eur, 12_345, .jpy) == 6_790)
        #expect(Self.converted(eur, 1, .jpy) == 1, "0.55 cent rounds up")
        // Ties at 1.125 EUR per GBP: 4p = 4.5 cents → 4, 12p = 13.5 → 14, 2p = 2.25 → 2; negatives mirror them.
        #expect(Self.converted(eur, 4, gbp) == 4)
        #expect(Self.converted(eur, 12, gbp) == 14)
        #expect(Self.converted(eur, 2, gbp) == 2)
        #expect(Self.converted(eur, -4, gbp) == -4)
        #expect(Self.converted(eur, -12, gbp) == -14)
        // Far beyond Int64 after conversion: not converted, never wrapped.
        #expect(Self.converted(try Self.rates("# base: EUR\ndate,currency,rate\n2026-01-01,USD,2\n"), .max, .usd) == nil)

        // Into JPY: 1.23 EUR × 181.5 = 223.245 JPY → 223; 1.00 EUR = 181.5 → 182 and 3.00 EUR = 544.5 → 544 (ties to even).
        let jpy = try Self.rates("# base: JPY\ndate,currency,rate\n2026-01-01,EUR,181.5\n2026-01-01,KWD,500.5\n")
        #expect(Self.converted(jpy, 123, .eur) == 223)
        #expect(Self.converted(jpy, 100, .eur) == 182)
        #expect(Self.converted(jpy, 300, .eur) == 544)
        // KWD has three decimals: 1.234 KWD × 500.5 = 617.617 JPY → 618.
        #expect(Self.converted(jpy, 1_234, try CurrencyCode("KWD")) == 618)
        // An amount that needs all 19 digits of Int64 still converts exactly: 9223372036854775807 × 0.0055 / 1 (JPY→EUR ×100)
        // = 5072854620270126693.85 → 5072854620270126694.
        #expect(Self.converted(eur, .max, .jpy) == 5_072_854_620_270_126_694)
    }

    // MARK: Reports

    static func query(_ buckets: [(String, String, [String: Int64])]) -> ReportQuery {
        ReportQuery(buckets: buckets.map { ReportBucket(report: $0.0, bucket: $0.1, values: $0.2, updatedAt: Date(timeIntervalSince1970: 0)) })
    }

    static let orderBuckets: [(String, String, [String: Int64])] = [
        ("orders", "2025-12-31T10/web/USD@p0", ["orders": 1, "revenue": 5_000, "units": 1]),
        ("orders", "2026-03-01T09/web/USD@p0", ["orders": 2, "revenue": 3_001, "units": 3]),
        ("orders", "2026-03-01T15/web/USD@p2", ["orders": 1, "revenue": 1_000, "units": 1]),
        ("orders", "2026-03-01T09/web/JPY@p1", ["orders": 2, "revenue": 12_345, "units": 2]),
        ("orders", "2026-03-01T09/web/EUR@p1", ["orders": 2, "revenue": 1_051, "units": 2]),
        ("orders", "2026-03-01T10/web/-@p0", ["rejected": 1]),
        ("orders", "2026-03-01T10/shop/CHF@p0", ["orders": 1, "revenue": 2_000, "units": 1]),
    ]

    @Test("orders: base columns next to the per-currency ones; rows without a rate say so")
    func ordersWithRates() throws {
        let query = Self.query(Self.orderBuckets)
        let rates = try Self.rates()
        let plain = query.orders(.init())
        let table = query.orders(.init(), rates: rates)
        #expect(table.columns == plain.columns + ["baseCurrency", "fxRate", "fxDate", "revenueBase", "averageOrderValueBase"])
        #expect(table.rows.map { Array($0.prefix(plain.columns.count)) } == plain.rows, "the per-currency figures are unchanged")
        let rows = Dictionary(uniqueKeysWithValues: table.rows.map { ("\($0[0])/\($0[1])/\($0[2])", Array($0[8...])) })
        // 40.01 USD on 2026-03-01 × 0.92 = 36.8092 EUR → 3681 cents; per order 3681 / 3 = 1227.
        #expect(rows["2026-03-01/web/USD"] == [.text("EUR"), .text("0.92"), .text("2026-03-01"), .integer(3_681), .integer(1_227)])
        // 12345 JPY at the January rate 0.0055 = 67.8975 EUR → 6790; per order 3395.
        #expect(rows["2026-03-01/web/JPY"] == [.text("EUR"), .text("0.0055"), .text("2026-01-01"), .integer(6_790), .integer(3_395)])
        // The base currency at 1; 1051 / 2 = 525.5 rounds half-even to 526 (the per-currency column truncates to 525).
        #expect(rows["2026-03-01/web/EUR"] == [.text("EUR"), .text("1"), .text(""), .integer(1_051), .integer(526)])
        #expect(rows["2026-03-01/web/-"] == [.text("EUR"), .text("-"), .text(""), .integer(0), .integer(0)], "rejections hold no money")
        #expect(rows["2026-03-01/shop/CHF"] == [.text("EUR"), .text("none"), .text(""), .text("not converted"), .text("not converted")])
        #expect(rows["2025-12-31/web/USD"] == [.text("EUR"), .text("none"), .text(""), .text("not converted"), .text("not converted")], "before the first rate")
    }

    @Test("orders-base: per day and channel summed over currencies, counting the orders left out")
    func ordersInBase() throws {
        let query = Self.query(Self.orderBuckets)
        let rates = try Self.rates()
        let table = query.ordersInBase(.init(), rates: rates)
        #expect(table.name == "orders-base")
        #expect(table.columns == ["day", "channel", "baseCurrency", "orders", "revenueBase", "averageOrderValueBase", "units", "rejected", "ordersNotConverted"])
        #expect(table.rows == [
            [.text("2025-12-31"), .text("web"), .text("EUR"), .integer(1), .integer(0), .integer(0), .integer(1), .integer(0), .integer(1)],
            [.text("2026-03-01"), .text("shop"), .text("EUR"), .integer(1), .integer(0), .integer(0), .integer(1), .integer(0), .integer(1)],
            // 3681 + 6790 + 1051 = 11522 EUR cents over 7 orders = 1646.
            [.text("2026-03-01"), .text("web"), .text("EUR"), .integer(7), .integer(11_522), .integer(1_646), .integer(8), .integer(1), .integer(0)],
        ])
        // Per hour each hour converts on its own: 09h web = 3001 × 0.92 = 2760.92 → 2761, + 6790 + 1051 = 10602 over 6 orders = 1767.
        let hourly = query.ordersInBase(.init(channel: "web", hourly: true), rates: rates)
        #expect(hourly.columns.first == "hour")
        #expect(hourly.rows.first { $0[0] == .text("2026-03-01T09") }?[3...5] == [.integer(6), .integer(10_602), .integer(1_767)])
        #expect(hourly.rows.allSatisfy { $0[1] == .text("web") })
        // The report: the per-currency table first, as without rates, then the sum.
        #expect(query.report("orders", rates: rates)?.map(\.name) == ["orders", "orders-base"])
        #expect(query.report("orders")?.map(\.name) == ["orders"])
        #expect(query.report("orders")?.first?.columns == query.orders(.init()).columns, "no rates, no new columns")
    }

    @Test("refunds: the base amount per day and currency, and per day over currencies")
    func refundsWithRates() throws {
        let query = Self.query([
            ("refunds", "2026-03-01/USD@p0", ["refunds": 1, "amount": 1_000]),
            ("refunds", "2026-03-01/JPY@p3", ["refunds": 1, "amount": 999]),
            ("refunds", "2026-03-01/CHF@p1", ["refunds": 1, "amount": 500]),
        ])
        let rates = try Self.rates()
        let table = query.refunds(.init(), rates: rates)
        #expect(table.columns == ["day", "currency", "refunds", "amount", "baseCurrency", "fxRate", "fxDate", "amountBase"])
        // 10.00 USD × 0.92 = 920; 999 JPY × 0.0055 = 5.4945 EUR → 549 cents; CHF has no rate.
        #expect(table.rows.map { $0[1] } == [.text("CHF"), .text("JPY"), .text("USD")])
        #expect(table.rows.map { $0[7] } == [.text("not converted"), .integer(549), .integer(920)])
        #expect(query.refundsInBase(.init(), rates: rates).rows == [[.text("2026-03-01"), .text("EUR"), .integer(3), .integer(1_469), .integer(1)]])
        #expect(query.report("returns", rates: rates)?.map(\.name) == ["returns", "refunds", "refunds-base"])
        #expect(query.refunds(.init()).columns == ["day", "currency", "refunds", "amount"])
    }
}

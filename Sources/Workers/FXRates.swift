import Contracts
import Foundation

/// Dated exchange rates into one base currency, for reports that show money in one
/// currency next to the per-currency figures.
///
/// The table is a CSV file (default `config/fx-rates.csv`):
///
/// ```text
/// # base: EUR
/// date,currency,rate
/// 2026-03-02,USD,0.8532
/// 2026-03-02,JPY,0.005479
/// ```
///
/// The first line names the base currency; other lines starting with `#` and blank lines
/// are ignored. The header names the three columns (in any order). `rate` is how many
/// units of the base currency one unit of `currency` is worth on `date` (a day,
/// `yyyy-MM-dd`), as a plain decimal. An amount dated D converts at the rate of the
/// currency's latest date on or before D, as a daily reference rate applies until the
/// next one is published; with no such date it is not converted. The base currency always
/// converts at 1 and may not be listed.
public struct FXRates: Sendable, Hashable {
    /// Where `oms report` looks when no file is named.
    public static let defaultPath = "config/fx-rates.csv"

    /// The currency every amount is converted into.
    public let base: CurrencyCode
    /// Rates per currency code, sorted by date.
    private let rates: [String: [Rate]]

    /// One rate of the table.
    public struct Rate: Sendable, Hashable {
        /// The day it applies from (`yyyy-MM-dd`); nil for the base currency's own 1.
        public let date: String?
        /// Units of the base currency per unit of the converted currency.
        public let value: Decimal
    }

    /// The outcome of converting one amount.
    public enum Conversion: Sendable, Hashable {
        /// The amount in the base currency, rounded half-even to its minor unit, and the
        /// rate used.
        case converted(Money, rate: Rate)
        /// Why there is no base amount (no rate on or before the day, or too large).
        case notConverted(reason: String)
    }

    /// A table of `rates` (per currency: the day and the base units per unit) into `base`,
    /// already checked by ``parse(_:file:)``, the one way in.
    init(base: CurrencyCode, rates: [CurrencyCode: [String: Decimal]]) {
        self.base = base
        var table: [String: [Rate]] = [:]
        for (currency, dated) in rates where currency != base {
            table[currency.code] = dated.map { Rate(date: $0.key, value: $0.value) }.sorted { ($0.date ?? "") < ($1.date ?? "") }
        }
        self.rates = table
    }

    /// The rate for `currency` on `day` (`yyyy-MM-dd`): that of its latest date on or
    /// before `day`; 1 for the base currency; nil when there is none.
    public func rate(for currency: CurrencyCode, on day: String) -> Rate? {
        if currency == base { return Rate(date: nil, value: 1) }
        guard let dated = rates[currency.code] else { return nil }
        // Binary search: the first rate dated after `day`; the one before it applies.
        var low = 0
        var high = dated.count
        while low < high {
            let middle = (low + high) / 2
            if (dated[middle].date ?? "") <= day { low = middle + 1 } else { high = middle }
        }
        return low > 0 ? dated[low - 1] : nil
    }

    /// `money` in the base currency at the rate for `day` (`yyyy-MM-dd`), exact up to one
    /// half-even rounding to the base currency's minor unit.
    public func convert(_ money: Money, on day: String) -> Conversion {
        guard let rate = rate(for: money.currency, on: day) else {
            return .notConverted(reason: "no \(money.currency.code) rate on or before \(day)")
        }
        if money.currency == base { return .converted(money, rate: rate) }
        // minor × 10^-e(source) units × rate = minor × rate × 10^(e(base) - e(source)) base minor units.
        var exact = Decimal(money.minorUnits) * rate.value
            * Decimal(sign: .plus, exponent: base.minorUnitExponent - money.currency.minorUnitExponent, significand: 1)
        var rounded = Decimal()
        NSDecimalRound(&rounded, &exact, 0, .bankers)
        // A rounded Decimal prints as plain digits; Int64's parser rejects what does not fit.
        guard let minorUnits = Int64(rounded.description) else {
            return .notConverted(reason: "\(money) is too large to convert")
        }
        return .converted(Money(minorUnits: minorUnits, currency: base), rate: rate)
    }

    /// `dividend / divisor` rounded half-even, as the conversion rounds; 0 for a zero divisor.
    static func divideHalfEven(_ dividend: Int64, by divisor: Int64) -> Int64 {
        guard divisor != 0 else { return 0 }
        let (quotient, remainder) = dividend.quotientAndRemainder(dividingBy: divisor)
        let twice = remainder.magnitude * 2
        guard twice >= divisor.magnitude, twice > divisor.magnitude || quotient % 2 != 0 else { return quotient }
        return quotient + ((dividend < 0) != (divisor < 0) ? -1 : 1)
    }

    // MARK: The file

    /// A problem in a rates file: the file, the line and what is wrong there.
    public struct FileError: Error, Sendable, Hashable, CustomStringConvertible {
        /// The file as it was named.
        public var file: String
        /// 1-based line number; 0 when the file as a whole is the problem.
        public var line: Int
        /// What is wrong, naming the column.
        public var reason: String

        /// `config/fx-rates.csv line 7: rate 'abc' is not a number`.
        public var description: String { line > 0 ? "\(file) line \(line): \(reason)" : "\(file): \(reason)" }
    }

    /// Reads and checks the file at `path`.
    public static func load(path: String) throws(FileError) -> FXRates {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw FileError(file: path, line: 0, reason: "cannot read it: \(error.localizedDescription)")
        }
        return try parse(text, file: path)
    }

    /// Parses the text of a rates file; `file` names it in errors.
    public static func parse(_ text: String, file: String) throws(FileError) -> FXRates {
        // "\r\n" is one Character, so splitting on "\n" alone would keep Windows files in one line.
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        func fail(_ line: Int, _ reason: String) -> FileError { FileError(file: file, line: line, reason: reason) }

        let base: CurrencyCode
        let first = lines.first ?? ""
        var declaration = first.hasPrefix("#") ? first.dropFirst().trimmingCharacters(in: .whitespaces) : ""
        guard declaration.lowercased().hasPrefix("base") else {
            throw fail(1, "the first line must name the base currency, e.g. '# base: EUR'")
        }
        declaration = declaration.dropFirst(4).trimmingCharacters(in: .whitespaces)
        if declaration.hasPrefix(":") || declaration.hasPrefix("=") { declaration = declaration.dropFirst().trimmingCharacters(in: .whitespaces) }
        do {
            base = try CurrencyCode(declaration)
        } catch {
            throw fail(1, "base currency '\(declaration)' is not a known ISO 4217 currency")
        }

        var columns: [String: Int]?
        var table: [CurrencyCode: [String: Decimal]] = [:]
        var seen: [String: Int] = [:]
        for (index, line) in lines.enumerated().dropFirst() where !line.isEmpty && !line.hasPrefix("#") {
            let number = index + 1
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard let header = columns else {
                let names = fields.map { $0.lowercased() }
                guard names.count == 3, Set(names) == ["date", "currency", "rate"] else {
                    throw fail(number, "expected the header 'date,currency,rate', found '\(line)'")
                }
                columns = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
                continue
            }
            guard fields.count == 3 else { throw fail(number, "expected 3 fields (date,currency,rate), found \(fields.count)") }
            let day = fields[header["date"]!]
            let code = fields[header["currency"]!]
            let rateText = fields[header["rate"]!]
            guard isDay(day) else { throw fail(number, "date '\(day)' is not a day (yyyy-MM-dd)") }
            let currency: CurrencyCode
            do {
                currency = try CurrencyCode(code)
            } catch {
                throw fail(number, "currency '\(code)' is not a known ISO 4217 currency")
            }
            guard currency != base else {
                throw fail(number, "currency \(code) is the base currency, which always converts at 1; remove the line")
            }
            guard let rate = parseRate(rateText) else { throw fail(number, "rate '\(rateText)' is not a number (digits with an optional '.', e.g. 0.8532)") }
            guard rate > 0 else { throw fail(number, "rate '\(rateText)' must be greater than 0") }
            guard significantDigits(rateText) <= maximumRateDigits else {
                throw fail(number, "rate '\(rateText)' has more than \(maximumRateDigits) significant digits")
            }
            if let earlier = seen["\(code)/\(day)"] {
                throw fail(number, "currency \(code) has a second rate on \(day) (the first is on line \(earlier))")
            }
            seen["\(code)/\(day)"] = number
            table[currency, default: [:]][day] = rate
        }
        guard columns != nil else { throw fail(0, "no header line 'date,currency,rate'") }
        return FXRates(base: base, rates: table)
    }

    /// At most this many significant digits, so that a rate times any Int64 amount fits
    /// Decimal's 38-digit mantissa and the product is exact before rounding.
    static let maximumRateDigits = 18

    /// A plain decimal (`0.8532`, `160`): no sign, exponent or separators, which
    /// `Decimal(string:)` would accept or half-read (`12abc` is 12 to it).
    static func parseRate(_ text: String) -> Decimal? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), parts.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy { $0 >= 48 && $0 <= 57 } }) else { return nil }
        return Decimal(string: text, locale: Locale(identifier: "en_US_POSIX"))
    }

    /// The digits of a plain decimal that Decimal has to keep in its mantissa: leading
    /// and trailing zeros cost nothing, they become the exponent.
    static func significantDigits(_ text: String) -> Int {
        text.filter { $0 != "." }.drop { $0 == "0" }.reversed().drop { $0 == "0" }.count
    }

    /// Whether `text` is a real calendar day, `yyyy-MM-dd`.
    static func isDay(_ text: String) -> Bool {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard text.utf8.count == 10, text.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || $0 == 45 }), parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
              let year = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2]), (1...12).contains(month), day >= 1
        else { return false }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
        return day <= days
    }
}

import Contracts
import Foundation

/// Tax rates per country, region and tax class, and each country's pricing and rounding
/// rules, read from a CSV file (default `config/tax-rates.csv`):
///
/// ```text
/// country,region,tax_class,rate_bp,category,prices,rounding
/// DE,,standard,1900,S,inclusive,per_invoice
/// DE,,reduced,700,S,,
/// US,CA,standard,725,S,exclusive,per_line
/// ```
///
/// `region` empty means the whole country. `rate_bp` is the rate in basis points (1900 is
/// 19 %), `category` its UNCL5305 code. `prices` (`inclusive` or `exclusive`) and `rounding`
/// (`per_line` or `per_invoice`) are the country's rules: stated on at least one of its rows
/// (by habit its first), empty or equal on the others. Lines starting with `#` and blank
/// lines are ignored; the header names the columns in any order. docs/RULES.md, "Taxes and
/// invoices", says why each country has the rules it has.
public struct TaxTable: Sendable, Hashable {
    /// Where the stage looks when no file is named.
    public static let defaultPath = "config/tax-rates.csv"

    /// One rate of the table.
    public struct Rate: Sendable, Hashable {
        /// UNCL5305 category code (`S`, `Z`, ...).
        public var category: String
        /// Rate in basis points: 1900 is 19 %.
        public var basisPoints: Int
    }

    /// A country's rules.
    public struct CountryRules: Sendable, Hashable {
        /// Shelf prices include tax (EU, UK, AU, JP) or tax is added at checkout (US, CA).
        public var pricesIncludeTax: Bool
        /// Where tax is rounded on this country's invoices.
        public var rounding: TaxRounding
    }

    /// The tax class every lookup falls back to.
    public static let standardClass = "standard"

    private struct Key: Hashable {
        var country: String
        var region: String
        var taxClass: String
    }

    private let rates: [Key: Rate]
    private let rules: [String: CountryRules]

    /// The rate for `taxClass` in `country` and `region`: the region's rate for the class,
    /// else the country's rate for the class, else the region's standard rate, else the
    /// country's standard rate. The region steps matter where the region sets the rate (US
    /// states, Canadian provinces); the class steps where a class is not special somewhere.
    public func rate(country: CountryCode, region: String?, taxClass: String) throws(InvoicingError) -> Rate {
        let region = region?.uppercased() ?? ""
        let attempts = [
            Key(country: country.code, region: region, taxClass: taxClass),
            Key(country: country.code, region: "", taxClass: taxClass),
            Key(country: country.code, region: region, taxClass: Self.standardClass),
            Key(country: country.code, region: "", taxClass: Self.standardClass),
        ]
        for key in attempts where key.region.isEmpty || !region.isEmpty {
            if let rate = rates[key] { return rate }
        }
        let place = region.isEmpty ? country.code : "\(country.code) region \(region)"
        throw .taxTable("no rate for \(place), tax class '\(taxClass)', nor a standard rate to fall back to")
    }

    /// `country`'s pricing and rounding rules.
    public func rules(for country: CountryCode) throws(InvoicingError) -> CountryRules {
        guard let rules = rules[country.code] else { throw .taxTable("no rules (prices, rounding) for \(country.code)") }
        return rules
    }

    // MARK: The file

    /// A problem in a tax table file: the file, the line, the column and what is wrong.
    public struct FileError: Error, Sendable, Hashable, CustomStringConvertible {
        /// The file as it was named.
        public var file: String
        /// 1-based line number; 0 when the file as a whole is the problem.
        public var line: Int
        /// The column at fault, when one is.
        public var column: String?
        /// What is wrong.
        public var reason: String

        /// `config/tax-rates.csv line 7, column rate_bp: 'abc' is not a whole number`.
        public var description: String {
            let place = line > 0 ? " line \(line)" + (column.map { ", column \($0)" } ?? "") : ""
            return "\(file)\(place): \(reason)"
        }
    }

    /// The columns of the file, in the order the documentation shows them.
    static let columns = ["country", "region", "tax_class", "rate_bp", "category", "prices", "rounding"]
    /// The UNCL5305 codes a row may name.
    static let categories: Set<String> = ["S", "Z", "E", "AE", "K", "G", "O", "L", "M"]

    /// Reads and checks the file at `path`.
    public static func load(path: String = defaultPath) throws(FileError) -> TaxTable {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw FileError(file: path, line: 0, column: nil, reason: "cannot read it: \(error.localizedDescription)")
        }
        return try parse(text, file: path)
    }

    /// Parses the text of a tax table; `file` names it in errors.
    public static func parse(_ text: String, file: String) throws(FileError) -> TaxTable {
        var parser = Parser(file: file)
        // "\r\n" is one Character, so splitting on "\n" alone would keep Windows files in one line.
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
        for (index, line) in lines.enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard !trimmed.isEmpty, !trimmed.hasPrefix("#") else { continue }
            try parser.read(trimmed, line: index + 1)
        }
        return try parser.finish()
    }

    /// The state of a parse: the header once seen, the rows so far and where each came from.
    private struct Parser {
        let file: String
        var header: [String: Int]?
        var rates: [Key: Rate] = [:]
        var rateLines: [Key: Int] = [:]
        var prices: [String: (Bool, Int)] = [:]
        var rounding: [String: (TaxRounding, Int)] = [:]

        init(file: String) { self.file = file }

        func fail(_ line: Int, _ column: String?, _ reason: String) -> FileError {
            FileError(file: file, line: line, column: column, reason: reason)
        }

        mutating func read(_ text: String, line: Int) throws(FileError) {
            let fields = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard let header else {
                try readHeader(fields, line: line)
                return
            }
            guard fields.count == header.count else {
                throw fail(line, nil, "expected \(header.count) fields (\(TaxTable.columns.joined(separator: ","))), found \(fields.count)")
            }
            func field(_ name: String) -> String { header[name].map { fields[$0] } ?? "" }
            try readRow(
                country: field("country"), region: field("region"), taxClass: field("tax_class"), rate: field("rate_bp"),
                category: field("category"), prices: field("prices"), rounding: field("rounding"), line: line)
        }

        mutating func readHeader(_ fields: [String], line: Int) throws(FileError) {
            let names = fields.map { $0.lowercased() }
            guard names.count == TaxTable.columns.count, Set(names) == Set(TaxTable.columns) else {
                throw fail(line, nil, "expected the header '\(TaxTable.columns.joined(separator: ","))', found '\(fields.joined(separator: ","))'")
            }
            header = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
        }

        // One row: each column checked in turn, so the error names the first bad one.
        mutating func readRow(
            country countryText: String, region: String, taxClass: String, rate rateText: String,
            category: String, prices pricesText: String, rounding roundingText: String, line: Int
        ) throws(FileError) {
            let country: CountryCode
            do { country = try CountryCode(countryText) } catch {
                throw fail(line, "country", "'\(countryText)' is not an ISO 3166-1 alpha-2 country code")
            }
            guard region == region.uppercased(), region.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" }) else {
                throw fail(line, "region", "'\(region)' is not an upper-case region code (letters, digits, '-')")
            }
            guard !taxClass.isEmpty, taxClass == taxClass.lowercased(), taxClass.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                throw fail(line, "tax_class", "'\(taxClass)' is not a lower-case tax class such as standard or reduced")
            }
            guard rateText.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let basisPoints = Int(rateText), basisPoints <= 10_000 else {
                throw fail(line, "rate_bp", "'\(rateText)' is not a whole number of basis points from 0 to 10000 (1900 is 19 %)")
            }
            guard TaxTable.categories.contains(category) else {
                throw fail(line, "category", "'\(category)' is not a UNCL5305 tax category (\(TaxTable.categories.sorted().joined(separator: ", ")))")
            }
            guard (basisPoints == 0) == (category != "S") else {
                throw fail(line, "rate_bp", "category \(category) with rate \(basisPoints): only S has a rate above 0, and S always has one")
            }
            let key = Key(country: country.code, region: region, taxClass: taxClass)
            if let earlier = rateLines[key] {
                throw fail(line, "tax_class", "\(country.code)\(region.isEmpty ? "" : "/\(region)") \(taxClass) is listed twice (first on line \(earlier))")
            }
            rates[key] = Rate(category: category, basisPoints: basisPoints)
            rateLines[key] = line
            try readRules(country: country.code, prices: pricesText, rounding: roundingText, line: line)
        }

        mutating func readRules(country: String, prices pricesText: String, rounding roundingText: String, line: Int) throws(FileError) {
            if !pricesText.isEmpty {
                guard pricesText == "inclusive" || pricesText == "exclusive" else {
                    throw fail(line, "prices", "'\(pricesText)' is neither inclusive nor exclusive")
                }
                let inclusive = pricesText == "inclusive"
                if let (earlier, earlierLine) = prices[country], earlier != inclusive {
                    throw fail(line, "prices", "\(country) prices are \(pricesText) here but not on line \(earlierLine)")
                }
                prices[country] = prices[country] ?? (inclusive, line)
            }
            if !roundingText.isEmpty {
                guard let value = TaxRounding(rawValue: roundingText) else {
                    throw fail(line, "rounding", "'\(roundingText)' is neither per_line nor per_invoice")
                }
                if let (earlier, earlierLine) = rounding[country], earlier != value {
                    throw fail(line, "rounding", "\(country) rounds \(roundingText) here but \(earlier.rawValue) on line \(earlierLine)")
                }
                rounding[country] = rounding[country] ?? (value, line)
            }
        }

        func finish() throws(FileError) -> TaxTable {
            guard header != nil else { throw fail(0, nil, "no header line '\(TaxTable.columns.joined(separator: ","))'") }
            var rules: [String: CountryRules] = [:]
            for country in Set(rateLines.keys.map(\.country)).sorted() {
                let firstLine = rateLines.filter { $0.key.country == country }.map(\.value).min() ?? 0
                guard let (inclusive, _) = prices[country] else {
                    throw fail(firstLine, "prices", "\(country) never says whether prices include tax (inclusive or exclusive)")
                }
                guard let (roundingRule, _) = rounding[country] else {
                    throw fail(firstLine, "rounding", "\(country) never says how tax is rounded (per_line or per_invoice)")
                }
                rules[country] = CountryRules(pricesIncludeTax: inclusive, rounding: roundingRule)
            }
            return TaxTable(rates: rates, rules: rules)
        }
    }
}

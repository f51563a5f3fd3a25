/// An ISO 4217 currency code whose minor-unit exponent is known.
///
/// The exponent decides how many decimals a price may have (JPY none, USD
/// two, KWD three); a code whose exponent we do not know cannot be turned
/// into exact minor units, so it is rejected rather than guessed.
public struct CurrencyCode: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The three uppercase letters, e.g. `EUR`.
    public let code: String
    /// Number of decimals of the minor unit (2 for cents).
    public let minorUnitExponent: Int

    /// Validates `code` against the built-in ISO 4217 table.
    public init(_ code: String) throws(ContractError) {
        guard code.utf8.count == 3, code.utf8.allSatisfy({ $0 >= 65 && $0 <= 90 }) else {
            throw .invalidField(path: "currency", reason: "'\(code)' is not three uppercase letters (ISO 4217)")
        }
        guard let exponent = Self.exponents[code] else {
            throw .invalidField(path: "currency", reason: "'\(code)' is not a known ISO 4217 currency")
        }
        self.code = code
        self.minorUnitExponent = exponent
    }

    /// The code itself, so currencies print naturally in messages.
    public var description: String { code }

    /// Decodes from the bare code string.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        do {
            try self.init(text)
        } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.description)
        }
    }

    /// Encodes as the bare code string.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(code)
    }

    /// US dollar, used often enough in tests and defaults to deserve a name.
    public static var usd: CurrencyCode { CurrencyCode(trusted: "USD", 2) }
    /// Euro.
    public static var eur: CurrencyCode { CurrencyCode(trusted: "EUR", 2) }
    /// Japanese yen (no minor unit).
    public static var jpy: CurrencyCode { CurrencyCode(trusted: "JPY", 0) }

    private init(trusted code: String, _ exponent: Int) {
        self.code = code
        self.minorUnitExponent = exponent
    }

    static let exponents: [String: Int] = {
        var table: [String: Int] = [:]
        let two = """
            AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN BZD \
            CAD CDF CHE CHF CHW CNY COP COU CRC CUC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL \
            GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD \
            LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN \
            PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL \
            THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG ZWL
            """
        for code in two.split(separator: " ") { table[String(code)] = 2 }
        for code in "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(separator: " ") {
            table[String(code)] = 0
        }
        for code in "BHD IQD JOD KWD LYD OMR TND".split(separator: " ") { table[String(code)] = 3 }
        for code in "CLF UYW".split(separator: " ") { table[String(code)] = 4 }
        return table
    }()
}

/// An amount of money as integer minor units; never floating point.
public struct Money: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Amount in the currency's minor unit (cents for USD, yen for JPY).
    public var minorUnits: Int64
    /// The currency the amount is in.
    public var currency: CurrencyCode

    /// Wraps an already-exact amount.
    public init(minorUnits: Int64, currency: CurrencyCode) {
        self.minorUnits = minorUnits
        self.currency = currency
    }

    /// Zero in `currency`, the identity for sums.
    public static func zero(_ currency: CurrencyCode) -> Money { Money(minorUnits: 0, currency: currency) }

    /// Parses a decimal string such as `"12.30"` exactly.
    ///
    /// Accepts an optional leading `-`, at least one integer digit and an
    /// optional fraction. Fraction digits beyond the currency's exponent are
    /// accepted only when they are zeros (`"1000.00"` JPY is 1000; `"1.005"`
    /// USD is an error), so nothing is ever silently rounded. Exponents,
    /// `NaN`, `+`, spaces, thousands separators and overflow are errors.
    public static func parse(_ text: String, currency: CurrencyCode) throws(ContractError) -> Money {
        Money(minorUnits: try parseMinorUnits(text, exponent: currency.minorUnitExponent), currency: currency)
    }

    static func parseMinorUnits(_ text: String, exponent: Int) throws(ContractError) -> Int64 {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty else { throw .invalidAmount(text, reason: "empty") }
        guard bytes.count <= 64 else { throw .invalidAmount(String(text.prefix(32)) + "…", reason: "too long") }
        var i = 0
        let negative = bytes[0] == UInt8(ascii: "-")
        if negative { i = 1 }
        var integerDigits: [UInt8] = []
        while i < bytes.count, bytes[i] >= 48, bytes[i] <= 57 { integerDigits.append(bytes[i] - 48); i += 1 }
        guard !integerDigits.isEmpty else { throw .invalidAmount(text, reason: "expected a digit") }
        var fractionDigits: [UInt8] = []
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            i += 1
            while i < bytes.count, bytes[i] >= 48, bytes[i] <= 57 { fractionDigits.append(bytes[i] - 48); i += 1 }
            guard !fractionDigits.isEmpty else { throw .invalidAmount(text, reason: "expected a digit after '.'") }
        }
        guard i == bytes.count else {
            throw .invalidAmount(text, reason: "unexpected character; only digits, one '.' and a leading '-' are allowed")
        }
        if fractionDigits.count > exponent {
            guard fractionDigits[exponent...].allSatisfy({ $0 == 0 }) else {
                throw .invalidAmount(text, reason: "more than \(exponent) decimal places for this currency")
            }
            fractionDigits.removeLast(fractionDigits.count - exponent)
        }
        while fractionDigits.count < exponent { fractionDigits.append(0) }
        var value: Int64 = 0
        for digit in integerDigits + fractionDigits {
            let (times10, o1) = value.multipliedReportingOverflow(by: 10)
            let (next, o2) = times10.addingReportingOverflow(Int64(digit))
            guard !o1, !o2 else { throw .invalidAmount(text, reason: "does not fit in 64-bit minor units") }
            value = next
        }
        return negative ? -value : value
    }

    /// The exact decimal text, e.g. `12.30` for 1230 USD cents.
    public var decimalString: String {
        let exponent = currency.minorUnitExponent
        let magnitude = minorUnits.magnitude
        var digits = String(magnitude)
        if exponent > 0 {
            if digits.count <= exponent { digits = String(repeating: "0", count: exponent - digits.count + 1) + digits }
            digits.insert(".", at: digits.index(digits.endIndex, offsetBy: -exponent))
        }
        return (minorUnits < 0 ? "-" : "") + digits
    }

    /// Human-readable amount with currency, e.g. `12.30 USD`.
    public var description: String { "\(decimalString) \(currency.code)" }

    /// Adds two amounts of the same currency, failing on mismatch or overflow.
    public func adding(_ other: Money) throws(ContractError) -> Money {
        guard currency == other.currency else { throw .currencyMismatch(currency.code, other.currency.code) }
        let (sum, overflow) = minorUnits.addingReportingOverflow(other.minorUnits)
        guard !overflow else { throw .arithmeticOverflow("\(self) + \(other)") }
        return Money(minorUnits: sum, currency: currency)
    }

    /// Subtracts an amount of the same currency, failing on mismatch or overflow.
    public func subtracting(_ other: Money) throws(ContractError) -> Money {
        guard currency == other.currency else { throw .currencyMismatch(currency.code, other.currency.code) }
        let (difference, overflow) = minorUnits.subtractingReportingOverflow(other.minorUnits)
        guard !overflow else { throw .arithmeticOverflow("\(self) - \(other)") }
        return Money(minorUnits: difference, currency: currency)
    }

    /// Multiplies by a quantity, failing on overflow (a hostile quantity must not trap).
    public func multiplied(by quantity: Int) throws(ContractError) -> Money {
        let (product, overflow) = minorUnits.multipliedReportingOverflow(by: Int64(quantity))
        guard !overflow else { throw .arithmeticOverflow("\(self) × \(quantity)") }
        return Money(minorUnits: product, currency: currency)
    }
}

import Foundation

/// Limits applied to untrusted channel and carrier bodies before any parsing.
public struct AdapterLimits: Sendable, Hashable, Codable {
    /// Largest body accepted, in bytes. Real orders are a few KiB; 1 MiB leaves
    /// room for huge carts while keeping a hostile 10 MB body from being parsed.
    public var maxBodyBytes: Int

    /// Limits with a custom body size.
    public init(maxBodyBytes: Int) {
        self.maxBodyBytes = maxBodyBytes
    }

    /// 1 MiB.
    public static let `default` = AdapterLimits(maxBodyBytes: 1 << 20)

    /// Checks the size and parses JSON; the size check costs nothing for arrays and `Data`.
    func parse<Body: Collection>(_ body: Body) throws(ContractError) -> JSONValue where Body.Element == UInt8 {
        let size = body.count
        guard size <= maxBodyBytes else { throw .payloadTooLarge(size: size, limit: maxBodyBytes) }
        return try JSONValue.parse(body)
    }
}

/// Path-tracking reads from a JSON object, so adapter errors name the exact field.
struct JSONObjectReader {
    let fields: [String: JSONValue]
    let path: String

    init(_ value: JSONValue, path: String) throws(ContractError) {
        guard case .object(let fields) = value else {
            throw .invalidField(path: path, reason: "expected an object, found \(value.typeName)")
        }
        self.fields = fields
        self.path = path
    }

    func at(_ key: String) -> String { path.isEmpty || path == "$" ? key : "\(path).\(key)" }

    /// The value, treating JSON null like an absent field (channels use both).
    func value(_ key: String) -> JSONValue? {
        guard let value = fields[key] else { return nil }
        if case .null = value { return nil }
        return value
    }

    func string(_ key: String) throws(ContractError) -> String {
        guard let s = try optionalString(key) else { throw .invalidField(path: at(key), reason: "required field is missing") }
        return s
    }

    func nonEmptyString(_ key: String) throws(ContractError) -> String {
        let s = try string(key)
        guard !s.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw .invalidField(path: at(key), reason: "must not be empty")
        }
        return s
    }

    func optionalString(_ key: String) throws(ContractError) -> String? {
        guard let value = value(key) else { return nil }
        guard case .string(let s) = value else {
            throw .invalidField(path: at(key), reason: "expected a string, found \(value.typeName)")
        }
        return s
    }

    /// An optional string where "" means absent, as channels send empty strings for unset fields.
    func optionalText(_ key: String) throws(ContractError) -> String? {
        guard let s = try optionalString(key), !s.isEmpty else { return nil }
        return s
    }

    /// An id that channels send as a JSON number (Shopify) or a string.
    func identifier(_ key: String) throws(ContractError) -> String {
        guard let value = value(key) else { throw .invalidField(path: at(key), reason: "required field is missing") }
        switch value {
        case .string(let s) where !s.isEmpty: return s
        case .number(let text) where text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }): return text
        default: throw .invalidField(path: at(key), reason: "expected a non-empty string or unsigned integer id, found \(value.typeName)")
        }
    }

    func object(_ key: String) throws(ContractError) -> JSONObjectReader {
        guard let value = value(key) else { throw .invalidField(path: at(key), reason: "required field is missing") }
        return try JSONObjectReader(value, path: at(key))
    }

    func optionalObject(_ key: String) throws(ContractError) -> JSONObjectReader? {
        guard let value = value(key) else { return nil }
        return try JSONObjectReader(value, path: at(key))
    }

    func array(_ key: String) throws(ContractError) -> [JSONValue] {
        guard let value = value(key) else { throw .invalidField(path: at(key), reason: "required field is missing") }
        guard case .array(let items) = value else {
            throw .invalidField(path: at(key), reason: "expected an array, found \(value.typeName)")
        }
        return items
    }

    func optionalArray(_ key: String) throws(ContractError) -> [JSONValue] {
        guard value(key) != nil else { return [] }
        return try array(key)
    }

    func objects(_ key: String, required: Bool = true) throws(ContractError) -> [JSONObjectReader] {
        let items = required ? try array(key) : try optionalArray(key)
        var result: [JSONObjectReader] = []
        for (i, item) in items.enumerated() {
            result.append(try JSONObjectReader(item, path: "\(at(key))[\(i)]"))
        }
        return result
    }

    func integer(_ key: String) throws(ContractError) -> Int {
        guard let value = value(key) else { throw .invalidField(path: at(key), reason: "required field is missing") }
        guard case .number(let text) = value else {
            throw .invalidField(path: at(key), reason: "expected an integer, found \(value.typeName)")
        }
        guard text.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || $0 == 45 }) else {
            throw .invalidField(path: at(key), reason: "expected an integer, found '\(text)'")
        }
        guard let n = Int(text) else { throw .invalidField(path: at(key), reason: "integer '\(text)' is out of range") }
        return n
    }

    func optionalInteger(_ key: String) throws(ContractError) -> Int? {
        value(key) == nil ? nil : try integer(key)
    }

    func bool(_ key: String) throws(ContractError) -> Bool? {
        guard let value = value(key) else { return nil }
        switch value {
        case .bool(let b): return b
        case .string("true"): return true
        case .string("false"): return false
        default: throw .invalidField(path: at(key), reason: "expected a boolean, found \(value.typeName)")
        }
    }

    /// An amount sent as a decimal string or a JSON number, read exactly.
    func money(_ key: String, _ currency: CurrencyCode) throws(ContractError) -> Money {
        guard let m = try optionalMoney(key, currency) else {
            throw .invalidField(path: at(key), reason: "required field is missing")
        }
        return m
    }

    func optionalMoney(_ key: String, _ currency: CurrencyCode) throws(ContractError) -> Money? {
        guard let value = value(key) else { return nil }
        let text: String
        switch value {
        case .string(let s): text = s
        case .number(let n): text = n
        default: throw .invalidField(path: at(key), reason: "expected a decimal amount, found \(value.typeName)")
        }
        do {
            return try Money.parse(text, currency: currency)
        } catch {
            throw .invalidField(path: at(key), reason: error.description)
        }
    }

    func nonNegativeMoney(_ key: String, _ currency: CurrencyCode, default fallback: Bool = false) throws(ContractError) -> Money {
        let m: Money
        if fallback {
            m = try optionalMoney(key, currency) ?? .zero(currency)
        } else {
            m = try money(key, currency)
        }
        guard m.minorUnits >= 0 else { throw .invalidField(path: at(key), reason: "must not be negative") }
        return m
    }

    func currency(_ key: String) throws(ContractError) -> CurrencyCode {
        let code = try string(key)
        do {
            return try CurrencyCode(code)
        } catch {
            throw .invalidField(path: at(key), reason: "'\(code)' is not a known ISO 4217 currency code")
        }
    }

    func date(_ key: String, lenient: Bool = false) throws(ContractError) -> Date {
        guard let d = try optionalDate(key, lenient: lenient) else {
            throw .invalidField(path: at(key), reason: "required field is missing")
        }
        return d
    }

    func optionalDate(_ key: String, lenient: Bool = false) throws(ContractError) -> Date? {
        guard let text = try optionalText(key) else { return nil }
        guard let date = RFC3339.parse(text, allowMissingOffset: lenient, allowDateOnly: lenient) else {
            throw .invalidField(path: at(key), reason: "'\(text)' is not an RFC 3339 date-time")
        }
        return date
    }

    func country(_ key: String) throws(ContractError) -> CountryCode {
        let code = try string(key)
        do {
            return try CountryCode(code.uppercased())
        } catch {
            throw .invalidField(path: at(key), reason: "'\(code)' is not an ISO 3166-1 alpha-2 country code")
        }
    }
}

/// Sums amounts with overflow and currency checks, reporting `path` on failure.
func sum(_ amounts: [Money], currency: CurrencyCode, path: String) throws(ContractError) -> Money {
    var total = Money.zero(currency)
    for amount in amounts {
        do {
            total = try total.adding(amount)
        } catch {
            throw .invalidField(path: path, reason: error.description)
        }
    }
    return total
}

extension CanonicalOrder {
    /// Structural checks every channel order must pass before intake's business rules:
    /// at least one line, positive quantities, non-negative amounts, one currency,
    /// unique line ids. Totals arithmetic is intake's job (it rejects, not dead-letters).
    public func validateShape() throws(ContractError) {
        guard !channel.isEmpty else { throw .invalidField(path: "channel", reason: "must not be empty") }
        guard !externalOrderId.isEmpty else { throw .invalidField(path: "externalOrderId", reason: "must not be empty") }
        guard !lines.isEmpty else { throw .invalidField(path: "lines", reason: "an order needs at least one line") }
        var seen = Set<String>()
        func check(_ money: Money, _ path: String, allowNegative: Bool = false) throws(ContractError) {
            guard money.currency == currency else {
                throw .invalidField(path: path, reason: "currency \(money.currency) differs from order currency \(currency)")
            }
            guard allowNegative || money.minorUnits >= 0 else { throw .invalidField(path: path, reason: "must not be negative") }
        }
        for (i, line) in lines.enumerated() {
            let p = "lines[\(i)]"
            guard !line.sku.isEmpty else { throw .invalidField(path: "\(p).sku", reason: "must not be empty") }
            guard !line.lineId.isEmpty else { throw .invalidField(path: "\(p).lineId", reason: "must not be empty") }
            guard seen.insert(line.lineId).inserted else {
                throw .invalidField(path: "\(p).lineId", reason: "duplicate line id '\(line.lineId)'")
            }
            guard line.quantity >= 1 else { throw .invalidField(path: "\(p).quantity", reason: "must be at least 1") }
            try check(line.unitPrice, "\(p).unitPrice")
            try check(line.discount, "\(p).discount")
            try check(line.tax, "\(p).tax")
            do {
                _ = try line.unitPrice.multiplied(by: line.quantity)
            } catch {
                throw .invalidField(path: "\(p).quantity", reason: error.description)
            }
        }
        try check(shipping.amount, "shipping.amount")
        try check(totals.subtotal, "totals.subtotal")
        try check(totals.discount, "totals.discount")
        try check(totals.shipping, "totals.shipping")
        try check(totals.tax, "totals.tax")
        try check(totals.total, "totals.total")
        try check(payment.amount, "payment.amount")
    }
}

extension OrderPlaced {
    /// The placed event for a canonical order, with the order id derived from channel and external id.
    public init(order: CanonicalOrder) {
        self.init(
            orderId: DeterministicID.orderID(channel: order.channel, externalOrderID: order.externalOrderId),
            channel: order.channel, externalOrderId: order.externalOrderId, customer: order.customer,
            lines: order.lines, shipping: order.shipping, totals: order.totals, currency: order.currency,
            shippingAddress: order.shippingAddress, billingAddress: order.billingAddress, payment: order.payment,
            placedAt: order.placedAt, promisedDeliveryDate: order.promisedDeliveryDate,
            serviceLevel: order.serviceLevel, pickupLocation: order.pickupLocation, exchangeOf: order.exchangeOf)
    }
}

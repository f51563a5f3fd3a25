import Contracts

/// Units of one order line on the document being computed.
public struct InvoicedQuantity: Sendable, Hashable {
    /// The order line as ordered (its discount and tax are for its whole quantity).
    public var line: OrderLine
    /// Units on this document: at most what is left of the line.
    public var quantity: Int
    /// Units of the line already on earlier documents (earlier shipments), so this
    /// document's share of the line's discount and tax continues where they stopped.
    public var alreadyInvoiced: Int
    /// What is printed for the line; the SKU when nil.
    public var description: String?

    /// Wraps a line and the units of it to invoice.
    public init(line: OrderLine, quantity: Int, alreadyInvoiced: Int = 0, description: String? = nil) {
        self.line = line
        self.quantity = quantity
        self.alreadyInvoiced = alreadyInvoiced
        self.description = description
    }
}

/// How the supply is taxed, decided by where the seller is, where the goods go and whether
/// the buyer is a business.
public enum TaxTreatment: String, Sendable, Hashable, Codable {
    /// Taxed at the destination's rates (domestic, or EU distance selling under OSS).
    case destination
    /// EU seller, EU business buyer in another member state: the buyer accounts for VAT (AE).
    case reverseCharge
    /// Goods leave the seller's customs area: zero-rated export (G).
    case export

    /// The UNCL5305 category the treatment forces, if it forces one.
    var forcedCategory: String? {
        switch self {
        case .destination: nil
        case .reverseCharge: "AE"
        case .export: "G"
        }
    }
}

/// Everything the tax of one document depends on.
public struct TaxRequest: Sendable {
    /// The lines and units on the document.
    public var lines: [InvoicedQuantity]
    /// Shipping, on the first shipment's invoice only.
    public var shipping: ShippingCharge?
    /// The channel's tax on shipping, when it gave one.
    public var channelShippingTax: Money?
    /// The order's currency.
    public var currency: CurrencyCode
    /// The order's prices include tax (the channel's `OrderTotals.taxIncluded`).
    public var pricesIncludeTax: Bool
    /// Where the goods go: its country and region pick the rates.
    public var shipToCountry: CountryCode
    /// State, province or region of the destination, where the country has regional rates.
    public var shipToRegion: String?
    /// The selling legal entity's country: its law sets the rounding.
    public var sellerCountry: CountryCode
    /// The buyer's VAT id: present makes the sale business-to-business.
    public var buyerTaxId: String?
    /// The tax class of a SKU (`standard` when the catalog says nothing).
    public var taxClass: @Sendable (String) -> String

    /// Collects the inputs; the tax class defaults to `standard` for every SKU.
    public init(
        lines: [InvoicedQuantity], shipping: ShippingCharge? = nil, channelShippingTax: Money? = nil,
        currency: CurrencyCode, pricesIncludeTax: Bool, shipToCountry: CountryCode, shipToRegion: String? = nil,
        sellerCountry: CountryCode, buyerTaxId: String? = nil,
        taxClass: @escaping @Sendable (String) -> String = { _ in TaxTable.standardClass }
    ) {
        self.lines = lines
        self.shipping = shipping
        self.channelShippingTax = channelShippingTax
        self.currency = currency
        self.pricesIncludeTax = pricesIncludeTax
        self.shipToCountry = shipToCountry
        self.shipToRegion = shipToRegion
        self.sellerCountry = sellerCountry
        self.buyerTaxId = buyerTaxId
        self.taxClass = taxClass
    }
}

/// The taxed lines and totals of a document, ready to go on an invoice.
public struct TaxResult: Sendable, Hashable {
    /// How the supply was taxed.
    public var treatment: TaxTreatment
    /// Where tax was rounded.
    public var rounding: TaxRounding
    /// Lines with net amount, category, rate and tax.
    public var lines: [InvoiceLine]
    /// Tax per category and rate, in the order the rates first appear on the lines.
    public var taxes: [TaxSubtotal]
    /// Sum of the lines' net amounts.
    public var netTotal: Money
    /// Sum of the tax: equal to the sum of the lines' tax and of the subtotals' tax.
    public var taxTotal: Money
    /// Net plus tax; for tax-inclusive prices, exactly what the customer was charged.
    public var grossTotal: Money
}

/// Computes the tax of a document from the tax table: pure, no I/O.
public struct TaxCalculator: Sendable {
    /// The rates and country rules.
    public var table: TaxTable

    /// A calculator over `table`.
    public init(table: TaxTable) { self.table = table }

    /// The EU member states (VAT prefix aside: Greece is GR here, EL in VAT ids).
    public static let euMembers: Set<String> = [
        "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT", "LT", "LU",
        "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
    ]

    /// Why no tax is charged, printed for the forced categories (BR-AE-10, BR-G-10).
    public static func exemptionReason(category: String) -> String? {
        switch category {
        case "AE": "Reverse charge"
        case "G": "Export outside the EU"
        case "K": "Intra-community supply"
        case "E": "Exempt"
        default: nil
        }
    }

    /// The treatment for a seller in `seller`, goods going to `destination`, a buyer with or without a VAT id.
    public static func treatment(seller: CountryCode, destination: CountryCode, buyerTaxId: String?) -> TaxTreatment {
        let sellerInEU = euMembers.contains(seller.code)
        let destinationInEU = euMembers.contains(destination.code)
        let business = !(buyerTaxId ?? "").isEmpty
        if sellerInEU, destinationInEU, business, seller != destination { return .reverseCharge }
        // Leaving the EU, or crossing any border outside it: the destination's import tax is the buyer's.
        if seller != destination, !(sellerInEU && destinationInEU) { return .export }
        return .destination
    }

    /// The document's lines, subtotals and totals.
    public func compute(_ request: TaxRequest) throws(InvoicingError) -> TaxResult {
        let treatment = Self.treatment(seller: request.sellerCountry, destination: request.shipToCountry, buyerTaxId: request.buyerTaxId)
        let rounding = try table.rules(for: request.sellerCountry).rounding
        var pending = try pendingLines(request, treatment: treatment)
        try assignComputedTax(&pending, inclusive: request.pricesIncludeTax, rounding: rounding)
        let lines = try pending.map { line throws(InvoicingError) in try line.invoiceLine(inclusive: request.pricesIncludeTax) }
        var result = try Self.totals(lines: lines, currency: request.currency, treatment: treatment, rounding: rounding)
        if treatment == .export, !Self.euMembers.contains(request.sellerCountry.code) {
            // "Export outside the EU" is the EU's wording; elsewhere the goods just leave the country.
            for index in result.taxes.indices where result.taxes[index].taxCategory == "G" { result.taxes[index].exemptionReason = "Export" }
        }
        return result
    }

    // MARK: Steps

    /// A line before its tax is known: what the customer is charged for it and at which rate.
    struct PendingLine {
        var lineId: String
        var sku: String?
        var description: String
        var quantity: Int
        /// Unit price × quantity − the discount's share: gross when prices include tax, else net.
        var charged: Money
        var category: String
        var basisPoints: Int
        /// The channel's tax share, or the computed tax once known.
        var tax: Money?
        /// Whether `tax` came from the channel (kept as given) rather than the table.
        var fromChannel: Bool

        func invoiceLine(inclusive: Bool) throws(InvoicingError) -> InvoiceLine {
            let tax = tax ?? .zero(charged.currency)
            let net = inclusive ? try charged.minus(tax) : charged
            guard net.minorUnits >= 0 else {
                throw .arithmetic("line \(lineId): tax \(tax) is more than the \(charged) charged")
            }
            let unit = quantity > 0 ? try MinorUnits.roundHalfUp(net.minorUnits, times: 1, over: Int64(quantity)) : net.minorUnits
            return InvoiceLine(
                lineId: lineId, sku: sku, description: description, quantity: quantity,
                unitPrice: Money(minorUnits: unit, currency: net.currency), netAmount: net,
                taxCategory: category, taxRateBasisPoints: basisPoints, taxAmount: tax)
        }
    }

    /// Each line's charged amount, rate and channel tax share; shipping last.
    func pendingLines(_ request: TaxRequest, treatment: TaxTreatment) throws(InvoicingError) -> [PendingLine] {
        var pending: [PendingLine] = []
        for item in request.lines {
            let line = item.line
            guard line.unitPrice.currency == request.currency else {
                throw .arithmetic("line \(line.lineId) is in \(line.unitPrice.currency), the document in \(request.currency)")
            }
            guard item.quantity > 0, item.alreadyInvoiced >= 0, item.alreadyInvoiced + item.quantity <= line.quantity else {
                throw .quantity("line \(line.lineId): \(item.quantity) units after \(item.alreadyInvoiced) of \(line.quantity) ordered")
            }
            let gross: Money
            do { gross = try line.unitPrice.multiplied(by: item.quantity) } catch { throw .arithmetic(error.description) }
            let discount = try MinorUnits.cumulativeShare(of: line.discount.minorUnits, quantity: item.quantity, before: item.alreadyInvoiced, ofQuantity: line.quantity)
            let charged = try gross.minus(Money(minorUnits: discount, currency: request.currency))
            let channelTax = line.tax.minorUnits > 0
                ? try MinorUnits.cumulativeShare(of: line.tax.minorUnits, quantity: item.quantity, before: item.alreadyInvoiced, ofQuantity: line.quantity)
                : nil
            pending.append(try pendingLine(
                id: line.lineId, sku: line.sku, description: item.description ?? line.sku, quantity: item.quantity,
                charged: charged, channelTax: channelTax, taxClass: request.taxClass(line.sku), request: request, treatment: treatment))
        }
        if let shipping = request.shipping, shipping.amount.minorUnits > 0 {
            let channelTax = request.channelShippingTax.flatMap { $0.minorUnits > 0 ? $0.minorUnits : nil }
            pending.append(try pendingLine(
                id: "shipping", sku: nil, description: shipping.method ?? "Shipping", quantity: 1, charged: shipping.amount,
                channelTax: channelTax, taxClass: "shipping", request: request, treatment: treatment))
        }
        return pending
    }

    /// One line's rate (forced by the treatment or from the table) and channel tax.
    func pendingLine(
        id: String, sku: String?, description: String, quantity: Int, charged: Money, channelTax: Int64?,
        taxClass: String, request: TaxRequest, treatment: TaxTreatment
    ) throws(InvoicingError) -> PendingLine {
        guard charged.minorUnits >= 0 else { throw .arithmetic("line \(id): the discount is more than the price") }
        let rate: TaxTable.Rate
        if let forced = treatment.forcedCategory {
            rate = TaxTable.Rate(category: forced, basisPoints: 0)
        } else {
            rate = try table.rate(country: request.shipToCountry, region: request.shipToRegion, taxClass: taxClass)
        }
        if let channelTax, rate.basisPoints == 0 {
            // A zero-rated document that charged tax would show tax it may not: the order's
            // tax must be fixed (or refunded) by the channel before it is invoiced.
            throw .treatment("line \(id): the channel charged \(Money(minorUnits: channelTax, currency: charged.currency)) tax on a supply taxed at 0 % (\(rate.category))")
        }
        return PendingLine(
            lineId: id, sku: sku, description: description, quantity: quantity, charged: charged,
            category: rate.category, basisPoints: rate.basisPoints,
            tax: channelTax.map { Money(minorUnits: $0, currency: charged.currency) }, fromChannel: channelTax != nil)
    }

    /// Tax of the lines the channel gave none for: per line, or once per rate and shared out.
    func assignComputedTax(_ lines: inout [PendingLine], inclusive: Bool, rounding: TaxRounding) throws(InvoicingError) {
        let computed = lines.indices.filter { !lines[$0].fromChannel }
        switch rounding {
        case .perLine:
            for index in computed {
                let line = lines[index]
                let tax = try Self.tax(of: line.charged.minorUnits, basisPoints: line.basisPoints, inclusive: inclusive)
                lines[index].tax = Money(minorUnits: tax, currency: line.charged.currency)
            }
        case .perInvoice:
            var groups: [[Int]] = []
            var groupOf: [String: Int] = [:]
            for index in computed {
                let key = "\(lines[index].category)/\(lines[index].basisPoints)"
                if let group = groupOf[key] { groups[group].append(index) } else {
                    groupOf[key] = groups.count
                    groups.append([index])
                }
            }
            for group in groups {
                let amounts = group.map { lines[$0].charged.minorUnits }
                let total = try Self.tax(of: MinorUnits.sum(amounts), basisPoints: lines[group[0]].basisPoints, inclusive: inclusive)
                // Same rate in the group, so each line's exact tax is proportional to its amount.
                let parts = try MinorUnits.splitLargestRemainder(total, weights: amounts)
                for (index, part) in zip(group, parts) {
                    lines[index].tax = Money(minorUnits: part, currency: lines[index].charged.currency)
                }
            }
        }
    }

    /// Tax on `amount` at `basisPoints`, rounded half-up: `amount × r / (1 + r)` when the
    /// amount includes the tax, `amount × r` when it does not.
    static func tax(of amount: Int64, basisPoints: Int, inclusive: Bool) throws(InvoicingError) -> Int64 {
        let rate = Int64(basisPoints)
        return try MinorUnits.roundHalfUp(amount, times: rate, over: inclusive ? 10_000 + rate : 10_000)
    }

    /// Subtotals per category and rate, and the document's totals.
    static func totals(lines: [InvoiceLine], currency: CurrencyCode, treatment: TaxTreatment, rounding: TaxRounding) throws(InvoicingError) -> TaxResult {
        let taxes = try subtotals(of: lines)
        var net = Money.zero(currency)
        var tax = Money.zero(currency)
        for line in lines {
            net = try net.plus(line.netAmount)
            tax = try tax.plus(line.taxAmount)
        }
        return TaxResult(
            treatment: treatment, rounding: rounding, lines: lines, taxes: taxes,
            netTotal: net, taxTotal: tax, grossTotal: try net.plus(tax))
    }

    /// The lines grouped by category and rate, in order of first appearance.
    static func subtotals(of lines: [InvoiceLine]) throws(InvoicingError) -> [TaxSubtotal] {
        var taxes: [TaxSubtotal] = []
        for line in lines {
            if let index = taxes.firstIndex(where: { $0.taxCategory == line.taxCategory && $0.taxRateBasisPoints == line.taxRateBasisPoints }) {
                taxes[index].taxableAmount = try taxes[index].taxableAmount.plus(line.netAmount)
                taxes[index].taxAmount = try taxes[index].taxAmount.plus(line.taxAmount)
            } else {
                taxes.append(TaxSubtotal(
                    taxCategory: line.taxCategory, taxRateBasisPoints: line.taxRateBasisPoints,
                    taxableAmount: line.netAmount, taxAmount: line.taxAmount,
                    exemptionReason: exemptionReason(category: line.taxCategory)))
            }
        }
        return taxes
    }
}

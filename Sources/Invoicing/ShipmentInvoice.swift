import Contracts
import Foundation

extension Invoice {
    /// The document with its place in the series: `sequence` from 1, its printed
    /// `number` and its id.
    public func numbered(sequence: Int64, number: String, invoiceId: String) -> Invoice {
        var numbered = self
        numbered.sequence = sequence
        numbered.number = number
        numbered.invoiceId = invoiceId
        return numbered
    }
}

/// The book currency and the rate into it, when the entity keeps its books in another
/// currency than the order's (EN 16931 BT-6, BR-53).
public struct BookCurrency: Sendable, Hashable {
    /// The entity's accounting currency.
    public var currency: CurrencyCode
    /// Book-currency units per document-currency unit, a plain decimal such as `0.8532`.
    public var rate: String

    /// A book currency and the rate into it; the rate must be a plain positive decimal.
    public init(currency: CurrencyCode, rate: String) throws(InvoicingError) {
        guard BookCurrency.isPlainDecimal(rate), Decimal(string: rate).map({ $0 > 0 }) == true else {
            throw .arithmetic("exchange rate '\(rate)' is not a plain positive decimal such as 0.8532")
        }
        self.currency = currency
        self.rate = rate
    }

    static func isPlainDecimal(_ text: String) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        return (1...2).contains(parts.count) && parts.allSatisfy { !$0.isEmpty && $0.utf8.allSatisfy { $0 >= 48 && $0 <= 57 } }
    }

    /// `amount` in the book currency, rounded half-up to its minor unit.
    func convert(_ amount: Money) throws(InvoicingError) -> Money {
        let parts = rate.split(separator: ".")
        let fraction = parts.count == 2 ? String(parts[1]) : ""
        guard let scaled = Int64(String(parts[0]) + fraction), fraction.count <= 18 else {
            throw .arithmetic("exchange rate '\(rate)' has too many digits")
        }
        // amount × rate × 10^(e(book) − e(doc)): the rate is scaled / 10^fraction digits.
        let shift = currency.minorUnitExponent - amount.currency.minorUnitExponent - fraction.count
        var numerator = scaled
        var denominator: Int64 = 1
        for _ in 0..<abs(shift) {
            let (next, overflow) = (shift > 0 ? numerator : denominator).multipliedReportingOverflow(by: 10)
            guard !overflow else { throw .arithmetic("exchange rate '\(rate)' has too many digits") }
            if shift > 0 { numerator = next } else { denominator = next }
        }
        let value = try MinorUnits.roundHalfUp(amount.minorUnits, times: numerator, over: denominator)
        return Money(minorUnits: value, currency: currency)
    }
}

/// What an invoice for one shipment of an order needs besides its tax inputs.
public struct ShipmentInvoiceRequest: Sendable {
    /// The selling legal entity's id.
    public var legalEntity: String
    /// The numbering series.
    public var series: String
    /// The seller; its address (country) is required, it decides rounding and treatment.
    public var seller: InvoiceParty
    /// The customer; a `taxId` makes the sale business-to-business.
    public var buyer: InvoiceParty
    /// Order.
    public var orderId: String
    /// `shipment:<id>`.
    public var cause: String
    /// Issue date and time.
    public var issuedAt: Date
    /// Where the goods go.
    public var shipTo: Address
    /// Lines and units shipped.
    public var lines: [InvoicedQuantity]
    /// Shipping: on the order's first shipment only.
    public var shipping: ShippingCharge?
    /// The channel's tax on shipping, when it gave one.
    public var channelShippingTax: Money?
    /// The order's currency.
    public var currency: CurrencyCode
    /// The order's prices include tax.
    public var pricesIncludeTax: Bool
    /// Tax class per SKU.
    public var taxClass: @Sendable (String) -> String
    /// The entity's book currency and rate, when it differs from `currency`.
    public var bookCurrency: BookCurrency?
    /// Free text for the document.
    public var note: String?

    /// Collects the request; see each property.
    public init(
        legalEntity: String, series: String, seller: InvoiceParty, buyer: InvoiceParty, orderId: String, cause: String,
        issuedAt: Date, shipTo: Address, lines: [InvoicedQuantity], shipping: ShippingCharge? = nil,
        channelShippingTax: Money? = nil, currency: CurrencyCode, pricesIncludeTax: Bool,
        taxClass: @escaping @Sendable (String) -> String = { _ in TaxTable.standardClass },
        bookCurrency: BookCurrency? = nil, note: String? = nil
    ) {
        self.legalEntity = legalEntity
        self.series = series
        self.seller = seller
        self.buyer = buyer
        self.orderId = orderId
        self.cause = cause
        self.issuedAt = issuedAt
        self.shipTo = shipTo
        self.lines = lines
        self.shipping = shipping
        self.channelShippingTax = channelShippingTax
        self.currency = currency
        self.pricesIncludeTax = pricesIncludeTax
        self.taxClass = taxClass
        self.bookCurrency = bookCurrency
        self.note = note
    }
}

extension Invoice {
    /// The invoice for one shipment, taxed with `table`, not numbered yet.
    public static func draft(forShipment request: ShipmentInvoiceRequest, table: TaxTable) throws(InvoicingError) -> Invoice {
        guard let sellerCountry = request.seller.address?.country else {
            throw .treatment("the seller \(request.seller.name) has no address: its country decides the tax")
        }
        if let book = request.bookCurrency, book.currency == request.currency {
            throw .arithmetic("book currency \(book.currency) is the document's currency: leave it out")
        }
        let taxRequest = TaxRequest(
            lines: request.lines, shipping: request.shipping, channelShippingTax: request.channelShippingTax,
            currency: request.currency, pricesIncludeTax: request.pricesIncludeTax, shipToCountry: request.shipTo.country,
            shipToRegion: request.shipTo.region, sellerCountry: sellerCountry, buyerTaxId: request.buyer.taxId,
            taxClass: request.taxClass)
        let result = try TaxCalculator(table: table).compute(taxRequest)
        // A buyer without an address of its own is addressed where the goods went (BR-10, BR-11).
        var buyer = request.buyer
        if buyer.address == nil { buyer.address = request.shipTo }
        return Invoice(
            invoiceId: "", number: "", kind: .invoice, legalEntity: request.legalEntity, series: request.series, sequence: 0, issuedAt: request.issuedAt,
            orderId: request.orderId, cause: request.cause, correctedInvoice: nil, seller: request.seller, buyer: buyer,
            currency: request.currency, pricesIncludeTax: request.pricesIncludeTax, rounding: result.rounding,
            reverseCharge: result.treatment == .reverseCharge, lines: result.lines, taxes: result.taxes,
            netTotal: result.netTotal, taxTotal: result.taxTotal, grossTotal: result.grossTotal,
            bookCurrency: request.bookCurrency?.currency, exchangeRate: request.bookCurrency?.rate, note: request.note)
    }
}

import Contracts
import Foundation
import Invoicing

/// Who invoices what (docs/RULES.md, *Taxes and invoices*): the brand's legal entities,
/// the tax table and the SKUs' tax classes. With no entity the invoicing stages do nothing.
public struct InvoicingRules: Sendable, Hashable, Codable {
    /// The selling entities; an order is invoiced by the first whose `markets` include its
    /// ship-to country, else by the first without markets.
    public var entities: [LegalEntity]
    /// The tax rates file; a relative path is relative to the rules file's directory
    /// (``resolvePaths(relativeTo:)``): `tax-rates.csv` next to config/rules.yaml.
    public var taxTable: String
    /// The FX reference rates (config/fx-rates.csv), for entities that book in another
    /// currency than the order's; their base must be that book currency.
    public var fxRates: String?
    /// Tax class per SKU (`reduced`, `food`, `books`…); `standard` for the others.
    public var taxClasses: [String: String]

    /// Rules.
    public init(entities: [LegalEntity] = [], taxTable: String = InvoicingRules.defaultTaxTable, fxRates: String? = nil, taxClasses: [String: String] = [:]) {
        self.entities = entities
        self.taxTable = taxTable
        self.fxRates = fxRates
        self.taxClasses = taxClasses
    }

    /// The tax table's name next to the rules file.
    public static let defaultTaxTable = "tax-rates.csv"

    /// Makes the relative file paths relative to `directory` (the rules file's), so the
    /// rules and their tables travel together (a ConfigMap, `config/`).
    public mutating func resolvePaths(relativeTo directory: String) {
        func resolved(_ path: String) -> String {
            path.hasPrefix("/") ? path : URL(fileURLWithPath: directory).appendingPathComponent(path).standardizedFileURL.path
        }
        taxTable = resolved(taxTable)
        fxRates = fxRates.map(resolved)
    }

    /// The tax class of goods sold without tax on tax-exclusive prices (the channel
    /// charged none): the table's zero rate for the country.
    public static let zeroClass = "zero"

    /// The entity that invoices an order shipped to `country`.
    public func entity(for country: CountryCode?) -> LegalEntity? {
        if let country, let selling = entities.first(where: { $0.markets.contains(country.code) }) { return selling }
        return entities.first { $0.markets.isEmpty }
    }

    /// Every problem, as `invoicing.<key>: message`.
    func validate() -> [String] {
        var problems: [String] = []
        var ids = Set<String>()
        for (index, entity) in entities.enumerated() {
            let path = "invoicing.entities[\(index)]"
            if entity.id.isEmpty || entity.id.contains("/") { problems.append("\(path).id: must be non-empty and without '/'") }
            if !ids.insert(entity.id).inserted { problems.append("\(path).id: '\(entity.id)' is defined twice") }
            if entity.name.isEmpty { problems.append("\(path).name: must not be empty") }
            if entity.invoicePrefix.isEmpty || entity.creditNotePrefix.isEmpty || entity.invoicePrefix == entity.creditNotePrefix {
                problems.append("\(path).invoicePrefix/creditNotePrefix: two different, non-empty prefixes")
            }
            for market in entity.markets {
                do { _ = try CountryCode(market) } catch { problems.append("\(path).markets: \(error.description)") }
            }
            if let book = entity.bookCurrency {
                do { _ = try CurrencyCode(book) } catch { problems.append("\(path).bookCurrency: \(error.description)") }
                if fxRates == nil { problems.append("invoicing.fxRates: required by \(path).bookCurrency") }
            }
        }
        if !entities.isEmpty {
            do { _ = try TaxTable.load(path: taxTable) } catch { problems.append("invoicing.taxTable: \(error.description)") }
            if let fxRates {
                do { _ = try FXRates.load(path: fxRates) } catch { problems.append("invoicing.fxRates: \(error.description)") }
            }
        }
        return problems
    }
}

/// A selling legal entity of the brand: the seller on its invoices.
public struct LegalEntity: Sendable, Hashable, Codable {
    /// Its id in invoice ids and record keys, e.g. `us` or `de`.
    public var id: String
    /// Its registered name.
    public var name: String
    /// VAT, GST or sales-tax registration.
    public var taxId: String?
    /// Its registered address; the country decides rounding and tax treatment.
    public var address: Address
    /// Where the invoices say to write to.
    public var email: String?
    /// Ship-to countries it sells to; empty for the fallback entity.
    public var markets: [String]
    /// Its book currency, when its books are kept in another currency than some orders'.
    public var bookCurrency: String?
    /// Printed prefix of its invoices, e.g. `US` in `US-2026-000042`.
    public var invoicePrefix: String
    /// Printed prefix of its credit notes, e.g. `USC`.
    public var creditNotePrefix: String
    /// When it invoices (the region's rule).
    public var invoiceAt: InvoiceMoment

    /// An entity.
    public init(
        id: String, name: String, taxId: String? = nil, address: Address, email: String? = nil, markets: [String] = [], bookCurrency: String? = nil,
        invoicePrefix: String, creditNotePrefix: String, invoiceAt: InvoiceMoment = .shipment
    ) {
        self.invoiceAt = invoiceAt
        self.id = id
        self.name = name
        self.taxId = taxId
        self.address = address
        self.email = email
        self.markets = markets
        self.bookCurrency = bookCurrency
        self.invoicePrefix = invoicePrefix
        self.creditNotePrefix = creditNotePrefix
    }

    /// The seller on its documents.
    public var party: InvoiceParty { InvoiceParty(name: name, taxId: taxId, address: address, email: email) }

    /// The series names: invoices and credit notes are numbered apart.
    public static let invoiceSeries = "invoices"
    /// The credit notes' series.
    public static let creditNoteSeries = "credit-notes"

    /// The printed prefix of `series`.
    public func prefix(of series: String) -> String { series == Self.creditNoteSeries ? creditNotePrefix : invoicePrefix }
}

/// When an entity issues its invoices (docs/RULES.md, *Taxes and invoices*).
public enum InvoiceMoment: String, Sendable, Hashable, Codable, CaseIterable {
    /// One invoice per shipment, when its money is captured.
    case shipment
    /// When the order is paid: an order paid at checkout is invoiced whole when placed;
    /// an authorized order, whose money is captured per shipment, per capture.
    case payment
}

extension InvoicingRules {
    private enum CodingKeys: String, CodingKey { case entities, taxTable, fxRates, taxClasses }

    /// Decodes the section; missing keys take their defaults.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            entities: try c.decodeIfPresent([LegalEntity].self, forKey: .entities) ?? [],
            taxTable: try c.decodeIfPresent(String.self, forKey: .taxTable) ?? InvoicingRules.defaultTaxTable,
            fxRates: try c.decodeIfPresent(String.self, forKey: .fxRates),
            taxClasses: try c.decodeIfPresent([String: String].self, forKey: .taxClasses) ?? [:])
    }
}

extension LegalEntity {
    private enum CodingKeys: String, CodingKey { case id, name, taxId, address, email, markets, bookCurrency, invoicePrefix, creditNotePrefix, invoiceAt }

    /// Decodes an entity; `markets` may be left out.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            id: try c.decode(String.self, forKey: .id), name: try c.decode(String.self, forKey: .name),
            taxId: try c.decodeIfPresent(String.self, forKey: .taxId), address: try c.decode(Address.self, forKey: .address),
            email: try c.decodeIfPresent(String.self, forKey: .email), markets: try c.decodeIfPresent([String].self, forKey: .markets) ?? [],
            bookCurrency: try c.decodeIfPresent(String.self, forKey: .bookCurrency), invoicePrefix: try c.decode(String.self, forKey: .invoicePrefix),
            creditNotePrefix: try c.decode(String.self, forKey: .creditNotePrefix),
            invoiceAt: try c.decodeIfPresent(InvoiceMoment.self, forKey: .invoiceAt) ?? .shipment)
    }
}

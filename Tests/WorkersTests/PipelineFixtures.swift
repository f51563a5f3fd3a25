import Contracts
import Foundation
import Workers

/// Builders shared by the pipeline stage tests (intake, payment, inventory, sourcing,
/// allocation, rules): fixed times, canonical orders and their inbound records, catalog
/// products, stock levels, envelopes, an in-memory ``StageState`` and a fake
/// ``AllocationSnapshot``. Every value is fixed, so the tests are deterministic.
enum PipelineFixtures {
    /// Processing time: 2026-03-01T12:00:00Z.
    static let now = Date(timeIntervalSince1970: 1_772_366_400)
    /// When the default order was placed: one hour before ``now``.
    static let placedAt = now.addingTimeInterval(-3_600)

    // MARK: Primitives

    /// A country code known to be valid.
    static func country(_ code: String) -> CountryCode {
        do { return try CountryCode(code) } catch { fatalError("fixture country \(code): \(error)") }
    }

    /// A currency code known to be valid.
    static func currency(_ code: String) -> CurrencyCode {
        do { return try CurrencyCode(code) } catch { fatalError("fixture currency \(code): \(error)") }
    }

    /// An amount in minor units.
    static func money(_ minorUnits: Int64, _ currency: CurrencyCode = .usd) -> Money {
        Money(minorUnits: minorUnits, currency: currency)
    }

    // MARK: Addresses

    /// A complete address; each part can be left out or replaced.
    static func address(
        country: String = "US", postalCode: String? = "11201", region: String? = "NY", name: String = "Ada Lovelace",
        lines: [String] = ["1 Main St"], city: String = "Brooklyn"
    ) -> Address {
        Address(name: name, lines: lines, city: city, region: region, postalCode: postalCode, country: Self.country(country))
    }

    // MARK: Orders

    /// An order line.
    static func line(
        _ lineId: String, _ sku: String, quantity: Int = 1, price: Int64 = 1_000, discount: Int64 = 0, tax: Int64 = 0,
        currency: CurrencyCode = .usd
    ) -> OrderLine {
        OrderLine(
            lineId: lineId, sku: sku, quantity: quantity, unitPrice: money(price, currency), discount: money(discount, currency),
            tax: money(tax, currency))
    }

    /// A canonical order whose totals add up unless `total` says otherwise, authorized for
    /// its total unless `payment` says otherwise.
    static func order(
        channel: String = "web", externalOrderId: String = "W-1001",
        lines: [OrderLine] = [PipelineFixtures.line("1", "SKU-A", quantity: 2, price: 1_000)],
        shipping: Int64 = 500, tax: Int64 = 0, discount: Int64 = 0, taxIncluded: Bool = false, total: Int64? = nil,
        currency: CurrencyCode = .usd, shippingAddress: Address = PipelineFixtures.address(), billingAddress: Address? = nil,
        payment: PaymentAuthorization? = nil, placedAt: Date = PipelineFixtures.placedAt, pickupLocation: String? = nil,
        customer: Customer = Customer(id: "c-1", email: "ada@example.com")
    ) -> CanonicalOrder {
        let subtotal = lines.reduce(Int64(0)) { $0 + $1.unitPrice.minorUnits * Int64($1.quantity) }
        let computed = subtotal + shipping + (taxIncluded ? 0 : tax) - discount
        let amount = total ?? computed
        return CanonicalOrder(
            channel: channel, externalOrderId: externalOrderId, customer: customer, lines: lines,
            shipping: ShippingCharge(method: "Ground", amount: money(shipping, currency)),
            totals: OrderTotals(
                subtotal: money(subtotal, currency), discount: money(discount, currency), shipping: money(shipping, currency),
                tax: money(tax, currency), total: money(amount, currency), taxIncluded: taxIncluded),
            currency: currency, shippingAddress: shippingAddress, billingAddress: billingAddress,
            payment: payment ?? PaymentAuthorization(status: .authorized, amount: money(amount, currency), reference: "psp-1"),
            placedAt: placedAt, serviceLevel: .standard, pickupLocation: pickupLocation)
    }

    /// The placed event of `order`.
    static func placed(_ order: CanonicalOrder = PipelineFixtures.order()) -> OrderPlaced {
        OrderPlaced(order: order)
    }

    /// The JSON bytes of `order` in the canonical channel format.
    static func canonicalJSON(_ order: CanonicalOrder) throws -> Data {
        Data(try EventCodec.encode(order))
    }

    /// An inbound record carrying `order` as a canonical payload, keyed by the order's own
    /// channel and external id unless told otherwise.
    static func inbound(_ order: CanonicalOrder, channel: String? = nil, externalOrderId: String? = nil) throws -> InboundChannelOrder {
        InboundChannelOrder(
            channel: channel ?? order.channel, format: .canonical, externalOrderId: externalOrderId ?? order.externalOrderId,
            payload: try canonicalJSON(order), receivedAt: now)
    }

    // MARK: Catalog

    /// A catalog entry; sellable and launched unless told otherwise.
    static func product(
        _ sku: String, sellable: Bool? = true, launchDate: Date? = nil, blocked: [String] = [], shipFromStore: Bool? = nil,
        dropShipSupplier: String? = nil
    ) -> CatalogProduct {
        CatalogProduct(
            sku: sku, title: "Product \(sku)", weightGrams: 500, dimensions: Dimensions(lengthMm: 100, widthMm: 100, heightMm: 100),
            launchDate: launchDate, blockedCountries: blocked.map { country($0) }, hazmat: false,
            prices: [RegionPrice(region: "US", price: money(1_000))], sellable: sellable, shipFromStore: shipFromStore,
            dropShipSupplier: dropShipSupplier)
    }

    // MARK: Stock

    /// One location's stock.
    static func stock(_ location: String, onHand: Int, reserved: Int = 0, safety: Int = 0, sequence: Int64? = nil) -> LocationStock {
        LocationStock(location: location, onHand: onHand, reserved: reserved, safetyStock: safety, lastSourceSequence: sequence)
    }

    /// A SKU's level at the given locations.
    static func level(_ sku: String, _ stocks: [LocationStock]) -> InventoryLevel {
        InventoryLevel(sku: sku, locations: stocks, updatedAt: now)
    }

    // MARK: Envelopes and results

    /// An input envelope.
    static func envelope(_ id: String, _ event: Event) -> Envelope {
        Envelope(id: id, source: "oms/test", time: now, event: event)
    }

    /// The events of a step's outputs, in order.
    static func events(_ result: StepResult) -> [Event] {
        result.outputs.map { $0.envelope.event }
    }

    /// The failure of a step, if it failed.
    static func failure(_ result: StepResult) -> StageFailure? {
        if case .failed(let failure) = result.kind { return failure }
        return nil
    }

    /// The reason codes, in order.
    static func codes(_ reasons: [Reason]) -> [String] { reasons.map(\.code) }
}

/// A ``StageState`` held in dictionaries, for calling `process` directly.
struct DictionaryState: StageState {
    /// The stage's own keyed state.
    var values: [String: Event] = [:]
    /// Global tables by topic and key.
    var tables: [String: [String: Event]] = [:]

    func value(_ key: String) -> Event? { values[key] }
    func table(_ topic: String, key: String) -> Event? { tables[topic]?[key] }

    /// Applies an outcome's state changes, as a committed transaction would.
    mutating func apply(_ changes: [StateChange]) {
        for change in changes {
            switch change {
            case .put(let value): values[change.key] = value
            case .delete(let key): values[key] = nil
            }
        }
    }
}

/// An ``AllocationSnapshot`` of fixed free units per SKU and location.
struct FakeSnapshot: AllocationSnapshot {
    /// Free units by SKU, then location; absent is 0.
    var free: [String: [String: Int]] = [:]
    /// Catalog entries by SKU.
    var products: [String: CatalogProduct] = [:]

    func available(sku: String, location: String) -> Int { free[sku]?[location] ?? 0 }
    func product(_ sku: String) -> CatalogProduct? { products[sku] }
}

// MARK: Fulfilment builders (shipping, tracking, returns, view, SLA)

extension PipelineFixtures {
    /// An input envelope stamped at `time` (the view folds statuses by envelope time).
    static func envelope(_ id: String, _ event: Event, at time: Date) -> Envelope {
        Envelope(id: id, source: "oms/test", time: time, event: event)
    }

    /// A catalog entry with the given parcel weight and dangerous-goods flag.
    static func shippingProduct(_ sku: String, weightGrams: Int = 500, hazmat: Bool = false) -> CatalogProduct {
        var entry = product(sku)
        entry.weightGrams = weightGrams
        entry.hazmat = hazmat
        return entry
    }

    /// One line's allocation at a location.
    static func allocation(_ lineId: String, _ sku: String, _ location: String, _ quantity: Int) -> LineAllocation {
        LineAllocation(lineId: lineId, sku: sku, location: location, quantity: quantity)
    }

    /// A shipment or return line.
    static func shipmentLine(_ lineId: String, _ sku: String, _ quantity: Int) -> ShipmentLine {
        ShipmentLine(lineId: lineId, sku: sku, quantity: quantity)
    }

    /// `days` whole days as seconds.
    static func days(_ days: Double) -> TimeInterval { days * 86_400 }
}

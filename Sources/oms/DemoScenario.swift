import Contracts
import Foundation
import Gateway
import ReferenceStages

/// What the demo sends: a seeded, repeatable mix of orders from three channels with
/// the twists real traffic has (re-sends, malformed payloads, fraud, scarce stock,
/// cancellations), and the carrier and return traffic that follows them.
struct DemoScenario: Sendable {
    /// How an order enters.
    enum Route: String, Sendable, CaseIterable {
        /// Shopify `orders/create` webhook through the gateway.
        case shopify
        /// The generic channel endpoint (canonical JSON) through the gateway.
        case web
        /// A marketplace connector writing straight into oms.orders.inbound.
        case marketplace
    }

    /// What is special about an order.
    enum Twist: String, Sendable, CaseIterable {
        case none
        /// Sent twice: the same webhook id / Idempotency-Key, or the same order again into Kafka.
        case resent
        /// A body that is not an order: 400 from the gateway, nothing produced.
        case malformedHTTP = "malformed_http"
        /// A record that is not an event, straight into Kafka: dead-lettered by intake.
        case malformedKafka = "malformed_kafka"
        /// A SKU the catalog does not have: rejected by intake.
        case unknownSKU = "unknown_sku"
        /// Above the review threshold: held, then released or cancelled by an operator.
        case highValue = "high_value"
        /// Billing country ≠ shipping country: held.
        case countryMismatch = "country_mismatch"
        /// Cancelled by the customer as soon as the order is visible.
        case cancel
        /// Wants a SKU with almost no stock: some get backordered.
        case scarce
    }

    /// One order of the run.
    struct PlannedOrder: Sendable {
        var index: Int
        var route: Route
        var twist: Twist
        var order: CanonicalOrder
        /// Return one unit once delivered.
        var returns: Bool
        /// Of a return: one in three asks for an exchange instead: even (a regular SKU at
        /// the same price), for a cheaper one (the difference refunded), for a scarce SKU,
        /// most likely sold out by then (refunded instead), or even but never sent back.
        var exchange: ExchangeKind? {
            guard returns, index % 3 == 1 else { return nil }
            return [.even, .cheaper, .scarce, .neverSent][(index / 3) % 4]
        }
        /// The carrier estimate slips past the promise (ShipmentDelayed).
        var delayed: Bool
        /// The carrier's "delivered" arrives before its "in transit".
        var outOfOrder: Bool

        var orderId: String { DeterministicID.orderID(channel: order.channel, externalOrderID: order.externalOrderId) }
        /// Whether the pipeline should end up with a view of it.
        var expectsView: Bool { twist != .malformedHTTP && twist != .malformedKafka }
    }

    /// Which replacement a demo exchange asks for.
    enum ExchangeKind: String, Sendable {
        case even, cheaper, scarce
        /// Even, but the parcel never comes: the request is backdated past the RMA's
        /// validity (the demo cannot wait a month), so the returns stage's next check
        /// expires it and cancels the replacement it had reserved.
        case neverSent = "never_sent"

        /// The replacement for a unit of `sku`: nil when the SKU has none of this kind.
        func replacement(for sku: String) -> String? {
            guard DemoScenario.regularSKUs.contains(sku) else { return nil }
            switch self {
            case .even, .neverSent: return DemoScenario.samePriced(sku)
            case .cheaper: return DemoScenario.listPrice(sku) > DemoScenario.listPrice(DemoScenario.cheapestSKU) ? DemoScenario.cheapestSKU : nil
            case .scarce: return DemoScenario.scarceSKUs[0]
            }
        }
    }

    static let locations = ["WH-EAST", "WH-WEST", "3PL-CENTRAL", DemoLocations.silent]
    /// A SKU ordered before its launch (`preorder: true`): its orders ship on the launch date.
    static let preorderSKU = "DEMO-PRE"
    /// How long after the scenario is made the pre-order SKU launches.
    static let preorderDelay: TimeInterval = 40
    /// The sales tax the channels charge on the demo's orders (all ship to New York).
    static let salesTaxBasisPoints: Int64 = 400
    static let regularSKUs = (1...30).map { String(format: "DEMO-%03d", $0) }
    static let scarceSKUs = (1...4).map { "SCARCE-\($0)" }
    static let regularStock = 100_000
    /// The list price of a regular SKU: 15.00 to 60.00 in steps of 5.00, so DEMO-001 and
    /// DEMO-011 cost the same (an even exchange) and DEMO-010, DEMO-020 and DEMO-030 are
    /// the cheapest (a cheaper one).
    static func listPrice(_ sku: String) -> Int64 {
        let number = Int64(sku.filter(\.isNumber)) ?? 0
        return 1_500 + (number % 10) * 500
    }
    /// Another regular SKU at the same list price.
    static func samePriced(_ sku: String) -> String {
        let number = Int(sku.filter(\.isNumber)) ?? 1
        return String(format: "DEMO-%03d", (number + 9) % 30 + 1)
    }
    /// The cheapest regular SKU (15.00).
    static let cheapestSKU = "DEMO-010"
    static let scarceStock = 2
    /// Secrets the demo's gateway is configured with and its senders sign with.
    static let shopifySecret = "demo-shopify-secret"
    static let webSecret = "demo-web-secret"
    static let easyPostSecret = "demo-easypost-secret"

    /// What makes this run's order ids its own.
    struct Run: Sendable {
        var name: String
        var number: Int
    }

    let run: Run
    let orders: [PlannedOrder]
    /// When ``preorderSKU`` launches.
    let preorderLaunch: Date

    /// `count` orders; the same `seed` gives the same mix (ids differ per `run`).
    init(count: Int, seed: UInt64, run: Run) throws {
        self.run = run
        preorderLaunch = Date().addingTimeInterval(Self.preorderDelay)
        let countries = (us: try CountryCode("US"), ca: try CountryCode("CA"))
        var random = SplitMix64(seed: seed)
        let customers = max(10, count / 2)
        orders = (0..<count).map { index in
            let route = Route.allCases[Int(random.next() % 10) < 4 ? 0 : (Int(random.next() % 2) == 0 ? 1 : 2)]
            let roll = Int(random.next() % 100)
            let twist: Twist = switch roll {
            case 0..<4: .resent
            case 4..<6: .malformedHTTP
            case 6..<7: .malformedKafka
            case 7..<8: .unknownSKU
            case 8..<10: .highValue
            case 10..<11: .countryMismatch
            case 11..<14: .cancel
            case 14..<22: .scarce
            default: .none
            }
            // A malformed HTTP body needs the gateway; a malformed record needs Kafka.
            let routed: Route = twist == .malformedHTTP && route == .marketplace ? .web : (twist == .malformedKafka ? .marketplace : route)
            let order = Self.order(index: index, route: routed, twist: twist, customer: Int(random.next() % UInt64(customers)), countries: countries, random: &random, run: run)
            return PlannedOrder(
                index: index, route: routed, twist: twist, order: order, returns: random.next() % 100 < 12,
                delayed: random.next() % 100 < 6, outOfOrder: random.next() % 100 < 6)
        }
    }

    /// Catalog products and absolute stock per location, through the inventory stage.
    var seed: [Event] {
        var events: [Event] = (Self.regularSKUs + Self.scarceSKUs).map { sku in
            CatalogProduct(
                sku: sku, title: "Demo product \(sku)", weightGrams: 400, dimensions: Dimensions(lengthMm: 200, widthMm: 150, heightMm: 50),
                blockedCountries: [], hazmat: false,
                // Scarce SKUs at the cheapest price: an exchange for one is never dearer.
                prices: [RegionPrice(region: "US", price: Money(minorUnits: Self.listPrice(Self.regularSKUs.contains(sku) ? sku : Self.cheapestSKU), currency: .usd))]
            ).event
        }
        let sequence = Int64(Date().timeIntervalSince1970 * 1000)
        for sku in Self.regularSKUs {
            for location in Self.locations {
                events.append(AdjustInventory(sku: sku, location: location, mode: .absolute, quantity: Self.regularStock, source: "demo", sourceSequence: sequence).event)
            }
        }
        for sku in Self.scarceSKUs {
            events.append(AdjustInventory(sku: sku, location: "WH-EAST", mode: .absolute, quantity: Self.scarceStock, source: "demo", sourceSequence: sequence).event)
        }
        events.append(CatalogProduct(
            sku: Self.preorderSKU, title: "Demo pre-order", weightGrams: 400, dimensions: Dimensions(lengthMm: 200, widthMm: 150, heightMm: 50),
            launchDate: preorderLaunch, blockedCountries: [], hazmat: false,
            prices: [RegionPrice(region: "US", price: Money(minorUnits: 4_500, currency: .usd))], preorder: true
        ).event)
        events.append(AdjustInventory(sku: Self.preorderSKU, location: "WH-EAST", mode: .absolute, quantity: Self.regularStock, source: "demo", sourceSequence: sequence).event)
        return events
    }

    private static func order(
        index: Int, route: Route, twist: Twist, customer: Int, countries: (us: CountryCode, ca: CountryCode), random: inout SplitMix64, run: Run
    ) -> CanonicalOrder {
        let usd = CurrencyCode.usd
        let lineCount = 1 + Int(random.next() % 3)
        var lines: [OrderLine] = []
        for line in 0..<lineCount {
            var sku = regularSKUs[Int(random.next() % UInt64(regularSKUs.count))]
            if line == 0, twist == .scarce { sku = scarceSKUs[Int(random.next() % UInt64(scarceSKUs.count))] }
            if line == 0, twist == .unknownSKU { sku = "NO-SUCH-SKU" }
            guard !lines.contains(where: { $0.sku == sku }) else { continue }
            // Regular SKUs sell at their list price (an exchange prices its replacement so).
            let draw = 1_500 + Int(random.next() % 60) * 100
            let price = twist == .highValue ? 250_000 : (regularSKUs.contains(sku) ? Int(listPrice(sku)) : draw)
            let quantity = 1 + Int(random.next() % 2)
            // New York's 4 % state sales tax, on top of the price, per line.
            let tax = (Int64(price * quantity) * Self.salesTaxBasisPoints + 5_000) / 10_000
            lines.append(
                OrderLine(
                    lineId: "\(line + 1)", sku: sku, quantity: quantity,
                    unitPrice: Money(minorUnits: Int64(price), currency: usd), discount: .zero(usd), tax: Money(minorUnits: tax, currency: usd)))
        }
        // One plain order in 40 also pre-orders the SKU that has not launched yet.
        if twist == .none, index % 40 == 5 {
            lines.append(OrderLine(
                lineId: "9", sku: preorderSKU, quantity: 1, unitPrice: Money(minorUnits: 4_500, currency: usd), discount: .zero(usd),
                tax: Money(minorUnits: (4_500 * Self.salesTaxBasisPoints + 5_000) / 10_000, currency: usd)))
        }
        let subtotal = lines.reduce(Int64(0)) { $0 + $1.unitPrice.minorUnits * Int64($1.quantity) }
        let tax = lines.reduce(Int64(0)) { $0 + $1.tax.minorUnits }
        let shipping: Int64 = 595
        let total = Money(minorUnits: subtotal + shipping + tax, currency: usd)
        let zip = ["10001", "60601", "94105", "30301", "75201", "02108", "80202"][index % 7]
        // One customer in three leaves a phone: they get text messages too.
        let shippingAddress = Address(
            name: "Customer \(customer)", lines: ["\(100 + index) Main St"], city: "Springfield", region: "NY", postalCode: zip,
            country: countries.us, phone: customer % 3 != 1 ? nil : "+1 (212) 555-\(String(format: "%04d", customer % 10_000))")
        var billing: Address?
        if twist == .countryMismatch {
            billing = Address(name: "Customer \(customer)", lines: ["1 Rue Test"], city: "Montreal", region: "QC", postalCode: "H2X", country: countries.ca)
        }
        let channel = route == .shopify ? ShopifyOrderAdapter.channel : route.rawValue
        // Shopify order ids are numbers; the run's number keeps runs on one broker apart.
        let external = route == .shopify ? String(run.number * 1_000_000 + index) : "\(run.name)-\(index)"
        return CanonicalOrder(
            channel: channel, externalOrderId: external,
            customer: Customer(id: "c\(customer)", email: "customer\(customer)@demo.example.com"), lines: lines,
            shipping: ShippingCharge(method: "Standard", amount: Money(minorUnits: shipping, currency: usd)),
            totals: OrderTotals(
                subtotal: Money(minorUnits: subtotal, currency: usd), discount: .zero(usd), shipping: Money(minorUnits: shipping, currency: usd),
                tax: Money(minorUnits: tax, currency: usd), total: total, taxIncluded: false),
            currency: usd, shippingAddress: shippingAddress, billingAddress: billing,
            payment: PaymentAuthorization(status: .authorized, amount: total, reference: "auth-\(run.name)-\(index)"),
            placedAt: Date(), serviceLevel: .standard)
    }

    // MARK: Payloads

    /// The order as the body its route sends.
    static func body(of planned: PlannedOrder) throws -> [UInt8] {
        if planned.twist == .malformedHTTP { return Array(#"{"id": 1, "line_items": "not a list""#.utf8) }
        switch planned.route {
        case .shopify: return try shopifyJSON(planned.order)
        case .web, .marketplace: return try EventCodec.encode(planned.order)
        }
    }

    /// A Shopify `orders/create` body carrying the same order.
    static func shopifyJSON(_ order: CanonicalOrder) throws -> [UInt8] {
        func amount(_ minor: Int64) -> String { String(format: "%d.%02d", minor / 100, minor % 100) }
        func address(_ a: Address) -> [String: Any] {
            ["name": a.name, "address1": a.lines.first ?? "", "city": a.city, "province_code": a.region ?? "", "zip": a.postalCode ?? "", "country_code": a.country.code,
             "phone": a.phone ?? NSNull()]
        }
        var body: [String: Any] = [
            "id": Int(order.externalOrderId) ?? 0,
            "email": order.customer.email ?? "",
            "created_at": RFC3339.format(order.placedAt),
            "currency": order.currency.code,
            "financial_status": "authorized",
            "total_price": amount(order.totals.total.minorUnits),
            "total_line_items_price": amount(order.totals.subtotal.minorUnits),
            "taxes_included": false,
            "customer": ["id": 7_000_000 + (Int(order.customer.id?.dropFirst() ?? "0") ?? 0), "email": order.customer.email ?? ""],
            "total_tax": amount(order.totals.tax.minorUnits),
            "line_items": order.lines.map { line in
                [
                    "id": Int(line.lineId) ?? 1, "sku": line.sku, "quantity": line.quantity, "price": amount(line.unitPrice.minorUnits), "title": line.sku,
                    "tax_lines": [["title": "NY State Tax", "rate": 0.04, "price": amount(line.tax.minorUnits)]],
                ] as [String: Any]
            },
            "shipping_lines": [["title": "Standard", "code": "standard", "price": amount(order.totals.shipping.minorUnits)]],
            "shipping_address": address(order.shippingAddress),
            "checkout_token": order.payment.reference ?? "",
        ]
        if let billing = order.billingAddress { body["billing_address"] = address(billing) }
        return Array(try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys]))
    }

    /// An EasyPost `tracker.updated` event for a parcel.
    static func easyPostEvent(id: String, carrier: String, trackingNumber: String, status: String, at: Date, estimate: Date?) throws -> [UInt8] {
        var tracker: [String: Any] = [
            "object": "Tracker", "tracking_code": trackingNumber, "status": status, "carrier": carrier.uppercased(),
            "updated_at": RFC3339.format(at),
            "tracking_details": [[
                "object": "TrackingDetail", "status": status, "datetime": RFC3339.format(at), "message": "Demo scan: \(status)",
                "tracking_location": ["city": "SPRINGFIELD", "state": "NY", "zip": "10001"],
            ] as [String: Any]],
        ]
        if let estimate { tracker["est_delivery_date"] = RFC3339.format(estimate) }
        let event: [String: Any] = ["id": id, "object": "Event", "description": "tracker.updated", "result": tracker]
        return Array(try JSONSerialization.data(withJSONObject: event, options: [.sortedKeys]))
    }
}

import Contracts
import Foundation

/// The business configuration of the order pipeline: what intake accepts, when payment
/// holds or declines, where stock lives and how allocation sources it.
///
/// Loaded from `config/rules.yaml` (or a JSON file) by the worker at start-up; the
/// schema is in docs/RULES.md. ``validate()`` lists every problem, each naming its key.
public struct BusinessRules: Sendable, Hashable, Codable {
    /// Intake's rules.
    public var intake: IntakeRules
    /// Payment and fraud rules.
    public var payment: PaymentRules
    /// Allocation's sourcing rules.
    public var sourcing: SourcingRules
    /// Every stock location.
    public var locations: [StockLocation]
    /// Distances from destinations to locations.
    public var zones: [Zone]
    /// Carrier rates and promises.
    public var shipping: ShippingRules
    /// Return windows and dispositions.
    public var returns: ReturnRules
    /// Customer notifications.
    public var notifications: NotificationRules
    /// How long an order may stay in each state.
    public var sla: SLARules
    /// Stock shown on channels.
    public var stockFeeds: StockFeedRules
    /// Legal entities, tax table and tax classes for invoices.
    public var invoicing: InvoicingRules
    /// SLAs of fulfilment requests to locations that confirm their work.
    public var fulfilment: FulfilmentRequestRules

    /// Creates rules.
    public init(
        intake: IntakeRules = IntakeRules(), payment: PaymentRules = PaymentRules(), sourcing: SourcingRules = SourcingRules(),
        locations: [StockLocation] = [], zones: [Zone] = [], shipping: ShippingRules = ShippingRules(), returns: ReturnRules = ReturnRules(),
        notifications: NotificationRules = NotificationRules(), sla: SLARules = SLARules(), stockFeeds: StockFeedRules = StockFeedRules(),
        invoicing: InvoicingRules = InvoicingRules(), fulfilment: FulfilmentRequestRules = FulfilmentRequestRules()
    ) {
        self.intake = intake
        self.payment = payment
        self.sourcing = sourcing
        self.locations = locations
        self.zones = zones
        self.shipping = shipping
        self.returns = returns
        self.notifications = notifications
        self.sla = sla
        self.stockFeeds = stockFeeds
        self.invoicing = invoicing
        self.fulfilment = fulfilment
    }

    /// Every problem found, as `key: message`; empty when the rules are usable.
    public func validate() -> [String] {
        var problems: [String] = []
        if intake.currencies.isEmpty { problems.append("intake.currencies: name at least one supported currency") }
        for (index, code) in intake.currencies.enumerated() {
            do { _ = try CurrencyCode(code) } catch { problems.append("intake.currencies[\(index)]: \(error.description)") }
        }
        for (code, amount) in payment.holdAboveMinorUnits.sorted(by: { $0.key < $1.key }) {
            do { _ = try CurrencyCode(code) } catch { problems.append("payment.holdAboveMinorUnits.\(code): \(error.description)") }
            if amount < 0 { problems.append("payment.holdAboveMinorUnits.\(code): must not be negative") }
        }
        if let velocity = payment.velocity {
            if velocity.maxOrders < 1 { problems.append("payment.velocity.maxOrders: must be at least 1") }
            if velocity.windowSeconds < 1 { problems.append("payment.velocity.windowSeconds: must be at least 1") }
        }
        for (index, risky) in payment.riskyPostcodes.enumerated() {
            do { _ = try CountryCode(risky.country) } catch { problems.append("payment.riskyPostcodes[\(index)].country: \(error.description)") }
            if risky.prefix.isEmpty { problems.append("payment.riskyPostcodes[\(index)].prefix: must not be empty") }
        }
        if sourcing.maxShipments < 1 { problems.append("sourcing.maxShipments: must be at least 1") }
        if sourcing.maxReplans < 0 { problems.append("sourcing.maxReplans: must not be negative") }
        var ids = Set<String>()
        for (index, location) in locations.enumerated() {
            let path = "locations[\(index)]"
            if location.id.isEmpty { problems.append("\(path).id: must not be empty") }
            if !ids.insert(location.id).inserted { problems.append("\(path).id: '\(location.id)' is defined twice") }
            do { _ = try CountryCode(location.country) } catch { problems.append("\(path).country: \(error.description)") }
            problems += Self.coordinateProblems(location.latitude, location.longitude, path: path)
        }
        for (index, zone) in zones.enumerated() {
            let path = "zones[\(index)]"
            do { _ = try CountryCode(zone.country) } catch { problems.append("\(path).country: \(error.description)") }
            problems += Self.coordinateProblems(zone.latitude, zone.longitude, path: path)
            for (location, distance) in (zone.distances ?? [:]).sorted(by: { $0.key < $1.key }) {
                if !ids.contains(location) { problems.append("\(path).distances.\(location): no such location") }
                if distance < 0 { problems.append("\(path).distances.\(location): must not be negative") }
            }
            if zone.distances == nil, zone.latitude == nil {
                problems.append("\(path): give distances or latitude/longitude")
            }
        }
        problems += shipping.problems()
        problems += returns.problems(locations: ids)
        problems += notifications.problems()
        problems += sla.problems()
        problems += stockFeeds.problems(locations: ids)
        problems += invoicing.validate()
        problems += fulfilment.problems()
        return problems
    }

    private static func coordinateProblems(_ latitude: Double?, _ longitude: Double?, path: String) -> [String] {
        switch (latitude, longitude) {
        case (nil, nil): return []
        case (let lat?, let lon?):
            var problems: [String] = []
            if !(-90...90).contains(lat) { problems.append("\(path).latitude: \(lat) is outside -90...90") }
            if !(-180...180).contains(lon) { problems.append("\(path).longitude: \(lon) is outside -180...180") }
            return problems
        default: return ["\(path): give both latitude and longitude, or neither"]
        }
    }

    /// The location called `id`.
    public func location(_ id: String) -> StockLocation? { locations.first { $0.id == id } }

    /// Distance in km (or the zone table's unit) from a destination to a location, for
    /// "nearest first": the zone whose postal prefix matches longest gives it, by its
    /// table or by the great-circle distance between its and the location's coordinates;
    /// without either, a location in the destination country counts as 5,000 and any
    /// other as 20,000, so in-country still wins.
    public func distance(to location: StockLocation, country: String?, postalCode: String?) -> Double {
        if let country, let zone = zone(country: country, postalCode: postalCode) {
            if let distance = zone.distances?[location.id] { return distance }
            if let zlat = zone.latitude, let zlon = zone.longitude, let llat = location.latitude, let llon = location.longitude {
                return Self.greatCircleKm(zlat, zlon, llat, llon)
            }
        }
        return location.country == country ? 5_000 : 20_000
    }

    private func zone(country: String, postalCode: String?) -> Zone? {
        let postal = Self.normalized(postalCode)
        return zones
            .filter { $0.country == country && postal.hasPrefix(Self.normalized($0.postalPrefix)) }
            .max { Self.normalized($0.postalPrefix).count < Self.normalized($1.postalPrefix).count }
    }

    /// A postal code or prefix as compared: uppercased, without spaces.
    static func normalized(_ postal: String?) -> String { (postal ?? "").uppercased().filter { !$0.isWhitespace } }

    private static func greatCircleKm(_ lat1: Double, _ lon1: Double, _ lat2: Double, _ lon2: Double) -> Double {
        let radians = Double.pi / 180
        let dlat = (lat2 - lat1) * radians
        let dlon = (lon2 - lon1) * radians
        let a = sin(dlat / 2) * sin(dlat / 2) + cos(lat1 * radians) * cos(lat2 * radians) * sin(dlon / 2) * sin(dlon / 2)
        return 6_371 * 2 * atan2(a.squareRoot(), (1 - a).squareRoot())
    }
}

/// What intake accepts.
public struct IntakeRules: Sendable, Hashable, Codable {
    /// ISO 4217 codes of the currencies orders may use.
    public var currencies: [String]

    /// Creates intake rules.
    public init(currencies: [String] = ["USD", "EUR", "GBP", "CAD", "AUD", "JPY", "CHF", "SEK", "DKK", "NOK", "PLN"]) {
        self.currencies = currencies
    }
}

/// When payment holds an order for review.
public struct PaymentRules: Sendable, Hashable, Codable {
    /// Hold orders whose total is above this, per currency, in minor units.
    public var holdAboveMinorUnits: [String: Int64]
    /// Hold when a customer places too many orders in a window; nil switches it off.
    public var velocity: VelocityRule?
    /// Hold when the billing country differs from the shipping country.
    public var holdOnCountryMismatch: Bool
    /// Destinations known for fraud.
    public var riskyPostcodes: [RiskyPostcode]

    /// Creates payment rules.
    public init(
        holdAboveMinorUnits: [String: Int64] = [:], velocity: VelocityRule? = nil, holdOnCountryMismatch: Bool = false,
        riskyPostcodes: [RiskyPostcode] = []
    ) {
        self.holdAboveMinorUnits = holdAboveMinorUnits
        self.velocity = velocity
        self.holdOnCountryMismatch = holdOnCountryMismatch
        self.riskyPostcodes = riskyPostcodes
    }
}

/// More than `maxOrders` orders of one customer within `windowSeconds` hold the order.
public struct VelocityRule: Sendable, Hashable, Codable {
    /// Orders allowed in the window.
    public var maxOrders: Int
    /// The window.
    public var windowSeconds: Int

    /// Creates the rule.
    public init(maxOrders: Int, windowSeconds: Int) {
        self.maxOrders = maxOrders
        self.windowSeconds = windowSeconds
    }
}

/// Shipping postal codes starting with `prefix` in `country` hold the order.
public struct RiskyPostcode: Sendable, Hashable, Codable {
    /// ISO 3166-1 alpha-2 country.
    public var country: String
    /// Postal code prefix, compared without spaces and case.
    public var prefix: String

    /// Creates an entry.
    public init(country: String, prefix: String) {
        self.country = country
        self.prefix = prefix
    }
}

/// How allocation sources an order.
public struct SourcingRules: Sendable, Hashable, Codable {
    /// Most locations one order ships from (drop-ship suppliers not counted: they are forced).
    public var maxShipments: Int
    /// How many times allocation plans again after refusals before it applies the policy.
    public var maxReplans: Int
    /// What happens to units that cannot be sourced.
    public var backorderPolicy: BackorderPolicy
    /// Which backordered lines arriving stock fills first.
    public var backorderOrder: BackorderFillOrder
    /// Whether a pre-order's launched lines ship before its launch date.
    public var preorderPartial: PreorderPartial

    /// Creates sourcing rules.
    public init(
        maxShipments: Int = 2, maxReplans: Int = 2, backorderPolicy: BackorderPolicy = .backorder, backorderOrder: BackorderFillOrder = .placed,
        preorderPartial: PreorderPartial = .wait
    ) {
        self.maxShipments = maxShipments
        self.maxReplans = maxReplans
        self.backorderPolicy = backorderPolicy
        self.backorderOrder = backorderOrder
        self.preorderPartial = preorderPartial
    }
}

/// Whether an order with pre-order lines ships its launched lines before the launch.
public enum PreorderPartial: String, Sendable, Hashable, Codable {
    /// Nothing is released before the last launch date: the order ships complete.
    case wait
    /// The launched lines are released at once (`OrderPartiallyAllocated`, the pre-order
    /// lines listed as waiting); the rest on the launch date.
    case shipAvailable = "ship_available"
}

/// Which backordered lines arriving stock fills first.
public enum BackorderFillOrder: String, Sendable, Hashable, Codable {
    /// First placed, first filled.
    case placed
    /// Faster paid service first (same day, next day, expedited, standard), then first placed.
    case serviceLevel = "service_level"

    /// The fill rank of an order at `level`: lower is filled first.
    public func rank(_ level: ServiceLevel?) -> Int {
        guard self == .serviceLevel else { return 0 }
        return switch level ?? .standard {
        case .sameDay: 0
        case .nextDay: 1
        case .expedited: 2
        case .standard: 3
        }
    }
}

/// A place that holds stock.
public struct StockLocation: Sendable, Hashable, Codable {
    /// Location id, as in inventory commands and levels.
    public var id: String
    /// What kind of location; sourcing rules differ per kind.
    public var type: LocationType
    /// ISO 3166-1 alpha-2 country.
    public var country: String
    /// Coordinates, for great-circle distances to zones.
    public var latitude: Double?
    /// Coordinates, for great-circle distances to zones.
    public var longitude: Double?
    /// Whether the location confirms its work (absent: ``LocationHandoff/direct``).
    public var fulfilment: LocationHandoff?

    /// Creates a location.
    public init(
        id: String, type: LocationType, country: String, latitude: Double? = nil, longitude: Double? = nil, fulfilment: LocationHandoff? = nil
    ) {
        self.id = id
        self.type = type
        self.country = country
        self.latitude = latitude
        self.longitude = longitude
        self.fulfilment = fulfilment
    }
}

/// A destination area (a country, or a postal prefix in it) and how far each location is.
public struct Zone: Sendable, Hashable, Codable {
    /// ISO 3166-1 alpha-2 country.
    public var country: String
    /// Postal code prefix; nil or empty for the whole country. The longest match wins.
    public var postalPrefix: String?
    /// Explicit distance (or rank) per location id.
    public var distances: [String: Double]?
    /// The zone's centre, for great-circle distances to located locations.
    public var latitude: Double?
    /// The zone's centre.
    public var longitude: Double?

    /// Creates a zone.
    public init(country: String, postalPrefix: String? = nil, distances: [String: Double]? = nil, latitude: Double? = nil, longitude: Double? = nil) {
        self.country = country
        self.postalPrefix = postalPrefix
        self.distances = distances
        self.latitude = latitude
        self.longitude = longitude
    }
}

// Every section and most keys may be left out of the file; these decoders fill the defaults.
extension BusinessRules {
    private enum CodingKeys: String, CodingKey { case intake, payment, sourcing, locations, zones, shipping, returns, notifications, sla, stockFeeds, invoicing, fulfilment }

    /// Decodes rules; a missing section takes its defaults.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            intake: try c.decodeIfPresent(IntakeRules.self, forKey: .intake) ?? IntakeRules(),
            payment: try c.decodeIfPresent(PaymentRules.self, forKey: .payment) ?? PaymentRules(),
            sourcing: try c.decodeIfPresent(SourcingRules.self, forKey: .sourcing) ?? SourcingRules(),
            locations: try c.decodeIfPresent([StockLocation].self, forKey: .locations) ?? [],
            zones: try c.decodeIfPresent([Zone].self, forKey: .zones) ?? [],
            shipping: try c.decodeIfPresent(ShippingRules.self, forKey: .shipping) ?? ShippingRules(),
            returns: try c.decodeIfPresent(ReturnRules.self, forKey: .returns) ?? ReturnRules(),
            notifications: try c.decodeIfPresent(NotificationRules.self, forKey: .notifications) ?? NotificationRules(),
            sla: try c.decodeIfPresent(SLARules.self, forKey: .sla) ?? SLARules(),
            stockFeeds: try c.decodeIfPresent(StockFeedRules.self, forKey: .stockFeeds) ?? StockFeedRules(),
            invoicing: try c.decodeIfPresent(InvoicingRules.self, forKey: .invoicing) ?? InvoicingRules(),
            fulfilment: try c.decodeIfPresent(FulfilmentRequestRules.self, forKey: .fulfilment) ?? FulfilmentRequestRules())
    }
}

extension IntakeRules {
    private enum CodingKeys: String, CodingKey { case currencies }

    /// Decodes intake rules; missing keys take their defaults.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init()
        if let currencies = try c.decodeIfPresent([String].self, forKey: .currencies) { self.currencies = currencies }
    }
}

extension PaymentRules {
    private enum CodingKeys: String, CodingKey { case holdAboveMinorUnits, velocity, holdOnCountryMismatch, riskyPostcodes }

    /// Decodes payment rules; missing keys take their defaults.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            holdAboveMinorUnits: try c.decodeIfPresent([String: Int64].self, forKey: .holdAboveMinorUnits) ?? [:],
            velocity: try c.decodeIfPresent(VelocityRule.self, forKey: .velocity),
            holdOnCountryMismatch: try c.decodeIfPresent(Bool.self, forKey: .holdOnCountryMismatch) ?? false,
            riskyPostcodes: try c.decodeIfPresent([RiskyPostcode].self, forKey: .riskyPostcodes) ?? [])
    }
}

extension SourcingRules {
    private enum CodingKeys: String, CodingKey { case maxShipments, maxReplans, backorderPolicy, backorderOrder, preorderPartial }

    /// Decodes sourcing rules; missing keys take their defaults.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = SourcingRules()
        self.init(
            maxShipments: try c.decodeIfPresent(Int.self, forKey: .maxShipments) ?? defaults.maxShipments,
            maxReplans: try c.decodeIfPresent(Int.self, forKey: .maxReplans) ?? defaults.maxReplans,
            backorderPolicy: try c.decodeIfPresent(BackorderPolicy.self, forKey: .backorderPolicy) ?? defaults.backorderPolicy,
            backorderOrder: try c.decodeIfPresent(BackorderFillOrder.self, forKey: .backorderOrder) ?? defaults.backorderOrder,
            preorderPartial: try c.decodeIfPresent(PreorderPartial.self, forKey: .preorderPartial) ?? defaults.preorderPartial)
    }
}

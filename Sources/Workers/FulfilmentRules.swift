import Contracts
import Foundation

/// How shipping picks a carrier and what it promises when the channel promised nothing.
public struct ShippingRules: Sendable, Hashable, Codable {
    /// The rate table: every (carrier, service) with the zones and weights it serves.
    public var rates: [CarrierRate]
    /// Shipping zones by distance from the location to the destination (as allocation
    /// measures it), nearest first; a destination in another country than the location
    /// is in zone `international`, one farther than every band in the last band.
    public var zoneBands: [ZoneBand]
    /// Days from placement to the promise, per service level, for orders without a
    /// promised delivery date.
    public var promiseDays: [String: Int]
    /// A carrier update is attached to the indexed shipment only if it happened at most
    /// this many days after the shipment (and not more than a day before): carriers
    /// reuse tracking numbers.
    public var trackingWindowDays: Int
    /// Whether a line cancel gives back the cancelled units' share of the shipping charge.
    public var lineCancelShipping: LineCancelShipping

    /// Creates shipping rules; the default rate table has one carrier with three services
    /// for every zone.
    public init(
        rates: [CarrierRate] = ShippingRules.defaultRates, zoneBands: [ZoneBand] = ShippingRules.defaultBands,
        promiseDays: [String: Int] = ["standard": 7, "expedited": 3, "next_day": 1, "same_day": 0], trackingWindowDays: Int = 120,
        lineCancelShipping: LineCancelShipping = .keep
    ) {
        self.lineCancelShipping = lineCancelShipping
        self.rates = rates
        self.zoneBands = zoneBands
        self.promiseDays = promiseDays
        self.trackingWindowDays = trackingWindowDays
    }

    /// One generic carrier: ground, two-day and overnight.
    public static let defaultRates = [
        CarrierRate(carrier: "oms-post", service: "ground", serviceLevel: .standard, maxWeightGrams: 30_000, price: 600, transitDays: 5),
        CarrierRate(carrier: "oms-post", service: "two-day", serviceLevel: .expedited, maxWeightGrams: 30_000, price: 1_400, transitDays: 2),
        CarrierRate(carrier: "oms-post", service: "overnight", serviceLevel: .nextDay, maxWeightGrams: 30_000, price: 3_000, transitDays: 1),
    ]
    /// Local, regional, national.
    public static let defaultBands = [ZoneBand(name: "local", maxKm: 300), ZoneBand(name: "regional", maxKm: 1_500), ZoneBand(name: "national", maxKm: 5_000)]

    func problems() -> [String] {
        var problems: [String] = []
        if rates.isEmpty { problems.append("shipping.rates: name at least one rate") }
        for (index, rate) in rates.enumerated() {
            let path = "shipping.rates[\(index)]"
            if rate.carrier.isEmpty || rate.carrier.contains("/") { problems.append("\(path).carrier: must be a non-empty code without '/'") }
            if rate.service.isEmpty { problems.append("\(path).service: must not be empty") }
            if rate.maxWeightGrams < 1 { problems.append("\(path).maxWeightGrams: must be at least 1") }
            if rate.price < 0 { problems.append("\(path).price: must not be negative") }
            if rate.transitDays < 0 { problems.append("\(path).transitDays: must not be negative") }
            for zone in rate.zones ?? [] where zone != "international" && !zoneBands.contains(where: { $0.name == zone }) {
                problems.append("\(path).zones: '\(zone)' is neither a zone band nor 'international'")
            }
        }
        var bandNames = Set<String>()
        for (index, band) in zoneBands.enumerated() {
            if band.maxKm <= 0 { problems.append("shipping.zoneBands[\(index)].maxKm: must be positive") }
            if band.name == "international" || !bandNames.insert(band.name).inserted {
                problems.append("shipping.zoneBands[\(index)].name: '\(band.name)' is reserved or defined twice")
            }
        }
        if zoneBands.isEmpty { problems.append("shipping.zoneBands: name at least one band") }
        for (level, days) in promiseDays.sorted(by: { $0.key < $1.key }) {
            if ServiceLevel(rawValue: level) == nil { problems.append("shipping.promiseDays.\(level): not a service level (standard, expedited, next_day, same_day)") }
            if days < 0 { problems.append("shipping.promiseDays.\(level): must not be negative") }
        }
        if trackingWindowDays < 1 { problems.append("shipping.trackingWindowDays: must be at least 1") }
        return problems
    }

    /// The zone of a parcel from `location` to the destination.
    public func zone(from location: StockLocation?, country: String, distanceKm: Double) -> String {
        if let location, location.country != country { return "international" }
        let bands = zoneBands.sorted { $0.maxKm < $1.maxKm }
        return bands.first { distanceKm <= $0.maxKm }?.name ?? bands.last?.name ?? "national"
    }
}

/// A carrier service's price and transit time for a zone set and weight limit.
public struct CarrierRate: Sendable, Hashable, Codable {
    /// Carrier code, as in tracking keys (`ups`, `dhl`).
    public var carrier: String
    /// The carrier's service name.
    public var service: String
    /// The speed class the service belongs to (informational; the promise decides).
    public var serviceLevel: ServiceLevel
    /// Zones served; nil for every zone.
    public var zones: [String]?
    /// Heaviest parcel accepted.
    public var maxWeightGrams: Int
    /// Cost of one parcel, in minor units of the brand's currency.
    public var price: Int64
    /// Days from hand-over to delivery.
    public var transitDays: Int
    /// Whether the service takes dangerous goods.
    public var hazmat: Bool

    /// Creates a rate.
    public init(
        carrier: String, service: String, serviceLevel: ServiceLevel, zones: [String]? = nil, maxWeightGrams: Int, price: Int64,
        transitDays: Int, hazmat: Bool = false
    ) {
        self.carrier = carrier
        self.service = service
        self.serviceLevel = serviceLevel
        self.zones = zones
        self.maxWeightGrams = maxWeightGrams
        self.price = price
        self.transitDays = transitDays
        self.hazmat = hazmat
    }

    private enum CodingKeys: String, CodingKey { case carrier, service, serviceLevel, zones, maxWeightGrams, price, transitDays, hazmat }

    /// Decodes a rate; `hazmat` defaults to false.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            carrier: try c.decode(String.self, forKey: .carrier), service: try c.decode(String.self, forKey: .service),
            serviceLevel: try c.decode(ServiceLevel.self, forKey: .serviceLevel), zones: try c.decodeIfPresent([String].self, forKey: .zones),
            maxWeightGrams: try c.decode(Int.self, forKey: .maxWeightGrams), price: try c.decode(Int64.self, forKey: .price),
            transitDays: try c.decode(Int.self, forKey: .transitDays), hazmat: try c.decodeIfPresent(Bool.self, forKey: .hazmat) ?? false)
    }
}

/// A shipping zone: destinations up to `maxKm` from the location.
public struct ZoneBand: Sendable, Hashable, Codable {
    /// Zone name, as rates refer to it.
    public var name: String
    /// Farthest distance in the zone.
    public var maxKm: Double

    /// Creates a band.
    public init(name: String, maxKm: Double) {
        self.name = name
        self.maxKm = maxKm
    }
}

/// When returns are accepted and what happens to returned units.
public struct ReturnRules: Sendable, Hashable, Codable {
    /// Days after delivery a return may be requested.
    public var windowDays: Int
    /// Per-channel windows that override ``windowDays`` and ``countryWindowDays``.
    public var channelWindowDays: [String: Int]
    /// Per ship-to country windows (ISO code → days) that override ``windowDays``.
    public var countryWindowDays: [String: Int]
    /// Return reasons whose units are written off instead of restocked.
    public var writeOffReasons: [String]
    /// Where return parcels go; nil: back to the location that shipped them.
    public var receivingLocation: String?
    /// Carrier of return labels.
    public var carrier: String
    /// Days an RMA stays valid.
    public var rmaValidDays: Int
    /// Limits of goodwill refunds without a return.
    public var appeasements: AppeasementRules
    /// Per product category windows (catalog `category` → days) that override every
    /// other window for the lines of that category.
    public var categoryWindowDays: [String: Int]
    /// When an exchange's replacement is reserved, and what an out-of-stock one becomes.
    public var exchanges: ExchangeRules
    /// How often the returns stage looks for RMAs past their validity.
    public var checkIntervalSeconds: Int

    /// Creates return rules.
    public init(
        windowDays: Int = 30, channelWindowDays: [String: Int] = [:], writeOffReasons: [String] = ["damaged", "defective"],
        receivingLocation: String? = nil, carrier: String = "oms-post", rmaValidDays: Int = 30, appeasements: AppeasementRules = AppeasementRules(),
        countryWindowDays: [String: Int] = [:], categoryWindowDays: [String: Int] = [:], exchanges: ExchangeRules = ExchangeRules(),
        checkIntervalSeconds: Int = 60
    ) {
        self.exchanges = exchanges
        self.checkIntervalSeconds = checkIntervalSeconds
        self.appeasements = appeasements
        self.categoryWindowDays = categoryWindowDays
        self.countryWindowDays = countryWindowDays
        self.windowDays = windowDays
        self.channelWindowDays = channelWindowDays
        self.writeOffReasons = writeOffReasons
        self.receivingLocation = receivingLocation
        self.carrier = carrier
        self.rmaValidDays = rmaValidDays
    }

    /// The return window, in days, of a line of `category` in an order of `channel`
    /// shipped to `country`: the category's, else the channel's, else the country's,
    /// else ``windowDays``.
    public func window(channel: String?, country: String? = nil, category: String? = nil) -> Int {
        category.flatMap { categoryWindowDays[$0] } ?? channel.flatMap { channelWindowDays[$0] } ?? country.flatMap { countryWindowDays[$0] }
            ?? windowDays
    }

    func problems(locations: Set<String>) -> [String] {
        var problems: [String] = []
        if windowDays < 0 { problems.append("returns.windowDays: must not be negative") }
        for (channel, days) in channelWindowDays.sorted(by: { $0.key < $1.key }) where days < 0 {
            problems.append("returns.channelWindowDays.\(channel): must not be negative")
        }
        for (country, days) in countryWindowDays.sorted(by: { $0.key < $1.key }) where days < 0 || (try? CountryCode(country)) == nil {
            problems.append("returns.countryWindowDays.\(country): an ISO country code and days ≥ 0")
        }
        for (category, days) in categoryWindowDays.sorted(by: { $0.key < $1.key }) where days < 0 {
            problems.append("returns.categoryWindowDays.\(category): must not be negative")
        }
        if let location = receivingLocation, !locations.contains(location) {
            problems.append("returns.receivingLocation: no such location '\(location)'")
        }
        if carrier.isEmpty || carrier.contains("/") { problems.append("returns.carrier: must be a non-empty code without '/'") }
        if rmaValidDays < 1 { problems.append("returns.rmaValidDays: must be at least 1") }
        if checkIntervalSeconds < 1 { problems.append("returns.checkIntervalSeconds: must be at least 1") }
        return problems + appeasements.problems()
    }
}

/// How much customer service may give back without a return (docs/RULES.md,
/// *Appeasements*): per appeasement by the agent's role, and in all per order, in minor
/// units per currency. A currency without a limit allows nothing.
public struct AppeasementRules: Sendable, Hashable, Codable {
    /// Role → currency → the most one appeasement may give.
    public var perRole: [String: [String: Int64]]
    /// Currency → the most all appeasements of one order may give.
    public var perOrder: [String: Int64]

    /// Limits; by default an `agent` gives up to 25.00 and a `lead` up to 100.00 at a
    /// time, and an order gets up to 100.00 in all (USD, EUR, GBP).
    public init(
        perRole: [String: [String: Int64]] = ["agent": ["USD": 2_500, "EUR": 2_500, "GBP": 2_500], "lead": ["USD": 10_000, "EUR": 10_000, "GBP": 10_000]],
        perOrder: [String: Int64] = ["USD": 10_000, "EUR": 10_000, "GBP": 10_000]
    ) {
        self.perRole = perRole
        self.perOrder = perOrder
    }

    func problems() -> [String] {
        // Every limit is minor units of a currency, whoever it is for.
        func problems(_ limits: [String: Int64], at path: String) -> [String] {
            limits.sorted { $0.key < $1.key }.filter { $0.value < 0 || (try? CurrencyCode($0.key)) == nil }
                .map { "\(path).\($0.key): a currency code and a limit ≥ 0" }
        }
        return perRole.sorted { $0.key < $1.key }.flatMap { problems($0.value, at: "returns.appeasements.perRole.\($0.key)") }
            + problems(perOrder, at: "returns.appeasements.perOrder")
    }
}

/// What the view stage tells customers.
public struct NotificationRules: Sendable, Hashable, Codable {
    /// Seconds after the last delivery that the review invitation goes out; nil: never.
    public var reviewInvitationDelaySeconds: Int?
    /// Tracking link template; `{carrier}` and `{trackingNumber}` are replaced.
    public var trackingURL: String
    /// How often the view checks for invitations that are due.
    public var checkIntervalSeconds: Int

    /// Creates notification rules.
    public init(
        reviewInvitationDelaySeconds: Int? = 7 * 86_400, trackingURL: String = "https://track.orderfleet.example/{carrier}/{trackingNumber}",
        checkIntervalSeconds: Int = 5
    ) {
        self.reviewInvitationDelaySeconds = reviewInvitationDelaySeconds
        self.trackingURL = trackingURL
        self.checkIntervalSeconds = checkIntervalSeconds
    }

    /// The tracking link of a parcel.
    public func trackingLink(carrier: String, trackingNumber: String) -> String {
        trackingURL.replacingOccurrences(of: "{carrier}", with: carrier).replacingOccurrences(of: "{trackingNumber}", with: trackingNumber)
    }

    func problems() -> [String] {
        var problems: [String] = []
        if let delay = reviewInvitationDelaySeconds, delay < 0 { problems.append("notifications.reviewInvitationDelaySeconds: must not be negative") }
        if !trackingURL.contains("{trackingNumber}") { problems.append("notifications.trackingURL: must contain {trackingNumber}") }
        if checkIntervalSeconds < 1 { problems.append("notifications.checkIntervalSeconds: must be at least 1") }
        return problems
    }
}

/// How long orders may stay in a state before SLA watch alerts.
public struct SLARules: Sendable, Hashable, Codable {
    /// The limits.
    public var rules: [SLARule]
    /// How often SLA watch checks.
    public var checkIntervalSeconds: Int

    /// Creates SLA rules: by default approved → allocated in 15 min, held reviewed in 4 h,
    /// placed → checked in 5 min, allocated → shipped a day before the promise.
    public init(
        rules: [SLARule] = [
            SLARule(name: "placed_not_checked", status: .placed, maxSeconds: 300),
            SLARule(name: "held_not_reviewed", status: .held, maxSeconds: 4 * 3_600),
            SLARule(name: "approved_not_allocated", status: .approved, maxSeconds: 900),
            SLARule(name: "allocated_not_shipped", status: .allocated, shipBySecondsBeforePromise: 86_400),
        ],
        checkIntervalSeconds: Int = 5
    ) {
        self.rules = rules
        self.checkIntervalSeconds = checkIntervalSeconds
    }

    func problems() -> [String] {
        var problems: [String] = []
        var names = Set<String>()
        for (index, rule) in rules.enumerated() {
            let path = "sla.rules[\(index)]"
            if rule.name.isEmpty { problems.append("\(path).name: must not be empty") }
            if !names.insert(rule.name).inserted { problems.append("\(path).name: '\(rule.name)' is defined twice") }
            switch (rule.maxSeconds, rule.shipBySecondsBeforePromise) {
            case (nil, nil), (.some, .some): problems.append("\(path): give exactly one of maxSeconds and shipBySecondsBeforePromise")
            case (let max?, nil) where max < 1: problems.append("\(path).maxSeconds: must be at least 1")
            case (nil, let before?) where before < 0: problems.append("\(path).shipBySecondsBeforePromise: must not be negative")
            default: break
            }
            if SLAWatch.finalStatuses.contains(rule.status) {
                problems.append("\(path).status: '\(rule.status.rawValue)' is final; SLA watch stops following an order there")
            }
        }
        if checkIntervalSeconds < 1 { problems.append("sla.checkIntervalSeconds: must be at least 1") }
        return problems
    }
}

/// One SLA: an order must leave `status` within `maxSeconds`, or (for a ship-by rule)
/// `shipBySecondsBeforePromise` before its promised delivery date.
public struct SLARule: Sendable, Hashable, Codable {
    /// Rule name, as alerts carry it.
    public var name: String
    /// The state it watches.
    public var status: OrderStatus
    /// Most seconds in the state.
    public var maxSeconds: Int?
    /// The state must be left this long before the promised delivery date.
    public var shipBySecondsBeforePromise: Int?
    /// Severity of its alerts.
    public var severity: AlertSeverity

    /// Creates a rule.
    public init(name: String, status: OrderStatus, maxSeconds: Int? = nil, shipBySecondsBeforePromise: Int? = nil, severity: AlertSeverity = .warning) {
        self.name = name
        self.status = status
        self.maxSeconds = maxSeconds
        self.shipBySecondsBeforePromise = shipBySecondsBeforePromise
        self.severity = severity
    }

    /// When an order that entered the state at `since` breaches the rule; nil if it cannot
    /// (a ship-by rule for an order without a promise).
    public func deadline(since: Date, promise: Date?) -> Date? {
        if let maxSeconds { return since.addingTimeInterval(TimeInterval(maxSeconds)) }
        if let before = shipBySecondsBeforePromise, let promise { return promise.addingTimeInterval(-TimeInterval(before)) }
        return nil
    }

    private enum CodingKeys: String, CodingKey { case name, status, maxSeconds, shipBySecondsBeforePromise, severity }

    /// Decodes a rule; severity defaults to warning.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            name: try c.decode(String.self, forKey: .name), status: try c.decode(OrderStatus.self, forKey: .status),
            maxSeconds: try c.decodeIfPresent(Int.self, forKey: .maxSeconds),
            shipBySecondsBeforePromise: try c.decodeIfPresent(Int.self, forKey: .shipBySecondsBeforePromise),
            severity: try c.decodeIfPresent(AlertSeverity.self, forKey: .severity) ?? .warning)
    }
}

// Missing keys take their defaults.
extension ShippingRules {
    private enum CodingKeys: String, CodingKey { case rates, zoneBands, promiseDays, trackingWindowDays, lineCancelShipping }

    /// Decodes shipping rules; missing keys take their defaults.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = ShippingRules()
        self.init(
            rates: try c.decodeIfPresent([CarrierRate].self, forKey: .rates) ?? d.rates,
            zoneBands: try c.decodeIfPresent([ZoneBand].self, forKey: .zoneBands) ?? d.zoneBands,
            promiseDays: try c.decodeIfPresent([String: Int].self, forKey: .promiseDays) ?? d.promiseDays,
            trackingWindowDays: try c.decodeIfPresent(Int.self, forKey: .trackingWindowDays) ?? d.trackingWindowDays,
            lineCancelShipping: try c.decodeIfPresent(LineCancelShipping.self, forKey: .lineCancelShipping) ?? d.lineCancelShipping)
    }
}

/// What a line cancel does to the shipping charge (docs/RULES.md, *Address changes and
/// line cancels*).
public enum LineCancelShipping: String, Sendable, Hashable, Codable {
    /// The shipping charge stays whole: the parcel goes anyway.
    case keep
    /// The cancelled units' share of it (by their worth among the goods) is refunded once
    /// the charge is taken: at once for an order paid at checkout or already shipping,
    /// else right after the first shipment's capture.
    case share
}

extension ReturnRules {
    private enum CodingKeys: String, CodingKey {
        case windowDays, channelWindowDays, countryWindowDays, categoryWindowDays, writeOffReasons, receivingLocation, carrier, rmaValidDays, appeasements
        case exchanges, checkIntervalSeconds
    }

    /// Decodes return rules; missing keys take their defaults.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = ReturnRules()
        self.init(
            windowDays: try c.decodeIfPresent(Int.self, forKey: .windowDays) ?? d.windowDays,
            channelWindowDays: try c.decodeIfPresent([String: Int].self, forKey: .channelWindowDays) ?? d.channelWindowDays,
            writeOffReasons: try c.decodeIfPresent([String].self, forKey: .writeOffReasons) ?? d.writeOffReasons,
            receivingLocation: try c.decodeIfPresent(String.self, forKey: .receivingLocation),
            carrier: try c.decodeIfPresent(String.self, forKey: .carrier) ?? d.carrier,
            rmaValidDays: try c.decodeIfPresent(Int.self, forKey: .rmaValidDays) ?? d.rmaValidDays,
            appeasements: try c.decodeIfPresent(AppeasementRules.self, forKey: .appeasements) ?? d.appeasements,
            countryWindowDays: try c.decodeIfPresent([String: Int].self, forKey: .countryWindowDays) ?? d.countryWindowDays,
            categoryWindowDays: try c.decodeIfPresent([String: Int].self, forKey: .categoryWindowDays) ?? d.categoryWindowDays,
            exchanges: try c.decodeIfPresent(ExchangeRules.self, forKey: .exchanges) ?? d.exchanges,
            checkIntervalSeconds: try c.decodeIfPresent(Int.self, forKey: .checkIntervalSeconds) ?? d.checkIntervalSeconds)
    }
}

/// How exchanges run (docs/RULES.md, *Exchanges*).
public struct ExchangeRules: Sendable, Hashable, Codable {
    /// When the replacement is placed and reserved: at authorization (it ships once the
    /// return is received), or when the return is received.
    public var reserveAt: ExchangeReservation
    /// What an exchange whose replacement has no stock becomes.
    public var outOfStock: ExchangeStockPolicy

    /// Defaults: reserved at authorization; out of stock, refunded instead.
    public init(reserveAt: ExchangeReservation = .authorization, outOfStock: ExchangeStockPolicy = .refund) {
        self.reserveAt = reserveAt
        self.outOfStock = outOfStock
    }

    private enum CodingKeys: String, CodingKey { case reserveAt, outOfStock }

    /// Decodes the rules; a missing key keeps its default.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = ExchangeRules()
        self.init(
            reserveAt: try c.decodeIfPresent(ExchangeReservation.self, forKey: .reserveAt) ?? d.reserveAt,
            outOfStock: try c.decodeIfPresent(ExchangeStockPolicy.self, forKey: .outOfStock) ?? d.outOfStock)
    }
}

/// What an exchange whose replacement has no stock becomes.
public enum ExchangeStockPolicy: String, Sendable, Hashable, Codable {
    /// The return is authorized (or goes on) as a refund; the customer is told.
    case refund
    /// The exchange is refused (at authorization; later, it is refunded like `refund`).
    case reject
    /// The replacement waits for stock (the sourcing backorder policy).
    case wait
}

extension AppeasementRules {
    private enum CodingKeys: String, CodingKey { case perRole, perOrder }

    /// Decodes the limits; a missing key keeps its defaults.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = AppeasementRules()
        self.init(
            perRole: try c.decodeIfPresent([String: [String: Int64]].self, forKey: .perRole) ?? d.perRole,
            perOrder: try c.decodeIfPresent([String: Int64].self, forKey: .perOrder) ?? d.perOrder)
    }
}

extension NotificationRules {
    private enum CodingKeys: String, CodingKey { case reviewInvitationDelaySeconds, trackingURL, checkIntervalSeconds }

    /// Decodes notification rules; missing keys take their defaults (an explicit null
    /// switches the review invitation off).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = NotificationRules()
        self.init(
            reviewInvitationDelaySeconds: c.contains(.reviewInvitationDelaySeconds)
                ? try c.decodeIfPresent(Int.self, forKey: .reviewInvitationDelaySeconds) : d.reviewInvitationDelaySeconds,
            trackingURL: try c.decodeIfPresent(String.self, forKey: .trackingURL) ?? d.trackingURL,
            checkIntervalSeconds: try c.decodeIfPresent(Int.self, forKey: .checkIntervalSeconds) ?? d.checkIntervalSeconds)
    }
}

extension SLARules {
    private enum CodingKeys: String, CodingKey { case rules, checkIntervalSeconds }

    /// Decodes SLA rules; missing keys take their defaults.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = SLARules()
        self.init(
            rules: try c.decodeIfPresent([SLARule].self, forKey: .rules) ?? d.rules,
            checkIntervalSeconds: try c.decodeIfPresent(Int.self, forKey: .checkIntervalSeconds) ?? d.checkIntervalSeconds)
    }
}

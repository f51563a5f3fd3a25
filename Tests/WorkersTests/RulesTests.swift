import Contracts
import Foundation
import Testing
import Workers

/// `BusinessRules.validate` (every problem listed, each naming its key path: currencies,
/// thresholds, velocity, risky postcodes, sourcing limits, duplicate or malformed
/// locations, zones naming unknown locations or half coordinates), decoding with
/// defaults from JSON, and `BusinessRules.distance` (explicit zone distances, longest
/// postal prefix, great-circle distances, in-country fallback). The shipped
/// config/rules.yaml needs Yams, which this target lacks, so its content is rebuilt here.
@Suite struct RulesTests {
    /// config/rules.yaml, in code.
    static let shipped = BusinessRules(
        intake: IntakeRules(currencies: ["USD", "EUR", "GBP", "CAD"]),
        payment: PaymentRules(
            holdAboveMinorUnits: ["USD": 200_000, "EUR": 200_000, "GBP": 180_000, "CAD": 250_000],
            velocity: VelocityRule(maxOrders: 3, windowSeconds: 3_600), holdOnCountryMismatch: true,
            riskyPostcodes: [RiskyPostcode(country: "US", prefix: "96799"), RiskyPostcode(country: "GB", prefix: "BT99")]),
        sourcing: SourcingRules(maxShipments: 2, maxReplans: 2, backorderPolicy: .backorder),
        locations: [
            StockLocation(id: "WH-EAST", type: .warehouse, country: "US", latitude: 40.73, longitude: -74.17),
            StockLocation(id: "WH-WEST", type: .warehouse, country: "US", latitude: 34.05, longitude: -118.24),
            StockLocation(id: "3PL-CENTRAL", type: .thirdPartyLogistics, country: "US", latitude: 39.10, longitude: -94.58),
            StockLocation(id: "STORE-NYC", type: .store, country: "US", latitude: 40.75, longitude: -73.99),
            StockLocation(id: "WH-EU", type: .warehouse, country: "DE", latitude: 50.11, longitude: 8.68),
            StockLocation(id: "SUP-ACME", type: .dropShip, country: "US"),
        ],
        zones: [
            Zone(country: "US", postalPrefix: "1", latitude: 40.71, longitude: -74.01),
            Zone(country: "US", postalPrefix: "9", latitude: 37.77, longitude: -122.42),
            Zone(country: "DE", latitude: 51.17, longitude: 10.45),
            Zone(country: "GB", distances: ["WH-EU": 900, "WH-EAST": 5_600]),
        ])

    static func location(_ id: String, country: String = "US", latitude: Double? = nil, longitude: Double? = nil) -> StockLocation {
        StockLocation(id: id, type: .warehouse, country: country, latitude: latitude, longitude: longitude)
    }

    // MARK: validate

    @Test func shippedAndDefaultRulesAreValid() {
        #expect(Self.shipped.validate() == [])
        #expect(BusinessRules().validate() == [])
    }

    @Test func duplicateLocationIdIsNamedAtItsSecondDefinition() {
        let rules = BusinessRules(locations: [Self.location("WH-1"), Self.location("WH-2"), Self.location("WH-1")])
        #expect(rules.validate() == ["locations[2].id: 'WH-1' is defined twice"])
    }

    @Test func emptyLocationIdIsAProblem() {
        #expect(BusinessRules(locations: [Self.location("")]).validate() == ["locations[0].id: must not be empty"])
    }

    @Test(arguments: ["XX", "us", "USA", ""])
    func badLocationCountryIsNamed(country: String) throws {
        let problems = BusinessRules(locations: [Self.location("WH-1"), Self.location("WH-2", country: country)]).validate()
        try #require(problems.count == 1)
        #expect(problems[0].hasPrefix("locations[1].country: "))
        #expect(problems[0].contains("'\(country)'"))
    }

    @Test func zoneNamingAnUnknownLocationIsAProblem() {
        let rules = BusinessRules(
            locations: [Self.location("WH-1")],
            zones: [Zone(country: "US", distances: ["WH-1": 10]), Zone(country: "CA", distances: ["WH-1": 5, "WH-9": 20, "WH-0": -1])])
        #expect(rules.validate() == [
            "zones[1].distances.WH-0: no such location", "zones[1].distances.WH-0: must not be negative",
            "zones[1].distances.WH-9: no such location",
        ])
    }

    @Test func halfCoordinatesAreAProblem() {
        let rules = BusinessRules(
            locations: [Self.location("WH-1", latitude: 40), Self.location("WH-2", longitude: -74)],
            zones: [Zone(country: "US", latitude: 40.7), Zone(country: "US", postalPrefix: "9", longitude: -122)])
        #expect(rules.validate() == [
            "locations[0]: give both latitude and longitude, or neither",
            "locations[1]: give both latitude and longitude, or neither",
            "zones[0]: give both latitude and longitude, or neither",
            "zones[1]: give both latitude and longitude, or neither",
            "zones[1]: give distances or latitude/longitude",
        ])
    }

    @Test func coordinatesOutOfRangeAreAProblem() {
        let rules = BusinessRules(locations: [Self.location("WH-1", latitude: 91, longitude: -181), Self.location("WH-2", latitude: -90, longitude: 180)])
        #expect(rules.validate() == ["locations[0].latitude: 91.0 is outside -90...90", "locations[0].longitude: -181.0 is outside -180...180"])
    }

    @Test func zoneWithNeitherDistancesNorCoordinatesIsAProblem() {
        #expect(BusinessRules(zones: [Zone(country: "US", postalPrefix: "1")]).validate() == ["zones[0]: give distances or latitude/longitude"])
        #expect(BusinessRules(zones: [Zone(country: "ZZ", distances: [:])]).validate().first?.hasPrefix("zones[0].country: ") == true)
    }

    @Test func sourcingLimitsAreChecked() {
        #expect(BusinessRules(sourcing: SourcingRules(maxShipments: 0)).validate() == ["sourcing.maxShipments: must be at least 1"])
        #expect(BusinessRules(sourcing: SourcingRules(maxReplans: -1)).validate() == ["sourcing.maxReplans: must not be negative"])
        #expect(BusinessRules(sourcing: SourcingRules(maxShipments: 1, maxReplans: 0)).validate() == [])
    }

    @Test func intakeAndPaymentKeysAreChecked() throws {
        #expect(BusinessRules(intake: IntakeRules(currencies: [])).validate() == ["intake.currencies: name at least one supported currency"])
        let currencies = BusinessRules(intake: IntakeRules(currencies: ["USD", "usd", "XXX"])).validate()
        #expect(currencies.map { $0.prefix(while: { $0 != ":" }) } == ["intake.currencies[1]", "intake.currencies[2]"])

        let payment = BusinessRules(
            payment: PaymentRules(
                holdAboveMinorUnits: ["USD": -1, "EURO": 5], velocity: VelocityRule(maxOrders: 0, windowSeconds: 0),
                riskyPostcodes: [RiskyPostcode(country: "GB", prefix: ""), RiskyPostcode(country: "UK", prefix: "BT")])
        ).validate()
        try #require(payment.count == 6, "\(payment)")
        #expect(payment[0].hasPrefix("payment.holdAboveMinorUnits.EURO: "))
        #expect(payment[1] == "payment.holdAboveMinorUnits.USD: must not be negative")
        #expect(payment[2] == "payment.velocity.maxOrders: must be at least 1")
        #expect(payment[3] == "payment.velocity.windowSeconds: must be at least 1")
        #expect(payment[4] == "payment.riskyPostcodes[0].prefix: must not be empty")
        #expect(payment[5].hasPrefix("payment.riskyPostcodes[1].country: "))
    }

    @Test func everyProblemIsListedAtOnce() {
        let rules = BusinessRules(
            sourcing: SourcingRules(maxShipments: 0),
            locations: [Self.location("WH-1", country: "XX"), Self.location("WH-1", latitude: 1)],
            zones: [Zone(country: "US", distances: ["WH-2": 1])])
        let paths = rules.validate().map { String($0.prefix(while: { $0 != ":" })) }
        #expect(paths == ["sourcing.maxShipments", "locations[0].country", "locations[1].id", "locations[1]", "zones[0].distances.WH-2"])
    }

    // MARK: Decoding

    @Test func decodingFillsTheDefaultsOfMissingKeys() throws {
        let json = """
            {"locations": [{"id": "WH-1", "type": "third_party_logistics", "country": "US"}],
             "sourcing": {"backorderPolicy": "hold_order"},
             "payment": {"velocity": {"maxOrders": 3, "windowSeconds": 60}}}
            """
        let rules = try JSONDecoder().decode(BusinessRules.self, from: Data(json.utf8))
        #expect(rules.sourcing == SourcingRules(maxShipments: 2, maxReplans: 2, backorderPolicy: .holdOrder))
        #expect(rules.intake == IntakeRules())
        #expect(rules.payment == PaymentRules(velocity: VelocityRule(maxOrders: 3, windowSeconds: 60)))
        #expect(rules.locations == [StockLocation(id: "WH-1", type: .thirdPartyLogistics, country: "US")])
        #expect(rules.zones == [])
        #expect(rules.location("WH-1")?.type == .thirdPartyLogistics)
        #expect(rules.location("WH-2") == nil)

        let empty = try JSONDecoder().decode(BusinessRules.self, from: Data("{}".utf8))
        #expect(empty == BusinessRules())
        #expect(throws: (any Error).self) { try JSONDecoder().decode(BusinessRules.self, from: Data(#"{"sourcing": {"backorderPolicy": "later"}}"#.utf8)) }
    }

    // MARK: distance

    @Test func zoneDistancesAndTheLongestPostalPrefixDecide() {
        let near = Self.location("WH-1")
        let rules = BusinessRules(
            locations: [near],
            zones: [
                Zone(country: "US", distances: ["WH-1": 100]), Zone(country: "US", postalPrefix: "9", distances: ["WH-1": 90]),
                Zone(country: "US", postalPrefix: "94", distances: ["WH-1": 94]), Zone(country: "GB", postalPrefix: "bt", distances: ["WH-1": 7]),
            ])
        #expect(rules.distance(to: near, country: "US", postalCode: "10001") == 100)
        #expect(rules.distance(to: near, country: "US", postalCode: nil) == 100)
        #expect(rules.distance(to: near, country: "US", postalCode: "90210") == 90)
        #expect(rules.distance(to: near, country: "US", postalCode: "94105") == 94)
        #expect(rules.distance(to: near, country: "GB", postalCode: "bt9 1aa") == 7, "prefixes compare without case")
        #expect(rules.distance(to: near, country: "GB", postalCode: "SW1A 1AA") == 20_000, "no GB zone matches, and WH-1 is in another country")
    }

    @Test func greatCircleDistanceFromTheZoneCentre() throws {
        let equator = Self.location("EQ", latitude: 0, longitude: 1)
        let rules = BusinessRules(locations: [equator], zones: [Zone(country: "US", latitude: 0, longitude: 0)])
        let km = rules.distance(to: equator, country: "US", postalCode: "10001")
        #expect(abs(km - 111.195) < 0.01, "one degree of longitude at the equator: \(km)")

        let shipped = Self.shipped
        let east = try #require(shipped.location("WH-EAST"))
        let west = try #require(shipped.location("WH-WEST"))
        let eu = try #require(shipped.location("WH-EU"))
        #expect(shipped.distance(to: east, country: "US", postalCode: "10001") < shipped.distance(to: west, country: "US", postalCode: "10001"))
        #expect(shipped.distance(to: west, country: "US", postalCode: "94105") < shipped.distance(to: east, country: "US", postalCode: "94105"))
        #expect(shipped.distance(to: eu, country: "GB", postalCode: "SW1A 1AA") == 900)
    }

    @Test func withoutAZoneInCountryLocationsStillWin() {
        let us = Self.location("US-1")
        let de = Self.location("DE-1", country: "DE")
        let rules = BusinessRules(locations: [us, de], zones: [Zone(country: "US", distances: ["DE-1": 9_000])])
        #expect(rules.distance(to: de, country: "DE", postalCode: "20095") == 5_000)
        #expect(rules.distance(to: us, country: "DE", postalCode: "20095") == 20_000)
        #expect(rules.distance(to: us, country: "US", postalCode: "10001") == 5_000, "a zone without this location's distance falls back")
        #expect(rules.distance(to: de, country: "US", postalCode: "10001") == 9_000)
        #expect(rules.distance(to: us, country: nil, postalCode: nil) == 20_000)
    }

    // MARK: Fulfilment sections (shipping, returns, notifications, sla)

    @Test func fulfilmentDefaultsValidateClean() {
        let rules = BusinessRules(shipping: ShippingRules(), returns: ReturnRules(), notifications: NotificationRules(), sla: SLARules())
        #expect(rules.validate() == [])
        #expect(ShippingRules().rates == ShippingRules.defaultRates)
        #expect(SLARules().rules.map(\.name) == ["placed_not_checked", "held_not_reviewed", "approved_not_allocated", "allocated_not_shipped"])
    }

    @Test func shippingProblemsNameTheirKey() {
        var shipping = ShippingRules()
        shipping.rates = [
            CarrierRate(carrier: "ups", service: "ground", serviceLevel: .standard, maxWeightGrams: 0, price: 100, transitDays: 3),
            CarrierRate(carrier: "a/b", service: "", serviceLevel: .standard, zones: ["local", "moon"], maxWeightGrams: 10, price: -1, transitDays: -1),
        ]
        shipping.zoneBands = [ZoneBand(name: "local", maxKm: 0)]
        shipping.promiseDays = ["standard": -1, "warp": 1]
        shipping.trackingWindowDays = 0
        #expect(BusinessRules(shipping: shipping).validate() == [
            "shipping.rates[0].maxWeightGrams: must be at least 1",
            "shipping.rates[1].carrier: must be a non-empty code without '/'",
            "shipping.rates[1].service: must not be empty",
            "shipping.rates[1].price: must not be negative",
            "shipping.rates[1].transitDays: must not be negative",
            "shipping.rates[1].zones: 'moon' is neither a zone band nor 'international'",
            "shipping.zoneBands[0].maxKm: must be positive",
            "shipping.promiseDays.standard: must not be negative",
            "shipping.promiseDays.warp: not a service level (standard, expedited, next_day, same_day)",
            "shipping.trackingWindowDays: must be at least 1",
        ])
        #expect(BusinessRules(shipping: ShippingRules(rates: [])).validate() == ["shipping.rates: name at least one rate"])
        // 'international' is always a zone.
        let abroad = CarrierRate(carrier: "dhl", service: "world", serviceLevel: .expedited, zones: ["international"], maxWeightGrams: 1, price: 0, transitDays: 0)
        #expect(BusinessRules(shipping: ShippingRules(rates: [abroad])).validate() == [])
    }

    @Test func returnsProblemsNameTheirKey() {
        let locations = [Self.location("WH-1")]
        #expect(BusinessRules(locations: locations, returns: ReturnRules(receivingLocation: "WH-1")).validate() == [])
        #expect(BusinessRules(locations: locations, returns: ReturnRules(receivingLocation: "WH-9")).validate() == ["returns.receivingLocation: no such location 'WH-9'"])
        let bad = ReturnRules(windowDays: -1, channelWindowDays: ["web": 10, "amazon": -2], carrier: "", rmaValidDays: 0, checkIntervalSeconds: 0)
        #expect(BusinessRules(returns: bad).validate() == [
            "returns.windowDays: must not be negative",
            "returns.channelWindowDays.amazon: must not be negative",
            "returns.carrier: must be a non-empty code without '/'",
            "returns.rmaValidDays: must be at least 1",
            "returns.checkIntervalSeconds: must be at least 1",
        ])
        #expect(bad.window(channel: "web") == 10)
        #expect(bad.window(channel: "pos") == -1, "other channels take windowDays")
        #expect(bad.window(channel: nil) == -1)
    }

    @Test func notificationProblemsNameTheirKey() {
        let bad = NotificationRules(reviewInvitationDelaySeconds: -1, trackingURL: "https://track.example/{carrier}", checkIntervalSeconds: 0)
        #expect(BusinessRules(notifications: bad).validate() == [
            "notifications.reviewInvitationDelaySeconds: must not be negative",
            "notifications.trackingURL: must contain {trackingNumber}",
            "notifications.checkIntervalSeconds: must be at least 1",
        ])
        #expect(BusinessRules(notifications: NotificationRules(reviewInvitationDelaySeconds: nil)).validate() == [])
        #expect(NotificationRules().trackingLink(carrier: "ups", trackingNumber: "1Z9") == "https://track.orderfleet.example/ups/1Z9")
    }

    @Test func slaProblemsNameTheirKey() {
        let sla = SLARules(
            rules: [
                SLARule(name: "fine", status: .placed, maxSeconds: 60),
                SLARule(name: "both", status: .held, maxSeconds: 60, shipBySecondsBeforePromise: 60),
                SLARule(name: "", status: .approved),
                SLARule(name: "fine", status: .allocated, maxSeconds: 0),
            ],
            checkIntervalSeconds: 0)
        #expect(BusinessRules(sla: sla).validate() == [
            "sla.rules[1]: give exactly one of maxSeconds and shipBySecondsBeforePromise",
            "sla.rules[2].name: must not be empty",
            "sla.rules[2]: give exactly one of maxSeconds and shipBySecondsBeforePromise",
            "sla.rules[3].name: 'fine' is defined twice",
            "sla.rules[3].maxSeconds: must be at least 1",
            "sla.checkIntervalSeconds: must be at least 1",
        ])
    }

    @Test func fulfilmentSectionsDecodeWithDefaults() throws {
        let json = """
            {"shipping": {"rates": [{"carrier": "ups", "service": "ground", "serviceLevel": "standard", "maxWeightGrams": 1000, "price": 500, "transitDays": 3}],
                          "trackingWindowDays": 60},
             "returns": {"windowDays": 14, "checkIntervalSeconds": 10},
             "notifications": {"reviewInvitationDelaySeconds": null},
             "sla": {"rules": [{"name": "held", "status": "held", "maxSeconds": 60}]}}
            """
        let rules = try JSONDecoder().decode(BusinessRules.self, from: Data(json.utf8))
        #expect(rules.shipping.rates == [CarrierRate(carrier: "ups", service: "ground", serviceLevel: .standard, maxWeightGrams: 1_000, price: 500, transitDays: 3)])
        #expect(rules.shipping.rates.first?.hazmat == false, "hazmat defaults to false")
        #expect(rules.shipping.trackingWindowDays == 60)
        #expect(rules.shipping.zoneBands == ShippingRules.defaultBands)
        #expect(rules.shipping.promiseDays == ShippingRules().promiseDays)
        #expect(rules.returns == ReturnRules(windowDays: 14, checkIntervalSeconds: 10))
        #expect(ReturnsStage(rules: rules).tickInterval == .seconds(10), "the returns stage looks for expired RMAs that often")
        #expect(ReturnsStage(rules: BusinessRules()).tickInterval == .seconds(60), "a minute unless set")
        #expect(rules.notifications.reviewInvitationDelaySeconds == nil, "an explicit null switches the invitation off")
        #expect(rules.notifications.trackingURL == NotificationRules().trackingURL)
        #expect(rules.sla.rules == [SLARule(name: "held", status: .held, maxSeconds: 60, severity: .warning)])
        #expect(rules.sla.checkIntervalSeconds == 5)
        #expect(rules.validate() == [])

        let empty = try JSONDecoder().decode(BusinessRules.self, from: Data(#"{"notifications": {}}"#.utf8))
        #expect(empty.notifications.reviewInvitationDelaySeconds == 7 * 86_400, "a missing key keeps the default")
    }

    @Test func parcelZoneByCountryAndDistanceBand() {
        let shipping = ShippingRules()
        let us = Self.location("WH-1")
        #expect(shipping.zone(from: us, country: "US", distanceKm: 300) == "local", "a band includes its limit")
        #expect(shipping.zone(from: us, country: "US", distanceKm: 301) == "regional")
        #expect(shipping.zone(from: us, country: "US", distanceKm: 9_999) == "national", "beyond every band: the last")
        #expect(shipping.zone(from: us, country: "CA", distanceKm: 10) == "international")
        #expect(shipping.zone(from: nil, country: "CA", distanceKm: 10) == "local", "an unknown location is not abroad")
        let unsorted = ShippingRules(zoneBands: [ZoneBand(name: "far", maxKm: 2_000), ZoneBand(name: "near", maxKm: 100)])
        #expect(unsorted.zone(from: us, country: "US", distanceKm: 50) == "near", "bands are matched nearest first, whatever the file's order")
    }

    @Test func zoneBandsAndSLAStatusesAreChecked() {
        let bands = ShippingRules(zoneBands: [ZoneBand(name: "a", maxKm: 10), ZoneBand(name: "a", maxKm: 20), ZoneBand(name: "international", maxKm: 30)])
        #expect(BusinessRules(shipping: bands).validate() == [
            "shipping.zoneBands[1].name: 'a' is reserved or defined twice",
            "shipping.zoneBands[2].name: 'international' is reserved or defined twice",
        ])
        #expect(BusinessRules(shipping: ShippingRules(zoneBands: [])).validate() == ["shipping.zoneBands: name at least one band"])
        let sla = SLARules(rules: [
            SLARule(name: "done", status: .delivered, maxSeconds: 60),
            SLARule(name: "early", status: .allocated, shipBySecondsBeforePromise: -1),
        ])
        #expect(BusinessRules(sla: sla).validate() == [
            "sla.rules[0].status: 'delivered' is final; SLA watch stops following an order there",
            "sla.rules[1].shipBySecondsBeforePromise: must not be negative",
        ])
    }
}

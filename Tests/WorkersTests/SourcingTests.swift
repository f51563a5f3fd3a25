import Contracts
import Foundation
import Testing
import Workers

private typealias F = PipelineFixtures

/// `SourcingPlanner.plan`: the whole order from one location before any split, the
/// nearest of those that can ship it all; splits by most units (then nearest) within
/// `maxShipments`, leaving the rest missing; a SKU on several lines shares one stock;
/// stores only for ship-from-store SKUs; drop-ship SKUs only at their supplier, whole
/// line or nothing, outside the shipment limit; pick-up orders only at their store; a
/// line never planned again where it holds a reservation; held locations count toward
/// the limit and are preferred.
@Suite struct SourcingTests {
    static let locations = [
        StockLocation(id: "WH-NEAR", type: .warehouse, country: "US"),
        StockLocation(id: "WH-MID", type: .warehouse, country: "US"),
        StockLocation(id: "3PL-FAR", type: .thirdPartyLogistics, country: "US"),
        StockLocation(id: "STORE-1", type: .store, country: "US"),
        StockLocation(id: "STORE-2", type: .store, country: "US"),
        StockLocation(id: "SUP-1", type: .dropShip, country: "US"),
    ]
    /// Stores and the supplier are nearest, so every test shows they are only used when allowed.
    static let zone = Zone(country: "US", distances: ["STORE-1": 1, "STORE-2": 2, "SUP-1": 3, "WH-NEAR": 10, "WH-MID": 50, "3PL-FAR": 100])

    static func rules(maxShipments: Int = 2, zones: [Zone] = [zone]) -> BusinessRules {
        BusinessRules(sourcing: SourcingRules(maxShipments: maxShipments), locations: locations, zones: zones)
    }

    let products: [String: CatalogProduct] = [
        "SKU-A": F.product("SKU-A"),
        "SKU-B": F.product("SKU-B"),
        "SKU-S": F.product("SKU-S", shipFromStore: true),
        "SKU-D": F.product("SKU-D", dropShipSupplier: "SUP-1"),
        "SKU-X": F.product("SKU-X", dropShipSupplier: "WH-NEAR"),
    ]

    func line(_ id: String, _ sku: String, _ quantity: Int) -> ShipmentLine {
        ShipmentLine(lineId: id, sku: sku, quantity: quantity)
    }

    func alloc(_ id: String, _ sku: String, _ location: String, _ quantity: Int) -> LineAllocation {
        LineAllocation(lineId: id, sku: sku, location: location, quantity: quantity)
    }

    func missing(_ id: String, _ sku: String, _ quantity: Int) -> BackorderedLine {
        BackorderedLine(lineId: id, sku: sku, quantity: quantity)
    }

    func plan(
        _ demand: [ShipmentLine], held: [LineAllocation] = [], stock: [String: [String: Int]], rules: BusinessRules = rules(),
        pickup: String? = nil, postalCode: String? = "11201"
    ) -> SourcingPlanner.Plan {
        SourcingPlanner.plan(
            SourcingPlanner.Request(demand: demand, held: held, country: "US", postalCode: postalCode, pickupLocation: pickup), rules: rules,
            available: { sku, location in stock[sku]?[location] ?? 0 }, product: { products[$0] })
    }

    // MARK: One location or a split

    @Test func wholeOrderFromOneLocationIsPreferredOverANearerSplit() {
        let result = plan(
            [line("1", "SKU-A", 2), line("2", "SKU-B", 1)],
            stock: ["SKU-A": ["WH-NEAR": 2, "WH-MID": 5], "SKU-B": ["WH-MID": 1, "3PL-FAR": 9]])
        #expect(result.allocations == [alloc("1", "SKU-A", "WH-MID", 2), alloc("2", "SKU-B", "WH-MID", 1)])
        #expect(result.missing == [])
    }

    @Test func nearestOfTheLocationsThatCanShipEverythingIsChosen() {
        let everywhere: [String: [String: Int]] = ["SKU-A": ["WH-NEAR": 5, "WH-MID": 5, "3PL-FAR": 5]]
        #expect(plan([line("1", "SKU-A", 3)], stock: everywhere).allocations == [alloc("1", "SKU-A", "WH-NEAR", 3)])

        let reversed = Zone(country: "US", distances: ["WH-NEAR": 300, "WH-MID": 200, "3PL-FAR": 100])
        #expect(plan([line("1", "SKU-A", 3)], stock: everywhere, rules: Self.rules(zones: [reversed])).allocations == [alloc("1", "SKU-A", "3PL-FAR", 3)])

        // The longest matching postal prefix gives the distances.
        let west = Zone(country: "US", postalPrefix: "9", distances: ["WH-NEAR": 900, "WH-MID": 20, "3PL-FAR": 400])
        let rules = Self.rules(zones: [Self.zone, west])
        #expect(plan([line("1", "SKU-A", 3)], stock: everywhere, rules: rules, postalCode: "94105").allocations == [alloc("1", "SKU-A", "WH-MID", 3)])
        #expect(plan([line("1", "SKU-A", 3)], stock: everywhere, rules: rules, postalCode: "11201").allocations == [alloc("1", "SKU-A", "WH-NEAR", 3)])
    }

    @Test func splitTakesTheLocationGivingMostUnitsThenTheNearest() {
        let result = plan([line("1", "SKU-A", 5)], stock: ["SKU-A": ["WH-NEAR": 3, "WH-MID": 1, "3PL-FAR": 4]])
        #expect(result.allocations == [alloc("1", "SKU-A", "3PL-FAR", 4), alloc("1", "SKU-A", "WH-NEAR", 1)])
        #expect(result.missing == [])
    }

    @Test func splitSourcesEachLineWhereItsStockIs() {
        let result = plan(
            [line("1", "SKU-A", 2), line("2", "SKU-B", 3)],
            stock: ["SKU-A": ["WH-NEAR": 2], "SKU-B": ["WH-MID": 3]])
        // Most units first: WH-MID's three, then WH-NEAR's two.
        #expect(result.allocations == [alloc("2", "SKU-B", "WH-MID", 3), alloc("1", "SKU-A", "WH-NEAR", 2)])
        #expect(result.missing == [])
    }

    @Test func shipmentLimitLeavesTheRestMissing() {
        let stock: [String: [String: Int]] = ["SKU-A": ["WH-NEAR": 2, "WH-MID": 2, "3PL-FAR": 2]]
        let two = plan([line("1", "SKU-A", 6)], stock: stock)
        #expect(two.allocations == [alloc("1", "SKU-A", "WH-NEAR", 2), alloc("1", "SKU-A", "WH-MID", 2)])
        #expect(two.missing == [missing("1", "SKU-A", 2)])

        let three = plan([line("1", "SKU-A", 6)], stock: stock, rules: Self.rules(maxShipments: 3))
        #expect(three.allocations.map(\.location) == ["WH-NEAR", "WH-MID", "3PL-FAR"])
        #expect(three.missing == [])

        let one = plan([line("1", "SKU-A", 6)], stock: stock, rules: Self.rules(maxShipments: 1))
        #expect(one.allocations == [alloc("1", "SKU-A", "WH-NEAR", 2)])
        #expect(one.missing == [missing("1", "SKU-A", 4)])
    }

    @Test func nothingAnywhereIsAllMissing() {
        let result = plan([line("1", "SKU-A", 2), line("2", "SKU-B", 1)], stock: [:])
        #expect(result.allocations == [])
        #expect(result.missing == [missing("1", "SKU-A", 2), missing("2", "SKU-B", 1)])
    }

    @Test func linesWithNothingToSourceAreSkipped() {
        let result = plan([line("1", "SKU-A", 0), line("2", "SKU-A", 1)], stock: ["SKU-A": ["WH-NEAR": 1]])
        #expect(result.allocations == [alloc("2", "SKU-A", "WH-NEAR", 1)])
        #expect(result.missing == [])
    }

    @Test func aSkuOnTwoLinesSharesOneStock() {
        let demand = [line("1", "SKU-A", 2), line("2", "SKU-A", 2)]
        // WH-NEAR has 3: enough for either line, not for both.
        let single = plan(demand, stock: ["SKU-A": ["WH-NEAR": 3, "WH-MID": 4]])
        #expect(single.allocations == [alloc("1", "SKU-A", "WH-MID", 2), alloc("2", "SKU-A", "WH-MID", 2)])

        let short = plan(demand, stock: ["SKU-A": ["WH-NEAR": 3]])
        #expect(short.allocations == [alloc("1", "SKU-A", "WH-NEAR", 2), alloc("2", "SKU-A", "WH-NEAR", 1)])
        #expect(short.missing == [missing("2", "SKU-A", 1)])
    }

    // MARK: Location kinds

    @Test func storesShipOnlySkusFlaggedShipFromStore() {
        let stock: [String: [String: Int]] = ["SKU-S": ["STORE-1": 5, "WH-NEAR": 5], "SKU-A": ["STORE-1": 5]]
        #expect(plan([line("1", "SKU-S", 2)], stock: stock).allocations == [alloc("1", "SKU-S", "STORE-1", 2)])
        let unflagged = plan([line("1", "SKU-A", 2)], stock: stock)
        #expect(unflagged.allocations == [])
        #expect(unflagged.missing == [missing("1", "SKU-A", 2)])
        // A SKU unknown to the catalog is not flagged either.
        let unknown = plan([line("1", "SKU-Q", 1)], stock: ["SKU-Q": ["STORE-1": 1, "WH-MID": 1]])
        #expect(unknown.allocations == [alloc("1", "SKU-Q", "WH-MID", 1)])
    }

    @Test func dropShipSkuComesWholeFromItsSupplierOrNotAtAll() {
        let enough = plan([line("1", "SKU-D", 5)], stock: ["SKU-D": ["SUP-1": 5, "WH-NEAR": 50]])
        #expect(enough.allocations == [alloc("1", "SKU-D", "SUP-1", 5)])

        let short = plan([line("1", "SKU-D", 5)], stock: ["SKU-D": ["SUP-1": 4, "WH-NEAR": 50]])
        #expect(short.allocations == [], "never split, never from a warehouse")
        #expect(short.missing == [missing("1", "SKU-D", 5)])

        // A supplier that is not a drop-ship location sources nothing.
        let misconfigured = plan([line("1", "SKU-X", 1)], stock: ["SKU-X": ["WH-NEAR": 5]])
        #expect(misconfigured.allocations == [])
        #expect(misconfigured.missing == [missing("1", "SKU-X", 1)])
    }

    @Test func dropShipDoesNotCountTowardTheShipmentLimit() {
        let result = plan(
            [line("1", "SKU-D", 1), line("2", "SKU-A", 1)], stock: ["SKU-D": ["SUP-1": 1], "SKU-A": ["WH-MID": 1]],
            rules: Self.rules(maxShipments: 1))
        #expect(result.allocations == [alloc("1", "SKU-D", "SUP-1", 1), alloc("2", "SKU-A", "WH-MID", 1)])
        #expect(result.missing == [])

        let heldAtSupplier = plan(
            [line("2", "SKU-A", 1)], held: [alloc("1", "SKU-D", "SUP-1", 1)], stock: ["SKU-A": ["WH-MID": 1]],
            rules: Self.rules(maxShipments: 1))
        #expect(heldAtSupplier.allocations == [alloc("2", "SKU-A", "WH-MID", 1)])
    }

    @Test func pickUpOrderIsSourcedOnlyAtItsStore() {
        let stock: [String: [String: Int]] = ["SKU-A": ["STORE-2": 2, "STORE-1": 9, "WH-NEAR": 9], "SKU-D": ["STORE-2": 1, "SUP-1": 9]]
        let result = plan([line("1", "SKU-A", 2), line("2", "SKU-D", 1)], stock: stock, pickup: "STORE-2")
        #expect(result.allocations == [alloc("1", "SKU-A", "STORE-2", 2), alloc("2", "SKU-D", "STORE-2", 1)],
            "no ship-from-store flag is needed to pick up, and drop-ship SKUs too come from the store")

        let short = plan([line("1", "SKU-A", 3)], stock: stock, pickup: "STORE-2")
        #expect(short.allocations == [])
        #expect(short.missing == [missing("1", "SKU-A", 3)], "whole line at the store or missing")

        let notAStore = plan([line("1", "SKU-A", 1)], stock: stock, pickup: "WH-NEAR")
        #expect(notAStore.allocations == [])
        #expect(notAStore.missing == [missing("1", "SKU-A", 1)])
    }

    // MARK: Held reservations

    @Test func aLineIsNeverPlannedAgainWhereItHoldsAReservation() {
        let held = [alloc("1", "SKU-A", "WH-NEAR", 2)]
        let elsewhere = plan([line("1", "SKU-A", 3)], held: held, stock: ["SKU-A": ["WH-NEAR": 10, "WH-MID": 3]])
        #expect(elsewhere.allocations == [alloc("1", "SKU-A", "WH-MID", 3)])

        let nowhere = plan([line("1", "SKU-A", 3)], held: held, stock: ["SKU-A": ["WH-NEAR": 10]])
        #expect(nowhere.allocations == [])
        #expect(nowhere.missing == [missing("1", "SKU-A", 3)])

        // Another line may still use that location.
        let other = plan([line("2", "SKU-A", 3)], held: held, stock: ["SKU-A": ["WH-NEAR": 10, "WH-MID": 3]])
        #expect(other.allocations == [alloc("2", "SKU-A", "WH-NEAR", 3)])
    }

    @Test func heldLocationsArePreferredEvenWhenFarther() {
        let held = [alloc("1", "SKU-A", "3PL-FAR", 1)]
        let result = plan([line("2", "SKU-B", 1)], held: held, stock: ["SKU-B": ["WH-NEAR": 5, "3PL-FAR": 5]])
        #expect(result.allocations == [alloc("2", "SKU-B", "3PL-FAR", 1)])

        // In a split too, a location already shipping goes first.
        let split = plan([line("2", "SKU-B", 4)], held: held, stock: ["SKU-B": ["WH-NEAR": 3, "3PL-FAR": 1]])
        #expect(split.allocations == [alloc("2", "SKU-B", "3PL-FAR", 1), alloc("2", "SKU-B", "WH-NEAR", 3)])
    }

    @Test func heldLocationsCountTowardTheShipmentLimit() {
        let held = [alloc("1", "SKU-A", "WH-NEAR", 1), alloc("2", "SKU-B", "WH-MID", 1)]
        let result = plan([line("3", "SKU-A", 2)], held: held, stock: ["SKU-A": ["WH-NEAR": 1, "WH-MID": 1, "3PL-FAR": 9]])
        #expect(result.allocations == [alloc("3", "SKU-A", "WH-NEAR", 1), alloc("3", "SKU-A", "WH-MID", 1)], "no third location")
        #expect(result.missing == [])

        let limitOne = plan([line("2", "SKU-B", 1)], held: [alloc("1", "SKU-A", "WH-MID", 1)], stock: ["SKU-B": ["WH-NEAR": 9]], rules: Self.rules(maxShipments: 1))
        #expect(limitOne.allocations == [])
        #expect(limitOne.missing == [missing("2", "SKU-B", 1)])
    }
}

import Contracts
import Foundation

/// Decides where an order's units come from, as a pure function of the order, the
/// locations and a snapshot of availability.
///
/// Rules, in order:
/// - a buy-online-pick-up-in-store order is sourced only at its store;
/// - a drop-ship SKU only at its supplier, whole line or nothing (never split);
/// - other lines from warehouses and 3PLs, and from stores for SKUs flagged ship-from-store;
/// - the whole rest of the order from one location if one can ship it all (a location
///   the order already holds stock at first, then the nearest);
/// - else split greedily (most units first, then nearest) over at most
///   `maxShipments` locations, counting those the order already holds stock at;
/// - a line is never planned again at a location where it already holds a
///   reservation (inventory treats reserve as idempotent per order, line and location).
public enum SourcingPlanner {
    /// What to source.
    public struct Request: Sendable, Hashable {
        /// Units still needed per line.
        public var demand: [ShipmentLine]
        /// Reservations the order already holds (or awaits).
        public var held: [LineAllocation]
        /// Ship-to country.
        public var country: String?
        /// Ship-to postal code.
        public var postalCode: String?
        /// The pick-up store, for buy-online-pick-up-in-store.
        public var pickupLocation: String?

        /// Creates a request.
        public init(demand: [ShipmentLine], held: [LineAllocation] = [], country: String?, postalCode: String? = nil, pickupLocation: String? = nil) {
            self.demand = demand
            self.held = held
            self.country = country
            self.postalCode = postalCode
            self.pickupLocation = pickupLocation
        }
    }

    /// A plan: the reservations to ask for and the units no location can give.
    public struct Plan: Sendable, Hashable {
        /// New reservations, in line order.
        public var allocations: [LineAllocation]
        /// Units not sourced.
        public var missing: [BackorderedLine]
    }

    /// Plans `request`; `available(sku, location)` is the snapshot's free stock.
    public static func plan(
        _ request: Request, rules: BusinessRules, available: (String, String) -> Int, product: (String) -> CatalogProduct?
    ) -> Plan {
        var free: [String: Int] = [:]
        func freeUnits(_ sku: String, _ location: String) -> Int {
            let key = "\(sku)\u{0}\(location)"
            if let known = free[key] { return known }
            let units = max(0, available(sku, location))
            free[key] = units
            return units
        }
        func take(_ sku: String, _ location: String, _ units: Int) {
            free["\(sku)\u{0}\(location)"] = freeUnits(sku, location) - units
        }
        let heldPairs = Set(request.held.map { "\($0.lineId)\u{0}\($0.location)" })
        func distance(_ location: StockLocation) -> Double {
            rules.distance(to: location, country: request.country, postalCode: request.postalCode)
        }

        var allocations: [LineAllocation] = []
        var missing: [BackorderedLine] = []
        var flexible: [(line: ShipmentLine, locations: [StockLocation])] = []

        for line in request.demand where line.quantity > 0 {
            let item = product(line.sku)
            var forced: String?
            if let pickup = request.pickupLocation {
                forced = rules.location(pickup)?.type == .store ? pickup : ""
            } else if let supplier = item?.dropShipSupplier {
                forced = rules.location(supplier)?.type == .dropShip ? supplier : ""
            }
            if let forced {
                // Whole line from the one allowed location, or not at all.
                if !forced.isEmpty, !heldPairs.contains("\(line.lineId)\u{0}\(forced)"), freeUnits(line.sku, forced) >= line.quantity {
                    take(line.sku, forced, line.quantity)
                    allocations.append(LineAllocation(lineId: line.lineId, sku: line.sku, location: forced, quantity: line.quantity))
                } else {
                    missing.append(BackorderedLine(lineId: line.lineId, sku: line.sku, quantity: line.quantity))
                }
                continue
            }
            let eligible = rules.locations.filter { location in
                !heldPairs.contains("\(line.lineId)\u{0}\(location.id)") && mayShip(from: location, product: item)
            }
            flexible.append((line, eligible))
        }

        let forcedLocations = Set(rules.locations.filter { $0.type == .dropShip }.map(\.id))
        var used = Set(request.held.map(\.location)).subtracting(forcedLocations)
        if request.pickupLocation != nil { used.formUnion(allocations.map(\.location)) }
        let candidates = rules.locations
            .filter { candidate in flexible.contains { $0.locations.contains(candidate) } }
            .sorted { (used.contains($0.id) ? 0 : 1, distance($0), $0.id) < (used.contains($1.id) ? 0 : 1, distance($1), $1.id) }

        // One location for everything that is left, if one can.
        if !flexible.isEmpty {
            let single = candidates.first { candidate in
                guard used.contains(candidate.id) || used.count < rules.sourcing.maxShipments else { return false }
                var need: [String: Int] = [:]
                for entry in flexible {
                    guard entry.locations.contains(candidate) else { return false }
                    need[entry.line.sku, default: 0] += entry.line.quantity
                }
                return need.allSatisfy { freeUnits($0.key, candidate.id) >= $0.value }
            }
            if let single {
                for entry in flexible {
                    take(entry.line.sku, single.id, entry.line.quantity)
                    allocations.append(LineAllocation(lineId: entry.line.lineId, sku: entry.line.sku, location: single.id, quantity: entry.line.quantity))
                }
                return Plan(allocations: allocations, missing: missing)
            }
        }

        // Split: the location that gives the most of what is left, until the limit.
        var need = flexible.map(\.line.quantity)
        while need.contains(where: { $0 > 0 }) {
            // A location the order already ships from costs no shipment, so it goes first;
            // then most units; candidates are sorted nearest first, so ties keep the nearer.
            var best: (location: StockLocation, rank: (Int, Int))?
            for candidate in candidates where used.contains(candidate.id) || used.count < rules.sourcing.maxShipments {
                var units = 0
                var skuLeft: [String: Int] = [:]
                for (index, entry) in flexible.enumerated() where need[index] > 0 && entry.locations.contains(candidate) {
                    let left = skuLeft[entry.line.sku] ?? freeUnits(entry.line.sku, candidate.id)
                    let give = min(left, need[index])
                    skuLeft[entry.line.sku] = left - give
                    units += give
                }
                guard units > 0 else { continue }
                let rank = (used.contains(candidate.id) ? 1 : 0, units)
                if let current = best, current.rank >= rank { continue }
                best = (candidate, rank)
            }
            guard let chosen = best?.location else { break }
            used.insert(chosen.id)
            for (index, entry) in flexible.enumerated() where need[index] > 0 && entry.locations.contains(chosen) {
                let give = min(freeUnits(entry.line.sku, chosen.id), need[index])
                guard give > 0 else { continue }
                take(entry.line.sku, chosen.id, give)
                need[index] -= give
                allocations.append(LineAllocation(lineId: entry.line.lineId, sku: entry.line.sku, location: chosen.id, quantity: give))
            }
        }
        for (index, entry) in flexible.enumerated() where need[index] > 0 {
            missing.append(BackorderedLine(lineId: entry.line.lineId, sku: entry.line.sku, quantity: need[index]))
        }
        return Plan(allocations: allocations, missing: missing)
    }

    /// Whether a line of `product` may ship from `location` when nothing forces it
    /// elsewhere: warehouses and 3PLs always, stores for ship-from-store SKUs, drop-ship
    /// suppliers never (their SKUs are forced to them).
    static func mayShip(from location: StockLocation, product: CatalogProduct?) -> Bool {
        switch location.type {
        case .warehouse, .thirdPartyLogistics: true
        case .store: product?.shipFromStore == true
        case .dropShip: false
        }
    }
}

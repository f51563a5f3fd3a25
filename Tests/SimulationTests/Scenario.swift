import Contracts
import Foundation
import StageMachine
import Workers

/// The order-to-allocation race (the kill test's, in simulation): inventory and
/// allocation with two instances each, scarce stock in three locations, orders whose
/// payment and placement arrive in any order, and a couple of poison inputs.
enum Scenario {
    static let skus = ["S0", "S1", "S2", "S3"]
    static let locations = ["A", "B", "C"]

    /// Runs one seed and returns what is wrong with it (empty: every property holds).
    static func run(seed: UInt64, strategy: any DeliveryStrategy, orders count: Int = 10, checksPollInterval: Bool = true) -> [String] {
        let world = World(seed: seed, strategy: strategy)
        world.checksPollInterval = checksPollInterval
        world.addStage(InventoryStage())
        world.addStage(AllocationStage(rules: World.rules))
        for (index, sku) in skus.enumerated() {
            for (slot, location) in locations.enumerated() {
                let onHand = (index * 3 + slot * 2 + Int(seed % 3)) % 6
                let command = AdjustInventory(
                    sku: sku, location: location, mode: .absolute, quantity: onHand, source: "sim", sourceSequence: 1, safetyStock: slot == 2 ? 1 : 0)
                world.publish(command.event, id: "stock-\(sku)-\(location)")
            }
        }
        var events: [(Event, String)] = []
        for index in 0..<count {
            let lines = (0..<Int.random(in: 1...2, using: &world.random)).map { line in
                OrderLine(
                    lineId: "\(line + 1)", sku: skus.randomElement(using: &world.random)!, quantity: Int.random(in: 1...3, using: &world.random),
                    unitPrice: Money(minorUnits: 1_000, currency: .usd), discount: Money(minorUnits: 0, currency: .usd),
                    tax: Money(minorUnits: 0, currency: .usd))
            }
            let order = OrderPlaced(order: canonical("o\(index)", lines: lines))
            world.orders.append(order)
            events.append((order.event, "placed-\(index)"))
            events.append((PaymentApproved(orderId: order.orderId, amount: order.totals.total, reasons: [], decidedAt: world.date).event, "paid-\(index)"))
        }
        events.shuffle(using: &world.random)
        for (event, id) in events { world.publish(event, id: id) }
        world.publishGarbage(topic: OrderPlaced.topic, key: "poison-1")
        world.publishGarbage(topic: ReserveInventory.topic, key: "poison-2")
        world.run(faultSteps: 1_500, maxSteps: 60_000)
        Trace.print(world)
        return world.problems + Properties.check(world)
    }

    static func canonical(_ id: String, lines: [OrderLine]) -> CanonicalOrder {
        let usd = CurrencyCode.usd
        let subtotal = lines.reduce(Int64(0)) { $0 + $1.unitPrice.minorUnits * Int64($1.quantity) }
        let zero = Money(minorUnits: 0, currency: usd)
        let address = Address(name: "Ada", lines: ["1 Main St"], city: "Brooklyn", region: "NY", postalCode: "11201", country: try! CountryCode("US"))
        return CanonicalOrder(
            channel: "web", externalOrderId: id, customer: Customer(id: "c-\(id)", email: "ada@example.com"), lines: lines,
            shipping: ShippingCharge(method: "Ground", amount: zero),
            totals: OrderTotals(subtotal: Money(minorUnits: subtotal, currency: usd), discount: zero, shipping: zero, tax: zero,
                total: Money(minorUnits: subtotal, currency: usd), taxIncluded: false),
            currency: usd, shippingAddress: address, billingAddress: nil,
            payment: PaymentAuthorization(status: .authorized, amount: Money(minorUnits: subtotal, currency: usd), reference: "psp"),
            placedAt: Date(timeIntervalSince1970: 1_772_360_000), serviceLevel: .standard, pickupLocation: nil)
    }
}

/// The properties every run must have, whatever crashed when.
enum Properties {
    static func check(_ world: World) -> [String] {
        checkOutputs(world, topics: [ReserveInventory.topic, InventoryResult.topic, OrderAllocated.topic, TopicCatalog.deadLetterTopic])
            + checkAllocation(world) + checkPoison(world) + checkChangelogs(world)
    }

    /// 1. One effect per input: an output id never carries two different contents;
    ///    exactly once, never appears twice.
    static func checkOutputs(_ world: World, topics outputTopics: [String]) -> [String] {
        var problems: [String] = []
        let exactlyOnce = world.strategy.usesTransactions
        for topic in outputTopics {
            var seen: [String: String] = [:]
            var counts: [String: Int] = [:]
            for record in world.broker.visible(topic) {
                let (id, print): (String, String)
                switch record.value {
                case .event(let envelope):
                    guard envelope.source.hasPrefix("oms/") else { continue }
                    (id, print) = (envelope.id, fingerprint(envelope.event))
                case .deadLetter(let input, _): (id, print) = (record.key ?? "", "\(input)")
                default: continue
                }
                counts[id, default: 0] += 1
                if let before = seen[id], before != print {
                    problems.append("\(topic): id \(id) carries two different contents: \(before) and \(print)")
                }
                seen[id] = print
            }
            if exactlyOnce, let (id, count) = counts.first(where: { $0.value > 1 }) {
                problems.append("exactly once: \(topic) holds id \(id) \(count) times")
            }
        }
        return problems
    }

    /// 2.–4. Orders decided once and final; no oversell; reservations counted once.
    static func checkAllocation(_ world: World) -> [String] {
        var problems: [String] = []
        let broker = world.broker
        let orderIds = Set(world.orders.map(\.orderId))

        // 2. Every order decided, each decision under one id; a later decision only when
        //    stock freed by others filled its backorder (more units than the one before);
        //    and it ends in a final state.
        var decisions: [String: [(id: String, print: String, units: Int)]] = [:]
        for record in broker.visible(OrderAllocated.topic) {
            guard case .event(let envelope) = record.value, !(decisions[envelope.subject]?.contains { $0.id == envelope.id } ?? false) else { continue }
            let units: Int = switch envelope.event {
            case .orderAllocated(let d): d.allocations.reduce(0) { $0 + $1.quantity }
            case .orderPartiallyAllocated(let d): d.allocations.reduce(0) { $0 + $1.quantity }
            default: 0
            }
            decisions[envelope.subject, default: []].append((envelope.id, fingerprint(envelope.event), units))
        }
        for order in orderIds.sorted() {
            let made = decisions[order] ?? []
            if made.isEmpty { problems.append("liveness: order \(order) never decided") }
            for (print, ids) in Dictionary(grouping: made, by: \.print) where ids.count > 1 {
                problems.append("order \(order) decided \(ids.count) times under different ids: \(print)")
            }
            for (before, after) in zip(made, made.dropFirst()) where after.units <= before.units {
                problems.append("order \(order) decided again without a filled backorder: \(before.print), then \(after.print)")
            }
        }
        let states = allocationStates(world)
        for order in orderIds.sorted() {
            guard let state = states[order] else {
                problems.append("liveness: order \(order) has no allocation state")
                continue
            }
            if ![.allocated, .partiallyAllocated, .backordered].contains(state.status) || !state.planned.isEmpty {
                problems.append("liveness: order \(order) left \(state.status) with \(state.planned.count) planned")
            }
        }

        // 3. No point of the levels history promised more than it had.
        for record in broker.history[InventoryLevel.topic] ?? [] {
            guard case .event(let envelope) = record.value, case .inventoryLevel(let level) = envelope.event else { continue }
            for stock in level.locations where stock.reserved > max(0, stock.onHand - stock.safetyStock) || stock.reserved < 0 {
                problems.append("oversold \(level.sku)@\(stock.location): reserved \(stock.reserved), on hand \(stock.onHand)")
            }
        }

        // 4. Each reservation counted once: levels = reservation records = what orders hold.
        var byLevels: [String: Int] = [:]
        var byRecords: [String: Int] = [:]
        for envelope in (broker.latest[InventoryLevel.topic] ?? [:]).values {
            switch envelope.event {
            case .inventoryLevel(let level):
                for stock in level.locations where stock.reserved != 0 { byLevels["\(level.sku)@\(stock.location)"] = stock.reserved }
            case .inventoryReservation(let reservation):
                byRecords["\(reservation.sku)@\(reservation.location)", default: 0] += reservation.quantity
            default: break
            }
        }
        var byOrders: [String: Int] = [:]
        for state in states.values { for held in state.reserved { byOrders["\(held.sku)@\(held.location)", default: 0] += held.quantity } }
        if byLevels != byRecords { problems.append("levels \(byLevels) but reservation records \(byRecords)") }
        if byLevels != byOrders { problems.append("levels \(byLevels) but orders hold \(byOrders)") }

        return problems
    }

    /// 5. One dead letter per poison input.
    static func checkPoison(_ world: World) -> [String] {
        var problems: [String] = []
        var letters: [RecordPosition: Set<String>] = [:]
        for record in world.broker.visible(TopicCatalog.deadLetterTopic) {
            if case .deadLetter(let input, _) = record.value { letters[input, default: []].insert(record.key ?? "") }
        }
        for position in world.poison where letters[position]?.count != 1 {
            problems.append("poison input \(position) has \(letters[position]?.count ?? 0) dead letters")
        }

        return problems
    }

    /// 6. State restored from the changelogs is the state in memory.
    static func checkChangelogs(_ world: World) -> [String] {
        var problems: [String] = []
        for session in world.sessions {
            if let problem = session.stateMatchesChangelog(world) { problems.append(problem) }
        }
        return problems
    }

    /// What a record means, without the times a replay may stamp differently.
    static func fingerprint(_ event: Event) -> String {
        switch event {
        case .reserveInventory(let c): "reserve \(c.orderId)/\(c.lineId) \(c.sku)@\(c.location) ×\(c.quantity)"
        case .releaseInventory(let c): "release \(c.orderId)/\(c.lineId) \(c.sku)@\(c.location) ×\(c.quantity)"
        case .commitInventory(let c): "commit \(c.orderId)/\(c.lineId) \(c.sku)@\(c.location) ×\(c.quantity)"
        case .inventoryResult(let r): "result \(r.orderId)/\(r.lineId) \(r.sku)@\(r.location) \(r.outcome) ×\(r.quantity)"
        case .orderAllocated(let d): "allocated \(d.orderId) \(d.allocations.map { "\($0.lineId)@\($0.location)×\($0.quantity)" })"
        case .orderPartiallyAllocated(let d):
            "partially \(d.orderId) \(d.allocations.map { "\($0.lineId)@\($0.location)×\($0.quantity)" }) \(d.backordered.map { "\($0.lineId)×\($0.quantity)" })"
        case .orderBackordered(let d): "backordered \(d.orderId) \(d.lines.map { "\($0.lineId)×\($0.quantity)" })"
        default: timeless(event)
        }
    }

    /// Each order's last allocation state.
    static func allocationStates(_ world: World) -> [String: AllocationState] {
        (world.broker.latest[AllocationState.topic] ?? [:]).compactMapValues { envelope in
            if case .allocationState(let state) = envelope.event { state } else { nil }
        }
    }

    /// An event as JSON with every time replaced.
    static func timeless(_ event: Event) -> String {
        let text = String(decoding: (try? EventCodec.encode(event.payload)) ?? [], as: UTF8.self)
        return text.replacingOccurrences(of: #""\d{4}-\d{2}-\d{2}T[0-9:.]+Z""#, with: "\"<time>\"", options: .regularExpression)
    }
}

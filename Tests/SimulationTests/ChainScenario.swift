import Contracts
import Foundation
import StageMachine
import Workers

/// The whole chain an order takes, in simulation: intake → payment and fraud → inventory ↔
/// allocation → shipping → view, two instances of each stage, from channel payloads
/// (one re-sent, one for a SKU the catalog lacks, one not JSON, one not an envelope) to shipments and order
/// views. Stock is ample, so where each order ships from does not depend on who came
/// first: the end state must be the same as a run of the same inputs without a fault.
enum ChainScenario {
    static let skus = ["S0", "S1", "S2"]

    static let rules = BusinessRules(
        sourcing: SourcingRules(maxShipments: 2, maxReplans: 2, backorderPolicy: .backorder),
        locations: [StockLocation(id: "A", type: .warehouse, country: "US"), StockLocation(id: "B", type: .warehouse, country: "US")])

    /// What each stage's state and each order's view end as, with the times a batch
    /// stamps taken out (they follow the clock, which no two runs share).
    struct EndState: Equatable {
        var views: [String: String]
        var changelogs: [String: [String: String]]
    }

    /// Runs one seed (with the world's faults, or none) and returns what is wrong with it
    /// and how it ended.
    static func run(seed: UInt64, strategy: any DeliveryStrategy, faults: Faults = Faults(), orders count: Int = 8) -> (problems: [String], end: EndState) {
        let world = World(seed: seed, strategy: strategy, faults: faults, tracked: [])
        world.addStage(IntakeStage(rules: rules.intake))
        world.addStage(PaymentStage(rules: rules.payment))
        world.addStage(FraudVelocityStage(rules: rules.payment))
        world.addStage(InventoryStage())
        world.addStage(AllocationStage(rules: rules))
        world.addStage(ShippingStage(rules: rules))
        world.addStage(OrderViewStage(rules: rules.notifications))
        for (index, sku) in skus.enumerated() {
            world.publish(CatalogProduct(
                sku: sku, title: sku, weightGrams: 400, dimensions: Dimensions(lengthMm: 10, widthMm: 10, heightMm: 10),
                blockedCountries: [], hazmat: false, prices: []).event, id: "catalog-\(sku)")
            // S0 and S1 only in A, S2 only in B: an order of both ships twice.
            let location = index < 2 ? "A" : "B"
            world.publish(AdjustInventory(sku: sku, location: location, mode: .absolute, quantity: 1_000, source: "sim", sourceSequence: 1).event,
                          id: "stock-\(sku)")
        }
        var inbound: [(Event, String)] = []
        var accepted: Set<String> = []
        for index in 0..<count {
            let lines = (0..<Int.random(in: 1...2, using: &world.random)).map { line in
                OrderLine(
                    lineId: "\(line + 1)", sku: index == 0 ? "NOPE" : skus.randomElement(using: &world.random)!, quantity: Int.random(in: 1...3, using: &world.random),
                    unitPrice: Money(minorUnits: 1_000, currency: .usd), discount: Money(minorUnits: 0, currency: .usd),
                    tax: Money(minorUnits: 0, currency: .usd))
            }
            let order = Scenario.canonical("chain-\(index)", lines: lines)
            let event = InboundChannelOrder(
                channel: order.channel, format: .canonical, externalOrderId: order.externalOrderId, payload: Data(try! EventCodec.encode(order)),
                receivedAt: world.date).event
            inbound.append((event, "inbound-\(index)"))
            // The channel re-sends one order under another delivery id.
            if index == 1 { inbound.append((event, "inbound-\(index)-again")) }
            if index != 0 { accepted.insert(DeterministicID.orderID(channel: order.channel, externalOrderID: order.externalOrderId)) }
        }
        inbound.shuffle(using: &world.random)
        // Catalog and stock settle before the first order: allocation plans from the
        // levels it has read, and one that has not read them yet would backorder. (The
        // orders are drawn first: the faults draw from the same generator.)
        world.run(faultSteps: 0, maxSteps: 20_000)
        for (event, id) in inbound { world.publish(event, id: id) }
        world.publish(InboundChannelOrder(channel: "web", format: .canonical, externalOrderId: "garbled", payload: Data("{not json".utf8), receivedAt: world.date).event,
                      id: "inbound-garbled")
        world.publishGarbage(topic: InboundChannelOrder.topic, key: "poison-inbound")
        world.run(faultSteps: world.now + 2_000, maxSteps: world.now + 150_000)
        Trace.print(world)
        let rejected = DeterministicID.orderID(channel: "web", externalOrderID: "chain-0")
        let problems = world.problems + Properties.checkOutputs(world, topics: outputTopics) + check(world, accepted: accepted, rejected: rejected)
            + Properties.checkPoison(world) + Properties.checkChangelogs(world)
        return (problems, endState(world))
    }

    static let outputTopics = [
        OrderPlaced.topic, OrderRejected.topic, PaymentScreening.topic, PaymentApproved.topic, ReserveInventory.topic, InventoryResult.topic, OrderAllocated.topic,
        ShipmentCreated.topic, TopicCatalog.deadLetterTopic,
    ]

    /// Every accepted order shipped, once per location, and its view says so; the order
    /// for an unknown SKU rejected; nothing left reserved but not shipped.
    static func check(_ world: World, accepted: Set<String>, rejected: String) -> [String] {
        var problems: [String] = []
        var shipments: [String: Set<String>] = [:]
        for record in world.broker.visible(ShipmentCreated.topic) {
            guard case .event(let envelope) = record.value, case .shipmentCreated(let shipment) = envelope.event else { continue }
            shipments[shipment.orderId, default: []].insert(shipment.shipmentId)
        }
        let states = Properties.allocationStates(world)
        let views = world.broker.latest[OrderView.topic] ?? [:]
        for order in accepted.sorted() {
            let locations = Set(states[order]?.reserved.map(\.location) ?? [])
            if locations.isEmpty { problems.append("liveness: order \(order) holds no stock: \(states[order].map { "\($0.status)" } ?? "no state")") }
            if shipments[order]?.count != locations.count {
                problems.append("order \(order) reserved at \(locations.sorted()) but has shipments \(shipments[order]?.sorted() ?? [])")
            }
            guard case .orderView(let view)? = views[order]?.event else {
                problems.append("liveness: order \(order) has no view")
                continue
            }
            if view.status != .shipped || view.shipments.count != locations.count {
                problems.append("order \(order): view says \(view.status) with \(view.shipments.count) shipments, \(locations.count) expected")
            }
        }
        if case .orderView(let view)? = views[rejected]?.event {
            if view.status != .rejected { problems.append("order \(rejected) for an unknown SKU: view says \(view.status)") }
        } else {
            problems.append("liveness: the rejected order \(rejected) has no view")
        }
        let strays = Set(shipments.keys).subtracting(accepted)
        if !strays.isEmpty { problems.append("shipments for orders never accepted: \(strays.sorted())") }
        return problems
    }

    /// Where two end states first differ.
    static func difference(_ faulty: EndState, _ calm: EndState) -> String {
        func around(_ a: String?, _ b: String?) -> String {
            let (a, b) = (Array(a ?? "none"), Array(b ?? "none"))
            let first = (0..<min(a.count, b.count)).first { a[$0] != b[$0] } ?? min(a.count, b.count)
            let from = max(0, first - 120)
            return "…\(String(a[from..<min(a.count, first + 160)])) vs …\(String(b[from..<min(b.count, first + 160)]))"
        }
        for key in Set(faulty.views.keys).union(calm.views.keys).sorted() where faulty.views[key] != calm.views[key] {
            return "view \(key) differs from the run without faults: \(around(faulty.views[key], calm.views[key]))"
        }
        for topic in Set(faulty.changelogs.keys).union(calm.changelogs.keys).sorted() {
            let (a, b) = (faulty.changelogs[topic] ?? [:], calm.changelogs[topic] ?? [:])
            for key in Set(a.keys).union(b.keys).sorted() where a[key] != b[key] {
                return "\(topic) \(key) differs from the run without faults: \(around(a[key], b[key]))"
            }
        }
        return "end states differ"
    }

    /// The views and every changelog's latest values, without the times.
    static func endState(_ world: World) -> EndState {
        var views: [String: String] = [:]
        for (key, envelope) in world.broker.latest[OrderView.topic] ?? [:] {
            guard case .orderView(var view) = envelope.event else { continue }
            // The order events arrive on several topics, so the history's order, the
            // status at each entry and which input completed a step (whose id the step's
            // event id derives from) are the interleaving's: only what happened counts.
            view.history = view.history.map { var entry = $0; entry.eventId = ""; entry.status = .placed; return entry }
                .sorted { $0.eventType < $1.eventType }
            view.notificationsSent.sort()
            view.lineProgress.sort { $0.lineId < $1.lineId }
            view.payments.sort { "\($0)" < "\($1)" }
            view.shipments.sort { "\($0)" < "\($1)" }
            views[key] = Properties.timeless(.orderView(view))
        }
        var changelogs: [String: [String: String]] = [:]
        for topic in [HeldOrder.topic, CustomerVelocity.topic, InventoryLevel.topic, AllocationState.topic, ShippingState.topic] {
            for (key, envelope) in world.broker.latest[topic] ?? [:] { changelogs[topic, default: [:]][key] = Properties.timeless(envelope.event) }
        }
        return EndState(views: views, changelogs: changelogs)
    }
}

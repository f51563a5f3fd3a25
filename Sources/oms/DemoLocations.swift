import Contracts
import Fleet
import Foundation
import Workers

/// The demo's locations and supplier: 3PL-CENTRAL's WMS answers its fulfilment requests
/// (read from the order views, which show each request with its units) through the gateway (most packed after a short delay, some short-picked, some shipped
/// under the 3PL's own label), 3PL-SOUTH never answers, and a supplier restocks the
/// scarce SKUs once every order is sent, which fills the backorders waiting for them.
actor DemoLocations {
    /// The location whose WMS answers (`fulfilment: request` in config/rules.yaml).
    static let answering = "3PL-CENTRAL"
    /// A 3PL the demo adds near Dallas, `fulfilment: request`, whose WMS never answers.
    static let silent = "3PL-SOUTH"
    /// The secret 3PL-CENTRAL signs its answers with (`gateway.location.secrets`).
    static let secret = "demo-3pl-secret"
    /// Units of each scarce SKU the supplier brings once every order is sent.
    static let restockUnits = 2

    /// The rules as the demo runs them: config/rules.yaml with the silent 3PL added and
    /// the fulfilment SLAs in seconds instead of minutes, so a location that never answers
    /// is withdrawn, a pre-order released and an RMA expired, while you watch; stock
    /// increases held back at most 10 s.
    static func rules(_ base: BusinessRules) -> BusinessRules {
        var rules = base
        if rules.location(silent) == nil {
            rules.locations.append(StockLocation(id: silent, type: .thirdPartyLogistics, country: "US", latitude: 32.78, longitude: -96.80, fulfilment: .request))
        }
        rules.fulfilment = FulfilmentRequestRules(acceptWithinSeconds: 15, shipWithinSeconds: 120, withdrawAfterSeconds: 5, checkIntervalSeconds: 1)
        // The never-sent exchanges' RMAs expire 20 s after they are asked for (DemoDriver):
        // a minute's check (the default) kept every run waiting up to a minute for them.
        rules.returns.checkIntervalSeconds = 5
        // Increases held back 30 s (the marketplace's) left every run waiting for its
        // last restocks that long after the orders settled.
        for index in rules.stockFeeds.channels.indices {
            rules.stockFeeds.channels[index].minIntervalSeconds = min(rules.stockFeeds.channels[index].minIntervalSeconds, 10)
        }
        return rules
    }

    /// One short pick the WMS reported.
    struct ShortPick: Sendable {
        var orderId: String
        var requestId: String
        var lineId: String
        var found: Int
        var missing: Int
    }

    private let views: GlobalTable
    private let planned: Set<String>
    private let sender: DemoSender
    /// Answers sent per request: 1 accepted, 2 picked, 3 packed or shipped.
    private var steps: [String: Int] = [:]
    /// Short picks reported, by request.
    private var shorts: [String: ShortPick] = [:]
    var shortPicks: [ShortPick] { Array(shorts.values) }
    /// Requests 3PL-CENTRAL shipped under its own label.
    private(set) var ownLabels: Set<String> = []
    /// Requests 3PL-SOUTH got (and never answered), with their orders.
    private(set) var unanswered: [String: String] = [:]
    private(set) var restocked = false

    init(views: GlobalTable, planned: Set<String>, sender: DemoSender) {
        self.views = views
        self.planned = planned
        self.sender = sender
    }

    /// One round: the next answer to every open request at 3PL-CENTRAL, sent side by
    /// side as a WMS would.
    func tick() async {
        var due: [(requestId: String, step: Int, body: [UInt8])] = []
        // The run's orders and their exchanges' replacements, orders of their own.
        for case .orderView(let view) in views.values.values where planned.contains(view.orderId) || planned.contains(view.replacesOrderId ?? "") {
            for request in view.fulfilment ?? [] where [.requested, .accepted, .picked].contains(request.status) {
                if request.location == Self.silent { unanswered[request.requestId] = view.orderId }
                guard request.location == Self.answering, let next = answer(request, orderId: view.orderId),
                    let body = try? JSONSerialization.data(withJSONObject: next)
                else { continue }
                due.append((request.requestId, steps[request.requestId, default: 0], Array(body)))
            }
        }
        let sender = sender
        let sent = await withTaskGroup(of: (String, Int, Bool).self) { group in
            for answer in due {
                let body = answer.body
                group.addTask { (answer.requestId, answer.step, await sender.locationAnswer(Self.answering, body, secret: Self.secret) == 202) }
            }
            return await group.reduce(into: [(String, Int, Bool)]()) { $0.append($1) }
        }
        for (requestId, step, accepted) in sent where accepted { steps[requestId] = max(steps[requestId, default: 0], step + 1) }
    }

    /// The next answer to `request`, nil when it has none left.
    private func answer(_ request: FulfilmentSummary, orderId: String) -> [String: Any]? {
        let step = steps[request.requestId, default: 0]
        guard step < 3 else { return nil }
        // A stable pick per request: one in eight is short a unit, one in ten ships itself.
        let roll = request.requestId.utf8.reduce(UInt64(14_695_981_039_346_656_037)) { ($0 ^ UInt64($1)) &* 1_099_511_628_211 }
        var body: [String: Any] = ["orderId": orderId, "requestId": request.requestId, "updateId": "\(request.requestId)#\(step)"]
        switch step {
        case 0:
            body["kind"] = "accepted"
        case 1:
            body["kind"] = "picked"
            var found = request.lines.map { ["lineId": $0.lineId, "quantity": $0.quantity] as [String: Any] }
            if roll % 8 == 3, let first = request.lines.first {
                found[0]["quantity"] = first.quantity - 1
                shorts[request.requestId] = ShortPick(orderId: orderId, requestId: request.requestId, lineId: first.lineId, found: first.quantity - 1, missing: 1)
            }
            body["lines"] = found
        default:
            // The view shows the units found once the pick is read; until then, what was asked less the short.
            let asked = request.lines.reduce(0) { $0 + $1.quantity }
            let units = request.status == .picked ? asked : asked - (shorts[request.requestId] == nil ? 0 : 1)
            guard units > 0 else {
                steps[request.requestId] = 3
                return nil
            }
            body["parcels"] = [["weightGrams": 400 * units + 150, "lengthCm": 30, "widthCm": 20, "heightCm": 10]]
            if roll % 10 == 7 {
                body["kind"] = "shipped"
                body["carrier"] = "ups"
                body["service"] = "ground"
                body["trackingNumber"] = "1ZDEMO" + String(roll % 100_000_000)
                ownLabels.insert(request.requestId)
            } else {
                body["kind"] = "packed"
            }
        }
        return body
    }

    /// The supplier's delivery: `restockUnits` more of each scarce SKU at WH-EAST, once.
    func restock() async {
        guard !restocked else { return }
        restocked = true
        let sequence = Int64(Date().timeIntervalSince1970 * 1000) + 1
        try? await sender.produce(
            DemoScenario.scarceSKUs.map {
                AdjustInventory(sku: $0, location: "WH-EAST", mode: .delta, quantity: Self.restockUnits, source: "demo-supplier", sourceSequence: sequence).event
            },
            kind: "supplier restock of scarce SKUs (fills backorders)")
    }

    /// Nothing shipped from a confirming location that it did not pack; every short-picked
    /// unit shipped once from elsewhere or still waiting; the silent 3PL's requests
    /// withdrawn after their SLA and their orders shipped from elsewhere.
    func invariant(views: GlobalTable, planned: Set<String>) -> DemoSummary.Invariant {
        var problems: [String] = []
        var packed = 0
        var fromConfirming = 0
        for case .orderView(let view) in views.values.values where planned.contains(view.orderId) {
            for shipment in view.shipments where [Self.answering, Self.silent].contains(shipment.location) {
                fromConfirming += 1
                let entries = view.fulfilment?.filter { $0.location == shipment.location } ?? []
                if !entries.contains(where: { [.packed, .shipped].contains($0.status) }) {
                    problems.append("\(view.orderId): shipment from \(shipment.location) while its requests are \(entries.map(\.status.rawValue))")
                }
            }
            if view.shipments.contains(where: { $0.location == Self.silent }) { problems.append("\(view.orderId): shipped from \(Self.silent), which never packed") }
            packed += view.fulfilment?.filter { $0.status == .packed || $0.status == .shipped }.count ?? 0
        }
        for short in shortPicks {
            guard case .orderView(let view) = views.value(short.orderId), let line = view.lineProgress.first(where: { $0.lineId == short.lineId }) else {
                problems.append("\(short.orderId): no view for its short pick")
                continue
            }
            let fromThere = view.shipments.filter { $0.location == Self.answering }.flatMap(\.lines).filter { $0.lineId == short.lineId }.reduce(0) { $0 + $1.quantity }
            if fromThere > short.found { problems.append("\(short.orderId) line \(short.lineId): \(fromThere) shipped from \(Self.answering), which found \(short.found)") }
            // Re-sourced once: neither lost nor shipped twice (cancelled units aside).
            let wanted = line.ordered - (line.cancelled ?? 0)
            if line.shipped > wanted { problems.append("\(short.orderId) line \(short.lineId): \(line.shipped) shipped of \(wanted)") }
            if line.shipped < wanted, view.status != .cancelled, line.allocated < wanted {
                problems.append("\(short.orderId) line \(short.lineId): short-picked unit neither shipped nor reserved (\(line.shipped)/\(wanted))")
            }
        }
        var withdrawn = 0
        for orderId in Set(unanswered.values) {
            guard case .orderView(let view) = views.value(orderId) else { continue }
            let status = view.fulfilment?.last { $0.location == Self.silent }?.status
            if status == .withdrawn {
                withdrawn += 1
            } else if status != .cancelled {
                problems.append("\(orderId): the silent 3PL's request is \(status?.rawValue ?? "absent"), not withdrawn")
            }
        }
        let detail = problems.isEmpty
            ? "\(fromConfirming) shipments from locations that confirm: all packed first (\(ownLabels.count) under the 3PL's own label); \(shortPicks.count) short picks, their units re-sourced; \(Self.silent) never answered: \(withdrawn) requests withdrawn after their SLA and re-sourced"
            : problems.prefix(10).joined(separator: "; ")
        return DemoSummary.Invariant(
            name: "nothing shipped from a confirming location before it packed; every short-picked unit re-sourced once; a silent location withdrawn and re-sourced",
            holds: problems.isEmpty && (packed > 0 || fromConfirming == 0), detail: detail)
    }

    /// No backordered line waits while free stock at a location that may fill it is left.
    static func backorderInvariant(levels: GlobalTable, restocked: Bool) -> DemoSummary.Invariant {
        var problems: [String] = []
        var waiting = 0
        let records = levels.values
        for case .inventoryLevel(let level) in records.values {
            let lines = InventoryLedger.waitingLines(of: level) { key in if case .waitingLine(let line)? = records[key] { line } else { nil } }
            for line in lines {
                waiting += 1
                let free = level.locations.filter { line.locations.isEmpty || line.locations.contains($0.location) }.map(InventoryLedger.available).reduce(0, +)
                if free > 0 { problems.append("\(line.orderId) line \(line.lineId) waits for \(line.quantity) × \(level.sku) while \(free) are free") }
            }
        }
        return DemoSummary.Invariant(
            name: "no backorder waits while stock that could fill it is free",
            holds: problems.isEmpty && restocked,
            detail: problems.isEmpty
                ? "the supplier \(restocked ? "restocked" : "did not restock") \(restockUnits) of each scarce SKU, filled first placed first; \(waiting) lines still wait, with nothing free for them"
                : problems.prefix(10).joined(separator: "; "))
    }

    /// Pre-orders ship on their launch date, not before.
    static func preorderInvariant(views: GlobalTable, scenario: DemoScenario) -> DemoSummary.Invariant {
        var problems: [String] = []
        var shipped = 0
        let preorders = scenario.orders.filter { $0.expectsView && $0.order.lines.contains { $0.sku == DemoScenario.preorderSKU } }
        for plan in preorders {
            guard case .orderView(let view) = views.value(plan.orderId) else { continue }
            for entry in view.history where entry.eventType == ShipmentCreated.eventType.description {
                if entry.at < scenario.preorderLaunch {
                    problems.append("\(plan.orderId): shipped at \(RFC3339.format(entry.at)), before the launch at \(RFC3339.format(scenario.preorderLaunch))")
                } else {
                    shipped += 1
                }
            }
        }
        return DemoSummary.Invariant(
            name: "pre-orders released on their launch date, not before",
            holds: problems.isEmpty,
            detail: problems.isEmpty
                ? "\(preorders.count) orders with the pre-order SKU \(DemoScenario.preorderSKU): \(shipped) shipments, none before its launch"
                : problems.prefix(10).joined(separator: "; "))
    }
}

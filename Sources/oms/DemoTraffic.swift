import Contracts
import Fleet
import Foundation
import Gateway
import Kafka
import Logging
import Prometheus
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Sends the demo's traffic the way its sources would: webhooks to the gateway over
/// HTTP (signed), connectors straight into Kafka. Counts every answer.
actor DemoSender {
    private let producer: KafkaProducer
    private let base: String
    private let session: URLSession
    /// Requests in flight to the gateway at most; the driver works on as many orders at once.
    static let connections = 16
    private(set) var sentOrders = 0
    /// Answers by HTTP status, e.g. 202, 400.
    private(set) var statuses: [Int: Int] = [:]
    /// Answers that were replays of an earlier request (`Idempotent-Replayed`).
    private(set) var replayed = 0
    /// HTTP requests that failed below HTTP (connection refused, timeout).
    private(set) var transportErrors = 0
    /// Records written straight into Kafka, by kind.
    private(set) var direct: [String: Int] = [:]

    init(kafka: KafkaConfiguration, base: String, logger: Logger) throws {
        producer = try KafkaProducer(configuration: KafkaProducerConfiguration(kafka: kafka.with(clientID: "oms-demo-connectors")), logger: logger)
        self.base = base
        let configuration = URLSessionConfiguration.ephemeral
        configuration.httpMaximumConnectionsPerHost = Self.connections
        configuration.timeoutIntervalForRequest = 60
        session = URLSession(configuration: configuration)
    }

    /// One planned order through its route (twice if it is re-sent).
    func send(_ planned: DemoScenario.PlannedOrder) async {
        defer { sentOrders += 1 }
        do {
            let body = try DemoScenario.body(of: planned)
            let copies = planned.twist == .resent ? 2 : 1
            for _ in 0..<copies {
                switch planned.route {
                case .shopify:
                    await post("/v1/channels/shopify/orders", body: body, headers: [
                        "X-Shopify-Hmac-Sha256": WebhookSignature.base64.sign(body, secret: DemoScenario.shopifySecret),
                        "X-Shopify-Webhook-Id": "wh-\(planned.order.externalOrderId)", "X-Shopify-Topic": "orders/create",
                    ])
                case .web:
                    await post("/v1/channels/web/orders", body: body, headers: [
                        "X-OMS-Signature": WebhookSignature.omsHex.sign(body, secret: DemoScenario.webSecret),
                        "Idempotency-Key": "web-\(planned.order.externalOrderId)",
                    ])
                case .marketplace where planned.twist == .malformedKafka:
                    try await produceRaw(topic: InboundChannelOrder.topic, key: "marketplace/\(planned.order.externalOrderId)", value: Array("{not an event".utf8))
                case .marketplace:
                    let inbound = InboundChannelOrder(
                        channel: planned.order.channel, format: .canonical, externalOrderId: planned.order.externalOrderId,
                        payload: Data(body), receivedAt: Date())
                    try await produce([inbound.event], kind: "marketplace order")
                }
            }
        } catch {
            transportErrors += 1
        }
    }

    /// A signed EasyPost tracker event.
    func carrierUpdate(carrier: String, trackingNumber: String, status: String, at: Date, estimate: Date?, eventId: String) async {
        guard let body = try? DemoScenario.easyPostEvent(id: eventId, carrier: carrier, trackingNumber: trackingNumber, status: status, at: at, estimate: estimate) else { return }
        await post("/v1/carriers/easypost/events", body: body, headers: [
            "X-Hmac-Signature": WebhookSignature.easyPostHex.sign(body, secret: DemoScenario.easyPostSecret),
        ])
    }

    /// A location's signed answer to a fulfilment request; returns the status.
    func locationAnswer(_ location: String, _ body: [UInt8], secret: String) async -> Int? {
        await post("/v1/locations/\(location)/fulfilment", body: body, headers: ["X-OMS-Signature": WebhookSignature.omsHex.sign(body, secret: secret)])
    }

    /// An operator or customer request to the order endpoints; returns the status.
    @discardableResult
    func orderCommand(_ path: String, _ json: [String: Any], key: String) async -> Int? {
        guard let body = try? JSONSerialization.data(withJSONObject: json) else { return nil }
        return await post(path, body: Array(body), headers: ["Idempotency-Key": key])
    }

    /// Events straight into Kafka (seed stock, warehouse receipts, marketplace orders).
    func produce(_ events: [Event], kind: String = "seed") async throws {
        for event in events {
            let envelope = Envelope(id: UUID().uuidString.lowercased(), source: "oms/demo", time: Date(), event: event)
            _ = try await producer.send(try KafkaProducerMessage(envelope, topic: envelope.topic))
        }
        direct[kind, default: 0] += events.count
    }

    private func produceRaw(topic: String, key: String, value: [UInt8]) async throws {
        _ = try await producer.send(KafkaProducerMessage(topic: topic, key: Array(key.utf8), value: value, headers: []))
        direct["malformed record", default: 0] += 1
    }

    @discardableResult
    private func post(_ path: String, body: [UInt8], headers: [String: String]) async -> Int? {
        var request = URLRequest(url: URL(string: base + path)!)
        request.httpMethod = "POST"
        request.httpBody = Data(body)
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        do {
            let (_, response) = try await session.data(for: request)
            guard let http = response as? HTTPURLResponse else { return nil }
            statuses[http.statusCode, default: 0] += 1
            if http.value(forHTTPHeaderField: "Idempotent-Replayed") == "true" { replayed += 1 }
            return http.statusCode
        } catch {
            transportErrors += 1
            return nil
        }
    }

    func close() async {
        try? await producer.close()
        session.invalidateAndCancel()
    }
}

/// What happens after an order is placed, read from the order views: carriers scan
/// and deliver parcels, operators decide held orders, customers cancel and return,
/// warehouses receive returns.
actor DemoDriver {
    let scenario: DemoScenario
    let sender: DemoSender
    let views: GlobalTable
    private let planned: [String: DemoScenario.PlannedOrder]
    /// Carrier steps already sent per tracking number.
    private var parcelSteps: [String: Int] = [:]
    private var decided: Set<String> = []
    private var cancelled: Set<String> = []
    private var returnRequested: Set<String> = []
    private var appeased: Set<String> = []
    /// Orders whose address or lines the driver changed (or tried to).
    private var changed: Set<String> = []
    /// What the driver asked shipping to decide, per order.
    private(set) var changeRequests: [String: [OrderChangeKind]] = [:]
    private var received: Set<String> = []
    /// Orders whose return asked for an exchange, and which kind.
    private(set) var exchanges: [String: DemoScenario.ExchangeKind] = [:]
    /// What the driver did, by action.
    private(set) var actions: [String: Int] = [:]

    /// Days an RMA stays valid (`returns.rmaValidDays`).
    private let rmaValidDays: Int

    init(scenario: DemoScenario, sender: DemoSender, views: GlobalTable, rmaValidDays: Int) {
        self.rmaValidDays = rmaValidDays
        self.scenario = scenario
        self.sender = sender
        self.views = views
        planned = Dictionary(scenario.orders.filter(\.expectsView).map { ($0.orderId, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// One round over every order's view, `concurrency` orders at a time: one order's
    /// steps stay in sequence, but a slow answer to one does not hold up the others (one
    /// after another, a round of ~5,000 carrier pushes took minutes on a loaded machine).
    func tick(concurrency: Int = DemoSender.connections) async {
        await withTaskGroup(of: Void.self) { group in
            var running = 0
            for (orderId, plan) in planned {
                guard case .orderView(let view) = views.value(orderId) else { continue }
                if running == concurrency {
                    await group.next()
                    running -= 1
                }
                group.addTask { await self.step(plan, view) }
                running += 1
            }
        }
    }

    private func step(_ plan: DemoScenario.PlannedOrder, _ view: OrderView) async {
        let id = view.orderId
        if plan.twist == .cancel, !cancelled.contains(id), ![.rejected, .cancelled].contains(view.status) {
            cancelled.insert(id)
            await sender.orderCommand("/v1/orders/\(id)/cancel", ["requestedBy": "customer", "reason": "customer_request"], key: "cancel-\(id)")
            count("customer cancel")
        }
        // A held order the customer already cancelled needs no review.
        if view.status == .held, !decided.contains(id), !cancelled.contains(id) {
            decided.insert(id)
            // An operator reviews: every other held order is released, the rest cancelled.
            if plan.index.isMultiple(of: 2) {
                // The customer asked, while it waited, to ship elsewhere and for one unit less.
                await changeBeforeRelease(view)
                await sender.orderCommand("/v1/orders/\(id)/release", ["releasedBy": "ops@demo", "note": "checked with the customer"], key: "release-\(id)")
                count("operator release")
            } else {
                await sender.orderCommand("/v1/orders/\(id)/cancel", ["requestedBy": "ops@demo", "reason": "fraud", "message": "failed review"], key: "review-cancel-\(id)")
                count("operator cancel")
            }
        }
        await changeTooLateOrCancelBackorder(plan, view)
        for shipment in view.shipments where shipment.status != .delivered || parcelSteps[shipment.trackingNumber, default: 0] < 2 {
            await advance(plan, view, shipment)
        }
        // A parcel that came late and is kept: customer service gives a little back.
        if plan.delayed, !plan.returns, view.status == .delivered, !appeased.contains(id) {
            appeased.insert(id)
            // Every other one as store credit for the next order.
            let credit = plan.index.isMultiple(of: 2)
            await sender.orderCommand(
                "/v1/orders/\(id)/appeasements",
                ["amount": "5.00", "reason": "late_delivery", "message": "sorry it came late", "requestedBy": "agent:demo", "role": "agent", "storeCredit": credit],
                key: "appease-\(id)")
            count(credit ? "appeasement as store credit" : "appeasement")
        }
        if plan.returns, view.status == .delivered, !returnRequested.contains(id),
            let line = view.lineProgress.first(where: { $0.delivered > 0 })
        {
            returnRequested.insert(id)
            let reason = plan.index.isMultiple(of: 3) ? "damaged" : "changed_mind"
            var asked: [String: Any] = ["lineId": line.lineId, "quantity": 1, "reason": reason]
            if plan.exchange == .neverSent, let replacement = DemoScenario.ExchangeKind.neverSent.replacement(for: line.sku) {
                await requestNeverSent(id, line: line, replacement: replacement)
                return
            }
            if let kind = plan.exchange, let replacement = kind.replacement(for: line.sku) {
                asked["exchangeSku"] = replacement
                asked["reason"] = "wrong_size"
                exchanges[id] = kind
            }
            await sender.orderCommand("/v1/orders/\(id)/returns", ["lines": [asked]], key: "return-\(id)")
            count(exchanges[id].map { "return request for an exchange (\($0.rawValue))" } ?? "return request")
        }
        for entry in view.returns where entry.status == .authorized && !received.contains(entry.returnId) && !entry.returnId.hasPrefix(Self.neverSentPrefix) {
            received.insert(entry.returnId)
            let location = view.shipments.first?.location ?? DemoScenario.locations[0]
            let lines = entry.lines.map {
                ReceivedReturnLine(lineId: $0.lineId, sku: $0.sku, quantity: $0.quantity, disposition: plan.index.isMultiple(of: 3) ? .writeOff : .restock, location: location)
            }
            try? await sender.produce([ReceiveReturn(orderId: id, returnId: entry.returnId, lines: lines, receivedAt: Date()).event], kind: "warehouse return receipt")
            count("return received")
        }
    }

    /// Returns whose parcel never comes.
    static let neverSentPrefix = "rma-never-sent-"
    /// Seconds after its request that a never-sent exchange's RMA expires.
    static let neverSentExpiry: TimeInterval = 20

    /// An even exchange whose parcel the customer never sends: written straight to
    /// oms.returns.requests with its request time backdated so that its RMA expires
    /// 20 s after it is asked for, at the returns stage's next check after that (every
    /// 5 s in the demo). Not at once: the replacement is placed and reserved meanwhile,
    /// as it would be in the weeks a real RMA runs.
    private func requestNeverSent(_ id: String, line: LineProgress, replacement: String) async {
        let requestedAt = Date().addingTimeInterval(-Double(rmaValidDays) * 86_400 + Self.neverSentExpiry)
        let request = ReturnRequested(
            orderId: id, returnId: Self.neverSentPrefix + id.prefix(8),
            lines: [ReturnLine(lineId: line.lineId, sku: line.sku, quantity: 1, reason: "wrong_size", exchangeSku: replacement)], requestedAt: requestedAt)
        try? await sender.produce([request.event], kind: "exchange request never sent back (backdated to expire \(Int(Self.neverSentExpiry)) s later)")
        exchanges[id] = .neverSent
    }

    /// A new address (same city, another street) and one unit less of the first line
    /// with more than one, before a label exists: both accepted.
    private func changeBeforeRelease(_ view: OrderView) async {
        let id = view.orderId
        changed.insert(id)
        let address: [String: Any] = [
            "name": "Customer of \(view.externalOrderId)", "lines": ["1 Changed Ave"], "city": "Springfield", "region": "NY", "postalCode": "10002", "country": "US",
        ]
        if await sender.orderCommand("/v1/orders/\(id)/address", ["shippingAddress": address, "requestedBy": "customer"], key: "address-\(id)") == 202 {
            changeRequests[id, default: []].append(.address)
        }
        count("address change before the label")
        if let line = view.lineProgress.first(where: { $0.ordered > 1 }) {
            let status = await sender.orderCommand(
                "/v1/orders/\(id)/lines/cancel", ["lines": [["lineId": line.lineId, "quantity": 1]], "requestedBy": "customer", "reason": "quantity_decrease"],
                key: "cut-\(id)")
            if status == 202 { changeRequests[id, default: []].append(.lines) }
            count("quantity decrease")
        }
    }

    /// One plain order in 25, once shipped, asks for a new address: refused (409, the
    /// label is bought; or accepted by a gateway whose view is a moment behind the label,
    /// and refused by shipping). Every other order waiting for a scarce SKU gives up the units
    /// that wait: a line cancel of what is neither shipped nor cancelled.
    private func changeTooLateOrCancelBackorder(_ plan: DemoScenario.PlannedOrder, _ view: OrderView) async {
        let id = view.orderId
        guard !changed.contains(id) else { return }
        if plan.twist == .none, plan.index.isMultiple(of: 25), !view.shipments.isEmpty {
            changed.insert(id)
            let address: [String: Any] = ["name": "Late mover", "lines": ["9 Elsewhere Rd"], "city": "Springfield", "region": "NY", "postalCode": "10003", "country": "US"]
            let status = await sender.orderCommand("/v1/orders/\(id)/address", ["shippingAddress": address, "requestedBy": "customer"], key: "late-address-\(id)")
            // The gateway refuses at once what its view of the order knows is too late; a
            // view a moment behind the label accepts the command, and shipping refuses it.
            if status == 202 { changeRequests[id, default: []].append(.address) }
            switch status {
            case 409: count("address change refused (label bought)")
            case 202: count("address change after the label, left to shipping")
            default: count("address change after the label: \(status.map(String.init) ?? "no answer")")
            }
        }
        let backordered = view.history.contains { entry in
            [OrderBackordered.eventType, OrderPartiallyAllocated.eventType].contains { entry.eventType == $0.description }
        }
        if plan.twist == .scarce, plan.index.isMultiple(of: 2), backordered, ![.cancelled, .rejected, .declined].contains(view.status) {
            let waiting = view.lineProgress.compactMap { line -> [String: Any]? in
                line.unitsLeft > 0 ? ["lineId": line.lineId, "quantity": line.unitsLeft] : nil
            }
            guard !waiting.isEmpty else { return }
            changed.insert(id)
            let status = await sender.orderCommand(
                "/v1/orders/\(id)/lines/cancel", ["lines": waiting, "requestedBy": "agent:demo", "reason": "backorder_declined"], key: "backorder-cut-\(id)")
            if status == 202 { changeRequests[id, default: []].append(.lines) }
            count("backordered line cancel")
        }
    }

    /// The next carrier scan of a parcel: in transit, out for delivery, delivered; or
    /// delivered first and a stale "in transit" after it; or an estimate past the promise.
    private func advance(_ plan: DemoScenario.PlannedOrder, _ view: OrderView, _ shipment: ShipmentSummary) async {
        let done = parcelSteps[shipment.trackingNumber, default: 0]
        let now = Date()
        let script: [(String, Date, Date?)]
        if plan.outOfOrder {
            script = [("delivered", now, nil), ("in_transit", now.addingTimeInterval(-7_200), nil)]
        } else if plan.delayed {
            let late = (view.promisedDeliveryDate ?? now).addingTimeInterval(5 * 86_400)
            script = [("in_transit", now, late), ("delivered", now, nil)]
        } else {
            script = [("in_transit", now, nil), ("out_for_delivery", now, nil), ("delivered", now, nil)]
        }
        guard done < script.count else { return }
        let (status, at, estimate) = script[done]
        parcelSteps[shipment.trackingNumber] = done + 1
        await sender.carrierUpdate(
            carrier: shipment.carrier, trackingNumber: shipment.trackingNumber, status: status, at: at, estimate: estimate,
            eventId: "evt-\(shipment.trackingNumber)-\(done)")
        count("carrier update")
    }

    private func count(_ action: String) { actions[action, default: 0] += 1 }

    /// Whether every order reached a final state, or one the summary can explain, and
    /// nothing the driver started is still under way.
    func isSettled() -> Bool {
        planned.values.allSatisfy { plan in
            guard case .orderView(let view) = views.value(plan.orderId) else { return false }
            return DemoSummary.settlement(plan, view, returnRequested: returnRequested.contains(view.orderId), views: views) != nil
        }
    }

    var returnRequests: Set<String> { returnRequested }
}

/// One line of live progress: orders per state, per-stage throughput and lag, dead letters.
actor DemoProgress {
    let registry: PrometheusCollectorRegistry
    let views: GlobalTable
    let scenario: DemoScenario
    let sender: DemoSender
    private var lastCounts: [String: Double] = [:]
    private var lastAt = ContinuousClock.now

    init(registry: PrometheusCollectorRegistry, views: GlobalTable, scenario: DemoScenario, sender: DemoSender) {
        self.registry = registry
        self.views = views
        self.scenario = scenario
        self.sender = sender
    }

    func line() async -> String {
        let ids = Set(scenario.orders.map(\.orderId))
        var states: [String: Int] = [:]
        for (key, value) in views.values where ids.contains(key) {
            if case .orderView(let view) = value { states[view.status.rawValue, default: 0] += 1 }
        }
        let metrics = DemoMetrics(text: String(decoding: registry.emitToBuffer(), as: UTF8.self))
        let now = ContinuousClock.now
        let seconds = max((now - lastAt).seconds, 0.001)
        let counts = metrics.sum("oms_stage_records_in_total")
        let lags = metrics.sum("oms_stage_consumer_lag")
        let stages = counts.keys.sorted().map { stage in
            let rate = ((counts[stage] ?? 0) - (lastCounts[stage] ?? 0)) / seconds
            return "\(stage) \(Int(rate))/s lag \(Int(lags[stage] ?? 0))"
        }
        lastCounts = counts
        lastAt = now
        let deadLetters = Int(metrics.sum("oms_stage_dead_letters_total").values.reduce(0, +))
        let sent = await sender.sentOrders
        return "sent \(sent)/\(scenario.orders.count) | "
            + states.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: " ")
            + " | dead letters \(deadLetters)\n          " + stages.joined(separator: ", ")
    }
}

/// Sums of Prometheus samples per `stage` label, read from the text format.
struct DemoMetrics {
    let text: String

    func sum(_ name: String) -> [String: Double] {
        var result: [String: Double] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix(name + "{") {
            guard let stageRange = line.range(of: #"stage=""#), let valueStart = line.lastIndex(of: " ") else { continue }
            let rest = line[stageRange.upperBound...]
            guard let end = rest.firstIndex(of: "\"") else { continue }
            result[String(rest[..<end]), default: 0] += Double(line[line.index(after: valueStart)...]) ?? 0
        }
        return result
    }
}

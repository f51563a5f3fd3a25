import ArgumentParser
import Contracts
import Fleet
import Foundation
import Kafka
import Logging
import ReferenceStages
import ServiceLifecycle
import Workers

/// `oms bench-pipeline`: orders per second from oms.orders.inbound to the shipment
/// (intake → shipment created, docs/BENCHMARKS.md), and latency at a fixed rate, against the pass-through stage on the same
/// broker in the same run.
struct PipelineBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-pipeline",
        abstract: "Measure intake → payment → fraud-velocity → allocation ⇄ inventory → shipping: orders/s and latency.",
        discussion: """
            Without --brokers, on the embedded broker (at least once: it has no transactional offsets); with \
            --brokers, exactly once (scripts/bench-pipeline starts a fresh noida-db). Per instance count: stock \
            is loaded through the inventory stage first; then N canonical orders are written to oms.orders.inbound \
            and the other stages start (that many instances each, in this process); the time runs from the moment \
            every stage owns its partitions to the moment the N-th order's shipment is read. Then orders are \
            sent at --rate for --duration and each one's latency is the time from its send to its shipment being \
            read. The reference is the pass-through stage copying N events on the same broker, same mode.
            """
    )

    @Option(help: "A broker; the embedded one when absent.")
    var brokers: String?

    @Option(help: "Orders for the throughput measurement.")
    var orders = 5_000

    @Option(help: "Instances per stage, comma-separated.")
    var instances = "1,2"

    @Option(help: "Orders per second for the latency measurement (0 skips it).")
    var rate = 200

    @Option(help: "Seconds of the latency measurement.")
    var duration = 10

    @Option(help: "Every stage's commit interval (worker.commit.interval.ms), in milliseconds.")
    var commitIntervalMs = 20

    func run() async throws {
        let counts = instances.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard orders > 0, !counts.isEmpty, counts.allSatisfy({ (1...4).contains($0) }), rate >= 0, duration > 0, commitIntervalMs > 0 else {
            throw ValidationError("--orders, --duration and --commit-interval-ms must be positive, --instances 1...4 each, --rate not negative")
        }
        var logger = Logger(label: "oms.bench")
        logger.logLevel = .error
        let cluster = try await BenchCluster(brokers: brokers, logger: logger)
        let mode: DeliveryMode = cluster.embedded == nil ? .exactlyOnce : .atLeastOnce
        let kafka = cluster.kafka
        say("broker \(brokers ?? "embedded (librdkafka mock, 3 brokers)"), \(mode.rawValue); \(orders) orders; latency at \(rate)/s for \(duration) s")

        let reference = try await passThrough(cluster, mode: mode, logger: logger)
        say(String(format: "pass-through stage: %.0f events/s (1 instance)", reference))
        for count in counts {
            let result = try await measure(instances: count, kafka: kafka, mode: mode, logger: logger)
            say(String(format: "%d instance(s) per stage: %.0f orders/s inbound → shipment created (%.3f × pass-through events/s)", count, result.throughput, result.throughput / reference))
            if let latency = result.latency {
                say(String(format: "  at %d orders/s: p50 %.1f ms, p99 %.1f ms, max %.1f ms (%d orders)", rate, latency.p50, latency.p99, latency.max, latency.count))
            }
        }
        await cluster.finish()
    }

    // MARK: Measurements

    private func passThrough(_ cluster: BenchCluster, mode: DeliveryMode, logger: Logger) async throws -> Double {
        let kafka = cluster.kafka
        let run = String(UUID().uuidString.prefix(6)).lowercased()
        let input = "bench-pipe-\(run)-in"
        try await cluster.createTopics([input, "\(input)-out"], partitions: 6)
        try await StageBenchCommand.produceEvents(orders, to: input, kafka: kafka, logger: logger)
        let seconds = try await StageBenchCommand.timeStage(
            PassThroughStage(name: "bench-pipe-\(run)", input: input, output: "\(input)-out"),
            settings: settings(kafka: kafka, mode: mode, instance: "p"), count: orders, logger: logger)
        return Double(orders) / seconds
    }

    private struct Result {
        var throughput: Double
        var latency: (p50: Double, p99: Double, max: Double, count: Int)?
    }

    private func measure(instances: Int, kafka: KafkaConfiguration, mode: DeliveryMode, logger: Logger) async throws -> Result {
        let run = String(UUID().uuidString.prefix(6)).lowercased()
        let skus = (0..<200).map { "\(run)-sku-\($0)" }
        let rules = BusinessRules(locations: ["A", "B", "C"].map { StockLocation(id: $0, type: .warehouse, country: "US") })

        // Stock first, through the inventory stage, so allocation's snapshot has it.
        var seed: [Event] = skus.map {
            CatalogProduct(sku: $0, title: $0, weightGrams: 100, dimensions: Dimensions(lengthMm: 1, widthMm: 1, heightMm: 1), blockedCountries: [], hazmat: false, prices: []).event
        }
        for sku in skus {
            for location in ["A", "B", "C"] {
                seed.append(AdjustInventory(sku: sku, location: location, mode: .absolute, quantity: 1_000_000, source: "bench", sourceSequence: Int64(Date().millisecondsSince1970)).event)
            }
        }
        let shipments = try await ShipmentWatcher(kafka: kafka, logger: logger)
        var runners: [any Service] = []
        var statuses: [RunnerStatus] = []
        func add(_ stage: some Stage, _ index: Int) {
            let runner = StageRunner(stage: stage, configuration: settings(kafka: kafka, mode: mode, instance: "\(run)-\(index)"), logger: logger)
            runners.append(runner)
            statuses.append(runner.status)
        }
        for index in 0..<instances { add(InventoryStage(), index) }
        let inventory = ServiceGroup(configuration: .init(services: runners.map { .init(service: $0) }, logger: logger))
        let inventoryTask = Task { try await inventory.run() }
        try await Self.produce(seed, kafka: kafka, logger: logger)
        try await shipments.waitForLevels(prefix: run, count: skus.count)

        let ids = (0..<orders).map { "\(run)-o\($0)" }
        try await Self.produce(try ids.map { try Self.inbound($0, skus: skus) }, kafka: kafka, logger: logger)
        runners = []
        statuses = []
        // The stages from inbound to the shipment; inventory runs already.
        let measured = try StageRegistry.stages(named: ["intake", "payment", "fraud-velocity", "allocation", "shipping"], rules: rules)
        for index in 0..<instances {
            for stage in measured { add(stage, index) }
        }
        let pipeline = ServiceGroup(configuration: .init(services: runners.map { .init(service: $0) }, logger: logger))
        let pipelineTask = Task { try await pipeline.run() }
        while !statuses.allSatisfy({ $0.isReady && $0.partitions > 0 }) { try await Task.sleep(for: .milliseconds(5)) }
        let start = ContinuousClock.now
        let wanted = Set(ids.map { DeterministicID.orderID(channel: "bench", externalOrderID: $0) })
        _ = try await shipments.wait(for: wanted, timeout: .seconds(900))
        let throughput = Double(orders) / (ContinuousClock.now - start).seconds

        var latency: (Double, Double, Double, Int)?
        if rate > 0 {
            var sent: [String: ContinuousClock.Instant] = [:]
            let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(kafka: kafka), logger: logger)
            let total = rate * duration
            // Shipments are read while orders go out, so each arrival time is its own.
            let expected = Set((0..<total).map { DeterministicID.orderID(channel: "bench", externalOrderID: "\(run)-r\($0)") })
            let arrivals = Task { try await shipments.wait(for: expected, timeout: .seconds(Double(duration) + 300)) }
            let begin = ContinuousClock.now
            for index in 0..<total {
                let due = begin + .seconds(Double(index) / Double(rate))
                if due > ContinuousClock.now { try await Task.sleep(until: due) }
                let external = "\(run)-r\(index)"
                let envelope = Envelope(id: UUID().uuidString.lowercased(), source: "bench", time: Date(), event: try Self.inbound(external, skus: skus))
                try await producer.enqueue(try KafkaProducerMessage(envelope, topic: envelope.topic))
                sent[DeterministicID.orderID(channel: "bench", externalOrderID: external)] = ContinuousClock.now
            }
            try await producer.close()
            let seen = try await arrivals.value
            let millis = sent.compactMap { id, at in seen[id].map { ($0 - at).seconds * 1000 } }.sorted()
            func percentile(_ p: Double) -> Double { millis[min(millis.count - 1, Int(Double(millis.count) * p))] }
            latency = (percentile(0.5), percentile(0.99), millis.last ?? 0, millis.count)
        }
        await pipeline.triggerGracefulShutdown()
        try await pipelineTask.value
        await inventory.triggerGracefulShutdown()
        try await inventoryTask.value
        await shipments.close()
        return Result(throughput: throughput, latency: latency.map { (p50: $0.0, p99: $0.1, max: $0.2, count: $0.3) })
    }

    private func settings(kafka: KafkaConfiguration, mode: DeliveryMode, instance: String) -> WorkerConfiguration {
        var settings = WorkerConfiguration(brokers: kafka.bootstrapServers, instanceID: "bench-\(instance)")
        settings.mode = mode
        settings.httpPort = nil
        settings.statisticsInterval = nil
        settings.commitInterval = .milliseconds(commitIntervalMs)
        return settings
    }

    static func inbound(_ external: String, skus: [String]) throws -> Event {
        let usd = CurrencyCode.usd
        let lines = (0..<2).map { index in
            OrderLine(
                lineId: "l\(index)", sku: skus[(external.unicodeScalars.reduce(0) { $0 &* 31 &+ Int($1.value) } & 0xFFFF &+ index * 7) % skus.count], quantity: 1 + index,
                unitPrice: Money(minorUnits: 1_000, currency: usd), discount: .zero(usd), tax: .zero(usd))
        }
        let subtotal = Money(minorUnits: 3_000, currency: usd)
        let address = Address(name: "Bench", lines: ["1 Main St"], city: "Springfield", region: "IL", postalCode: "62701", country: try CountryCode("US"))
        let order = CanonicalOrder(
            channel: "bench", externalOrderId: external, customer: Customer(id: nil, email: "\(external)@bench.example.com"), lines: lines,
            shipping: ShippingCharge(method: nil, amount: .zero(usd)),
            totals: OrderTotals(subtotal: subtotal, discount: .zero(usd), shipping: .zero(usd), tax: .zero(usd), total: subtotal, taxIncluded: false),
            currency: usd, shippingAddress: address, payment: PaymentAuthorization(status: .authorized, amount: subtotal, reference: nil),
            placedAt: Date(), serviceLevel: .standard)
        return InboundChannelOrder(channel: "bench", format: .canonical, externalOrderId: external, payload: Data(try EventCodec.encode(order)), receivedAt: Date()).event
    }

    static func produce(_ events: [Event], kafka: KafkaConfiguration, logger: Logger) async throws {
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(kafka: kafka), logger: logger)
        for event in events {
            let envelope = Envelope(id: UUID().uuidString.lowercased(), source: "bench", time: Date(), event: event)
            try await producer.enqueue(try KafkaProducerMessage(envelope, topic: envelope.topic))
        }
        try await producer.close(timeout: .seconds(300))
    }
}

/// Reads shipments (and levels) from their current end, noting when each order's first
/// shipment arrived.
private actor ShipmentWatcher {
    let consumer: KafkaConsumer
    let levels: KafkaConsumer
    var seen: [String: ContinuousClock.Instant] = [:]

    init(kafka: KafkaConfiguration, logger: Logger) async throws {
        let consumer = try KafkaConsumer(configuration: KafkaConsumerConfiguration(kafka: kafka, groupID: "oms-bench-\(UUID().uuidString)"), logger: logger)
        try await consumer.assign((0..<6).map { KafkaTopicPartitionOffset(topic: ShipmentCreated.topic, partition: $0, offset: KafkaTopicPartitionOffset.end) })
        let levels = try KafkaConsumer(configuration: KafkaConsumerConfiguration(kafka: kafka, groupID: "oms-bench-\(UUID().uuidString)"), logger: logger)
        try await levels.assign((0..<6).map { KafkaTopicPartitionOffset(topic: InventoryLevel.topic, partition: $0, offset: KafkaTopicPartitionOffset.end) })
        self.consumer = consumer
        self.levels = levels
    }

    /// Waits until `count` SKUs starting with `prefix` have a level.
    func waitForLevels(prefix: String, count: Int) async throws {
        var skus = Set<String>()
        let deadline = ContinuousClock.now + .seconds(300)
        while skus.count < count {
            guard ContinuousClock.now < deadline else { throw ValidationError("inventory did not load the stock within 300 s") }
            for case .messages(let batch) in try await levels.poll() {
                for message in batch where message.keyString?.hasPrefix(prefix) == true && !(message.keyString?.contains("/") ?? true) {
                    skus.insert(message.keyString!)
                }
            }
        }
    }

    /// Waits until every order in `ids` has a shipment; returns when each arrived.
    func wait(for ids: Set<String>, timeout: Duration) async throws -> [String: ContinuousClock.Instant] {
        let deadline = ContinuousClock.now + timeout
        while !ids.isSubset(of: seen.keys) {
            guard ContinuousClock.now < deadline else {
                throw ValidationError("\(ids.subtracting(seen.keys).count) of \(ids.count) orders got no shipment within \(timeout)")
            }
            for case .messages(let batch) in try await consumer.poll() {
                let now = ContinuousClock.now
                for message in batch {
                    if let subject = message.header(EnvelopeHeader.subject)?.stringValue, seen[subject] == nil { seen[subject] = now }
                }
            }
        }
        return seen
    }

    func close() async {
        try? await consumer.close()
        try? await levels.close()
    }
}

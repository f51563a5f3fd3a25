import ArgumentParser
import Contracts
import Fleet
import Foundation
import Gateway
import Kafka
import Logging
import ServiceLifecycle
import Workers
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `oms demo`: the whole system in one process on the embedded broker (or a real one),
/// driven by a realistic mix of traffic, with live progress and a checked summary.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run every stage and the gateway in one process and drive a realistic order mix through them.",
        discussion: """
            Starts the embedded Kafka cluster (librdkafka's mock, 3 brokers; or uses --brokers), creates the \
            topics, starts the eleven stages and the HTTP gateway, seeds a catalog and stock, then sends orders \
            from Shopify webhooks, the generic channel endpoint and a marketplace writing straight into Kafka — \
            some re-sent, malformed, fraudulent, cancelled or for scarce SKUs — and follows them with carrier \
            updates (some delayed, some out of order), operator releases and returns. It prints progress while \
            it runs and at the end a summary with the invariants checked; it exits non-zero if one fails.
            """
    )

    @Option(help: "A broker to use instead of the embedded one (topics are created if missing).")
    var brokers: String?

    @Option(help: "Orders to send.")
    var orders = 300

    @Option(help: "Orders per second.")
    var rate = 30

    @Option(help: "Send for this many seconds at --rate instead of --orders.")
    var duration: Int?

    @Option(help: "Most seconds to wait, after the last order, for every order to settle.")
    var settle = 120

    @Option(help: "The gateway's port (0: any free port).")
    var port = 8080

    @Option(help: "Seed of the order mix.")
    var seed: UInt64 = 42

    @Flag(help: "Leave the stages and the gateway running after the summary (Ctrl-C stops them), to try curl.")
    var keepRunning = false

    @Option(help: "Also write the summary as JSON to this file.")
    var summaryJson: String?

    func validate() throws {
        guard orders > 0, rate > 0, settle > 0, (0...65_535).contains(port) else {
            throw ValidationError("--orders, --rate and --settle must be positive and --port 0...65535")
        }
        if let duration, duration <= 0 { throw ValidationError("--duration must be positive") }
    }

    func run() async throws {
        let count = duration.map { $0 * rate } ?? orders
        let registry = WorkerOptions.bootstrap(logLevel: .error)
        let logger = Logger(label: "oms.demo")
        let clock = ContinuousClock()
        let started = clock.now
        func say(_ line: String) { Self.emit(String(format: "[%6.1fs] ", (clock.now - started).seconds) + line) }

        // 1. Kafka and topics.
        let provisioned = try await TopicProvisioning.cluster(brokers: brokers, clientID: "oms-demo", logger: logger)
        let bootstrap = provisioned.bootstrap
        let embedded = provisioned.embedded
        if let brokers {
            say("Kafka at \(brokers): \(TopicCatalog.topics.count) topics ready; exactly-once")
        } else {
            say("embedded Kafka (librdkafka mock cluster, 3 brokers) at \(bootstrap): \(TopicCatalog.topics.count) topics; at-least-once (the mock has no transactional offsets)")
        }
        let kafka = KafkaConfiguration(bootstrapServers: bootstrap, clientID: "oms-demo")

        // 2. Stages and gateway in one service group.
        let rules = try RulesFile.load(path: RulesFile.defaultPath)
        let stages = StageRegistry.pipeline.map { $0.make(rules) }
        var settings = WorkerConfiguration(brokers: bootstrap, instanceID: "demo")
        settings.mode = embedded == nil ? .exactlyOnce : .atLeastOnce
        settings.httpPort = nil
        settings.commitInterval = .milliseconds(20)
        var services: [any Service] = []
        var statuses: [RunnerStatus] = []
        for stage in stages {
            let (runner, status) = WorkerOptions.runner(for: stage, configuration: settings, logger: logger)
            services.append(runner)
            statuses.append(status)
        }
        var gatewaySettings = GatewayConfiguration()
        gatewaySettings.shopifySecret = DemoScenario.shopifySecret
        gatewaySettings.easyPostSecret = DemoScenario.easyPostSecret
        gatewaySettings.channelSecrets = ["web": DemoScenario.webSecret]
        let gateway = try Gateway(configuration: gatewaySettings, kafka: kafka.with(clientID: "oms-demo-gateway"), statuses: statuses, registry: registry, logger: logger)
        let bound = AsyncStream.makeStream(of: Int.self)
        services.append(gateway.service(host: "127.0.0.1", port: port) { port in bound.continuation.yield(port) })
        let group = ServiceGroup(configuration: .init(
            services: services.map { .init(service: $0) }, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        let running = Task { try await group.run() }
        var boundPort = port
        for await value in bound.stream {
            boundPort = value
            break
        }
        let base = "http://127.0.0.1:\(boundPort)"
        say("\(stages.count) stages and the gateway started; operations dashboard: \(base)/ (reports: \(base)/v1/reports/orders)")

        // 3. Catalog and stock, then wait until every stage is ready.
        let run = DemoScenario.Run(name: String(UUID().uuidString.prefix(6)).lowercased(), number: Int.random(in: 1_000...9_999_999))
        let scenario = try DemoScenario(count: count, seed: seed, run: run)
        let views = try await GlobalTable.open(topic: OrderView.topic, kafka: kafka.with(clientID: "oms-demo-views"), logger: logger)
        let levels = try await GlobalTable.open(topic: InventoryLevel.topic, kafka: kafka.with(clientID: "oms-demo-levels"), logger: logger)
        try await views.catchUp(timeout: .seconds(60))
        try await levels.catchUp(timeout: .seconds(60))
        let followers = Task {
            await withDiscardingTaskGroup { tasks in
                tasks.addTask { try? await views.follow() }
                tasks.addTask { try? await levels.follow() }
            }
        }
        let sender = try DemoSender(kafka: kafka, base: base, logger: logger)
        try await sender.produce(scenario.seed)
        let skus = DemoScenario.regularSKUs + DemoScenario.scarceSKUs
        while !(gateway.isReady && skus.allSatisfy { levels.value($0) != nil }) {
            guard clock.now - started < .seconds(300) else { throw ValidationError("the stages did not get ready within 300 s") }
            try await Task.sleep(for: .milliseconds(100))
        }
        let before = DemoInventory(levels)
        say("catalog of \(skus.count) SKUs and stock at \(DemoScenario.locations.joined(separator: ", ")) loaded; every stage ready")

        // 4. Traffic, follow-ups and progress, until every order settled.
        say("sending \(count) orders at \(rate)/s: \(Dictionary(grouping: scenario.orders, by: \.route).map { "\($0.value.count) \($0.key.rawValue)" }.sorted().joined(separator: ", "))")
        let driver = DemoDriver(scenario: scenario, sender: sender, views: views)
        let progress = DemoProgress(registry: registry, views: views, scenario: scenario, sender: sender)
        let sendStart = clock.now
        let traffic = Task {
            await withDiscardingTaskGroup { tasks in
                for planned in scenario.orders {
                    let due = sendStart + .seconds(Double(planned.index) / Double(rate))
                    try? await Task.sleep(until: due)
                    tasks.addTask { await sender.send(planned) }
                }
            }
        }
        var lastProgress = clock.now
        var settled = false
        var settleDeadline: ContinuousClock.Instant?
        while true {
            await driver.tick()
            if clock.now - lastProgress >= .seconds(2) {
                say(await progress.line())
                lastProgress = clock.now
            }
            let sent = await sender.sentOrders
            if settleDeadline == nil, sent >= count {
                settleDeadline = clock.now + .seconds(settle)
            }
            if let deadline = settleDeadline {
                if await driver.isSettled() {
                    settled = true
                    break
                }
                if clock.now > deadline { break }
            }
            try await Task.sleep(for: .milliseconds(250))
        }
        await traffic.value
        say(await progress.line())
        say(settled ? "every order settled; checking the invariants" : "not every order settled within --settle \(settle) s; checking anyway")

        // 5. The summary; the stages stop before the broker goes, whatever happens.
        let summary: DemoSummary
        do {
            summary = try await DemoSummary.make(
            scenario: scenario, driver: driver, sender: sender, views: views, levels: levels, before: before, settled: settled,
                elapsed: (clock.now - sendStart).seconds, kafka: kafka, logger: logger)
        } catch {
            followers.cancel()
            await group.triggerGracefulShutdown()
            try? await running.value
            throw error
        }
        if let summaryJson {
            try Data(try summary.json()).write(to: URL(fileURLWithPath: summaryJson))
            say("summary written to \(summaryJson)")
        }
        followers.cancel()
        if keepRunning {
            Self.emit(summary.text)
            Self.emit("""

                The stages and the gateway keep running; Ctrl-C stops them. Try:
                  curl -s \(base)/v1/orders/\(scenario.orders.first(where: \.expectsView)?.orderId ?? "ORDER-ID")
                  curl -s \(base)/v1/inventory/SCARCE-1
                  curl -s \(base)/metrics | grep oms_stage_records_in_total
                  KAFKA_BROKERS=\(bootstrap) .build/debug/oms orders list --status held
                """)
            try await running.value
        } else {
            await group.triggerGracefulShutdown()
            try await running.value
        }
        await views.close()
        await levels.close()
        await sender.close()
        // Every client is gone before the process ends (none is left to log that its
        // broker went away), and the verdict is the last thing printed.
        if embedded != nil, !(await KafkaLibrary.waitForClientsToClose(leaving: 1, timeout: .seconds(15))) {
            logger.warning("Kafka clients still open at shutdown", metadata: ["open": "\(KafkaLibrary.openClients)"])
        }
        if !keepRunning { Self.emit(summary.text) }
        if embedded != nil {
            // The embedded cluster ends with the process: librdkafka 2.0.2's mock cluster
            // destroy can wait forever for its host's broker thread once no client is left.
            Foundation.exit(summary.passed ? 0 : 1)
        }
        if !summary.passed { throw ExitCode(1) }
    }

    /// Writes a line straight to standard output: progress is for people watching, also
    /// through a pipe or a CI log, where `print` would hold it in a buffer.
    static func emit(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }
}


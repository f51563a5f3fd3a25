import ArgumentParser
import Contracts
import Fleet
import Foundation
import Gateway
import Kafka
import Logging
import Prometheus
import ServiceLifecycle
import Workers
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `oms demo`: the whole system in one process on the embedded broker (or a real one),
/// driven by a realistic mix of traffic, with live progress and a checked summary.
struct DemoCommand: AsyncParsableCommand {
    /// How long the demo's consumers let a fetch wait at the embedded broker.
    static let embeddedFetchWait: Duration = .milliseconds(100)

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
        let console = DemoConsole()
        let cluster = try await startKafka(console: console, logger: logger)
        let system = try await startSystem(on: cluster, registry: registry, console: console, logger: logger)
        let world = try await seed(count: count, system: system, cluster: cluster, console: console, logger: logger)
        let outcome = try await drive(world, count: count, rules: system.rules, registry: registry, console: console)
        try await finish(world, outcome: outcome, system: system, cluster: cluster, console: console, logger: logger)
    }

    // MARK: Steps

    /// 1. Kafka (the embedded cluster, or `--brokers`) and every topic.
    private func startKafka(console: DemoConsole, logger: Logger) async throws -> DemoCluster {
        let provisioned = try await TopicProvisioning.cluster(brokers: brokers, clientID: "oms-demo", logger: logger)
        if let brokers {
            console.say("Kafka at \(brokers): \(TopicCatalog.topics.count) topics ready; exactly-once")
        } else {
            console.say("embedded Kafka (librdkafka mock cluster, 3 brokers) at \(provisioned.bootstrap): \(TopicCatalog.topics.count) topics; at-least-once (the mock has no transactional offsets)")
        }
        var kafka = KafkaConfiguration(bootstrapServers: provisioned.bootstrap, clientID: "oms-demo")
        if provisioned.embedded != nil {
            // The embedded broker holds an empty fetch for the whole wait, and its one
            // thread polls every connection (~100 clients here) each time it wakes: at the
            // default 10 ms the idle demo kept 0.6 of a core busy, 100 ms cut the
            // 2,000-order run's CPU by 17 % and its time by 13 % (docs/BENCHMARKS.md).
            kafka.fetchWait = Self.embeddedFetchWait
        }
        return DemoCluster(bootstrap: provisioned.bootstrap, embedded: provisioned.embedded, kafka: kafka)
    }

    /// 2. Every stage and the gateway in one service group, running.
    private func startSystem(
        on cluster: DemoCluster, registry: PrometheusCollectorRegistry, console: DemoConsole, logger: Logger
    ) async throws -> DemoSystem {
        let rules = DemoLocations.rules(try RulesFile.load(path: RulesFile.defaultPath))
        let stages = StageRegistry.pipeline.map { $0.make(rules) }
        var settings = WorkerConfiguration(brokers: cluster.bootstrap, instanceID: "demo")
        settings.kafka.fetchWait = cluster.kafka.fetchWait
        settings.mode = cluster.embedded == nil ? .exactlyOnce : .atLeastOnce
        settings.httpPort = nil
        settings.commitInterval = .milliseconds(20)
        // The demo reads no config file; the variable alone turns export on, as for the others.
        settings.otlpEndpoint = ProcessInfo.processInfo.environment["OTEL_EXPORTER_OTLP_ENDPOINT"].flatMap { $0.isEmpty ? nil : $0 }
        var services: [any Service] = []
        // First, so that it stops last (a group stops in reverse) and sends the final spans;
        // before the connectors make their HTTP clients, which keep the tracer of that moment.
        if let export = try TracingExport.service(settings, defaultServiceName: "oms-demo", logger: logger) { services.append(export) }
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
        gatewaySettings.locationSecrets = [DemoLocations.answering: DemoLocations.secret]
        gatewaySettings.fxRates = try? FXRates.load(path: FXRates.defaultPath)
        let gateway = try Gateway(
            configuration: gatewaySettings, kafka: cluster.kafka.with(clientID: "oms-demo-gateway"), statuses: statuses, registry: registry, logger: logger)
        let bound = AsyncStream.makeStream(of: Int.self)
        services.append(gateway.service(host: "127.0.0.1", port: port) { port in bound.continuation.yield(port) })
        let channels = LocalChannels()
        let channelsBound = AsyncStream.makeStream(of: Int.self)
        services.append(channels.service { port in channelsBound.continuation.yield(port) })
        let group = ServiceGroup(configuration: .init(
            services: services.map { .init(service: $0) }, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        let running = Task { try await group.run() }
        var boundPort = port
        for await value in bound.stream {
            boundPort = value
            break
        }
        var channelsPort = 0
        for await value in channelsBound.stream {
            channelsPort = value
            break
        }
        let mailbox = LocalMailbox()
        let smtpPort = try await mailbox.start()
        let connectors = try DemoConnectors(
            channels: channels, base: "http://127.0.0.1:\(channelsPort)", feeds: rules.stockFeeds, mailbox: mailbox, smtpPort: smtpPort,
            settings: settings, logger: logger)
        let subscription = try await connectors.subscribe(kafka: cluster.kafka.with(clientID: "oms-demo-webhooks"))
        for connector in connectors.services { await group.addServiceUnlessShutdown(connector) }
        let base = "http://127.0.0.1:\(boundPort)"
        console.say("\(stages.count) stages and the gateway started; operations dashboard: \(base)/ (reports: \(base)/v1/reports/orders)")
        console.say("channel, stock, email, SMS, webhooks and payments connectors started: local Shopify, SP-API, Twilio, Stripe and webhook receivers at \(connectors.base), SMTP at 127.0.0.1:\(smtpPort); the brand's ERP subscribed as \(subscription.subscriptionId)")
        return DemoSystem(group: group, running: running, gateway: gateway, base: base, connectors: connectors, subscription: subscription, rules: rules)
    }

    /// 3. The scenario, its catalog and stock, the views and levels followed; returns once
    /// every stage is ready.
    private func seed(count: Int, system: DemoSystem, cluster: DemoCluster, console: DemoConsole, logger: Logger) async throws -> DemoWorld {
        let kafka = cluster.kafka
        let run = DemoScenario.Run(name: String(UUID().uuidString.prefix(6)).lowercased(), number: Int.random(in: 1_000...9_999_999))
        let scenario = try DemoScenario(count: count, seed: seed, run: run)
        let views = try await GlobalTable.open(topic: OrderView.topic, kafka: kafka.with(clientID: "oms-demo-views"), logger: logger)
        let levels = try await GlobalTable.open(topic: InventoryLevel.topic, kafka: kafka.with(clientID: "oms-demo-levels"), logger: logger)
        // Followed from the start, not read at the end: the embedded broker keeps only
        // about 5 MiB per partition, and a long demo's timelines outgrow it.
        let timelines = try await GlobalTable.open(topic: CustomerTimeline.topic, kafka: kafka.with(clientID: "oms-demo-crm"), logger: logger)
        try await views.catchUp(timeout: .seconds(60))
        try await levels.catchUp(timeout: .seconds(60))
        try await timelines.catchUp(timeout: .seconds(60))
        let followers = Task {
            await withDiscardingTaskGroup { tasks in
                tasks.addTask { try? await views.follow() }
                tasks.addTask { try? await levels.follow() }
                tasks.addTask { try? await timelines.follow() }
            }
        }
        let sender = try DemoSender(kafka: kafka, base: system.base, logger: logger)
        try await sender.produce(scenario.seed)
        let skus = DemoScenario.regularSKUs + DemoScenario.scarceSKUs
        while !(system.gateway.isReady && skus.allSatisfy { levels.value($0) != nil }) {
            guard console.elapsed < .seconds(300) else { throw ValidationError("the stages did not get ready within 300 s") }
            try await Task.sleep(for: .milliseconds(100))
        }
        system.connectors.register(scenario)
        let before = DemoInventory(levels)
        console.say("catalog of \(skus.count) SKUs and stock at \(DemoScenario.locations.joined(separator: ", ")) loaded; every stage ready")
        return DemoWorld(
            scenario: scenario, views: views, timelines: timelines, levels: levels, followers: followers, sender: sender, before: before,
            locations: DemoLocations(views: views, planned: Set(scenario.orders.filter(\.expectsView).map(\.orderId)), sender: sender))
    }

    /// 4. Traffic, follow-ups and progress, until every order settled or `--settle` ran out.
    private func drive(_ world: DemoWorld, count: Int, rules: BusinessRules, registry: PrometheusCollectorRegistry, console: DemoConsole) async throws -> DemoOutcome {
        let (scenario, sender, rate) = (world.scenario, world.sender, rate)
        console.say("sending \(count) orders at \(rate)/s: \(Dictionary(grouping: scenario.orders, by: \.route).map { "\($0.value.count) \($0.key.rawValue)" }.sorted().joined(separator: ", "))")
        let driver = DemoDriver(scenario: scenario, sender: sender, views: world.views, rmaValidDays: rules.returns.rmaValidDays)
        let progress = DemoProgress(registry: registry, views: world.views, scenario: scenario, sender: sender)
        let clock = ContinuousClock()
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
        // Progress on its own clock: a round of follow-ups can take longer than 2 s.
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(2))
                if Task.isCancelled { break }
                console.say(await progress.line())
            }
        }
        defer { ticker.cancel() }
        var settled = false
        var settleDeadline: ContinuousClock.Instant?
        // 3PL-CENTRAL's WMS answers on its own clock, as a real one would.
        let wms = Task {
            while !Task.isCancelled {
                await world.locations.tick()
                try? await Task.sleep(for: .milliseconds(250))
            }
        }
        defer { wms.cancel() }
        while true {
            await driver.tick()
            if settleDeadline == nil, await sender.sentOrders >= count {
                settleDeadline = clock.now + .seconds(settle)
                // Every order is in: the supplier's delivery fills the backorders waiting for it.
                await world.locations.restock()
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
        ticker.cancel()
        await traffic.value
        console.say(await progress.line())
        console.say(settled ? "every order settled; checking the invariants" : "not every order settled within --settle \(settle) s; checking anyway")
        return DemoOutcome(driver: driver, settled: settled, elapsed: (clock.now - sendStart).seconds)
    }

    /// 5. The summary, the shutdown (the stages stop before the broker goes, whatever
    /// happens) and the verdict, printed last.
    private func finish(
        _ world: DemoWorld, outcome: DemoOutcome, system: DemoSystem, cluster: DemoCluster, console: DemoConsole, logger: Logger
    ) async throws {
        let summary: DemoSummary
        do {
            // The feeds hold increases back (`minIntervalSeconds`) and the stock connector
            // trails the pipeline on a loaded machine: the last returns' restocks reached
            // the channels 37 s to over 60 s after the orders settled. That wait is on a
            // timer, not the CPU, so the other checks' scans run meanwhile.
            async let stock = system.connectors.stockInvariant(levels: world.levels, timeout: .seconds(180))
            let channels = await system.connectors.invariant(views: world.views, scenario: world.scenario, timeout: .seconds(60))
            // Every notification goes through two connectors (email, sms), each writing
            // its ledger: they trail the pipeline most on a loaded machine.
            let notifications = await system.connectors.notificationInvariants(
                kafka: cluster.kafka.with(clientID: "oms-demo-notifications"), logger: logger, timeout: .seconds(180))
            let rest = [
                await system.connectors.webhookInvariant(system.subscription, kafka: cluster.kafka.with(clientID: "oms-demo-webhooks"), logger: logger, timeout: .seconds(60)),
                await system.connectors.paymentInvariant(kafka: cluster.kafka.with(clientID: "oms-demo-payments"), logger: logger, timeout: .seconds(60)),
                await DemoInvoices.invariant(kafka: cluster.kafka.with(clientID: "oms-demo-invoices"), logger: logger, timeout: .seconds(60)),
                await world.locations.invariant(views: world.views, planned: Set(world.scenario.orders.filter(\.expectsView).map(\.orderId))),
                DemoLocations.backorderInvariant(levels: world.levels, restocked: await world.locations.restocked),
                DemoLocations.preorderInvariant(views: world.views, scenario: world.scenario),
            ]
            let outbound = [channels, await stock] + notifications + rest
            summary = try await DemoSummary.make(
                scenario: world.scenario, driver: outcome.driver, sender: world.sender, views: world.views, timelines: world.timelines, levels: world.levels,
                before: world.before, settled: outcome.settled, elapsed: outcome.elapsed, outbound: outbound, kafka: cluster.kafka, logger: logger)
        } catch {
            world.followers.cancel()
            await system.group.triggerGracefulShutdown()
            try? await system.running.value
            throw error
        }
        if let summaryJson {
            try Data(try summary.json()).write(to: URL(fileURLWithPath: summaryJson))
            console.say("summary written to \(summaryJson)")
        }
        world.followers.cancel()
        if keepRunning {
            Self.emit(summary.text)
            Self.emit("""

                The stages and the gateway keep running; Ctrl-C stops them. Try:
                  curl -s \(system.base)/v1/orders/\(world.scenario.orders.first(where: \.expectsView)?.orderId ?? "ORDER-ID")
                  curl -s \(system.base)/v1/inventory/SCARCE-1
                  curl -s \(system.base)/metrics | grep oms_stage_records_in_total
                  KAFKA_BROKERS=\(cluster.bootstrap) .build/debug/oms orders list --status held
                """)
            try await system.running.value
        } else {
            await system.group.triggerGracefulShutdown()
            try await system.running.value
        }
        await world.views.close()
        await world.levels.close()
        await world.timelines.close()
        await world.sender.close()
        // Every client is gone before the process ends (none is left to log that its
        // broker went away), and the verdict is the last thing printed.
        if cluster.embedded != nil, !(await KafkaLibrary.waitForClientsToClose(leaving: 1, timeout: .seconds(15))) {
            // Said, not logged at warning level (the demo logs errors only): a client left
            // open costs this wait on every run.
            Self.emit("Kafka clients still open at shutdown after 15 s: \(KafkaLibrary.openClients - 1)")
        }
        if !keepRunning { Self.emit(summary.text) }
        if cluster.embedded != nil {
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

/// Progress lines with the time since the demo started.
private struct DemoConsole {
    let started = ContinuousClock.now

    /// Time since the demo started.
    var elapsed: Duration { ContinuousClock.now - started }

    /// Prints `[  12.3s] line`.
    func say(_ line: String) {
        DemoCommand.emit(String(format: "[%6.1fs] ", elapsed.seconds) + line)
    }
}

/// The Kafka the demo runs on.
private struct DemoCluster {
    let bootstrap: String
    /// Set when the demo runs the embedded cluster; it lives as long as this does.
    let embedded: EmbeddedKafka?
    let kafka: KafkaConfiguration
}

/// The running stages and gateway.
private struct DemoSystem {
    let group: ServiceGroup
    let running: Task<Void, any Error>
    let gateway: Gateway
    /// The gateway's address, `http://127.0.0.1:<port>`.
    let base: String
    /// The outbound connectors and the receivers they talk to.
    let connectors: DemoConnectors
    /// The brand ERP's webhook subscription.
    let subscription: WebhookSubscription
    /// The rules the stages run with.
    let rules: BusinessRules
}

/// The scenario and what the demo watches it through.
private struct DemoWorld {
    let scenario: DemoScenario
    let views: GlobalTable
    let timelines: GlobalTable
    let levels: GlobalTable
    let followers: Task<Void, Never>
    let sender: DemoSender
    let before: DemoInventory
    /// The locations that answer (or do not) and the supplier.
    let locations: DemoLocations
}

/// How the traffic ended.
private struct DemoOutcome {
    let driver: DemoDriver
    let settled: Bool
    /// Seconds from the first order sent to the end of the wait.
    let elapsed: Double
}

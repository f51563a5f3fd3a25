import ArgumentParser
import Contracts
import Fleet
import Foundation
import Kafka
import Logging
import ReferenceStages
import ServiceLifecycle
import Workers

/// `oms bench-stage`: the stage runtime's throughput against a `kcat -C | kcat -P` pipe,
/// and the cost of restoring idempotency keys, on one broker with transactions, or at
/// least once on the embedded broker.
struct StageBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-stage",
        abstract: "Measure the pass-through stage against a kcat consume | produce pipe, and idempotency-key restore.",
        discussion: """
            With --brokers, a broker with transactions (scripts/bench-stage starts a fresh noida-db); without, the \
            embedded broker (librdkafka's mock cluster, in this process), at least once only: it has no correct \
            read_committed, and it keeps 5 MiB per partition, too little for the restore. Per run: N enveloped \
            events are written to a fresh input topic; a `kcat -C -e | kcat -P` pipe copies key and value to an \
            output topic; then the pass-through stage copies the same input, once per mode (exactly once at each \
            commit interval, and at least once), timed from the moment it owns its partitions (restore done) to the \
            moment its consumed offsets for all N inputs are committed. Then K idempotency keys are written and a \
            runner's restore of them is timed against kcat reading the same partitions, and the memory they take \
            (resident set growth) is set against their raw key bytes.
            """
    )

    @Option(help: "A broker with transactions; without it, the embedded broker (at least once, no restore).")
    var brokers: String?

    @Option(help: "Events per run (0 skips the throughput measurement).")
    var events = 100_000

    @Option(help: "Runs; the median is reported.")
    var runs = 3

    @Option(help: "Idempotency keys for the restore measurement (0 skips it; default 1000000 with --brokers, else 0).")
    var keys: Int?

    @Option(help: "Partitions of the input topic, at most oms.idempotency's 6.")
    var partitions: Int32 = 6

    func run() async throws {
        let keys = keys ?? (brokers == nil ? 0 : 1_000_000)
        guard events >= 0, runs > 0, (1...6).contains(partitions), keys >= 0 else {
            throw ValidationError("--runs must be positive, --partitions 1...6, --events and --keys not negative")
        }
        guard brokers != nil || keys == 0 else {
            throw ValidationError("--keys needs --brokers: the embedded broker keeps 5 MiB per partition, less than the keys take")
        }
        var logger = Logger(label: "oms.bench")
        logger.logLevel = .warning
        let cluster = try await BenchCluster(
            brokers: brokers, catalogTopics: [TopicCatalog.idempotencyTopic, TopicCatalog.deadLetterTopic], logger: logger)
        let runID = String(UUID().uuidString.prefix(6)).lowercased()
        if events > 0 {
            try await throughputBenchmark(cluster, runID: runID, logger: logger)
        }
        if let admin = cluster.admin, keys > 0 {
            try await restoreBenchmark(keys: keys, kafka: cluster.kafka, admin: admin, runID: runID, logger: logger)
        }
        await cluster.finish()
    }

    // MARK: Throughput

    private func throughputBenchmark(_ cluster: BenchCluster, runID: String, logger: Logger) async throws {
        // The last is unsafe (no write-ahead intents): it is there to show what they cost.
        let exactlyOnce: [(String, DeliveryMode, Duration, intents: Bool)] = [
            ("exactly once, commit every 10 ms", .exactlyOnce, .milliseconds(10), true),
            ("exactly once, commit every 100 ms", .exactlyOnce, .milliseconds(100), true),
            ("exactly once, commit every 1000 ms", .exactlyOnce, .milliseconds(1000), true),
        ]
        let atLeastOnce: [(String, DeliveryMode, Duration, intents: Bool)] = [
            ("at least once, commit every 100 ms", .atLeastOnce, .milliseconds(100), true),
            ("at least once without intents (unsafe), commit every 100 ms", .atLeastOnce, .milliseconds(100), false),
        ]
        let modes = (cluster.embedded == nil ? exactlyOnce : []) + atLeastOnce
        let brokers = cluster.bootstrap
        say("broker \(self.brokers ?? "embedded (librdkafka mock, 3 brokers, in this process)"); \(events) events per run, \(partitions) partitions, \(runs) run(s)")
        var results: [String: [Double]] = [:]
        for run in 1...runs {
            let input = "bench-\(runID)-in-\(run)"
            try await cluster.createTopics([input, "\(input)-kcat"], partitions: partitions)
            try await Self.produceEvents(events, to: input, kafka: cluster.kafka, logger: logger)
            results["kcat pipe", default: []].append(try Self.timePipe(brokers: brokers, from: input, to: "\(input)-kcat", count: events))
            for (index, (name, mode, interval, intents)) in modes.enumerated() {
                let output = "\(input)-out-\(index)"
                try await cluster.createTopics([output], partitions: partitions)
                var settings = WorkerConfiguration(brokers: brokers, instanceID: "bench")
                settings.mode = mode
                settings.commitInterval = interval
                settings.writesIntents = intents
                settings.httpPort = nil
                settings.statisticsInterval = nil
                let stage = PassThroughStage(name: "bench-\(runID)-\(run)-\(index)", input: input, output: output)
                results[name, default: []].append(try await Self.timeStage(stage, settings: settings, count: events, logger: logger))
            }
            say("run \(run): " + (["kcat pipe"] + modes.map(\.0)).map { "\($0) \(BenchCommand.rate(events, results[$0]!.last!))" }.joined(separator: "; "))
        }
        let median = results.mapValues { $0.sorted()[$0.count / 2] }
        let pipe = median["kcat pipe"]!
        say("")
        say("| pipeline | seconds (median) | events/s | ratio to the kcat pipe |")
        say("|---|---|---|---|")
        say(String(format: "| kcat -C -e \\| kcat -P | %.3f | %.0f | 1.00 |", pipe, Double(events) / pipe))
        for (name, _, _, _) in modes {
            let seconds = median[name]!
            say(String(format: "| pass-through stage, %@ | %.3f | %.0f | **%.2f** |", name, seconds, Double(events) / seconds, pipe / seconds))
        }
    }

    // MARK: Restore

    private func restoreBenchmark(keys: Int, kafka: KafkaConfiguration, admin: KafkaAdmin, runID: String, logger: Logger) async throws {
        let brokers = kafka.bootstrapServers
        let stageName = "restore-\(runID)"
        say("")
        say("writing \(keys) idempotency keys of stage \(stageName)…")
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(kafka: kafka), logger: logger)
        let now = Date()
        var rawKeyBytes = 0
        for index in 0..<keys {
            let key = UUID().uuidString.lowercased()
            rawKeyBytes += key.utf8.count
            let record = IdempotencyRecord(stage: stageName, key: key, eventId: key, processedAt: now, expiresAt: now.addingTimeInterval(86_400))
            let envelope = Envelope(id: DeterministicID.eventID(inputEventID: key, stage: "\(stageName).idempotency", outputIndex: 0), source: "oms/\(stageName)", time: now, event: record.event)
            var message = try KafkaProducerMessage(envelope, topic: TopicCatalog.idempotencyTopic, partition: Int32(index % 6))
            message.headers.append(KafkaHeader(name: IdempotencyHeader.expiresAt, string: String(record.expiresAt.millisecondsSince1970)))
            try await producer.enqueue(message)
        }
        try await producer.close(timeout: .seconds(300))
        let marks = try KafkaConsumer(configuration: KafkaConsumerConfiguration(kafka: kafka, groupID: "oms-bench-marks"), logger: logger)
        var total = 0
        for partition: Int32 in 0..<6 {
            let range = try await marks.watermarks(topic: TopicCatalog.idempotencyTopic, partition: partition)
            total += Int(range.high - range.low)
        }
        try await marks.close()
        say("the idempotency topic holds \(total) records (all stages); restoring…")

        let input = "bench-\(runID)-restore-in"
        try await admin.createTopics([input], partitions: 6)
        var settings = WorkerConfiguration(brokers: brokers, instanceID: "bench")
        settings.httpPort = nil
        settings.statisticsInterval = nil
        // kcat and the runner take turns, so that the broker's own background work (noida-db
        // saves what was just written) falls on both alike; medians of `runs` each.
        var kcatSeconds: [Double] = []
        var readySeconds: [Double] = []
        var grown = 0
        for run in 1...runs {
            kcatSeconds.append(try BenchCommand.timeProcess("kcat", ["-C", "-b", brokers, "-t", TopicCatalog.idempotencyTopic, "-o", "beginning", "-e", "-q", "-X", "isolation.level=read_committed",
                // noida-db answers with whole partitions, past librdkafka's default limit.
                "-X", "receive.message.max.bytes=1000000000"]))
            let before = Self.residentBytes()
            let runner = StageRunner(stage: PassThroughStage(name: stageName, input: input, output: input), configuration: settings, logger: logger)
            let start = ContinuousClock.now
            let group = ServiceGroup(configuration: .init(services: [.init(service: runner)], logger: logger))
            let task = Task { try await group.run() }
            // When it began reading: what comes before is connecting, fencing and joining.
            var restoring: Duration?
            while !(runner.status.isReady && runner.status.partitions == 6) {
                if restoring == nil, runner.status.phase == .restoring { restoring = ContinuousClock.now - start }
                try await Task.sleep(for: .milliseconds(10))
            }
            readySeconds.append((ContinuousClock.now - start).seconds)
            // The first run's growth: later runs reuse what the earlier ones freed.
            if run == 1 { grown = Self.residentBytes() - before }
            await group.triggerGracefulShutdown()
            try await task.value
            say(String(format: "run %d: kcat %.2f s, runner %.2f s (reading from %.2f s)", run, kcatSeconds.last!, readySeconds.last!, restoring?.seconds ?? .nan))
        }
        let kcat = kcatSeconds.sorted()[runs / 2]
        let restore = readySeconds.sorted()[runs / 2]

        say("")
        say("| restore of \(keys) idempotency keys (\(total) records in the topic), median of \(runs) | seconds | ratio |")
        say("|---|---|---|")
        say(String(format: "| kcat -C -e, read_committed, all 6 partitions (reference) | %.2f | 1.00 |", kcat))
        say(String(format: "| runner start → ready (join, read, index) | %.2f | %.2f × kcat |", restore, restore / kcat))
        say("")
        say("| memory | bytes | per key | ratio |")
        say("|---|---|---|---|")
        say("| raw key bytes (reference) | \(rawKeyBytes) | \(rawKeyBytes / keys) | 1.00 |")
        say(String(format: "| resident set growth, start → ready (first run) | %d | %d | %.1f × raw |", grown, grown / keys, Double(grown) / Double(rawKeyBytes)))
    }

    // MARK: Pieces

    static func produceEvents(_ count: Int, to topic: String, kafka: KafkaConfiguration, logger: Logger) async throws {
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(kafka: kafka), logger: logger)
        for index in 0..<count {
            let bucket = ReportBucket(report: "bench", bucket: "key-\(index % 10_000)", values: ["n": Int64(index)], updatedAt: Date())
            let envelope = Envelope(id: UUID().uuidString.lowercased(), source: "bench", time: Date(), event: bucket.event)
            try await producer.enqueue(try KafkaProducerMessage(envelope, topic: topic))
        }
        try await producer.close(timeout: .seconds(300))
    }

    /// `kcat -C -e | kcat -P`, copying key and value (JSON has no tab or newline).
    static func timePipe(brokers: String, from input: String, to output: String, count: Int) throws -> Double {
        let script = """
            kcat -C -b \(brokers) -t \(input) -o beginning -e -q -K '\t' -X isolation.level=read_committed \
            | kcat -P -b \(brokers) -t \(output) -K '\t' -X enable.idempotence=true -X acks=all -X linger.ms=5
            """
        return try BenchCommand.timeProcess("sh", ["-c", script])
    }

    /// Runs the stage until its committed offsets cover `count` inputs; the time counts
    /// from the moment it owns every partition.
    static func timeStage(_ stage: PassThroughStage, settings: WorkerConfiguration, count: Int, logger: Logger) async throws -> Double {
        let runner = StageRunner(stage: stage, configuration: settings, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [.init(service: runner)], logger: logger))
        let task = Task { try await group.run() }
        let partitions = try await KafkaAdmin(configuration: settings.kafka, logger: logger).partitionCounts()[stage.inputTopics[0]] ?? 0
        while !(runner.status.isReady && runner.status.partitions == Int(partitions)) {
            try await Task.sleep(for: .milliseconds(5))
        }
        let start = ContinuousClock.now
        let watcher = try KafkaConsumer(configuration: KafkaConsumerConfiguration(kafka: settings.kafka, groupID: runner.groupID), logger: logger)
        let parts = (0..<partitions).map { KafkaTopicPartition(topic: stage.inputTopics[0], partition: $0) }
        var done = false
        while !done {
            try await Task.sleep(for: .milliseconds(20))
            let committed = try await watcher.committed(parts)
            done = committed.reduce(0) { $0 + max(Int($1.offset), 0) } >= count
            if ContinuousClock.now - start > .seconds(600) { throw ValidationError("stage \(stage.name) did not finish within 600 s") }
        }
        let elapsed = (ContinuousClock.now - start).seconds
        try await watcher.close()
        await group.triggerGracefulShutdown()
        try await task.value
        return elapsed
    }

    /// The process's resident set, from /proc.
    static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}

extension KafkaAdmin {
    func createTopics(_ names: [String], partitions: Int32) async throws {
        for name in names {
            _ = try await createTopic(KafkaTopicSpec(name: name, partitions: partitions, replicationFactor: 1))
        }
    }
}

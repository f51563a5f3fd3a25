import Contracts
import Foundation
import Kafka
import Logging
import Metrics
import ServiceLifecycle
import StageMachine
import Synchronization
import Workers

/// Why a runner's Kafka session ended. A restartable failure starts a new session in the
/// same process after a backoff; any other stops the runner, and the process exits
/// non-zero so that its supervisor restarts it.
public struct WorkerFailure: Error, Sendable, CustomStringConvertible {
    /// What happened.
    public var message: String
    /// Whether a new session may get past it (a failed delivery, a broken producer);
    /// false for configuration errors and for a newer instance that took over.
    public var restartable: Bool
    /// A failure; not restartable unless said.
    public init(message: String, restartable: Bool = false) {
        self.message = message
        self.restartable = restartable
    }
    /// `message`.
    public var description: String { message }
}

/// Set once graceful shutdown starts; read by the runner's loops.
package final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    package init() {}
    package var isSet: Bool { flag.load(ordering: .relaxed) || Task.isCancelled }
    package func set() { flag.store(true, ordering: .relaxed) }
}

/// Runs one ``Stage`` as a member of the consumer group `oms.<stage>`: the fleet's
/// runtime (docs/ARCHITECTURE.md, "Stages and the runtime").
///
/// What to do with records, rebalances and failures is decided by a
/// `StageMachine.RunnerMachine` (ARCHITECTURE.md, *The runner machine*): exactly once
/// with Kafka transactions, at least once with write-ahead intents. The session here is
/// its driver: it polls, performs the machine's actions on librdkafka one at a time and
/// feeds their outcomes back, and turns what happened into metrics, logs and status.
///
/// Conforms to swift-service-lifecycle's `Service`: on graceful shutdown it finishes the
/// batch, commits, leaves the group and flushes.
public final class StageRunner<S: Stage>: Service, Sendable {
    /// The stage run.
    public let stage: S
    /// Its settings.
    public let configuration: WorkerConfiguration
    /// What `/healthz` and `/readyz` report.
    public let status: RunnerStatus
    private let logger: Logger

    /// Creates a runner; ``run()`` connects.
    public init(stage: S, configuration: WorkerConfiguration, logger: Logger? = nil) {
        self.stage = stage
        self.configuration = configuration
        status = RunnerStatus(stage: stage.name)
        metrics = StageMetrics(stage: stage.name)
        var logger = logger ?? Logger(label: "oms.worker")
        logger[metadataKey: "stage"] = "\(stage.name)"
        self.logger = logger
    }

    /// The consumer group: `oms.<stage>`.
    public var groupID: String { "oms.\(stage.name)" }

    /// Runs until graceful shutdown (returns) or a failure that a new session cannot
    /// get past (throws): a retriable or restartable error never ends it.
    public func run() async throws {
        status.set(.starting)
        let stopping = StopFlag()
        try await withGracefulShutdownHandler {
            try await self.runSessions(stopping: stopping)
        } onGracefulShutdown: {
            stopping.set()
        }
    }

    /// One Kafka session after another: a session that fails in a way a fresh one can
    /// get past (Kafka away for longer than the clients wait, a failed delivery at least
    /// once, a broken idempotent producer) is replaced after an exponential backoff,
    /// while `/readyz` says not ready and `oms_stage_stalled` is 1.
    private func runSessions(stopping: StopFlag) async throws {
        var restarts = 0
        while true {
            let started = ContinuousClock.now
            do {
                let session = try await RunnerSession(runner: self, stopping: stopping)
                do {
                    try await session.run()
                    status.set(.stopping)
                    try await session.finish()
                } catch {
                    await session.abandon()
                    throw error
                }
                status.set(.stopped)
                metrics.stalled.record(0)
                logger.info("stopped")
                return
            } catch {
                if stopping.isSet {
                    status.set(.stopped)
                    logger.info("stopped", metadata: ["last_error": "\(error)"])
                    return
                }
                guard Self.isRestartable(error) else {
                    status.set(.failed)
                    logger.critical("worker failed", metadata: ["error": "\(error)"])
                    throw error
                }
                if ContinuousClock.now - started > .seconds(60) { restarts = 0 }
                restarts += 1
                let delay = Backoff.delay(base: configuration.retryBackoff, attempt: restarts, cap: .seconds(30))
                status.set(.stalled)
                metrics.stalled.record(1)
                metrics.restarts.increment()
                logger.error("worker session failed; starting a new one in this process", metadata: [
                    "error": "\(error)", "restart": "\(restarts)", "delay_ms": "\(delay.milliseconds)",
                ])
                await Backoff.sleep(delay, unless: stopping)
            }
        }
    }

    /// Whether a new session may get past `error`: everything but configuration errors,
    /// a newer instance with the same id (fencing it back would only start a fight) and
    /// cancellation.
    static func isRestartable(_ error: any Error) -> Bool {
        switch error {
        case let failure as WorkerFailure: return failure.restartable
        case let kafka as KafkaError: return !kafka.isFenced && kafka.code != .invalidArgument
        case is CancellationError: return false
        default: return true
        }
    }

    /// Failures of writes across sessions, to find the record that keeps failing.
    let recordFailures = Mutex(RecordFailures())
    let metrics: StageMetrics

    fileprivate var log: Logger { logger }
}

/// One connected run of a ``StageRunner``: its clients and the state of its partitions.
/// Used by one task only.
private final class RunnerSession<S: Stage> {
    let stage: S
    let settings: WorkerConfiguration
    let status: RunnerStatus
    let logger: Logger
    let metrics: StageMetrics
    let producer: KafkaProducer
    let consumer: KafkaConsumer
    let reader: PartitionReader
    let tables: [String: GlobalTable]
    let tableTasks: [Task<Void, Never>]
    let transactional: Bool
    let clock = ContinuousClock()
    let stopping: StopFlag
    /// Its ``StageRunner/recordFailures`` survive a restart of the session.
    let runner: StageRunner<S>
    /// The largest record each output topic takes.
    let limits: KafkaRecordSizeLimits
    let limitsTask: Task<Void, Never>

    /// The runtime's semantics: partitions, state, keys, batches, rewinds.
    var machine: RunnerMachine<S>
    /// The records of the open batch, by position: dead letters keep their bytes.
    var batch: [RecordPosition: KafkaMessage] = [:]
    /// The Kafka records the machine's size check encoded, until they are written.
    let encoded = EncodedRecordCache()
    /// The tracing spans of the records fetched and not yet committed (none untraced).
    var spans = RecordSpans.none
    /// When a commit became pending (a batch opened, or offsets to commit again): the commit interval counts from there.
    var commitPendingSince: ContinuousClock.Instant?
    var commitStarted: ContinuousClock.Instant?
    var restoreStarted: ContinuousClock.Instant?
    var lastTick = ContinuousClock.now
    /// The committed offset of each owned input partition, for the lag gauges.
    var committed: [KafkaTopicPartition: Int64] = [:]
    var lastLagReport = ContinuousClock.now
    var subscribed = ContinuousClock.now
    /// The group's `max.poll.interval.ms`: a member that does not poll within it is
    /// dropped and its partitions given to another.
    let pollInterval: Duration
    /// When the consumer was last polled; past half the poll interval no action is
    /// performed (``RunnerMachine/Event/pollIntervalExceeded``).
    var lastPoll = ContinuousClock.now

    init(runner: StageRunner<S>, stopping: StopFlag) async throws {
        stage = runner.stage
        settings = runner.configuration
        status = runner.status
        logger = runner.log
        metrics = runner.metrics
        self.runner = runner
        self.stopping = stopping
        transactional = settings.mode == .exactlyOnce
        let group = runner.groupID
        var kafka = settings.kafka
        kafka.clientID = "\(group).\(settings.instanceID)"

        let admin = try KafkaAdmin(configuration: kafka, logger: logger)
        let counts = try await admin.partitionCounts()
        try Self.checkTopics(stage, counts: counts)
        // Until the broker answers (or for brokers that never do), the defaults stand.
        let limits = KafkaRecordSizeLimits(kafka: kafka)
        self.limits = limits
        let logger = logger
        let topics = counts.keys.sorted()
        limitsTask = Task { await limits.load(topics: topics, admin: admin, logger: logger) }

        pollInterval = kafka.properties["max.poll.interval.ms"].flatMap(Int.init).map { .milliseconds($0) } ?? settings.maxPollInterval
        var producerSettings = KafkaProducerConfiguration(kafka: kafka)
        if !transactional {
            // A record queued before the poll-interval check lands or fails before the
            // group can hand its partition on (half the interval): a zombie's late write
            // would give an id a second content, and at least once nothing fences it.
            producerSettings.messageTimeout = min(producerSettings.messageTimeout, pollInterval / 2)
        }
        if transactional {
            producerSettings.transactionalID = kafka.clientID
            producerSettings.transactionTimeout = settings.transactionTimeout
            // librdkafka requires it: a record may not outlive its transaction.
            producerSettings.messageTimeout = min(producerSettings.messageTimeout, settings.transactionTimeout)
        }
        producer = try KafkaProducer(configuration: producerSettings, logger: logger)
        if transactional {
            // Fences a dead predecessor with the same instance id and aborts its open
            // transaction, so that readers are not held at its last stable offset.
            try await producer.initTransactions()
        }

        var tables: [String: GlobalTable] = [:]
        for topic in stage.globalTables {
            let table = try GlobalTable(topic: topic, partitions: counts[topic] ?? 0, kafka: kafka, logger: logger)
            try await table.catchUp(timeout: settings.restoreTimeout)
            tables[topic] = table
        }
        self.tables = tables
        tableTasks = tables.values.map { table in Task { try? await table.follow() } }
        machine = RunnerMachine(
            stage: stage, strategy: transactional ? ExactlyOnceStrategy() : AtLeastOnceStrategy(writesIntents: settings.writesIntents),
            settings: .init(batchSize: settings.batchSize, retryAttempts: settings.retryAttempts, retention: settings.idempotencyRetention),
            failures: runner.recordFailures.withLock { $0 },
            tables: { topic, key in tables[topic]?.value(key) },
            oversize: { [limits, changelog = stage.changelogTopic, encoded] record in
                Self.oversize(record, limits: limits, changelog: changelog, encoded: encoded)
            })

        var consumerKafka = kafka
        consumerKafka.statisticsInterval = settings.statisticsInterval
        var consumerSettings = KafkaConsumerConfiguration(kafka: consumerKafka, groupID: group)
        consumerSettings.maxBatchSize = settings.batchSize
        consumerSettings.sessionTimeout = settings.sessionTimeout
        consumerKafka.properties["max.poll.interval.ms"] = String(pollInterval.milliseconds)
        if settings.staticMembership {
            consumerKafka.properties["group.instance.id"] = settings.instanceID
        }
        consumerSettings.kafka = consumerKafka
        // A stateful stage with several inputs needs partition N of every input on the
        // member that owns state partition N; range assignment gives that (equal
        // partition counts), the others do not.
        let needsRange = stage.inputTopics.count > 1 && stage.changelogTopic != nil
        consumerSettings.assignmentStrategy = needsRange ? "range" : settings.assignmentStrategy
        consumer = try KafkaConsumer(configuration: consumerSettings, logger: logger)
        if settings.statisticsInterval != nil {
            // Without statistics an all-brokers-down error would never be seen to end.
            status.set(kafkaReachable: { [consumer] in consumer.brokersReachable })
        }
        reader = try PartitionReader(
            kafka: kafka, name: "\(kafka.clientID).restore", batchSize: 10_000, logger: logger, restoring: true,
            stableWait: settings.transactionTimeout + .seconds(5))
        try consumer.subscribe(topics: stage.inputTopics)
        subscribed = clock.now
        logger.info("joined group", metadata: ["group": "\(group)", "mode": "\(settings.mode.rawValue)", "inputs": "\(stage.inputTopics)"])
    }

    /// Every topic the stage touches must exist, and the changelog and idempotency topics
    /// must have a partition for every input partition.
    static func checkTopics(_ stage: S, counts: [String: Int32]) throws(WorkerFailure) {
        var needed = stage.inputTopics + stage.globalTables + [TopicCatalog.idempotencyTopic, TopicCatalog.deadLetterTopic]
        if let changelog = stage.changelogTopic { needed.append(changelog) }
        let missing = needed.filter { counts[$0] == nil }
        guard missing.isEmpty else {
            throw WorkerFailure(message: "stage \(stage.name): missing topics \(missing.joined(separator: ", ")) (create them with `oms topics apply`)")
        }
        let inputPartitions = stage.inputTopics.compactMap { counts[$0] }.max() ?? 0
        for topic in [stage.changelogTopic, TopicCatalog.idempotencyTopic].compactMap({ $0 }) where counts[topic]! < inputPartitions {
            throw WorkerFailure(message: "stage \(stage.name): \(topic) has \(counts[topic]!) partitions but its inputs have \(inputPartitions); state for input partition N lives in partition N")
        }
    }

    // MARK: The loop

    /// The driver: polls, feeds what it gets to the machine, and performs the machine's
    /// actions until it has none; it decides nothing about the records itself.
    func run() async throws {
        while !stopping.isSet {
            if status.phase == .starting, clock.now - subscribed > .seconds(15) {
                // More members than partitions: no assignment comes; stand by, ready.
                status.set(.running)
            }
            if let started = commitPendingSince, clock.now - started >= settings.commitInterval {
                try await feed(.commitDue)
            }
            if let interval = stage.tickInterval, clock.now - lastTick >= interval {
                lastTick = clock.now
                try await feed(.tick(now: Date()))
            }
            if clock.now - lastLagReport >= .seconds(1) {
                lastLagReport = clock.now
                reportLag()
            }
            // An open transaction must not wait a whole poll timeout past its commit time:
            // downstream sees nothing of it until it commits.
            let wait = commitPendingSince.map { max(.zero, settings.commitInterval - (clock.now - $0)) } ?? .milliseconds(100)
            let events: [KafkaConsumerEvent]
            let polled = await kafkaResult({ () async throws(KafkaError) in try await consumer.poll(timeout: wait) })
            lastPoll = clock.now
            switch polled {
            case .success(let value):
                events = value
                stalls = 0
            case .failure(let error) where error.errorClass == .fatal:
                throw WorkerFailure(
                    message: "consumer failed: \(error)" + (error.isFenced ? " (fenced by a newer instance with the same worker.instance.id)" : ""),
                    restartable: !error.isFenced)
            case .failure(let error):
                // The consumer recovers by itself once the brokers answer again.
                await stall(during: "poll", failure(error))
                continue
            }
            for event in events {
                switch event {
                case .messages(let messages):
                    let start = clock.now
                    // Kept until the batch commits: at least once, its dead letters are
                    // encoded at commit time.
                    for message in messages { batch[RecordPosition(message)] = message }
                    let inputs = messages.map(Self.input)
                    spans.add(RecordSpans.start(stage: stage.name, messages: messages, inputs: inputs))
                    do {
                        try await feed(.fetched(inputs, now: Date()))
                    } catch {
                        spans.end(error: error)
                        throw error
                    }
                    metrics.batchLatency.recordInterval(since: start)
                case .assigned(let parts):
                    metrics.rebalances.increment()
                    if case .success(let offsets) = await kafkaResult({ () async throws(KafkaError) in try await consumer.committed(parts) }) {
                        for offset in offsets where offset.offset >= 0 { committed[offset.topicPartition] = offset.offset }
                    }
                    try await feed(.assigned(parts.map { TopicPartition(topic: $0.topic, partition: $0.partition) }))
                    status.set(partitions: machine.owned.count)
                    status.set(.running)
                case .revoked(let parts), .lost(let parts):
                    metrics.rebalances.increment()
                    for part in parts {
                        committed[part] = nil
                        metrics.lag(part).destroy()
                    }
                    try await feed(.revoked(parts.map { TopicPartition(topic: $0.topic, partition: $0.partition) }))
                    status.set(partitions: machine.owned.count)
                case .endOfPartition:
                    break
                }
            }
        }
    }

    /// Commits what is open, leaves the group, flushes.
    func finish() async throws {
        try await feed(.commitDue)
        try? await consumer.close()
        try? await producer.close()
        await closeHelpers()
    }

    /// Drops everything after a failure: the open transaction is never committed.
    func abandon() async {
        spans.end(error: WorkerFailure(message: "the session ended before its records were committed", restartable: true))
        try? await consumer.close()
        try? await producer.close(timeout: .seconds(1))
        await closeHelpers()
    }

    /// Consecutive failed attempts (polls, transactions, rewinds) with no progress between.
    var stalls = 0

    /// Reports that the runner cannot make progress and waits before the next attempt:
    /// exponential backoff from `worker.retry.backoff.ms` up to 5 s.
    private func stall(during operation: String, _ error: RuntimeFailure) async {
        stalls += 1
        status.set(.stalled)
        metrics.stalled.record(1)
        let delay = Backoff.delay(base: settings.retryBackoff, attempt: stalls, cap: .seconds(5))
        logger.warning("cannot make progress; retrying", metadata: [
            "operation": "\(operation)", "error": "\(error)", "class": "\(error.errorClass.rawValue)", "attempt": "\(stalls)", "delay_ms": "\(delay.milliseconds)",
        ])
        await Backoff.sleep(delay, unless: stopping)
    }

    /// Progress again after a stall.
    private func progressed() {
        guard stalls > 0 || status.phase == .stalled else { return }
        stalls = 0
        metrics.stalled.record(0)
        if status.phase == .stalled { status.set(.running) }
    }

    private func closeHelpers() async {
        status.set(kafkaReachable: nil)
        limitsTask.cancel()
        for task in tableTasks { task.cancel() }
        for table in tables.values { await table.close() }
        await reader.close()
    }

    // MARK: Performing the machine's actions

    /// Feeds one event and performs every action it leads to.
    private func feed(_ event: RunnerMachine<S>.Event) async throws {
        machine.handle(event)
        while true {
            if machine.busy, clock.now - lastPoll > pollInterval / 2 { machine.handle(.pollIntervalExceeded) }
            guard let action = machine.nextAction() else { break }
            let outcome = try await perform(action)
            machine.handle(outcome)
            observe()
        }
        observe()
        // A record's span lasts until what it led to is committed.
        if spans.count > 0, !machine.commitPending { spans.end() }
    }

    /// Performs one action; its outcome goes back to the machine. Throws only to end
    /// the session (the machine's stop, a cancelled wait).
    private func perform(_ action: RunnerMachine<S>.Action) async throws -> RunnerMachine<S>.Event {
        let result: Result<Void, KafkaError>
        switch action {
        case .restore(let partitions):
            return await restore(partitions)
        case .beginTransaction:
            result = Result { () throws(KafkaError) in try producer.beginTransaction() }
        case .produce(let records, let input):
            spans.wrote(records, input: input)
            let messages = encode(records, input: input)
            result = await kafkaResult { () async throws(KafkaError) in try await producer.enqueue(contentsOf: messages) }
        case .flush:
            if commitStarted == nil { commitStarted = clock.now }
            result = await kafkaResult { () async throws(KafkaError) in try await producer.flush() }
        case .commitTransaction(let offsets):
            if commitStarted == nil { commitStarted = clock.now }
            let offsets = Self.kafkaOffsets(offsets)
            result = await kafkaResult { () async throws(KafkaError) in
                if !offsets.isEmpty {
                    try await producer.sendOffsetsToTransaction(offsets, groupMetadata: try consumer.groupMetadata())
                }
                try await producer.commitTransaction()
            }
        case .commitOffsets(let offsets):
            let offsets = Self.kafkaOffsets(offsets)
            result = await kafkaResult { () async throws(KafkaError) in try await consumer.commit(offsets) }
        case .abortTransaction:
            result = await kafkaResult { () async throws(KafkaError) in try await producer.abortTransaction() }
        case .seekToCommitted(let parts):
            let parts = parts.map { KafkaTopicPartition(topic: $0.topic, partition: $0.partition) }
            result = await kafkaResult { () async throws(KafkaError) -> Void in
                let committed = try await consumer.committed(parts)
                let reset = KafkaTopicPartitionOffset.beginning
                try await consumer.seek(committed.map { KafkaTopicPartitionOffset(topic: $0.topic, partition: $0.partition, offset: $0.offset >= 0 ? $0.offset : reset) })
            }
            if case .failure(let error) = result, stopping.isSet {
                // A new session starts from the committed offsets; a stopping one commits nothing.
                throw WorkerFailure(message: "cannot rewind to the committed offsets: \(error)", restartable: true)
            }
        case .wait(.stall(let operation, let failure)):
            await stall(during: operation, failure)
            result = .success(())
        case .wait(.backoff(let attempt)):
            await Backoff.sleep(Backoff.delay(base: settings.retryBackoff, attempt: attempt, cap: .seconds(5)), unless: stopping)
            result = .success(())
        case .wait(.retryInput(let attempt)):
            try await Task.sleep(for: settings.retryBackoff * (1 << min(attempt - 1, 10)))
            result = .success(())
        case .stop(let reason):
            throw WorkerFailure(message: reason.message, restartable: reason.restartable)
        }
        switch result {
        case .success: return .succeeded
        case .failure(let error): return .failed(failure(error))
        }
    }

    /// A Kafka error as the machine classifies failures; a broken producer's own error
    /// is the cause that counts.
    private func failure(_ error: KafkaError) -> RuntimeFailure {
        let cause = producer.fatalError ?? error
        let errorClass: RuntimeFailure.Class =
            switch error.errorClass {
            case .retriable: .retriable
            case .abortable: .abortable
            case .fatal: .fatal
            case .recordRejected: .recordRejected
            }
        return RuntimeFailure(
            errorClass, message: "\(cause)", fenced: cause.isFenced, producerBroken: producer.fatalError != nil,
            retriable: error.isRetriable, requiresAbort: error.txnRequiresAbort)
    }

    static func kafkaOffsets(_ offsets: [TopicPartition: Int64]) -> [KafkaTopicPartitionOffset] {
        offsets.map { KafkaTopicPartitionOffset(topic: $0.key.topic, partition: $0.key.partition, offset: $0.value) }
    }

    static func input(_ message: KafkaMessage) -> InputRecord {
        let content: InputRecord.Content
        if message.value == nil, message.key != nil {
            return InputRecord(position: RecordPosition(message), content: .tombstone)
        }
        do {
            content = .envelope(try Envelope.decode(message.eventRecord))
        } catch {
            content = .undecodable("\(error)")
        }
        return InputRecord(position: RecordPosition(message), content: content)
    }

    /// Reads the changelog and idempotency partitions of `partitions` into the machine.
    private func restore(_ partitions: [Int32]) async -> RunnerMachine<S>.Event {
        status.set(.restoring)
        restoreStarted = clock.now
        var targets = partitions.map { KafkaTopicPartition(topic: TopicCatalog.idempotencyTopic, partition: $0) }
        if let changelog = stage.changelogTopic {
            targets += partitions.map { KafkaTopicPartition(topic: changelog, partition: $0) }
        }
        let projection = RestoreProjection(stage: stage.name, changelog: stage.changelogTopic)
        var undecodable = 0
        let result = await kafkaResult { () async throws(KafkaError) in
            try await reader.read(targets, timeout: settings.restoreTimeout, projecting: projection.restored) { restored in
                var records: [RestoredRecord] = []
                records.reserveCapacity(restored.count)
                for case let record? in restored { records.append(record) }
                undecodable += restored.count - records.count
                machine.handle(.restored(records))
            }
        }
        if undecodable > 0 {
            logger.error("undecodable changelog records skipped during restore", metadata: ["count": "\(undecodable)"])
        }
        KafkaLibrary.releaseFreedMemory()
        switch result {
        case .success:
            status.set(.running)
            return .succeeded
        case .failure(let error):
            return .failed(failure(error))
        }
    }

    /// The Kafka records of the machine's records. An outcome that cannot be encoded (a
    /// value JSON cannot hold; the contracts have none) becomes a dead letter.
    private func encode(_ records: [OutputRecord], input: RecordPosition?) -> [KafkaProducerMessage] {
        do {
            return try records.compactMap(message)
        } catch {
            logger.error("outcome cannot be encoded", metadata: ["error": "\(error)"])
            guard let input, let original = batch[input] else { return [] }
            return [deadLetter(original, error: "cannot encode the outcome: \(error)", attempts: 1, referenceOnly: false)]
        }
    }

    private func message(_ record: OutputRecord) throws -> KafkaProducerMessage? {
        if case .intent(let partition, let key, let records) = record {
            guard let records else {
                return KafkaProducerMessage(topic: TopicCatalog.idempotencyTopic, partition: partition, key: key, value: nil as String?)
            }
            let items = try records.compactMap { record in try message(record).map { (record, $0) } }
            return KafkaProducerMessage(
                topic: TopicCatalog.idempotencyTopic, partition: partition, key: Array(key.utf8), value: try IntentCodec.encode(items))
        }
        guard case .deadLetter(let input, let error, let attempts, let referenceOnly) = record else {
            return try Self.message(record, changelog: stage.changelogTopic, encoded: encoded)
        }
        guard let original = batch[input] else {
            logger.error("dead letter for a record no longer at hand", metadata: ["topic": "\(input.topic)", "offset": "\(input.offset)"])
            return nil
        }
        return deadLetter(original, error: error, attempts: attempts, referenceOnly: referenceOnly)
    }

    /// The Kafka record of an output, changelog or idempotency record (not a dead letter),
    /// from `encoded` when the size check already encoded it.
    static func message(_ record: OutputRecord, changelog: String?, encoded: EncodedRecordCache) throws -> KafkaProducerMessage? {
        try encoded.message(for: record) { try message(record, changelog: changelog) }
    }

    private static func message(_ record: OutputRecord, changelog: String?) throws -> KafkaProducerMessage? {
        switch record {
        case .output(let topic, let envelope):
            return try KafkaProducerMessage(envelope, topic: topic)
        case .state(let partition, let key, let envelope):
            guard let changelog else { return nil }
            guard let envelope else { return KafkaProducerMessage(topic: changelog, partition: partition, key: key, value: nil as String?) }
            return try KafkaProducerMessage(envelope, topic: changelog, partition: partition, key: key)
        case .idempotency(let partition, let key, let envelope, let expiresAt):
            guard let envelope else {
                return KafkaProducerMessage(topic: TopicCatalog.idempotencyTopic, partition: partition, key: key, value: nil as String?)
            }
            var message = try KafkaProducerMessage(envelope, topic: TopicCatalog.idempotencyTopic, partition: partition, key: key)
            // Restore reads the expiry from this header instead of decoding JSON.
            if let expiresAt { message.headers.append(KafkaHeader(name: IdempotencyHeader.expiresAt, string: String(expiresAt))) }
            return message
        case .encoded(let record):
            return KafkaProducerMessage(
                topic: record.topic, partition: record.partition, key: record.key, value: record.value,
                headers: record.headers.map { KafkaHeader(name: $0.name, value: $0.value) })
        case .deadLetter, .intent:
            return nil
        }
    }

    /// Why `record` can never be written: larger than its topic takes. Dead letters cut
    /// themselves to fit.
    static func oversize(_ record: OutputRecord, limits: KafkaRecordSizeLimits, changelog: String?, encoded: EncodedRecordCache) -> String? {
        if case .intent(_, let key, let records?) = record {
            // Its size from its records' (an upper bound) spares encoding the intent twice;
            // dead letters cut themselves to fit and are left out.
            let size = key.utf8.count + IntentCodec.size(of: records.lazy.compactMap { try? message($0, changelog: changelog, encoded: encoded) })
            let limit = limits.limit(for: TopicCatalog.idempotencyTopic)
            guard size > limit else { return nil }
            return "its at-least-once intent of up to \(size) bytes is over \(TopicCatalog.idempotencyTopic)'s limit of \(limit) bytes"
        }
        guard let message = try? message(record, changelog: changelog, encoded: encoded), !limits.fits(message) else { return nil }
        let size = KafkaRecordSizeLimits.size(of: message)
        return "a record of \(size) bytes for \(message.topic) is over that topic's limit of \(limits.limit(for: message.topic)) bytes (max.message.bytes, message.max.bytes)"
    }

    private func deadLetter(_ message: KafkaMessage, error: String, attempts: Int, referenceOnly: Bool) -> KafkaProducerMessage {
        let limit = referenceOnly ? 0 : limits.limit(for: TopicCatalog.deadLetterTopic)
        return DeadLetters.record(for: message, stage: stage.name, error: error, attempts: attempts, now: Date(), sizeLimit: limit)
    }

    /// Turns the machine's notes into metrics, logs and the runner's failure bookkeeping.
    private func observe() {
        if machine.commitPending {
            if commitPendingSince == nil { commitPendingSince = clock.now }
        } else {
            commitPendingSince = nil
            if !machine.busy {
                if !batch.isEmpty { batch.removeAll(keepingCapacity: true) }
                encoded.removeAll()
            }
        }
        for note in machine.takeNotes() {
            switch note {
            case .duplicate(let envelope):
                metrics.duplicates.increment()
                logger.debug("duplicate skipped", metadata: Self.metadata(envelope))
            case .processed(let envelope, let outputs):
                logger.debug("processed", metadata: Self.metadata(envelope).merging(["outputs": "\(outputs)"]) { $1 })
            case .retrying(let envelope, let attempt, let reason):
                metrics.retries.increment()
                logger.warning("retrying", metadata: Self.metadata(envelope).merging(["attempt": "\(attempt)", "reason": "\(reason)"]) { $1 })
            case .deadLettered(let position, let reason):
                metrics.deadLetters.increment()
                logger.warning("dead letter", metadata: [
                    "topic": "\(position.topic)", "partition": "\(position.partition)", "offset": "\(position.offset)", "error": "\(reason)",
                ])
            case .poisonPill:
                metrics.poisonPills.increment()
            case .recordIn:
                metrics.recordsIn.increment()
            case .recordsOut(let count):
                metrics.recordsOut.increment(by: count)
            case .timerFirings(let count):
                metrics.timerFirings.increment(by: count)
            case .committed(let offsets):
                for (part, offset) in offsets { committed[KafkaTopicPartition(topic: part.topic, partition: part.partition)] = offset }
                if let start = commitStarted { metrics.commitLatency.recordInterval(since: start) }
                commitStarted = nil
                progressed()
            case .commitRetry(let failure, let attempt):
                logger.warning("commit failed, retrying", metadata: ["error": "\(failure)", "attempt": "\(attempt)"])
            case .offsetCommitFailed(let failure):
                logger.warning("offset commit failed; the batch's inputs will be read again and skipped as duplicates", metadata: ["error": "\(failure)"])
            case .aborting(let operation, let failure):
                logger.warning("aborting transaction", metadata: ["operation": "\(operation)", "error": "\(failure)", "class": "\(failure.errorClass.rawValue)"])
            case .rewound:
                metrics.aborts.increment()
                commitStarted = nil
            case .idempotencyKeys(let count):
                metrics.idempotencyKeys.record(count)
            case .restoredPartitions(let partitions, let stateKeys, let idempotencyKeys, let records):
                if let start = restoreStarted { metrics.restoreTime.recordInterval(since: start) }
                metrics.restoredRecords.increment(by: records)
                let counts = machine.counts
                metrics.stateKeys.record(counts.state)
                metrics.idempotencyKeys.record(counts.keys)
                logger.info("restored", metadata: [
                    "partitions": "\(partitions)", "records": "\(records)",
                    "seconds": "\(restoreStarted.map { (clock.now - $0).seconds } ?? 0)",
                    "state_keys": "\(stateKeys)", "idempotency_keys": "\(idempotencyKeys)",
                ])
            case .failuresChanged(let failures):
                runner.recordFailures.withLock { $0 = failures }
            }
        }
    }

    static func metadata(_ envelope: Envelope) -> Logger.Metadata {
        var metadata: Logger.Metadata = ["event_id": "\(envelope.id)", "subject": "\(envelope.subject)"]
        if let trace = envelope.traceparent { metadata["trace_id"] = "\(trace.traceID)" }
        return metadata
    }

    /// Sets each owned partition's lag gauge: high watermark (as last fetched) minus the
    /// committed offset.
    private func reportLag() {
        for owned in machine.owned {
            let part = KafkaTopicPartition(topic: owned.topic, partition: owned.partition)
            guard let marks = consumer.cachedWatermarks(topic: part.topic, partition: part.partition) else { continue }
            let base = committed[part] ?? marks.low
            metrics.lag(part).record(max(0, marks.high - base))
        }
    }
}

/// The header that carries an idempotency record's expiry (milliseconds since 1970).
public enum IdempotencyHeader {
    /// `oms_expires_at`: restore reads the expiry here instead of decoding the JSON.
    public static let expiresAt = "oms_expires_at"

    static func expiry(of record: KafkaRecordView) -> Int64 {
        if let digits = record.header(expiresAt), let value = decimal(digits) { return value }
        // Written by something else: fall back to the event itself.
        if case .idempotencyRecord(let idempotency) = (try? Envelope.decode(record.message().eventRecord))?.event {
            return idempotency.expiresAt.millisecondsSince1970
        }
        return 0
    }

    /// The ASCII decimal in `bytes`, read in place.
    private static func decimal(_ bytes: UnsafeRawBufferPointer) -> Int64? {
        guard !bytes.isEmpty, bytes.count <= 18 else { return nil }
        var value: Int64 = 0
        for byte in bytes {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int64(byte - UInt8(ascii: "0"))
        }
        return value
    }
}

/// What a restore keeps of each record of a stage's changelog and idempotency
/// partitions, read in the consumer's buffer: an idempotency record is only its key and
/// its expiry header, so the restore of millions of keys copies ~50 bytes each instead of
/// whole records. Returns nil for a record of another stage, and `.some(nil)` for one
/// that cannot be decoded.
struct RestoreProjection: Sendable {
    private let keyPrefix: [UInt8]
    private let intentPrefix: [UInt8]
    private let changelog: String?

    init(stage: String, changelog: String?) {
        keyPrefix = Array("\(stage)/".utf8)
        intentPrefix = Array("\(stage)/~intent/".utf8)
        self.changelog = changelog
    }

    @Sendable func restored(_ record: KafkaRecordView) -> RestoredRecord?? {
        guard let key = record.key else { return nil }
        if record.topic == TopicCatalog.idempotencyTopic {
            guard key.starts(with: keyPrefix) else { return nil }
            guard key.starts(with: intentPrefix) else {
                let id = String(decoding: UnsafeRawBufferPointer(rebasing: key[keyPrefix.count...]), as: UTF8.self)
                return .key(partition: record.partition, key: id, expiresAt: record.value == nil ? nil : IdempotencyHeader.expiry(of: record))
            }
            let text = String(decoding: key, as: UTF8.self)
            guard let value = record.value else { return .intent(partition: record.partition, key: text, records: nil) }
            guard let records = try? IntentCodec.decode(Array(value)) else { return .some(nil) }
            return .intent(partition: record.partition, key: text, records: records)
        }
        guard record.topic == changelog else { return nil }
        let text = String(decoding: key, as: UTF8.self)
        guard record.value != nil else { return .state(partition: record.partition, key: text, value: nil) }
        guard let envelope = try? Envelope.decode(record.message().eventRecord) else { return .some(nil) }
        return .state(partition: record.partition, key: text, value: envelope.event)
    }
}

/// Runs a throwing Kafka call and returns its outcome as a value (typed `catch` clauses
/// in async loops crash the 6.x compiler).
func kafkaResult<T>(_ body: () async throws(KafkaError) -> T) async -> Result<T, KafkaError> {
    do {
        return .success(try await body())
    } catch {
        return .failure(error)
    }
}

extension Timer {
    /// Records the time from `start` until now.
    public func recordInterval(since start: ContinuousClock.Instant) {
        recordNanoseconds((ContinuousClock.now - start).nanoseconds)
    }
}

extension RecordPosition {
    init(_ message: KafkaMessage) {
        self.init(topic: message.topic, partition: message.partition, offset: message.offset)
    }
}

/// Exponential backoff with jitter, interrupted by a stop.
package enum Backoff {
    /// `base` × 2^(attempt − 1), at most `cap`, ±20% jitter so that instances do not retry
    /// in step.
    package static func delay(base: Duration, attempt: Int, cap: Duration) -> Duration {
        let exponential = base * (1 << min(max(attempt - 1, 0), 20))
        return min(exponential, cap) * Double.random(in: 0.8...1.2)
    }

    /// Sleeps `delay`, waking every 100 ms to see whether to stop.
    package static func sleep(_ delay: Duration, unless stopping: StopFlag) async {
        let deadline = ContinuousClock.now + delay
        while !stopping.isSet, ContinuousClock.now < deadline {
            try? await Task.sleep(for: min(.milliseconds(100), deadline - ContinuousClock.now))
        }
    }
}

extension Duration {
    /// Whole nanoseconds.
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    /// Whole milliseconds.
    var milliseconds: Int64 { nanoseconds / 1_000_000 }
}

/// Kafka records encoded once for the machine's size check (``RunnerMachine``'s
/// `oversize`), kept for their write and, at least once, their intent: an output would
/// otherwise be encoded up to four times (issue 23). Emptied whenever nothing is
/// pending; a hit needs the same record, not only the same id.
final class EncodedRecordCache {
    private struct Key: Hashable {
        var topic: String?
        var partition: Int32
        var key: String
        var id: String
        var expiresAt: Int64?
    }

    private var entries: [Key: (envelope: Envelope, message: KafkaProducerMessage?)] = [:]

    /// The record of `record`, encoded by `encode` unless it was before. Records without
    /// an envelope (tombstones, dead letters, intents) are not kept: they are cheap or
    /// encoded once anyway.
    func message(for record: OutputRecord, encode: () throws -> KafkaProducerMessage?) rethrows -> KafkaProducerMessage? {
        let key: Key
        let envelope: Envelope
        switch record {
        case .output(let topic, let output):
            (key, envelope) = (Key(topic: topic, partition: -1, key: "", id: output.id), output)
        case .state(let partition, let stateKey, let state?):
            (key, envelope) = (Key(topic: nil, partition: partition, key: stateKey, id: state.id), state)
        case .idempotency(let partition, let idempotencyKey, let record?, let expiresAt):
            (key, envelope) = (Key(topic: nil, partition: partition, key: idempotencyKey, id: record.id, expiresAt: expiresAt), record)
        case .state, .idempotency, .deadLetter, .intent, .encoded:
            return try encode()
        }
        if let entry = entries[key], entry.envelope == envelope { return entry.message }
        let message = try encode()
        entries[key] = (envelope, message)
        return message
    }

    /// Forgets every record (all were written).
    func removeAll() {
        if !entries.isEmpty { entries.removeAll(keepingCapacity: true) }
    }
}

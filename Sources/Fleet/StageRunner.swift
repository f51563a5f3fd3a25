import Contracts
import Foundation
import Kafka
import Logging
import Metrics
import ServiceLifecycle
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
final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    var isSet: Bool { flag.load(ordering: .relaxed) || Task.isCancelled }
    func set() { flag.store(true, ordering: .relaxed) }
}

/// Runs one ``Stage`` as a member of the consumer group `oms.<stage>`: the fleet's
/// runtime (docs/ARCHITECTURE.md, "Stages and the runtime").
///
/// Per transaction (one or more consumer batches, up to
/// ``WorkerConfiguration/batchSize`` records or ``WorkerConfiguration/commitInterval``):
/// skip inputs with a known idempotency key, run the stage, produce outputs, changelog
/// records and idempotency keys, send the consumed offsets, commit. Abortable errors
/// abort and rewind to the committed offsets, dropping uncommitted state; fatal ones
/// (fenced) end ``run()`` with an error. Records that cannot be decoded, and inputs the
/// stage rejects, go to `oms.deadletter` inside the same transaction.
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

    /// Input partitions owned.
    var owned = Set<KafkaTopicPartition>()
    /// State and idempotency keys by partition number (shared by co-partitioned inputs).
    var states: [Int32: KeyedState] = [:]
    var keys: [Int32: IdempotencyKeys] = [:]
    var transaction = OpenTransaction()
    /// At least once: a delivery failed after part of a batch may have been written;
    /// memory and changelog may disagree, so the worker must restart.
    var fatalDelivery: KafkaError?
    var lastSweep = ContinuousClock.now
    var lastTick = ContinuousClock.now
    /// The committed offset of each owned input partition, for the lag gauges.
    var committed: [KafkaTopicPartition: Int64] = [:]
    var lastLagReport = ContinuousClock.now
    var subscribed = ContinuousClock.now

    struct OpenTransaction {
        var isOpen = false
        var started = ContinuousClock.now
        var records = 0
        var offsets: [KafkaTopicPartition: Int64] = [:]
        var touched = Set<Int32>()
        /// The inputs in the transaction, and the one being written (a failure while
        /// writing it is its own).
        var inputs: [RecordPosition] = []
        var current: RecordPosition?
        /// At least once: changelog records, written only once the outputs are
        /// acknowledged (state without its outputs would make a replay emit nothing).
        var deferredState: [KafkaProducerMessage] = []
        /// At least once: idempotency records, written only once the outputs and state they
        /// vouch for are acknowledged (a key without them would skip a replay and lose them).
        var deferred: [KafkaProducerMessage] = []
    }

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

        var producerSettings = KafkaProducerConfiguration(kafka: kafka)
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

        var consumerKafka = kafka
        consumerKafka.statisticsInterval = settings.statisticsInterval
        var consumerSettings = KafkaConsumerConfiguration(kafka: consumerKafka, groupID: group)
        consumerSettings.maxBatchSize = settings.batchSize
        consumerSettings.sessionTimeout = settings.sessionTimeout
        consumerKafka.properties["max.poll.interval.ms"] = consumerKafka.properties["max.poll.interval.ms"] ?? String(Int(settings.maxPollInterval.seconds * 1000))
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
        reader = try PartitionReader(kafka: kafka, name: "\(kafka.clientID).restore", batchSize: 10_000, logger: logger)
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

    func run() async throws {
        while !stopping.isSet {
            if status.phase == .starting, clock.now - subscribed > .seconds(15) {
                // More members than partitions: no assignment comes; stand by, ready.
                status.set(.running)
            }
            if transaction.isOpen, clock.now - transaction.started >= settings.commitInterval {
                try await commit()
            }
            if let interval = stage.tickInterval, clock.now - lastTick >= interval {
                try await fireTimers()
            }
            if clock.now - lastLagReport >= .seconds(1) {
                lastLagReport = clock.now
                reportLag()
            }
            // An open transaction must not wait a whole poll timeout past its commit time:
            // downstream sees nothing of it until it commits.
            let wait = transaction.isOpen ? max(.zero, settings.commitInterval - (clock.now - transaction.started)) : .milliseconds(100)
            let events: [KafkaConsumerEvent]
            switch await kafkaResult({ () async throws(KafkaError) in try await consumer.poll(timeout: wait) }) {
            case .success(let value):
                events = value
                stalls = 0
            case .failure(let error) where error.errorClass == .fatal:
                throw WorkerFailure(
                    message: "consumer failed: \(error)" + (error.isFenced ? " (fenced by a newer instance with the same worker.instance.id)" : ""),
                    restartable: !error.isFenced)
            case .failure(let error):
                // The consumer recovers by itself once the brokers answer again.
                await stall(during: "poll", error)
                continue
            }
            for event in events {
                switch event {
                case .messages(let messages):
                    let start = clock.now
                    try await handle(messages)
                    metrics.batchLatency.recordInterval(since: start)
                case .assigned(let parts):
                    metrics.rebalances.increment()
                    try await assign(parts)
                case .revoked(let parts), .lost(let parts):
                    metrics.rebalances.increment()
                    try await release(parts)
                case .endOfPartition:
                    break
                }
            }
        }
    }

    /// Commits what is open, leaves the group, flushes.
    func finish() async throws {
        try await commit()
        try? await consumer.close()
        try? await producer.close()
        await closeHelpers()
    }

    /// Drops everything after a failure: the open transaction is never committed.
    func abandon() async {
        try? await consumer.close()
        try? await producer.close(timeout: .seconds(1))
        await closeHelpers()
    }

    /// Consecutive failed attempts (polls, transactions, rewinds) with no progress between.
    var stalls = 0

    /// Reports that the runner cannot make progress and waits before the next attempt:
    /// exponential backoff from `worker.retry.backoff.ms` up to 5 s.
    private func stall(during operation: String, _ error: KafkaError) async {
        stalls += 1
        status.set(.stalled)
        metrics.stalled.record(1)
        let delay = Backoff.delay(base: settings.retryBackoff, attempt: stalls, cap: .seconds(5))
        logger.warning("cannot make progress; retrying", metadata: [
            "operation": "\(operation)", "error": "\(error)", "class": "\(error.errorClass)", "attempt": "\(stalls)", "delay_ms": "\(delay.milliseconds)",
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
        limitsTask.cancel()
        for task in tableTasks { task.cancel() }
        for table in tables.values { await table.close() }
        await reader.close()
    }

    // MARK: Records

    private func handle(_ messages: [KafkaMessage]) async throws {
        let now = Date()
        for message in messages {
            if !transaction.isOpen {
                guard try await begin(now: now) else { return }
            }
            let position = RecordPosition(message)
            transaction.current = position
            guard try await write(try await process(message, now: now)) else { return }
            transaction.current = nil
            transaction.inputs.append(position)
            transaction.offsets[KafkaTopicPartition(topic: message.topic, partition: message.partition)] = message.offset + 1
            transaction.touched.insert(message.partition)
            transaction.records += 1
            metrics.recordsIn.increment()
            // While a transaction keeps failing, each input gets one of its own, so that
            // a failure at commit names its record.
            let isolating = runner.recordFailures.withLock { $0.isolating }
            if transaction.records >= (isolating ? 1 : settings.batchSize) {
                guard try await commit() else { return }
            }
        }
    }

    /// Writes one input's (or timer firing's) records into the open transaction; at least
    /// once, state and keys wait for the commit. False if that failed and the runner rewound.
    private func write(_ records: [KafkaProducerMessage]) async throws -> Bool {
        var records = records
        if !transactional {
            let changelog = stage.changelogTopic
            transaction.deferredState += records.filter { $0.topic == changelog }
            transaction.deferred += records.filter { $0.topic == TopicCatalog.idempotencyTopic && $0.value != nil }
            records.removeAll { $0.topic == changelog || ($0.topic == TopicCatalog.idempotencyTopic && $0.value != nil) }
        }
        for record in records {
            if case .failure(let error) = await kafkaResult({ () async throws(KafkaError) in try await producer.enqueue(record) }) {
                try await recover(from: error, during: "produce")
                return false
            }
        }
        return true
    }

    /// Runs the stage's timers over the state of every owned partition; what fires is
    /// written into the open transaction (opened if needed).
    private func fireTimers() async throws {
        lastTick = clock.now
        let now = Date()
        for partition in Set(owned.map(\.partition)).sorted() {
            guard let state = states[partition] else { continue }
            let firings = stage.tick(now: now, state: state)
            guard !firings.isEmpty else { continue }
            if !transaction.isOpen {
                guard try await begin(now: now) else { return }
            }
            let results = StageStep.fire(stage, firings, state: &states[partition, default: KeyedState()], now: now)
            transaction.touched.insert(partition)
            for result in results {
                let records: [KafkaProducerMessage]
                do {
                    records = try self.records(of: result, partition: partition)
                } catch {
                    logger.error("timer outcome cannot be encoded", metadata: ["error": "\(error)"])
                    continue
                }
                guard try await write(records) else { return }
            }
            metrics.timerFirings.increment(by: firings.count)
        }
    }

    /// The records one input turns into: outputs, state, idempotency key, or a dead letter.
    private func process(_ message: KafkaMessage, now: Date) async throws -> [KafkaProducerMessage] {
        if let poison = runner.recordFailures.withLock({ $0.poison(RecordPosition(message), after: settings.retryAttempts) }) {
            metrics.poisonPills.increment()
            // Past twice the attempts, even the dead letter failed: keep only a reference.
            let bare = poison.attempts >= 2 * settings.retryAttempts
            return [deadLetter(
                message, error: "writing its outcome failed \(poison.attempts) times (\(poison.error))", attempts: poison.attempts, now: now,
                referenceOnly: bare)]
        }
        let envelope: Envelope
        do {
            envelope = try Envelope.decode(message.eventRecord)
        } catch {
            return [deadLetter(message, error: "\(error)", attempts: 1, now: now)]
        }
        let input = StageInput(envelope: envelope, topic: message.topic, partition: message.partition, offset: message.offset, now: now)
        var attempt = 1
        while true {
            let tables = tables
            let result = StageStep.run(
                stage, input: input, state: &states[message.partition, default: KeyedState()],
                keys: &keys[message.partition, default: IdempotencyKeys()], retention: settings.idempotencyRetention
            ) { topic, key in tables[topic]?.value(key) }
            switch result.kind {
            case .duplicate:
                metrics.duplicates.increment()
                logger.debug("duplicate skipped", metadata: Self.metadata(envelope))
                return []
            case .processed:
                logger.debug("processed", metadata: Self.metadata(envelope).merging(["outputs": "\(result.outputs.count)"]) { $1 })
                do {
                    return try fitting(records(of: result, partition: message.partition), input: message, now: now)
                } catch {
                    // Only a value JSON cannot hold (a non-finite float) gets here; the
                    // contracts have none. The input's state changes stay staged: undoing
                    // one input's changes alone would need per-input undo records.
                    return [deadLetter(message, error: "cannot encode the outcome: \(error)", attempts: attempt, now: now)]
                }
            case .failed(.retryable(let reason)) where attempt < settings.retryAttempts:
                metrics.retries.increment()
                logger.warning("retrying", metadata: Self.metadata(envelope).merging(["attempt": "\(attempt)", "reason": "\(reason)"]) { $1 })
                try await Task.sleep(for: settings.retryBackoff * (1 << min(attempt - 1, 10)))
                attempt += 1
            case .failed(let failure):
                logger.warning("dead-lettered", metadata: Self.metadata(envelope).merging(["reason": "\(failure)"]) { $1 })
                return [deadLetter(message, error: failure.description, attempts: attempt, now: now)]
            }
        }
    }

    private func records(of result: StepResult, partition: Int32) throws(ContractError) -> [KafkaProducerMessage] {
        var records: [KafkaProducerMessage] = []
        records.reserveCapacity(result.outputs.count + result.stateRecords.count + 1)
        for output in result.outputs {
            records.append(try KafkaProducerMessage(output.envelope, topic: output.topic))
        }
        if let changelog = stage.changelogTopic {
            for change in result.stateRecords {
                if let envelope = change.envelope {
                    records.append(try KafkaProducerMessage(envelope, topic: changelog, partition: partition, key: change.key))
                } else {
                    records.append(KafkaProducerMessage(topic: changelog, partition: partition, key: change.key, value: nil as String?))
                }
            }
        }
        if let (key, envelope) = result.idempotency, case .idempotencyRecord(let record) = envelope.event {
            var message = try KafkaProducerMessage(envelope, topic: TopicCatalog.idempotencyTopic, partition: partition, key: key)
            // Restore reads the expiry from this header instead of decoding JSON.
            message.headers.append(KafkaHeader(name: IdempotencyHeader.expiresAt, string: String(record.expiresAt.millisecondsSince1970)))
            records.append(message)
        }
        metrics.recordsOut.increment(by: result.outputs.count)
        return records
    }

    /// An input's records if each fits its topic; otherwise its outputs are replaced by a
    /// dead letter that says which record is too large (a retry would fail the same way).
    /// Its state change and idempotency key stay, so memory and changelog agree.
    private func fitting(_ records: [KafkaProducerMessage], input: KafkaMessage, now: Date) -> [KafkaProducerMessage] {
        guard let tooLarge = records.first(where: { !limits.fits($0) }) else { return records }
        let size = KafkaRecordSizeLimits.size(of: tooLarge)
        let reason = "its outcome cannot be written: a record of \(size) bytes for \(tooLarge.topic) is over that topic's limit of \(limits.limit(for: tooLarge.topic)) bytes (max.message.bytes, message.max.bytes)"
        let changelog = stage.changelogTopic
        let kept = records.filter { ($0.topic == changelog || $0.topic == TopicCatalog.idempotencyTopic) && limits.fits($0) }
        return kept + [deadLetter(input, error: reason, attempts: 1, now: now)]
    }

    private func deadLetter(_ message: KafkaMessage, error: String, attempts: Int, now: Date, referenceOnly: Bool = false) -> KafkaProducerMessage {
        metrics.deadLetters.increment()
        logger.warning("dead letter", metadata: [
            "topic": "\(message.topic)", "partition": "\(message.partition)", "offset": "\(message.offset)", "error": "\(error)",
        ])
        let limit = referenceOnly ? 0 : limits.limit(for: TopicCatalog.deadLetterTopic)
        return DeadLetters.record(for: message, stage: stage.name, error: error, attempts: attempts, now: now, sizeLimit: limit)
    }

    static func metadata(_ envelope: Envelope) -> Logger.Metadata {
        var metadata: Logger.Metadata = ["event_id": "\(envelope.id)", "subject": "\(envelope.subject)"]
        if let trace = envelope.traceparent { metadata["trace_id"] = "\(trace.traceID)" }
        return metadata
    }

    // MARK: Transactions

    /// Opens a transaction and writes the tombstones of expired idempotency keys into it.
    /// False if that failed and the runner rewound.
    private func begin(now: Date) async throws -> Bool {
        if transactional {
            do throws(KafkaError) {
                try producer.beginTransaction()
            } catch {
                try await recover(from: error, during: "begin transaction")
                return false
            }
        }
        transaction = OpenTransaction(isOpen: true, started: clock.now)
        if clock.now - lastSweep >= .seconds(1) {
            lastSweep = clock.now
            let nowMilliseconds = now.millisecondsSince1970
            for partition in keys.keys.sorted() {
                for key in keys[partition]!.removeExpired(now: nowMilliseconds) {
                    let tombstone = KafkaProducerMessage(topic: TopicCatalog.idempotencyTopic, partition: partition, key: "\(stage.name)/\(key)", value: nil as String?)
                    if case .failure(let error) = await kafkaResult({ () async throws(KafkaError) in try await producer.enqueue(tombstone) }) {
                        try await recover(from: error, during: "write tombstones")
                        return false
                    }
                }
            }
            metrics.idempotencyKeys.record(keys.values.reduce(0) { $0 + $1.count })
        }
        return true
    }

    /// Commits the open transaction (or, at least once, flushes and commits offsets).
    /// False if it failed and the runner rewound.
    @discardableResult
    private func commit() async throws -> Bool {
        guard transaction.isOpen else { return true }
        let start = clock.now
        let offsets = transaction.offsets.map { KafkaTopicPartitionOffset(topic: $0.key.topic, partition: $0.key.partition, offset: $0.value) }
        var attempt = 0
        while true {
            attempt += 1
            let result = await kafkaResult { () async throws(KafkaError) in
                if transactional {
                    if !offsets.isEmpty {
                        try await producer.sendOffsetsToTransaction(offsets, groupMetadata: try consumer.groupMetadata())
                    }
                    try await producer.commitTransaction()
                } else {
                    try await commitAtLeastOnce(offsets)
                }
            }
            switch result {
            case .success:
                for offset in offsets { committed[offset.topicPartition] = offset.offset }
                for partition in transaction.touched {
                    states[partition]?.commit()
                    keys[partition]?.commit()
                }
                let inputs = transaction.inputs
                let batchSize = settings.batchSize
                runner.recordFailures.withLock { $0.committed(inputs, batchSize: batchSize) }
                transaction = OpenTransaction()
                metrics.commitLatency.recordInterval(since: start)
                progressed()
                return true
            case .failure(let error) where error.isRetriable && !error.txnRequiresAbort && !error.isFatal && fatalDelivery == nil && attempt < 5:
                logger.warning("commit failed, retrying", metadata: ["error": "\(error)", "attempt": "\(attempt)"])
                await Backoff.sleep(Backoff.delay(base: settings.retryBackoff, attempt: attempt, cap: .seconds(5)), unless: stopping)
            case .failure(let error):
                try await recover(from: error, during: "commit")
                return false
            }
        }
    }

    /// At least once: outputs and dead letters first, then the state (a crash between
    /// replays inputs against the old state, which emits the same outputs again, with
    /// the same ids); the keys that mark the inputs done only once both are
    /// acknowledged; then the offsets.
    ///
    /// Once records are out, the changelog holds the new state, so memory must too:
    /// a rewind to the old state would apply the replayed inputs a second time (a
    /// reservation counted twice). So a failed delivery stops the worker (its successor
    /// restores from the changelog), and a failed offset commit after the keys are
    /// written only means replays, which the keys skip.
    private func commitAtLeastOnce(_ offsets: [KafkaTopicPartitionOffset]) async throws(KafkaError) {
        let delivered = await kafkaResult { () async throws(KafkaError) in
            try await producer.flush()
            for record in transaction.deferredState { try await producer.enqueue(record) }
            try await producer.flush()
            for record in transaction.deferred { try await producer.enqueue(record) }
            try await producer.flush()
        }
        if case .failure(let error) = delivered {
            fatalDelivery = error
            throw error
        }
        transaction.deferredState.removeAll()
        transaction.deferred.removeAll()
        for partition in transaction.touched {
            states[partition]?.commit()
            keys[partition]?.commit()
        }
        if case .failure(let error) = await kafkaResult({ () async throws(KafkaError) in try await consumer.commit(offsets) }) {
            logger.warning("offset commit failed; the batch's inputs will be read again and skipped as duplicates", metadata: ["error": "\(error)"])
        }
    }

    /// Aborts the open transaction, drops uncommitted state and seeks every owned
    /// partition back to its committed offset; throws if the error is fatal.
    ///
    /// Before that, the failure is charged to the input being written, or to the only
    /// input of the transaction: the same input failing ``WorkerConfiguration/retryAttempts``
    /// times (at once for a record the broker can never take) is dead-lettered when it
    /// comes again, so that one record cannot stall its partition. Then it backs off.
    private func recover(from error: KafkaError, during operation: String) async throws {
        let suspect = transaction.current ?? (transaction.inputs.count == 1 ? transaction.inputs[0] : nil)
        let attempts = settings.retryAttempts
        runner.recordFailures.withLock { $0.failed(suspect, error: error, poisonAfter: attempts) }
        if let delivery = fatalDelivery {
            throw WorkerFailure(
                message: "at least once: records of a batch may be out but not all were acknowledged (\(delivery)); a new session restores state from the changelog",
                restartable: true)
        }
        if error.isFatal || producer.fatalError != nil {
            let cause = producer.fatalError ?? error
            throw WorkerFailure(
                message: "fatal Kafka error during \(operation): \(cause)" + (cause.isFenced ? " (fenced by a newer instance with the same worker.instance.id)" : " (the producer is broken; a new session makes a new one)"),
                restartable: !cause.isFenced)
        }
        logger.warning("aborting transaction", metadata: ["operation": "\(operation)", "error": "\(error)", "class": "\(error.errorClass)"])
        try await rewind()
        await stall(during: operation, error)
    }

    private func rewind() async throws {
        metrics.aborts.increment()
        if transactional, transaction.isOpen {
            var attempt = 0
            while true {
                attempt += 1
                let result = await kafkaResult({ () async throws(KafkaError) in try await producer.abortTransaction() })
                guard case .failure(let error) = result else { break }
                if error.isFatal || producer.fatalError != nil || attempt >= 5 {
                    let cause = producer.fatalError ?? error
                    throw WorkerFailure(message: "cannot abort the transaction: \(cause)", restartable: !cause.isFenced)
                }
                await Backoff.sleep(Backoff.delay(base: settings.retryBackoff, attempt: attempt, cap: .seconds(5)), unless: stopping)
            }
        }
        for partition in states.keys { states[partition]?.rollback() }
        for partition in keys.keys { keys[partition]?.rollback() }
        transaction = OpenTransaction()
        guard !owned.isEmpty else { return }
        let parts = owned.sorted()
        // Without a rewind, the records after the aborted ones would be processed while
        // these are skipped: nothing else happens until it succeeds.
        while true {
            let result = await kafkaResult { () async throws(KafkaError) -> Void in
                let committed = try await consumer.committed(parts)
                let reset = KafkaTopicPartitionOffset.beginning
                try await consumer.seek(committed.map { KafkaTopicPartitionOffset(topic: $0.topic, partition: $0.partition, offset: $0.offset >= 0 ? $0.offset : reset) })
            }
            guard case .failure(let error) = result else { return }
            if error.errorClass == .fatal || stopping.isSet {
                // A new session starts from the committed offsets; a stopping one commits nothing.
                throw WorkerFailure(message: "cannot rewind to the committed offsets: \(error)", restartable: true)
            }
            await stall(during: "rewind to the committed offsets", error)
        }
    }

    /// Sets each owned partition's lag gauge: high watermark (as last fetched) minus the
    /// committed offset.
    private func reportLag() {
        for part in owned {
            guard let marks = consumer.cachedWatermarks(topic: part.topic, partition: part.partition) else { continue }
            let base = committed[part] ?? marks.low
            metrics.lag(part).record(max(0, marks.high - base))
        }
    }

    // MARK: Rebalances

    private func assign(_ parts: [KafkaTopicPartition]) async throws {
        let before = Set(owned.map(\.partition))
        owned.formUnion(parts)
        status.set(partitions: owned.count)
        if case .success(let offsets) = await kafkaResult({ () async throws(KafkaError) in try await consumer.committed(parts) }) {
            for offset in offsets where offset.offset >= 0 { committed[offset.topicPartition] = offset.offset }
        }
        let new = Set(parts.map(\.partition)).subtracting(before).sorted()
        guard !new.isEmpty else {
            status.set(.running)
            return
        }
        status.set(.restoring)
        let start = clock.now
        for partition in new {
            states[partition] = KeyedState()
            keys[partition] = IdempotencyKeys()
        }
        var targets = new.map { KafkaTopicPartition(topic: TopicCatalog.idempotencyTopic, partition: $0) }
        if let changelog = stage.changelogTopic {
            targets += new.map { KafkaTopicPartition(topic: changelog, partition: $0) }
        }
        let prefix = "\(stage.name)/"
        let changelog = stage.changelogTopic
        var undecodable = 0
        func restore(_ message: KafkaMessage) {
            guard let key = message.keyString else { return }
            if message.topic == TopicCatalog.idempotencyTopic {
                guard key.hasPrefix(prefix) else { return }
                let expiresAt = message.value == nil ? nil : IdempotencyHeader.expiry(of: message)
                keys[message.partition]?.restore(String(key.dropFirst(prefix.count)), expiresAt: expiresAt)
            } else if message.topic == changelog {
                guard message.value != nil else {
                    states[message.partition]?.restore(key: key, value: nil)
                    return
                }
                guard let envelope = try? Envelope.decode(message.eventRecord) else {
                    undecodable += 1
                    return
                }
                states[message.partition]?.restore(key: key, value: envelope.event)
            }
        }
        let count = try await reader.read(targets, timeout: settings.restoreTimeout) { messages in
            for message in messages { restore(message) }
        }
        if undecodable > 0 {
            logger.error("undecodable changelog records skipped during restore", metadata: ["count": "\(undecodable)"])
        }
        metrics.restoreTime.recordInterval(since: start)
        metrics.restoredRecords.increment(by: count)
        metrics.stateKeys.record(states.values.reduce(0) { $0 + $1.count })
        metrics.idempotencyKeys.record(keys.values.reduce(0) { $0 + $1.count })
        logger.info("restored", metadata: [
            "partitions": "\(new)", "records": "\(count)", "seconds": "\((clock.now - start).seconds)",
            "state_keys": "\(new.reduce(0) { $0 + (states[$1]?.count ?? 0) })",
            "idempotency_keys": "\(new.reduce(0) { $0 + (keys[$1]?.count ?? 0) })",
        ])
        status.set(.running)
    }

    private func release(_ parts: [KafkaTopicPartition]) async throws {
        owned.subtract(parts)
        status.set(partitions: owned.count)
        for part in parts {
            committed[part] = nil
            metrics.lag(part).destroy()
        }
        // The open transaction holds records of the partitions that are gone; committing
        // it now could duplicate work their new owner starts from the committed offsets.
        // Abort it and rewind the partitions still owned.
        if transaction.isOpen { try await rewind() }
        let kept = Set(owned.map(\.partition))
        for partition in Set(parts.map(\.partition)).subtracting(kept) {
            states[partition] = nil
            keys[partition] = nil
        }
    }
}

/// The header that carries an idempotency record's expiry (milliseconds since 1970).
public enum IdempotencyHeader {
    /// `oms_expires_at`: restore reads the expiry here instead of decoding the JSON.
    public static let expiresAt = "oms_expires_at"

    static func expiry(of message: KafkaMessage) -> Int64? {
        if let text = message.header(expiresAt)?.stringValue, let value = Int64(text) { return value }
        // Written by something else: fall back to the event itself.
        if case .idempotencyRecord(let record) = (try? Envelope.decode(message.eventRecord))?.event {
            return record.expiresAt.millisecondsSince1970
        }
        return 0
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
    func recordInterval(since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        let (seconds, attoseconds) = elapsed.components
        recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}

/// Where an input record sits.
struct RecordPosition: Hashable, Sendable {
    var topic: String
    var partition: Int32
    var offset: Int64

    init(_ message: KafkaMessage) {
        topic = message.topic
        partition = message.partition
        offset = message.offset
    }
}

/// Failed writes charged to the inputs they were for: the poison-pill rule.
///
/// A transaction that fails is charged to the input being written when it failed, or
/// to its only input. Failures that say nothing about a record (Kafka unreachable, a
/// timeout) are not charged: they would dead-letter innocent records during an outage.
/// After two failed transactions in a row the runner isolates: one input per
/// transaction, so that a failure at commit names its input.
struct RecordFailures: Sendable {
    /// Failed transactions in a row.
    private(set) var streak = 0
    /// One input per transaction until the failing one is found.
    private(set) var isolating = false
    private var cleanWhileIsolating = 0
    private var charged: [RecordPosition: (attempts: Int, error: String)] = [:]

    /// Charges a failure to `suspect` (if any and if the error can be the record's).
    mutating func failed(_ suspect: RecordPosition?, error: KafkaError, poisonAfter: Int) {
        streak += 1
        if streak >= 2, !isolating {
            isolating = true
            cleanWhileIsolating = 0
        }
        guard let suspect, error.errorClass == .recordRejected || !error.isRetriable else { return }
        var entry = charged[suspect] ?? (0, "")
        // A record the broker can never take is a poison pill at once.
        entry.attempts = error.errorClass == .recordRejected ? max(entry.attempts + 1, poisonAfter) : entry.attempts + 1
        entry.error = error.description
        charged[suspect] = entry
    }

    /// `inputs` were committed: their charges are cleared, the streak ends, and
    /// isolation ends once nothing is charged or a whole batch went through.
    mutating func committed(_ inputs: [RecordPosition], batchSize: Int) {
        streak = 0
        for input in inputs { charged[input] = nil }
        guard isolating else { return }
        cleanWhileIsolating += inputs.count
        if charged.isEmpty || cleanWhileIsolating >= batchSize { isolating = false }
    }

    /// The charges of `position` if it failed `after` times or more: dead-letter it.
    func poison(_ position: RecordPosition, after: Int) -> (attempts: Int, error: String)? {
        guard let entry = charged[position], entry.attempts >= after else { return nil }
        return entry
    }
}

/// Exponential backoff with jitter, interrupted by a stop.
enum Backoff {
    /// `base` × 2^(attempt − 1), at most `cap`, ±20% jitter so that instances do not retry
    /// in step.
    static func delay(base: Duration, attempt: Int, cap: Duration) -> Duration {
        let exponential = base * (1 << min(max(attempt - 1, 0), 20))
        return min(exponential, cap) * Double.random(in: 0.8...1.2)
    }

    /// Sleeps `delay`, waking every 100 ms to see whether to stop.
    static func sleep(_ delay: Duration, unless stopping: StopFlag) async {
        let deadline = ContinuousClock.now + delay
        while !stopping.isSet, ContinuousClock.now < deadline {
            try? await Task.sleep(for: min(.milliseconds(100), deadline - ContinuousClock.now))
        }
    }
}

extension Duration {
    /// Whole milliseconds.
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}

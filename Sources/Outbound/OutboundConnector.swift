import Contracts
import Fleet
import Foundation
import Kafka
import Logging
import Metrics
import ServiceLifecycle
import Tracing

/// What one connector does: the command topic it consumes and the endpoint it acts on.
public struct ConnectorDefinition: Sendable {
    /// The connector's name: its consumer group is `oms.<name>`, its ledger entries and
    /// idempotency keys start with `<name>/`.
    public var name: String
    /// The command topic.
    public var inputTopic: String
    /// The external system.
    public var endpoint: any OutboundEndpoint
    /// Calls in flight per gate (``OutboundEndpoint/gateKey(for:)``).
    public var concurrency: Int
    /// Failures in a row that open a gate's circuit breaker, and for how long.
    public var breaker: CircuitBreaker
    /// Backoff and ceiling per command.
    public var policy: RetryPolicy
    /// The events that tell the rest of the fleet how a command ended (the payments
    /// connector's captured, refunded, failed…); none by default.
    public var outcomes: CommandOutcomes

    /// A definition.
    public init(
        name: String, inputTopic: String, endpoint: any OutboundEndpoint, concurrency: Int, breaker: CircuitBreaker, policy: RetryPolicy,
        outcomes: CommandOutcomes = .none
    ) {
        self.name = name
        self.inputTopic = inputTopic
        self.endpoint = endpoint
        self.concurrency = concurrency
        self.breaker = breaker
        self.policy = policy
        self.outcomes = outcomes
    }
}

/// The events a connector writes when a command is settled, and the topics they go to
/// (checked at start-up like the connector's other topics).
public struct CommandOutcomes: Sendable {
    /// Where the events go.
    public var topics: [String]
    /// The events for a command and its final ledger entry.
    public var events: @Sendable (_ command: Envelope, _ entry: OutboundDelivery) -> [Event]

    /// Outcomes.
    public init(topics: [String], events: @escaping @Sendable (_ command: Envelope, _ entry: OutboundDelivery) -> [Event]) {
        self.topics = topics
        self.events = events
    }

    /// No events: the ledger is the only record.
    public static let none = CommandOutcomes(topics: []) { _, _ in [] }
}

/// Runs one connector as a member of its consumer group: reads commands, settles each
/// with its endpoint through a ``CommandProcessor``, and commits offsets once every
/// command of a batch is settled (docs/ARCHITECTURE.md, "The outbound side").
///
/// Commands of one partition are settled in order, partitions side by side. The
/// write-ahead ledger (oms.outbound.deliveries, partition N for input partition N) is
/// read back for newly assigned partitions before their commands, so a member that
/// takes over after a crash reconciles what its predecessor left unknown. A command the
/// endpoint rejects, that runs out of retries or whose outcome cannot be known becomes
/// a `ConnectorAlert` and a dead letter (`oms dlq replay` re-drives it). Like a stage,
/// a session that fails in a way a new one can get past is replaced in the process.
public final class OutboundConnector: Service, Sendable {
    /// What it runs.
    public let definition: ConnectorDefinition
    /// Kafka, identity, batch size, session timeout, backoff.
    public let configuration: WorkerConfiguration
    /// What `/healthz` and `/readyz` report.
    public let status: RunnerStatus
    let gates: GateRegistry
    let metrics: ConnectorMetrics
    let logger: Logger

    /// A connector.
    public init(definition: ConnectorDefinition, configuration: WorkerConfiguration, logger: Logger = Logger(label: "oms.connector")) {
        self.definition = definition
        self.configuration = configuration
        status = RunnerStatus(stage: definition.name)
        gates = GateRegistry(limit: definition.concurrency, breaker: definition.breaker)
        metrics = ConnectorMetrics(connector: definition.name)
        var logger = logger
        logger[metadataKey: "connector"] = "\(definition.name)"
        self.logger = logger
    }

    /// Runs until graceful shutdown; a fenced or misconfigured session ends it with an error.
    public func run() async throws {
        status.set(.starting)
        let stopping = StopFlag()
        try await withGracefulShutdownHandler {
            try await self.runSessions(stopping: stopping)
        } onGracefulShutdown: {
            stopping.set()
        }
    }

    private func runSessions(stopping: StopFlag) async throws {
        try await runReplacingSessions(
            status: status, restarts: metrics.restarts, logger: logger, backoff: configuration.retryBackoff, stopping: stopping
        ) { try await ConnectorSession(connector: self) }
    }
}

/// A Kafka session of a connector: a consumer group membership with its clients.
protocol ReplaceableSession: Sendable {
    /// Works until `stopping` is set; throws when the session cannot go on.
    func run(stopping: StopFlag) async throws
    /// Leaves the group and closes the clients.
    func close() async
}

/// Runs sessions one after another until graceful shutdown: a session that fails in a
/// way a new one can get past is replaced after a backoff; a fenced or misconfigured one
/// ends the connector with its error.
func runReplacingSessions(
    status: RunnerStatus, restarts counter: Counter, logger: Logger, backoff: Duration, stopping: StopFlag,
    open: () async throws -> any ReplaceableSession
) async throws {
    var restarts = 0
    while true {
        let started = ContinuousClock.now
        do {
            let session = try await open()
            do {
                try await session.run(stopping: stopping)
            } catch {
                await session.close()
                throw error
            }
            await session.close()
            status.set(.stopped)
            return
        } catch {
            if stopping.isSet {
                status.set(.stopped)
                return
            }
            if let kafka = error as? KafkaError, kafka.code == .invalidArgument || kafka.isFenced {
                status.set(.failed)
                logger.critical("connector failed", metadata: ["error": "\(error)"])
                throw error
            }
            if ContinuousClock.now - started > .seconds(60) { restarts = 0 }
            restarts += 1
            let delay = Backoff.delay(base: backoff, attempt: restarts, cap: .seconds(30))
            status.set(.stalled)
            counter.increment()
            logger.error("connector session failed; starting a new one", metadata: ["error": "\(error)", "restart": "\(restarts)"])
            await Backoff.sleep(delay, unless: stopping)
        }
    }
}

/// One Kafka session of a connector.
final class ConnectorSession: ReplaceableSession {
    let connector: OutboundConnector
    let consumer: KafkaConsumer
    let producer: KafkaProducer
    let reader: PartitionReader
    let store = LedgerStore()

    init(connector: OutboundConnector) async throws {
        self.connector = connector
        let definition = connector.definition
        let settings = connector.configuration
        var kafka = settings.kafka
        let group = "oms.\(definition.name)"
        kafka.clientID = "\(group).\(settings.instanceID)"
        let admin = try KafkaAdmin(configuration: kafka, logger: connector.logger)
        let partitionCounts = try await admin.partitionCounts()
        let needed = [definition.inputTopic, OutboundDelivery.topic, ConnectorAlert.topic, TopicCatalog.deadLetterTopic] + definition.outcomes.topics
        let missing = needed.filter { partitionCounts[$0] == nil }
        guard missing.isEmpty else {
            throw KafkaError(code: .invalidArgument, message: "connector \(definition.name): missing topics \(missing.joined(separator: ", ")) (create them with `oms topics apply`)")
        }
        if partitionCounts[OutboundDelivery.topic]! < partitionCounts[definition.inputTopic]! {
            throw KafkaError(code: .invalidArgument, message: "connector \(definition.name): \(OutboundDelivery.topic) has fewer partitions than \(definition.inputTopic); the ledger of input partition N lives in partition N")
        }
        producer = try KafkaProducer(configuration: KafkaProducerConfiguration(kafka: kafka), logger: connector.logger)
        var consumerSettings = KafkaConsumerConfiguration(kafka: kafka, groupID: group)
        consumerSettings.maxBatchSize = settings.batchSize
        consumerSettings.sessionTimeout = settings.sessionTimeout
        consumerSettings.assignmentStrategy = settings.assignmentStrategy
        // A batch waits for its endpoint (retries, an open breaker) without polling; a
        // dead member is still noticed within the session timeout (heartbeats).
        consumerSettings.kafka.properties["max.poll.interval.ms"] = consumerSettings.kafka.properties["max.poll.interval.ms"]
            ?? String(min(86_400_000, Int((definition.policy.maxElapsed + .seconds(300)) / .milliseconds(1))))
        consumer = try KafkaConsumer(configuration: consumerSettings, logger: connector.logger)
        reader = try PartitionReader(kafka: kafka, name: "\(kafka.clientID).restore", batchSize: 10_000, logger: connector.logger, restoring: true)
        try consumer.subscribe(topics: [definition.inputTopic])
        connector.logger.info("joined group", metadata: ["group": "\(group)", "input": "\(definition.inputTopic)"])
    }

    func run(stopping: StopFlag) async throws {
        connector.status.set(.running)
        while !stopping.isSet {
            for event in try await consumer.poll() {
                switch event {
                case .assigned(let partitions):
                    connector.status.set(.restoring)
                    try await restore(partitions.map(\.partition))
                    connector.status.set(partitions: try consumer.assignment().count)
                    connector.status.set(.running)
                case .revoked(let partitions), .lost(let partitions):
                    await store.drop(partitions.map(\.partition))
                case .messages(let messages):
                    try await settle(messages)
                case .endOfPartition:
                    break
                }
            }
        }
        connector.status.set(.stopping)
    }

    func close() async {
        try? await consumer.close()
        try? await producer.close()
        await reader.close()
    }

    /// Reads the ledger partitions of newly owned input partitions.
    private func restore(_ partitions: [Int32]) async throws {
        let (entries, count) = try await readLedger(
            partitions, connector: connector.definition.name, reader: reader, timeout: connector.configuration.restoreTimeout)
        await store.load(entries, partitions: partitions)
        connector.logger.info("restored ledger", metadata: ["partitions": "\(partitions.sorted())", "records": "\(count)"])
    }

    /// Settles a batch (partitions side by side, each in order), then commits it.
    private func settle(_ messages: [KafkaMessage]) async throws {
        var byPartition: [Int32: [KafkaMessage]] = [:]
        for message in messages { byPartition[message.partition, default: []].append(message) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (partition, records) in byPartition {
                group.addTask { try await self.settle(records, partition: partition) }
            }
            try await group.waitForAll()
        }
        let offsets = byPartition.values.compactMap { $0.last?.nextOffset }
        try await consumer.commit(offsets)
    }

    private func settle(_ records: [KafkaMessage], partition: Int32) async throws {
        let definition = connector.definition
        for message in records {
            // A member the group dropped while it worked (its partitions may be another's
            // now) stops before its next call; its successor reconciles from the ledger.
            if consumer.assignmentLost {
                throw KafkaError(code: .state, message: "the group took partition \(partition) away during the batch; stopping before the next call")
            }
            let command: Envelope
            do {
                command = try Envelope.decode(message.eventRecord)
            } catch {
                try await deadLetter(message, reason: "malformed command: \(error)", attempts: 1)
                continue
            }
            let ledger = PartitionLedger(store: store, partition: partition, producer: producer, connector: definition.name)
            let processor = CommandProcessor(
                connector: definition.name, endpoint: definition.endpoint,
                gate: await connector.gates.gate(definition.endpoint.gateKey(for: command)), policy: definition.policy, ledger: ledger)
            let settlement = try await Self.traced(command, message: message, connector: definition.name) {
                try await processor.settle(command, offset: message.offset, partition: partition)
            }
            let entry = settlement.entry
            if case .settled = settlement { connector.metrics.settled(entry.state) }
            try await announce(definition.outcomes.events(command, entry), of: entry, for: command, message: message)
            if settlement.needsOperator {
                try await raise(entry, for: command, message: message)
            }
        }
    }

    /// Runs `body` (a command's settlement, its external calls among them) in the
    /// command's trace: its HTTP calls send the command's `traceparent`, and with a
    /// tracer they run in a span `<connector> call`, child of the command record's.
    private static func traced<T>(
        _ command: Envelope, message: KafkaMessage, connector: String, _ body: () async throws -> T
    ) async throws -> T {
        guard RecordTracing.isActive else {
            return try await OutboundTrace.$command.withValue(command.traceparent) { try await body() }
        }
        let span = InstrumentationSystem.tracer.startSpan(
            "\(connector) call", context: RecordTracing.context(of: message.headers), ofKind: .client)
        span.updateAttributes { attributes in
            attributes["messaging.destination.name"] = message.topic
            attributes["messaging.destination.partition.id"] = "\(message.partition)"
            attributes["messaging.kafka.offset"] = Int(message.offset)
            attributes["messaging.message.id"] = command.id
            attributes["oms.event.type"] = command.type.ceType
            attributes["oms.subject"] = command.subject
        }
        defer { span.end() }
        do {
            return try await OutboundTrace.$command.withValue(command.traceparent) {
                try await InstrumentationContext.$current.withValue(span.context) { try await body() }
            }
        } catch {
            span.recordError(error)
            throw error
        }
    }

    /// The outcome events of a settled command, in the command's partition of their
    /// topics (they are keyed like it), with ids derived from the command and its final
    /// entry: a replay of an already settled command writes the same events again, which
    /// readers take once by id; an operator's re-drive that ends differently writes new ones.
    private func announce(_ events: [Event], of entry: OutboundDelivery, for command: Envelope, message: KafkaMessage) async throws {
        for (index, event) in events.enumerated() {
            let envelope = Envelope.output(
                causedBy: "\(command.id)@\(entry.sourceOffset)/\(entry.state.rawValue)", trace: command.traceparent, stage: connector.definition.name,
                outputIndex: index, event: event, time: entry.updatedAt)
            _ = try await producer.send(try KafkaProducerMessage(envelope, topic: envelope.topic, partition: message.partition))
        }
    }

    /// An alert and a dead letter for a command an operator must look at; ids derived
    /// from the command and its offset, so a replay writes the same records.
    private func raise(_ entry: OutboundDelivery, for command: Envelope, message: KafkaMessage) async throws {
        let name = connector.definition.name
        let reason = entry.reason ?? entry.state.rawValue
        let alert = ConnectorAlert(connector: name, commandId: command.id, orderId: entry.orderId, state: entry.state, reason: reason, raisedAt: entry.updatedAt)
        let envelope = Envelope.output(
            causedBy: "\(command.id)@\(message.offset)", trace: command.traceparent, stage: name, outputIndex: 0, event: alert.event, time: entry.updatedAt)
        _ = try await producer.send(try KafkaProducerMessage(envelope, topic: ConnectorAlert.topic, partition: message.partition))
        try await deadLetter(message, reason: "\(entry.state.rawValue): \(reason)", attempts: max(entry.attempts, 1))
        connector.logger.warning("command needs an operator", metadata: [
            "command": "\(command.id)", "state": "\(entry.state.rawValue)", "reason": "\(reason)",
        ])
    }

    private func deadLetter(_ message: KafkaMessage, reason: String, attempts: Int) async throws {
        _ = try await producer.send(DeadLetters.record(for: message, stage: connector.definition.name, error: reason, attempts: attempts, now: Date()))
        connector.metrics.deadLetters.increment()
    }
}

/// The ledger entries of the partitions a session owns.
actor LedgerStore {
    private var entries: [Int32: [String: OutboundDelivery]] = [:]

    func entry(_ commandID: String, partition: Int32) -> OutboundDelivery? { entries[partition]?[commandID] }
    func put(_ entry: OutboundDelivery, partition: Int32) { entries[partition, default: [:]][entry.commandId] = entry }
    func load(_ loaded: [Int32: [String: OutboundDelivery]], partitions: [Int32]) {
        for partition in partitions { entries[partition] = loaded[partition] ?? [:] }
    }
    func drop(_ partitions: [Int32]) {
        for partition in partitions { entries[partition] = nil }
    }
}

/// The ledger of one input partition: entries go to the same partition of
/// oms.outbound.deliveries, keyed `<connector>/<command id>` (compaction keeps the last).
struct PartitionLedger: DeliveryLedger {
    let store: LedgerStore
    let partition: Int32
    let producer: KafkaProducer
    let connector: String

    func entry(for commandID: String) async -> OutboundDelivery? {
        await store.entry(commandID, partition: partition)
    }

    func record(_ entry: OutboundDelivery) async throws {
        _ = try await producer.send(try entry.ledgerRecord(partition: partition))
        await store.put(entry, partition: partition)
    }
}

extension OutboundDelivery {
    /// Its record in the ledger, in `partition` (its command's, which the entry names
    /// too), with an id derived from the command, the state, the attempts and the
    /// command's offset, so a replay writes the same record.
    func ledgerRecord(partition: Int32) throws -> KafkaProducerMessage {
        var entry = self
        entry.sourcePartition = partition
        let envelope = Envelope.output(
            causedBy: "\(commandId)/\(state.rawValue)/\(attempts)/\(sourceOffset)", trace: nil, stage: connector,
            outputIndex: 0, event: entry.event, time: updatedAt)
        return try KafkaProducerMessage(envelope, topic: OutboundDelivery.topic, partition: partition)
    }
}

/// The entries of `connector` in these ledger partitions, by partition and command id
/// (the last of each command), and how many records were read.
func readLedger(
    _ partitions: [Int32], connector: String, reader: PartitionReader, timeout: Duration
) async throws -> (entries: [Int32: [String: OutboundDelivery]], records: Int) {
    var entries: [Int32: [String: OutboundDelivery]] = [:]
    let count = try await reader.read(partitions.map { KafkaTopicPartition(topic: OutboundDelivery.topic, partition: $0) }, timeout: timeout) { messages in
        for message in messages {
            guard let envelope = try? Envelope.decode(message.eventRecord), case .outboundDelivery(let entry) = envelope.event,
                entry.connector == connector
            else { continue }
            entries[message.partition, default: [:]][entry.commandId] = entry
        }
    }
    return (entries, count)
}

/// One ``EndpointGate`` per gate key, made on first use.
actor GateRegistry {
    private let limit: Int
    private let breaker: CircuitBreaker
    private var gates: [String: EndpointGate] = [:]

    init(limit: Int, breaker: CircuitBreaker) {
        self.limit = limit
        self.breaker = breaker
    }

    func gate(_ key: String) -> EndpointGate {
        if let gate = gates[key] { return gate }
        let gate = EndpointGate(limit: limit, breaker: breaker)
        gates[key] = gate
        return gate
    }
}

/// A connector's metrics.
struct ConnectorMetrics: Sendable {
    let connector: String
    let restarts: Counter
    let deadLetters: Counter

    init(connector: String) {
        self.connector = connector
        restarts = Counter(label: "oms_connector_restarts_total", dimensions: [("connector", connector)])
        deadLetters = Counter(label: "oms_connector_dead_letters_total", dimensions: [("connector", connector)])
    }

    /// `oms_connector_settled_total{connector, state}`.
    func settled(_ state: DeliveryState) {
        Counter(label: "oms_connector_settled_total", dimensions: [("connector", connector), ("state", state.rawValue)]).increment()
    }
}

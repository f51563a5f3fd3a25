import AsyncHTTPClient
import Contracts
import Fleet
import Foundation
import Kafka
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// Delivers the events brand systems subscribed to (`oms webhooks add`): reads the
/// subscribable event topics in the group `oms.webhooks`, POSTs each event to each active
/// subscription that wants it, signed, and retries a failed delivery off the partition for
/// up to its retry window (24 h) without holding up the others (docs/ARCHITECTURE.md,
/// "Webhooks for the brand's systems").
///
/// Every attempt is written ahead to the ledger (oms.outbound.deliveries, connector
/// `webhooks`, partition N for source partition N), which is the subscription's delivery
/// log. The consumer commits, per partition, the offset of the oldest event with a
/// delivery not yet final, so a member that takes over re-reads what is unfinished and
/// finds in the ledger what was done. A delivery that is refused (4xx) or fails for its
/// whole window becomes a `ConnectorAlert` and stays in the log for
/// `oms webhooks redeliver`; a subscription with no success for `webhooks.disable.after.s`
/// whose delivery failed for good is disabled.
public final class WebhookConnector: Service, Sendable {
    /// `webhooks`: the consumer group is `oms.webhooks`, ledger entries say `webhooks`.
    public static let name = "webhooks"
    /// `webhooks.*`.
    public let settings: WebhookSettings
    /// Kafka, identity, batch size, session timeout, backoff.
    public let configuration: WorkerConfiguration
    /// What `/healthz` and `/readyz` report.
    public let status: RunnerStatus
    let poster: WebhookPoster
    let metrics: ConnectorMetrics
    let logger: Logger

    /// A connector posting through `http`.
    public init(settings: WebhookSettings, configuration: WorkerConfiguration, http: HTTPClient = .shared, logger: Logger = Logger(label: "oms.connector")) {
        self.settings = settings
        self.configuration = configuration
        status = RunnerStatus(stage: Self.name)
        poster = WebhookPoster(http: HTTPExchange(client: http, timeout: settings.httpTimeout), signingKey: settings.signingKey)
        metrics = ConnectorMetrics(connector: Self.name)
        var logger = logger
        logger[metadataKey: "connector"] = "\(Self.name)"
        self.logger = logger
    }

    /// Runs until graceful shutdown.
    public func run() async throws {
        status.set(.starting)
        let stopping = StopFlag()
        try await withGracefulShutdownHandler {
            try await runReplacingSessions(
                status: self.status, restarts: self.metrics.restarts, logger: self.logger, backoff: self.configuration.retryBackoff, stopping: stopping
            ) { try await WebhookSession(connector: self) }
        } onGracefulShutdown: {
            stopping.set()
        }
    }

    /// The ledger entry an attempt starts from: attempts counted, the window's start kept.
    static func attempting(_ job: WebhookJob, now: Date) -> OutboundDelivery {
        var entry = job.entry ?? OutboundDelivery(
            connector: name, commandId: job.deliveryID, commandType: job.event.type.description, orderId: job.event.event.payload.partitionKey,
            idempotencyKey: job.deliveryID, state: .attempting, attempts: 0, sourceOffset: job.offset, updatedAt: now, firstAttemptAt: now)
        entry.state = .attempting
        entry.attempts += 1
        entry.sourceOffset = job.offset
        entry.updatedAt = now
        entry.nextAttemptAt = nil
        entry.firstAttemptAt = entry.firstAttemptAt ?? now
        return entry
    }
}

/// One Kafka session of the webhooks connector.
final class WebhookSession: ReplaceableSession {
    let connector: WebhookConnector
    let consumer: KafkaConsumer
    let producer: KafkaProducer
    let reader: PartitionReader
    let subscriptions: GlobalTable
    let following: Task<Void, Never>
    let book = Mutex(WebhookBook())
    let paused = Mutex(false)

    init(connector: WebhookConnector) async throws {
        self.connector = connector
        let settings = connector.configuration
        var kafka = settings.kafka
        let group = "oms.\(WebhookConnector.name)"
        kafka.clientID = "\(group).\(settings.instanceID)"
        let counts = try await KafkaAdmin(configuration: kafka, logger: connector.logger).partitionCounts()
        let needed = WebhookEvents.topics + [OutboundDelivery.topic, ConnectorAlert.topic, WebhookSubscription.topic]
        let missing = needed.filter { counts[$0] == nil }
        guard missing.isEmpty else {
            throw KafkaError(code: .invalidArgument, message: "connector webhooks: missing topics \(missing.joined(separator: ", ")) (create them with `oms topics apply`)")
        }
        let widest = WebhookEvents.topics.compactMap { counts[$0] }.max() ?? 0
        guard counts[OutboundDelivery.topic]! >= widest else {
            throw KafkaError(code: .invalidArgument, message: "connector webhooks: \(OutboundDelivery.topic) has fewer partitions than an event topic; the ledger of source partition N lives in partition N")
        }
        subscriptions = try await GlobalTable.open(topic: WebhookSubscription.topic, kafka: kafka, logger: connector.logger)
        try await subscriptions.catchUp(timeout: settings.restoreTimeout)
        let table = subscriptions
        let logger = connector.logger
        following = Task {
            do { try await table.follow() } catch { logger.error("stopped following subscriptions", metadata: ["error": "\(error)"]) }
        }
        producer = try KafkaProducer(configuration: KafkaProducerConfiguration(kafka: kafka), logger: connector.logger)
        var consumerSettings = KafkaConsumerConfiguration(kafka: kafka, groupID: group)
        consumerSettings.maxBatchSize = settings.batchSize
        consumerSettings.sessionTimeout = settings.sessionTimeout
        consumerSettings.assignmentStrategy = settings.assignmentStrategy
        // The connector commits offsets itself, behind its unfinished deliveries.
        consumer = try KafkaConsumer(configuration: consumerSettings, logger: connector.logger)
        reader = try PartitionReader(kafka: kafka, name: "\(kafka.clientID).restore", batchSize: 10_000, logger: connector.logger, restoring: true)
        try consumer.subscribe(topics: WebhookEvents.topics)
        connector.logger.info("joined group", metadata: ["group": "\(group)", "subscriptions": "\(subscriptions.count)"])
    }

    func run(stopping: StopFlag) async throws {
        connector.status.set(.running)
        while !stopping.isSet {
            for event in try await consumer.poll(timeout: .milliseconds(200)) {
                switch event {
                case .assigned(let partitions):
                    connector.status.set(.restoring)
                    try await restore(Set(partitions.map(\.partition)))
                    // A new assignment fetches; holdBack pauses it again if still needed.
                    paused.withLock { $0 = false }
                    connector.status.set(partitions: try consumer.assignment().count)
                    connector.status.set(.running)
                case .revoked(let partitions), .lost(let partitions):
                    book.withLock { $0.drop(partitions) }
                case .messages(let messages):
                    let current = currentSubscriptions
                    read(messages, for: current)
                    try await catchUpNewSubscriptions(current)
                case .endOfPartition:
                    break
                }
            }
            try await attemptDue()
            let offsets = book.withLock { $0.offsetsToCommit() }
            if !offsets.isEmpty { try await consumer.commit(offsets) }
            try await holdBack()
        }
        connector.status.set(.stopping)
    }

    /// Stops reading events while too many deliveries wait (a receiver down for hours
    /// would otherwise fill the memory with its events), and reads again at half that.
    private func holdBack() async throws {
        let pending = book.withLock { $0.pending }
        let limit = connector.settings.maxPending
        if pending >= limit, !paused.withLock({ $0 }) {
            try await consumer.pause(try consumer.assignment())
            paused.withLock { $0 = true }
            connector.logger.warning("too many deliveries waiting; reading no more events for now", metadata: ["pending": "\(pending)"])
        } else if pending <= limit / 2, paused.withLock({ $0 }) {
            try await consumer.resume(try consumer.assignment())
            paused.withLock { $0 = false }
        }
    }

    func close() async {
        following.cancel()
        await subscriptions.close()
        try? await consumer.close()
        try? await producer.close()
        await reader.close()
    }

    /// Reads the ledger partitions of newly owned source partitions.
    private func restore(_ partitions: Set<Int32>) async throws {
        let (entries, count) = try await readLedger(
            partitions.sorted(), connector: WebhookConnector.name, reader: reader, timeout: connector.configuration.restoreTimeout)
        book.withLock { $0.load(entries, partitions: partitions) }
        connector.logger.info("restored ledger", metadata: ["partitions": "\(partitions.sorted())", "records": "\(count)"])
    }

    /// The subscriptions as the table holds them now.
    private var currentSubscriptions: [WebhookSubscription] {
        subscriptions.values.values.compactMap { event -> WebhookSubscription? in
            if case .webhookSubscription(let subscription) = event { return subscription }
            return nil
        }
    }

    /// Reads again, for a subscription that turned up after events it wants may have
    /// been read, from where those events begin.
    private func catchUpNewSubscriptions(_ current: [WebhookSubscription]) async throws {
        let rewinds = book.withLock { $0.rewinds(for: current) }
        guard !rewinds.isEmpty else { return }
        try await consumer.seek(rewinds)
        connector.logger.info("a new subscription: reading recent events again", metadata: ["from": "\(rewinds.map(\.description))"])
    }

    /// Fans the events out to the subscriptions that want them.
    private func read(_ messages: [KafkaMessage], for active: [WebhookSubscription]) {
        let now = Date()
        var undecodable = 0
        book.withLock { book in
            for message in messages {
                // Stages dead-letter what they cannot decode; here it is only counted.
                guard let event = try? Envelope.decode(message.eventRecord) else {
                    undecodable += 1
                    book.pass(KafkaTopicPartition(topic: message.topic, partition: message.partition), offset: message.offset)
                    continue
                }
                book.read(event, from: KafkaTopicPartition(topic: message.topic, partition: message.partition), offset: message.offset, subscriptions: active, now: now)
            }
        }
        if undecodable > 0 { connector.logger.warning("skipped undecodable events", metadata: ["count": "\(undecodable)"]) }
    }

    /// Attempts every delivery that is due, side by side up to the concurrency limit.
    private func attemptDue() async throws {
        let jobs = book.withLock { $0.due(now: Date(), limit: connector.settings.concurrency) }
        guard !jobs.isEmpty else { return }
        if consumer.assignmentLost {
            throw KafkaError(code: .state, message: "the group took partitions away; stopping before the next delivery")
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for job in jobs { group.addTask { try await self.attempt(job) } }
            try await group.waitForAll()
        }
    }

    /// One attempt of one delivery, written ahead to the ledger, then settled.
    private func attempt(_ job: WebhookJob) async throws {
        let settings = connector.settings
        var subscription: WebhookSubscription?
        if case .webhookSubscription(let current) = subscriptions.value(job.subscriptionID) { subscription = current }
        let now = Date()
        var marker = WebhookConnector.attempting(job, now: now)
        let result: CallResult
        if let subscription, subscription.status == .active {
            let record = try marker.ledgerRecord(partition: job.source.partition)
            let producer = self.producer
            result = await connector.poster.post(job.event, to: subscription, attempt: marker.attempts) { _ = try await producer.send(record) }
        } else {
            // Nothing was sent: the attempt does not count.
            marker.attempts -= 1
            result = .skipped(reason: subscription == nil ? "subscription deleted" : "subscription disabled")
        }
        let entry = WebhookRetries.settle(marker, after: result, now: Date(), policy: settings.policy, jitter: Double.random(in: 0..<1))
        _ = try await producer.send(try entry.ledgerRecord(partition: job.source.partition))
        let pause: Duration? = entry.state == .retrying || entry.state == .failed
            ? settings.policy.delay(afterAttempt: book.withLock { $0.failures(of: job.subscriptionID) } + 1, jitter: Double.random(in: 0.5..<1), hint: hint(result))
            : nil
        let lastSuccess = book.withLock { book in
            let before = book.lastSuccess[job.subscriptionID]
            book.settle(job, entry: entry, pause: pause, now: Date())
            return before
        }
        connector.metrics.settled(entry.state)
        if entry.state.needsOperator { try await raise(entry, job: job) }
        if let subscription, WebhookRetries.disables(failed: entry, lastSuccess: lastSuccess, now: Date(), disableAfter: settings.disableAfter) {
            try await disable(subscription, because: entry)
        }
    }

    private func hint(_ result: CallResult) -> Duration? {
        if case .retry(let after, _) = result { return after }
        return nil
    }

    /// An alert for a delivery refused or failed for good; ids derived from the delivery
    /// and its attempts, so a replay writes the same record.
    private func raise(_ entry: OutboundDelivery, job: WebhookJob) async throws {
        let reason = entry.reason ?? entry.state.rawValue
        let alert = ConnectorAlert(
            connector: WebhookConnector.name, commandId: entry.commandId, orderId: entry.orderId, state: entry.state, reason: reason, raisedAt: entry.updatedAt)
        let envelope = Envelope.output(
            causedBy: "\(entry.commandId)@\(entry.attempts)", trace: job.event.traceparent, stage: WebhookConnector.name, outputIndex: 0,
            event: alert.event, time: entry.updatedAt)
        _ = try await producer.send(try KafkaProducerMessage(envelope, topic: ConnectorAlert.topic))
        connector.logger.warning("webhook delivery needs an operator", metadata: [
            "delivery": "\(entry.commandId)", "state": "\(entry.state.rawValue)", "reason": "\(reason)",
        ])
    }

    /// Switches a subscription off after persistent failure.
    private func disable(_ subscription: WebhookSubscription, because entry: OutboundDelivery) async throws {
        var disabled = subscription
        disabled.status = .disabled
        disabled.reason = "disabled automatically: no delivery succeeded for \(Int(connector.settings.disableAfter.seconds)) s; last: \(entry.reason ?? "failed")"
        disabled.updatedAt = entry.updatedAt
        let envelope = Envelope.output(
            causedBy: "\(entry.commandId)/disable", trace: nil, stage: WebhookConnector.name, outputIndex: 0, event: disabled.event, time: entry.updatedAt)
        _ = try await producer.send(try KafkaProducerMessage(envelope, topic: WebhookSubscription.topic))
        connector.logger.error("webhook subscription disabled", metadata: ["subscription": "\(subscription.subscriptionId)", "reason": "\(disabled.reason!)"])
    }
}

import Kafka
import Logging

/// Reads whole partitions from the beginning to their end, outside any consumer group:
/// how a runner restores changelogs and idempotency keys.
///
/// The end is where each log ended when the read began, transactions still open
/// included: a `read_committed` consumer stops at the first open transaction (the last
/// stable offset), and on a topic that many producers share, `oms.idempotency` above
/// all, another stage's open transaction can stand before records a previous owner has
/// already committed. So the read goes on until those transactions have ended too, for
/// at most `stableWait`: a broker aborts a dead producer's transaction after its
/// transaction timeout.
package final class PartitionReader: Sendable {
    private let consumer: KafkaConsumer
    private let kafka: KafkaConfiguration
    private let logger: Logger
    private let restoring: Bool
    private let stableWait: Duration

    /// noida-db answers a fetch with whole partitions, past `fetch.max.bytes`; a
    /// restore reads whole partitions, so it accepts responses up to 1 GB (librdkafka's
    /// default, 100 MB, fails a restore of ~200k idempotency keys there). A broker that
    /// honours the fetch limits never sends that much.
    static let receiveLimit = "1000000000"

    /// - Parameter restoring: the partitions hold state (a changelog, `oms.idempotency`):
    ///   records deleted before they were read fail the read instead of being skipped,
    ///   and a partition whose log no longer starts at 0 is logged.
    /// - Parameter stableWait: how long to wait, at the end of what is readable, for
    ///   transactions open at the read's start to end; past it the read ends there, with
    ///   a warning. Longer than the producers' transaction timeout.
    package init(
        kafka: KafkaConfiguration, name: String, batchSize: Int, logger: Logger, restoring: Bool = false,
        stableWait: Duration = .seconds(35)
    ) throws(KafkaError) {
        var kafka = kafka
        kafka.clientID = name
        self.logger = logger
        self.restoring = restoring
        self.stableWait = stableWait
        if restoring { kafka.properties["auto.offset.reset"] = "error" }
        // The end of a partition is announced by librdkafka (after transaction markers
        // too), which an offset comparison could not see past.
        kafka.properties["enable.partition.eof"] = "true"
        kafka.properties["receive.message.max.bytes"] = kafka.properties["receive.message.max.bytes"] ?? PartitionReader.receiveLimit
        kafka.properties["queued.max.messages.kbytes"] = kafka.properties["queued.max.messages.kbytes"] ?? "1000000"
        var configuration = KafkaConsumerConfiguration(kafka: kafka, groupID: name)
        configuration.maxBatchSize = batchSize
        // A restore reads to an end that is already there: no need to ask for more every
        // 10 ms while the broker has sent nothing yet.
        if restoring { configuration.fetchWaitMax = .milliseconds(500) }
        consumer = try KafkaConsumer(configuration: configuration, logger: logger)
        self.kafka = kafka
    }

    /// Where each partition's log ends now, open transactions included: a
    /// `read_committed` handle is told the last stable offset instead.
    private func logEnds(of partitions: [KafkaTopicPartition]) async throws(KafkaError) -> [KafkaTopicPartition: Int64] {
        var settings = KafkaConsumerConfiguration(kafka: kafka, groupID: "\(kafka.clientID).ends")
        settings.isolationLevel = .readUncommitted
        let probe = try KafkaConsumer(configuration: settings, logger: logger)
        var ends: [KafkaTopicPartition: Int64] = [:]
        do {
            for part in partitions {
                ends[part] = try await probe.watermarks(topic: part.topic, partition: part.partition).high
            }
        } catch {
            try? await probe.close()
            throw error
        }
        try? await probe.close()
        return ends
    }

    /// Calls `body` with every record of `partitions`, batch by batch, in offset order
    /// per partition, and returns how many there were. Throws if the end is not reached
    /// by `timeout`. With `keepAssigned` the partitions stay assigned for ``follow(_:)``.
    package func read(
        _ partitions: [KafkaTopicPartition], timeout: Duration, keepAssigned: Bool = false, _ body: ([KafkaMessage]) -> Void
    ) async throws(KafkaError) -> Int {
        try await read(partitions, timeout: timeout, keepAssigned: keepAssigned, projecting: { $0.message() }, body)
    }

    /// ``read(_:timeout:keepAssigned:_:)`` that hands `body` only what `project` keeps
    /// of each record, read in librdkafka's buffer (a restore needs a key and a header,
    /// not a copy of every value and header). Returns how many records were read.
    package func read<Projected: Sendable>(
        _ partitions: [KafkaTopicPartition], timeout: Duration, keepAssigned: Bool = false,
        projecting project: @escaping @Sendable (KafkaRecordView) -> Projected?, _ body: ([Projected]) -> Void
    ) async throws(KafkaError) -> Int {
        let ends = try await logEnds(of: partitions)
        var pending = Set<KafkaTopicPartition>()
        for part in partitions {
            let marks = try await consumer.watermarks(topic: part.topic, partition: part.partition)
            // An empty partition may announce no end: do not wait for it.
            if (ends[part] ?? marks.high) > marks.low { pending.insert(part) }
            if restoring, marks.low > 0 {
                // Compaction keeps a log's start; only retention, a size limit or
                // DeleteRecords moves it, and they may have taken a key's last value.
                logger.warning("state partition no longer starts at offset 0: records before it were deleted, and state restored from it may miss keys", metadata: [
                    "topic": "\(part.topic)", "partition": "\(part.partition)", "log_start": "\(marks.low)",
                ])
            }
        }
        guard !pending.isEmpty || keepAssigned else { return 0 }
        try await consumer.assign(partitions.map { KafkaTopicPartitionOffset(topic: $0.topic, partition: $0.partition, offset: KafkaTopicPartitionOffset.beginning) })
        guard !pending.isEmpty else { return 0 }  // assigned for follow(_:) only
        let deadline = ContinuousClock.now + timeout
        var count = 0
        let consumer = consumer
        @Sendable func poll() async -> Result<KafkaProjectedBatch<Projected>, KafkaError> {
            do {
                return .success(try await consumer.poll(projecting: project))
            } catch {
                return .failure(error)
            }
        }
        // Partitions whose readable end stands before their log's end, since when.
        var unstableSince: [KafkaTopicPartition: ContinuousClock.Instant] = [:]
        var batch = try checked(await poll())
        while true {
            count += batch.seen
            for case .endOfPartition(let end) in batch.ends {
                if end.offset >= ends[end.topicPartition] ?? 0 {
                    pending.remove(end.topicPartition)
                } else if unstableSince[end.topicPartition] == nil {
                    unstableSince[end.topicPartition] = .now
                }
            }
            if !pending.isEmpty, pending.allSatisfy({ unstableSince[$0].map { $0 + stableWait < .now } ?? false }) {
                logger.warning("a transaction open since before the read has not ended: read only up to it", metadata: [
                    "partitions": "\(pending.sorted().map(\.description).joined(separator: ", "))", "waited": "\(stableWait)",
                ])
                pending.removeAll()
            }
            if pending.isEmpty {
                if !batch.records.isEmpty { body(batch.records) }
                break
            }
            guard ContinuousClock.now < deadline else {
                try? consumer.unassign()
                throw KafkaError(code: .timedOut, message: "did not reach the end of \(pending.sorted().map(\.description).joined(separator: ", ")) within \(timeout)")
            }
            // The next batch is fetched and projected on the consumer's queue while
            // `body` takes this one: two cores instead of one taking turns.
            async let next = poll()
            if !batch.records.isEmpty { body(batch.records) }
            batch = try checked(await next)
        }
        if !keepAssigned { try consumer.unassign() }
        return count
    }

    /// A batch, or the error that ends the read: a position deleted under a restore is
    /// said in terms of state, not of offsets.
    private func checked<Projected>(_ result: Result<KafkaProjectedBatch<Projected>, KafkaError>) throws(KafkaError) -> KafkaProjectedBatch<Projected> {
        switch result {
        case .success(let batch):
            return batch
        case .failure(let error) where error.code == .autoOffsetReset:
            try? consumer.unassign()
            throw KafkaError(code: .autoOffsetReset, message: "records were deleted before the restore read them (\(error.message)): state topics must be compacted, not cut by retention or a size limit")
        case .failure(let error):
            throw error
        }
    }

    /// Keeps reading the partitions a `keepAssigned` ``read(_:timeout:keepAssigned:_:)``
    /// left assigned, until the task is cancelled.
    func follow(_ body: ([KafkaMessage]) -> Void) async throws(KafkaError) {
        while !Task.isCancelled {
            for event in try await consumer.poll() {
                if case .messages(let messages) = event { body(messages) }
            }
        }
    }

    /// The record at `position`, or nil when it is gone (compacted, past retention) or
    /// not there by `timeout`: for an operator re-sending one event.
    package func record(at position: KafkaTopicPartitionOffset, timeout: Duration) async throws(KafkaError) -> KafkaMessage? {
        try await consumer.assign([position])
        defer { try? consumer.unassign() }
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            for event in try await consumer.poll() {
                switch event {
                case .messages(let messages):
                    if let found = messages.first(where: { $0.offset >= position.offset }) {
                        return found.offset == position.offset ? found : nil
                    }
                case .endOfPartition:
                    return nil
                case .assigned, .revoked, .lost:
                    break
                }
            }
        }
        return nil
    }

    package func close() async {
        try? await consumer.close()
    }

    /// The record at `position` read by a reader of its own, opened and closed here:
    /// for an operator's one-off look at a command or event.
    package static func record(
        at position: KafkaTopicPartitionOffset, kafka: KafkaConfiguration, timeout: Duration, logger: Logger
    ) async throws(KafkaError) -> KafkaMessage? {
        let reader = try PartitionReader(kafka: kafka, name: "\(kafka.clientID).record", batchSize: 100, logger: logger)
        do {
            let found = try await reader.record(at: position, timeout: timeout)
            await reader.close()
            return found
        } catch {
            await reader.close()
            throw error
        }
    }
}

/// Reads topics once, from their beginning to their end: for tools that check what a
/// run wrote (the demo's invariants and latencies).
public enum TopicScan {
    /// Every record of `topics` (missing topics are skipped), in offset order per partition.
    public static func records(of topics: [String], kafka: KafkaConfiguration, logger: Logger, timeout: Duration = .seconds(120)) async throws -> [KafkaMessage] {
        let counts = try await KafkaAdmin(configuration: kafka).partitionCounts()
        let partitions = topics.flatMap { topic in (0..<(counts[topic] ?? 0)).map { KafkaTopicPartition(topic: topic, partition: $0) } }
        return try await records(in: partitions, kafka: kafka, logger: logger, timeout: timeout)
    }

    /// Every record of `partitions`, in offset order per partition.
    package static func records(
        in partitions: [KafkaTopicPartition], kafka: KafkaConfiguration, logger: Logger, timeout: Duration = .seconds(120)
    ) async throws(KafkaError) -> [KafkaMessage] {
        let reader = try PartitionReader(kafka: kafka, name: "\(kafka.clientID).scan", batchSize: 10_000, logger: logger)
        var records: [KafkaMessage] = []
        do {
            _ = try await reader.read(partitions, timeout: timeout) { records += $0 }
        } catch {
            await reader.close()
            throw error
        }
        await reader.close()
        return records
    }
}

import CKafka
import Dispatch
import Logging
import Synchronization

/// What a group consumer hands to its caller, in order.
public enum KafkaConsumerEvent: Sendable, Hashable {
    /// A batch of records, in offset order per partition.
    case messages([KafkaMessage])
    /// Partitions added to this member; no record of them was handed out before this event.
    case assigned([KafkaTopicPartition])
    /// Partitions taken away in an orderly rebalance; no record of them follows this event.
    case revoked([KafkaTopicPartition])
    /// Partitions lost (session timed out, fenced): another member may already own them,
    /// so work done for them since the last commit must be dropped, not committed.
    case lost([KafkaTopicPartition])
    /// The consumer reached the end of a partition (for `read_committed`, its last stable
    /// offset); the offset is where the next record will be. Only with the librdkafka
    /// property `enable.partition.eof=true`, e.g. to read a changelog to its end.
    case endOfPartition(KafkaTopicPartitionOffset)
}

/// A Kafka group consumer that reads in batches.
///
/// Records come as an `AsyncSequence` of ``KafkaConsumerEvent`` from ``events()``:
/// each step reads up to ``KafkaConsumerConfiguration/maxBatchSize`` records with one
/// `rd_kafka_consume_batch_queue` call on a dedicated queue (never on Swift's
/// cooperative pool). Consumption is pull-based: librdkafka serves a rebalance only
/// while the caller waits for the next event, so a caller that commits before asking
/// for more never has uncommitted work when partitions move. For work that must happen
/// inside the rebalance itself, pass `onRebalance`.
///
/// Offsets are never stored or committed automatically unless configured: commit the
/// offsets of processed records (``KafkaMessage/nextOffset``) with ``commit(_:)``, or
/// send them into a producer's transaction with ``groupMetadata()``.
public final class KafkaConsumer: Sendable {
    private let client: RdKafkaClient
    private let pollQueue: DispatchQueue
    private let closed = Atomic<Bool>(false)
    private let maxBatchSize: Int
    private let pollTimeout: Duration
    private let rebalance: RebalanceHandler
    private let logger: Logger
    /// Topics whose metadata ``assign(_:)`` already loaded (librdkafka keeps it fresh).
    private let knownTopics = Mutex<Set<String>>([])

    /// Creates the consumer; throws if librdkafka rejects a property (its message names it).
    ///
    /// - Parameter onRebalance: called synchronously inside the rebalance, before the
    ///   assignment changes: on revoke the partitions are still owned, on assign fetching
    ///   has not started. It runs on the thread that waits for the next batch, so it must
    ///   not await; keep it short.
    public init(
        configuration: KafkaConsumerConfiguration,
        logger: Logger = Logger(label: "orderfleet.kafka.consumer"),
        onRebalance: (@Sendable (KafkaConsumerEvent) -> Void)? = nil
    ) throws(KafkaError) {
        guard configuration.maxBatchSize > 0 else {
            throw .configuration("maxBatchSize must be positive, got \(configuration.maxBatchSize)")
        }
        let rebalance = RebalanceHandler(logger: logger, hook: onRebalance)
        let callbacks = RdKafkaCallbacks(logger: logger, clientID: configuration.kafka.clientID, rebalance: rebalance)
        client = try RdKafkaClient(kind: .consumer, properties: configuration.librdkafkaProperties, callbacks: callbacks, name: "consumer") { conf in
            rd_kafka_conf_set_rebalance_cb(conf, rebalanceCallback)
        }
        self.rebalance = rebalance
        self.logger = logger
        maxBatchSize = configuration.maxBatchSize
        pollTimeout = configuration.pollTimeout
        pollQueue = DispatchQueue(label: "orderfleet.kafka.consumer.poll")
    }

    /// Joins the group for these topics; assignments arrive as events.
    public func subscribe(topics: [String]) throws(KafkaError) {
        let list = TopicPartitionList.make(topics.map { KafkaTopicPartition(topic: $0, partition: -1) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        try KafkaError.check(rd_kafka_subscribe(client.handle, list), "subscribe to \(topics.joined(separator: ","))")
    }

    /// Reads these partitions from these offsets without joining the group (no
    /// rebalancing), e.g. to restore state from a changelog.
    ///
    /// The first assignment of a topic waits (at most 500 ms) for its metadata: a
    /// partition assigned before librdkafka knows its leader retries its offset lookup
    /// only after a fixed 500 ms (librdkafka 2.0.2), which cost every restore that much.
    /// The wait, and librdkafka's own, happen off the caller's thread.
    public func assign(_ offsets: [KafkaTopicPartitionOffset]) async throws(KafkaError) {
        let missing = knownTopics.withLock { known in Set(offsets.map(\.topic)).subtracting(known) }
        let loaded = try await client.blocking { [client] () throws(KafkaError) -> [String] in
            let loaded = Self.loadMetadata(of: missing, client: client)
            let list = TopicPartitionList.make(offsets)
            defer { rd_kafka_topic_partition_list_destroy(list) }
            try KafkaError.check(rd_kafka_assign(client.handle, list), "assign")
            return loaded
        }
        knownTopics.withLock { $0.formUnion(loaded) }
    }

    /// Stops reading every partition ``assign(_:)`` assigned.
    public func unassign() throws(KafkaError) {
        try KafkaError.check(rd_kafka_assign(client.handle, nil), "unassign")
    }

    /// Asks the broker for the metadata of `topics`, so that their partitions' leaders
    /// are known when they are assigned; returns those it got. A failure (no broker
    /// reachable within the timeout) is left to librdkafka's own retries.
    private static func loadMetadata(of topics: Set<String>, client: RdKafkaClient) -> [String] {
        topics.sorted().filter { name in
            guard let topic = rd_kafka_topic_new(client.handle, name, nil) else { return false }
            defer { rd_kafka_topic_destroy(topic) }
            var metadata: UnsafePointer<rd_kafka_metadata>?
            guard rd_kafka_metadata(client.handle, 0, topic, &metadata, 500) == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else { return false }
            rd_kafka_metadata_destroy(metadata)
            return true
        }
    }

    /// The partitions currently assigned to this member.
    public func assignment() throws(KafkaError) -> [KafkaTopicPartition] {
        var list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
        try KafkaError.check(rd_kafka_assignment(client.handle, &list), "assignment")
        guard let list else { return [] }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        return TopicPartitionList.read(list).map(\.topicPartition).sorted()
    }

    /// The consumer's events: batches of records and rebalances. One iterator at a time;
    /// iteration ends after ``close()`` or when the iterating task is cancelled, and
    /// throws on a fatal consumer error.
    public func events() -> KafkaConsumerEvents { KafkaConsumerEvents(consumer: self) }

    /// Commits these offsets (each the next offset to read) synchronously.
    public func commit(_ offsets: [KafkaTopicPartitionOffset]) async throws(KafkaError) {
        guard !offsets.isEmpty else { return }
        let client = client
        try await client.blocking { () throws(KafkaError) in
            let list = TopicPartitionList.make(offsets)
            defer { rd_kafka_topic_partition_list_destroy(list) }
            try KafkaError.check(rd_kafka_commit(client.handle, list, 0), "commit")
            if let error = TopicPartitionList.firstError(list, context: "commit") { throw error }
        }
    }

    /// The group's committed offsets for these partitions (``KafkaTopicPartitionOffset/invalid``
    /// where none is committed).
    public func committed(_ partitions: [KafkaTopicPartition], timeout: Duration = .seconds(10)) async throws(KafkaError) -> [KafkaTopicPartitionOffset] {
        let client = client
        return try await client.blocking { () throws(KafkaError) in
            let list = TopicPartitionList.make(partitions)
            defer { rd_kafka_topic_partition_list_destroy(list) }
            try KafkaError.check(rd_kafka_committed(client.handle, list, timeout.timeoutMilliseconds), "committed offsets")
            if let error = TopicPartitionList.firstError(list, context: "committed offsets") { throw error }
            return TopicPartitionList.read(list)
        }
    }

    /// Stops fetching these partitions; records already fetched are not handed out.
    public func pause(_ partitions: [KafkaTopicPartition]) async throws(KafkaError) {
        try await setFetching(partitions, paused: true)
    }

    /// Resumes fetching paused partitions.
    public func resume(_ partitions: [KafkaTopicPartition]) async throws(KafkaError) {
        try await setFetching(partitions, paused: false)
    }

    private func setFetching(_ partitions: [KafkaTopicPartition], paused: Bool) async throws(KafkaError) {
        let client = client
        let operation = paused ? "pause" : "resume"
        try await onPollQueue { () throws(KafkaError) in
            let list = TopicPartitionList.make(partitions)
            defer { rd_kafka_topic_partition_list_destroy(list) }
            let err = paused ? rd_kafka_pause_partitions(client.handle, list) : rd_kafka_resume_partitions(client.handle, list)
            try KafkaError.check(err, operation)
            if let error = TopicPartitionList.firstError(list, context: operation) { throw error }
        }
    }

    /// Moves the fetch position of assigned partitions; the next records handed out start
    /// there (records fetched earlier are dropped).
    public func seek(_ offsets: [KafkaTopicPartitionOffset], timeout: Duration = .seconds(10)) async throws(KafkaError) {
        let client = client
        try await onPollQueue { () throws(KafkaError) in
            let list = TopicPartitionList.make(offsets)
            defer { rd_kafka_topic_partition_list_destroy(list) }
            try KafkaError.check(consuming: rd_kafka_seek_partitions(client.handle, list, timeout.timeoutMilliseconds), "seek")
            if let error = TopicPartitionList.firstError(list, context: "seek") { throw error }
        }
    }

    /// The partition's low and high watermarks (oldest offset, offset after the newest), asked of the broker.
    public func watermarks(topic: String, partition: Int32, timeout: Duration = .seconds(10)) async throws(KafkaError) -> (low: Int64, high: Int64) {
        let client = client
        let pair = try await client.blocking { () throws(KafkaError) in
            var low: Int64 = 0
            var high: Int64 = 0
            try KafkaError.check(
                rd_kafka_query_watermark_offsets(client.handle, topic, partition, &low, &high, timeout.timeoutMilliseconds),
                "watermarks of \(topic)[\(partition)]"
            )
            return [low, high]
        }
        return (pair[0], pair[1])
    }

    /// The partition's watermarks as of the last fetch response, without asking the
    /// broker (nil until the partition has been fetched); cheap enough for a lag gauge.
    public func cachedWatermarks(topic: String, partition: Int32) -> (low: Int64, high: Int64)? {
        var low: Int64 = 0
        var high: Int64 = 0
        guard rd_kafka_get_watermark_offsets(client.handle, topic, partition, &low, &high) == RD_KAFKA_RESP_ERR_NO_ERROR, high >= 0 else {
            return nil
        }
        return (low, high)
    }

    /// The member's group metadata, to send offsets into a producer's transaction.
    public func groupMetadata() throws(KafkaError) -> KafkaConsumerGroupMetadata {
        guard let pointer = rd_kafka_consumer_group_metadata(client.handle) else {
            throw KafkaError(code: .state, message: "no consumer group metadata (is group.id set?)")
        }
        return KafkaConsumerGroupMetadata(pointer: pointer)
    }

    /// Whether a broker is reachable, from librdkafka's own view: false from its
    /// all-brokers-down error until its statistics show a connection up again. Needs
    /// `statistics.interval.ms` (``KafkaConfiguration/statisticsInterval``) to notice the
    /// way back; true while nothing is known.
    public var brokersReachable: Bool { client.callbacks.statistics.brokersReachable }

    /// The fatal error that killed this consumer, if one did.
    public var fatalError: KafkaError? { client.fatalError() }

    /// Whether the group took this member's partitions away behind its back (its session
    /// or poll interval ran out while it worked): another member may own them now, so
    /// work for them must stop before its next effect (`rd_kafka_assignment_lost`).
    public var assignmentLost: Bool { rd_kafka_assignment_lost(client.handle) != 0 }

    /// Leaves the group (revoking its partitions, so others take over at once) and ends
    /// iteration. Commit before calling it.
    public func close() async throws(KafkaError) {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let client = client
        // On the poll queue, so that it runs after any batch call in progress.
        try await onPollQueue { () throws(KafkaError) in
            defer { client.markClosed() }
            try KafkaError.check(rd_kafka_consumer_close(client.handle), "close consumer")
        }
    }

    var isClosed: Bool { closed.load(ordering: .acquiring) }

    /// Runs a call on the batch queue: librdkafka 2.0.2's batch call is not safe against
    /// a concurrent seek, pause or resume (records may be lost or returned wrongly).
    private func onPollQueue<T: Sendable>(_ body: @escaping @Sendable () throws(KafkaError) -> T) async throws(KafkaError) -> T {
        try await client.blocking(on: pollQueue, body)
    }

    /// One batch call: the rebalances served during it, then the records it returned,
    /// then the ends of partitions reached. Empty when nothing came within
    /// ``KafkaConsumerConfiguration/pollTimeout``, so a caller that must act on a timer
    /// (commit an open transaction) gets control back; ``events()`` hides empty calls.
    public func poll() async throws(KafkaError) -> [KafkaConsumerEvent] {
        try await poll(timeout: pollTimeout)
    }

    /// ``poll()`` waiting at most `timeout` for the first record, for a caller with a
    /// deadline of its own (a transaction due to commit).
    public func poll(timeout wait: Duration) async throws(KafkaError) -> [KafkaConsumerEvent] {
        let batch = try await poll(timeout: wait) { record in record.message() }
        var events = batch.rebalances
        if !batch.records.isEmpty { events.append(.messages(batch.records)) }
        return events + batch.ends
    }

    /// One batch call like ``poll()``, handing each record to `project` while it is still
    /// in librdkafka's buffer and keeping what `project` returns (nil: skip the record):
    /// for a caller that needs a few parts of many records (a restore reads keys and
    /// one header) and should not copy the rest.
    public func poll<Projected: Sendable>(
        timeout wait: Duration? = nil, projecting project: @escaping @Sendable (KafkaRecordView) -> Projected?
    ) async throws(KafkaError) -> KafkaProjectedBatch<Projected> {
        let client = client
        let maxBatchSize = maxBatchSize
        let timeout = min(wait ?? pollTimeout, pollTimeout).timeoutMilliseconds
        let rebalance = rebalance
        let logger = logger
        return try await onPollQueue { [self] () throws(KafkaError) in
            guard !isClosed, let queue = client.consumerQueue else { return KafkaProjectedBatch() }
            return try Self.consumeBatch(
                client: client, queue: queue, maxBatchSize: maxBatchSize, timeout: timeout, rebalance: rebalance, logger: logger, project: project
            ).get()
        }
    }

    private static func consumeBatch<Projected>(
        client: RdKafkaClient, queue: OpaquePointer, maxBatchSize: Int, timeout: Int32,
        rebalance: RebalanceHandler, logger: Logger, project: (KafkaRecordView) -> Projected?
    ) -> Result<KafkaProjectedBatch<Projected>, KafkaError> {
        let buffer = UnsafeMutablePointer<UnsafeMutablePointer<rd_kafka_message_t>?>.allocate(capacity: maxBatchSize)
        defer { buffer.deallocate() }
        // The batch call waits for a *full* batch until its timeout, which would add the
        // whole timeout to every partial batch. So: take what is there without waiting;
        // only when nothing is, wait for one record, then take what came with it.
        var count = rd_kafka_consume_batch_queue(queue, 0, buffer, maxBatchSize)
        if count == 0, let first = rd_kafka_consumer_poll(client.handle, timeout) {
            buffer[0] = first
            let more = maxBatchSize > 1 ? rd_kafka_consume_batch_queue(queue, 0, buffer + 1, maxBatchSize - 1) : 0
            count = 1 + max(more, 0)
        }
        var batch = KafkaProjectedBatch<Projected>()
        batch.rebalances = rebalance.takeEvents()
        if count < 0 {
            return .failure(KafkaError(rd_kafka_last_error(), context: "consume"))
        }
        // Partitions that this member no longer owns after the call (a partition revoked
        // and assigned again within the call is owned).
        var owned: [KafkaTopicPartition: Bool] = [:]
        for event in batch.rebalances {
            switch event {
            case .assigned(let parts): for part in parts { owned[part] = true }
            case .revoked(let parts), .lost(let parts): for part in parts { owned[part] = false }
            case .messages, .endOfPartition: break
            }
        }
        let taken = Set(owned.compactMap { $0.value ? nil : $0.key })
        batch.records.reserveCapacity(count)
        var topicNames: [OpaquePointer: String] = [:]
        var lastTopic: (handle: OpaquePointer?, name: String) = (nil, "")
        var fatal: KafkaError?
        for index in 0..<count {
            guard let pointer = buffer[index] else { continue }
            defer { rd_kafka_message_destroy(pointer) }
            let record = pointer.pointee
            if record.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                if record.err == RD_KAFKA_RESP_ERR__PARTITION_EOF {
                    if let rkt = record.rkt {
                        batch.ends.append(.endOfPartition(KafkaTopicPartitionOffset(topic: String(cString: rd_kafka_topic_name(rkt)), partition: record.partition, offset: record.offset)))
                    }
                    continue
                }
                if record.err == RD_KAFKA_RESP_ERR__FATAL {
                    fatal = client.fatalError() ?? KafkaError(record.err, context: "consumer")
                    continue
                }
                if record.err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET {
                    // Only with auto.offset.reset=error: the position is gone (the log
                    // start passed it) and the caller asked to hear of it, not to skip.
                    let topic = record.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? "?"
                    let text = record.payload.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: record.len), as: UTF8.self) } ?? ""
                    fatal = KafkaError(code: .autoOffsetReset, message: "\(topic) [\(record.partition)] at offset \(record.offset): \(text)")
                    continue
                }
                let text = record.payload.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: record.len), as: UTF8.self) } ?? ""
                logger.warning("consumer error", metadata: ["kafka.error": "\(KafkaError.Code(record.err).name)", "kafka.reason": "\(text)"])
                continue
            }
            let topic: String
            if let rkt = record.rkt, rkt == lastTopic.handle {
                // A batch is mostly one topic: skip the dictionary for runs of it.
                topic = lastTopic.name
            } else if let rkt = record.rkt {
                if let name = topicNames[rkt] {
                    topic = name
                } else {
                    topic = String(cString: rd_kafka_topic_name(rkt))
                    topicNames[rkt] = topic
                }
                lastTopic = (rkt, topic)
            } else {
                topic = ""
            }
            // librdkafka already drops records of revoked partitions; this guards the
            // offsets the caller commits against a version that does not.
            if !taken.isEmpty, taken.contains(KafkaTopicPartition(topic: topic, partition: record.partition)) { continue }
            batch.seen += 1
            if let projected = project(KafkaRecordView(pointer: pointer, topic: topic)) { batch.records.append(projected) }
        }
        if let fatal { return .failure(fatal) }
        return .success(batch)
    }
}

/// What one batch call of ``KafkaConsumer/poll(timeout:projecting:)`` returned.
public struct KafkaProjectedBatch<Projected>: Sendable where Projected: Sendable {
    /// The rebalances served during the call (`assigned`, `revoked`, `lost`).
    public var rebalances: [KafkaConsumerEvent] = []
    /// What the projection kept of the records, in offset order per partition.
    public var records: [Projected] = []
    /// The ends of partitions reached (`endOfPartition`), after the records.
    public var ends: [KafkaConsumerEvent] = []
    /// How many records the call returned, kept or not.
    public var seen = 0
}

/// A record still in librdkafka's buffer: its parts are read in place, without copying
/// what the caller does not need. Valid only inside the projection it is handed to.
public struct KafkaRecordView {
    private let pointer: UnsafeMutablePointer<rd_kafka_message_t>
    /// Its topic.
    public let topic: String

    init(pointer: UnsafeMutablePointer<rd_kafka_message_t>, topic: String) {
        self.pointer = pointer
        self.topic = topic
    }

    /// Its partition.
    public var partition: Int32 { pointer.pointee.partition }
    /// Its offset in the partition.
    public var offset: Int64 { pointer.pointee.offset }
    /// The key's bytes, if it has a key.
    public var key: UnsafeRawBufferPointer? {
        pointer.pointee.key.map { UnsafeRawBufferPointer(start: $0, count: pointer.pointee.key_len) }
    }
    /// The value's bytes; nil for a tombstone.
    public var value: UnsafeRawBufferPointer? {
        pointer.pointee.payload.map { UnsafeRawBufferPointer(start: $0, count: pointer.pointee.len) }
    }

    /// The bytes of the last header called `name` (nil: no such header, or no value).
    public func header(_ name: String) -> UnsafeRawBufferPointer? {
        var list: OpaquePointer?
        guard rd_kafka_message_headers(pointer, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list else { return nil }
        var bytes: UnsafeRawPointer?
        var size = 0
        guard rd_kafka_header_get_last(list, name, &bytes, &size) == RD_KAFKA_RESP_ERR_NO_ERROR, let bytes else { return nil }
        return UnsafeRawBufferPointer(start: bytes, count: size)
    }

    /// The whole record, copied out.
    public func message() -> KafkaMessage {
        let record = pointer.pointee
        let key = record.key.map { Array(UnsafeRawBufferPointer(start: $0, count: record.key_len)) }
        let value = record.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: record.len)) }
        var headers: [KafkaHeader] = []
        var list: OpaquePointer?
        if rd_kafka_message_headers(pointer, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list {
            var index = 0
            var name: UnsafePointer<CChar>?
            var bytes: UnsafeRawPointer?
            var size = 0
            while rd_kafka_header_get_all(list, index, &name, &bytes, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
                headers.append(KafkaHeader(name: name.map { String(cString: $0) } ?? "", value: bytes.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) }))
                index += 1
            }
        }
        var timestampType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let timestamp = rd_kafka_message_timestamp(pointer, &timestampType)
        return KafkaMessage(
            topic: topic, partition: record.partition, offset: record.offset,
            key: key, value: value, headers: headers,
            timestampMilliseconds: timestampType == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? nil : timestamp
        )
    }
}

/// The events of a ``KafkaConsumer``, see ``KafkaConsumer/events()``.
public struct KafkaConsumerEvents: AsyncSequence, Sendable {
    /// Each element is a batch or a rebalance.
    public typealias Element = KafkaConsumerEvent
    /// Iteration throws ``KafkaError`` only.
    public typealias Failure = KafkaError

    let consumer: KafkaConsumer

    /// Pulls one batch call at a time.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let consumer: KafkaConsumer
        var pending: [KafkaConsumerEvent] = []

        /// The next event; `nil` once the consumer is closed or the task cancelled.
        public mutating func next(isolation actor: isolated (any Actor)?) async throws(KafkaError) -> KafkaConsumerEvent? {
            while pending.isEmpty {
                if consumer.isClosed || Task.isCancelled { return nil }
                pending = try await consumer.poll()
            }
            return pending.removeFirst()
        }

        /// The next event; `nil` once the consumer is closed or the task cancelled.
        public mutating func next() async throws(KafkaError) -> KafkaConsumerEvent? {
            try await next(isolation: nil)
        }
    }

    /// An iterator over the consumer's events.
    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(consumer: consumer) }
}

/// A consumer's group identity (group, generation, member), which a transactional
/// producer needs to commit that consumer's offsets.
///
/// `@unchecked Sendable`: wraps an immutable `rd_kafka_consumer_group_metadata_t`.
public final class KafkaConsumerGroupMetadata: @unchecked Sendable {
    let pointer: OpaquePointer

    init(pointer: OpaquePointer) { self.pointer = pointer }

    deinit { rd_kafka_consumer_group_metadata_destroy(pointer) }
}

/// Applies rebalances inside librdkafka's callback and queues them as events.
final class RebalanceHandler: Sendable {
    private let logger: Logger
    private let hook: (@Sendable (KafkaConsumerEvent) -> Void)?
    private let pending = Mutex<[KafkaConsumerEvent]>([])

    init(logger: Logger, hook: (@Sendable (KafkaConsumerEvent) -> Void)?) {
        self.logger = logger
        self.hook = hook
    }

    func takeEvents() -> [KafkaConsumerEvent] {
        pending.withLock { events in
            defer { events.removeAll() }
            return events
        }
    }

    func handle(_ rk: OpaquePointer, _ err: rd_kafka_resp_err_t, _ partitions: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?) {
        let parts = partitions.map { TopicPartitionList.read($0).map(\.topicPartition).sorted() } ?? []
        let cooperative = rd_kafka_rebalance_protocol(rk).map { String(cString: $0) } == "COOPERATIVE"
        let event: KafkaConsumerEvent
        var error: KafkaError?
        switch err {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
            hook?(.assigned(parts))
            if cooperative {
                if let failure = rd_kafka_incremental_assign(rk, partitions) { error = KafkaError(consuming: failure, context: "incremental assign") }
            } else if case let err = rd_kafka_assign(rk, partitions), err != RD_KAFKA_RESP_ERR_NO_ERROR {
                error = KafkaError(err, context: "assign")
            }
            // Announce only what was really assigned.
            event = error == nil ? .assigned(parts) : .assigned([])
        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
            event = rd_kafka_assignment_lost(rk) != 0 ? .lost(parts) : .revoked(parts)
            hook?(event)
            if cooperative {
                if let failure = rd_kafka_incremental_unassign(rk, partitions) { error = KafkaError(consuming: failure, context: "incremental unassign") }
            } else if case let err = rd_kafka_assign(rk, nil), err != RD_KAFKA_RESP_ERR_NO_ERROR {
                error = KafkaError(err, context: "unassign")
            }
        default:
            logger.error("rebalance failed", metadata: ["kafka.error": "\(KafkaError.Code(err).name)"])
            _ = rd_kafka_assign(rk, nil)
            event = .lost(parts)
        }
        if let error { logger.error("rebalance step failed", metadata: ["kafka.error": "\(error)"]) }
        logger.info("rebalance", metadata: ["event": "\(event)"])
        pending.withLock { $0.append(event) }
    }
}

private let rebalanceCallback: @convention(c) (OpaquePointer?, rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?, UnsafeMutableRawPointer?) -> Void = { rk, err, partitions, opaque in
    guard let rk, let handler = RdKafkaClient.callbacks(of: opaque)?.rebalance else { return }
    handler.handle(rk, err, partitions)
}

import CKafka
import Foundation
import Logging
import Synchronization

/// A Kafka producer: idempotent, `acks=all`, optionally transactional.
///
/// Two ways to send: ``send(_:)`` returns once the broker acknowledged the record (for
/// callers that must not answer before Kafka has the data, such as a webhook), and
/// ``enqueue(_:)`` hands the record to librdkafka and returns at once (for throughput;
/// ``enqueue(contentsOf:)`` does so for many records with less overhead per record);
/// failures of enqueued records are collected and thrown by the next ``flush(timeout:)``,
/// and a transaction's commit fails if one of its records failed.
///
/// Delivery reports are served by a dedicated thread, and every blocking librdkafka
/// call (flush, transactions) runs off Swift's cooperative thread pool.
public final class KafkaProducer: Sendable {
    private let client: RdKafkaClient
    private let tracker: DeliveryTracker
    private let topics = Mutex<[String: TopicHandle]>([:])
    private let poller: PollThread
    private let closed = Atomic<Bool>(false)

    /// Creates the producer; throws if librdkafka rejects a property (its message names it).
    public init(configuration: KafkaProducerConfiguration, logger: Logger = Logger(label: "orderfleet.kafka.producer")) throws(KafkaError) {
        let tracker = DeliveryTracker(transactional: configuration.transactionalID != nil)
        let callbacks = RdKafkaCallbacks(logger: logger, clientID: configuration.kafka.clientID, deliveries: tracker)
        client = try RdKafkaClient(kind: .producer, properties: configuration.librdkafkaProperties, callbacks: callbacks, name: "producer") { conf in
            rd_kafka_conf_set_dr_msg_cb(conf, deliveryReportCallback)
        }
        self.tracker = tracker
        let client = client
        poller = PollThread(name: "orderfleet.kafka.producer.poll") { rd_kafka_poll(client.handle, 100) }
    }

    deinit {
        poller.stop()
        topics.withLock { handles in
            for handle in handles.values { rd_kafka_topic_destroy(handle.pointer) }
        }
    }

    /// Produces one record and returns where the broker stored it, after it acknowledged it.
    public func send(_ message: KafkaProducerMessage) async throws(KafkaError) -> KafkaDeliveryReport {
        while true {
            let result: Result<KafkaDeliveryReport, KafkaError> = await withCheckedContinuation { continuation in
                let promise = DeliveryPromise(continuation)
                let opaque = Unmanaged.passRetained(promise).toOpaque()
                let err = produce(message, opaque: opaque)
                if err != RD_KAFKA_RESP_ERR_NO_ERROR {
                    Unmanaged<DeliveryPromise>.fromOpaque(opaque).release()
                    continuation.resume(returning: .failure(produceError(err, topic: message.topic)))
                }
            }
            switch result {
            case .success(let report): return report
            case .failure(let error) where error.code == .queueFull: try await waitForQueueSpace(message.topic)
            case .failure(let error): throw error
            }
        }
    }

    /// Hands one record to librdkafka without waiting for the broker. A delivery failure
    /// is counted and thrown by the next ``flush(timeout:)`` (and fails an open
    /// transaction's commit). Waits only while librdkafka's local queue is full.
    public func enqueue(_ message: KafkaProducerMessage) async throws(KafkaError) {
        try await enqueue(contentsOf: [message])
    }

    /// Hands these records to librdkafka in order, without waiting for the broker: the
    /// fast path for many records. Unlike calling ``enqueue(_:)`` per record, it
    /// suspends only while librdkafka's local queue is full, and it looks the topic up
    /// once per run of records with the same topic. Failures are reported as for
    /// ``enqueue(_:)``.
    ///
    /// On a thrown error the records before the failing one were enqueued, the failing
    /// one and those after it were not.
    public func enqueue(contentsOf messages: [KafkaProducerMessage]) async throws(KafkaError) {
        var index = messages.startIndex
        var cached: (name: String, handle: OpaquePointer)?
        while index < messages.endIndex {
            let message = messages[index]
            let topic: OpaquePointer
            if let cached, cached.name == message.topic {
                topic = cached.handle
            } else {
                guard let handle = topicHandle(message.topic) else { throw produceError(RD_KAFKA_RESP_ERR__INVALID_ARG, topic: message.topic) }
                cached = (message.topic, handle)
                topic = handle
            }
            let err = produce(message, topic: topic, opaque: nil)
            if err == RD_KAFKA_RESP_ERR_NO_ERROR {
                index += 1
            } else if err == RD_KAFKA_RESP_ERR__QUEUE_FULL {
                try await waitForQueueSpace(message.topic)
            } else {
                throw produceError(err, topic: message.topic)
            }
        }
    }

    /// Waits until every record handed over so far is acknowledged or failed; throws if
    /// the timeout passed first or if an ``enqueue(_:)``-ed record failed since the last
    /// flush (the error says how many and why the first failed).
    public func flush(timeout: Duration = .seconds(30)) async throws(KafkaError) {
        let client = client
        try await client.blocking { () throws(KafkaError) in
            try KafkaError.check(rd_kafka_flush(client.handle, timeout.timeoutMilliseconds), "flush")
        }
        if let failure = tracker.takeFailures() { throw failure }
    }

    /// Records delivered and failed through ``enqueue(_:)`` since the producer started.
    public var enqueuedDeliveries: (delivered: Int, failed: Int) {
        (tracker.delivered.load(ordering: .relaxed), tracker.failed.load(ordering: .relaxed))
    }

    /// Flushes outstanding records and stops the delivery thread; later sends fail.
    /// When the flush fails (brokers unreachable until the timeout), the records still
    /// queued are purged, so that every waiting ``send(_:)`` returns with an error.
    public func close(timeout: Duration = .seconds(30)) async throws(KafkaError) {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let client = client
        var flushError: KafkaError?
        do {
            try await flush(timeout: timeout)
        } catch {
            flushError = error
            try await client.blocking {
                _ = rd_kafka_purge(client.handle, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT)
                _ = rd_kafka_flush(client.handle, 5000)  // serves the purged records' reports
            }
        }
        poller.stop()
        client.markClosed()
        if let flushError { throw flushError }
    }

    // MARK: Transactions

    /// Registers the `transactional.id` with the cluster and fences older producers with
    /// the same id. Call once before the first transaction.
    public func initTransactions(timeout: Duration = .seconds(30)) async throws(KafkaError) {
        let client = client
        try await client.blocking { () throws(KafkaError) in
            try KafkaError.check(consuming: rd_kafka_init_transactions(client.handle, timeout.timeoutMilliseconds), "init transactions")
        }
    }

    /// Starts a transaction: every record produced until commit or abort belongs to it.
    public func beginTransaction() throws(KafkaError) {
        try KafkaError.check(consuming: rd_kafka_begin_transaction(client.handle), "begin transaction")
    }

    /// Adds consumed offsets (the next offsets to read) to the transaction, so that they
    /// become the group's committed offsets exactly when the transaction commits.
    public func sendOffsetsToTransaction(
        _ offsets: [KafkaTopicPartitionOffset],
        groupMetadata: KafkaConsumerGroupMetadata,
        timeout: Duration = .seconds(30)
    ) async throws(KafkaError) {
        guard !offsets.isEmpty else { return }
        let client = client
        try await client.blocking { () throws(KafkaError) in
            let list = TopicPartitionList.make(offsets)
            defer { rd_kafka_topic_partition_list_destroy(list) }
            try KafkaError.check(
                consuming: rd_kafka_send_offsets_to_transaction(client.handle, list, groupMetadata.pointer, timeout.timeoutMilliseconds),
                "send offsets to transaction"
            )
        }
    }

    /// Flushes the transaction's records and commits it. On an error with
    /// ``KafkaError/txnRequiresAbort`` call ``abortTransaction(timeout:)`` and rewind; on
    /// a fatal one the producer is dead.
    public func commitTransaction(timeout: Duration = .seconds(30)) async throws(KafkaError) {
        let client = client
        try await client.blocking { () throws(KafkaError) in
            try KafkaError.check(consuming: rd_kafka_commit_transaction(client.handle, timeout.timeoutMilliseconds), "commit transaction")
        }
        // Failures inside a committed transaction cannot exist: commit would have failed.
        _ = tracker.takeFailures()
    }

    /// Aborts the transaction: its records are never visible to `read_committed` readers
    /// and its offsets are not committed.
    public func abortTransaction(timeout: Duration = .seconds(30)) async throws(KafkaError) {
        let client = client
        try await client.blocking { () throws(KafkaError) in
            try KafkaError.check(consuming: rd_kafka_abort_transaction(client.handle, timeout.timeoutMilliseconds), "abort transaction")
        }
        // The aborted records' failures (purged) belong to the aborted transaction.
        _ = tracker.takeFailures()
    }

    /// Whether a broker is reachable, from librdkafka's own view: false from its
    /// all-brokers-down error until its statistics show a connection up again. Needs
    /// `statistics.interval.ms` (``KafkaConfiguration/statisticsInterval``) to notice the
    /// way back; true while nothing is known.
    public var brokersReachable: Bool { client.callbacks.statistics.brokersReachable }

    /// The fatal error that killed this producer, if one did (e.g. fenced).
    public var fatalError: KafkaError? { client.fatalError() }

    // MARK: Internals

    /// A produce call's error, with the cause of a fatal one and the transaction's
    /// abort requirement.
    private func produceError(_ err: rd_kafka_resp_err_t, topic: String) -> KafkaError {
        if err == RD_KAFKA_RESP_ERR__FATAL, let fatal = client.fatalError() { return fatal }
        if err == RD_KAFKA_RESP_ERR__STATE, closed.load(ordering: .acquiring) {
            return KafkaError(code: .state, message: "produce to \(topic): the producer is closed")
        }
        return tracker.classify(KafkaError(err, context: "produce to \(topic)"))
    }

    private func produce(_ message: KafkaProducerMessage, opaque: UnsafeMutableRawPointer?) -> rd_kafka_resp_err_t {
        if closed.load(ordering: .acquiring) { return RD_KAFKA_RESP_ERR__STATE }
        guard let topic = topicHandle(message.topic) else { return RD_KAFKA_RESP_ERR__INVALID_ARG }
        return produce(message, topic: topic, opaque: opaque)
    }

    private func produce(_ message: KafkaProducerMessage, topic: OpaquePointer, opaque: UnsafeMutableRawPointer?) -> rd_kafka_resp_err_t {
        if closed.load(ordering: .acquiring) { return RD_KAFKA_RESP_ERR__STATE }
        var headers: OpaquePointer?
        if !message.headers.isEmpty {
            headers = rd_kafka_headers_new(message.headers.count)
            for header in message.headers {
                if let value = header.value {
                    _ = value.withUnsafeBytes { rd_kafka_header_add(headers, header.name, -1, $0.baseAddress, $0.count) }
                } else {
                    _ = rd_kafka_header_add(headers, header.name, -1, nil, 0)
                }
            }
        }
        let partition = message.partition ?? ckafka_partition_ua()
        let err = withOptionalBytes(message.key) { keyPointer, keyLength in
            withOptionalBytes(message.value) { valuePointer, valueLength in
                ckafka_produce(client.handle, topic, partition, keyPointer, keyLength, valuePointer, valueLength, headers, opaque)
            }
        }
        // librdkafka owns the headers only when the produce call succeeded.
        if err != RD_KAFKA_RESP_ERR_NO_ERROR, let headers { rd_kafka_headers_destroy(headers) }
        return err
    }

    private func topicHandle(_ name: String) -> OpaquePointer? {
        topics.withLock { handles in
            if let handle = handles[name] { return handle.pointer }
            // nil for an invalid name (e.g. longer than librdkafka accepts).
            guard let pointer = rd_kafka_topic_new(client.handle, name, nil) else { return nil }
            handles[name] = TopicHandle(pointer: pointer)
            return pointer
        }
    }

    /// librdkafka's queue drains as the broker acknowledges; a short sleep lets the
    /// delivery thread make room without spinning. A cancelled task stops waiting.
    private func waitForQueueSpace(_ topic: String) async throws(KafkaError) {
        do {
            try await Task.sleep(for: .milliseconds(1))
        } catch {
            throw KafkaError(code: .queueFull, message: "produce to \(topic): cancelled while the local queue was full")
        }
    }
}

@inline(__always)
private func withOptionalBytes<R>(_ bytes: [UInt8]?, _ body: (UnsafeRawPointer?, Int) -> R) -> R {
    guard let bytes else { return body(nil, 0) }
    return bytes.withUnsafeBytes { body($0.baseAddress, $0.count) }
}

/// `@unchecked Sendable`: an `rd_kafka_topic_t`, which librdkafka lets any thread use.
private struct TopicHandle: @unchecked Sendable {
    let pointer: OpaquePointer
}

/// Resumes the task waiting in ``KafkaProducer/send(_:)``.
final class DeliveryPromise: Sendable {
    private let continuation: CheckedContinuation<Result<KafkaDeliveryReport, KafkaError>, Never>

    init(_ continuation: CheckedContinuation<Result<KafkaDeliveryReport, KafkaError>, Never>) {
        self.continuation = continuation
    }

    func complete(_ result: Result<KafkaDeliveryReport, KafkaError>) { continuation.resume(returning: result) }
}

/// Counts the outcomes of enqueued records and keeps the first failure until it is
/// reported.
final class DeliveryTracker: Sendable {
    /// In a transaction every failed record dooms the transaction: abort, not retry.
    let transactional: Bool
    let delivered = Atomic<Int>(0)
    let failed = Atomic<Int>(0)
    private let pending = Mutex<(count: Int, first: KafkaError?)>((0, nil))

    init(transactional: Bool) { self.transactional = transactional }

    func classify(_ error: KafkaError) -> KafkaError {
        guard transactional, !error.isFatal else { return error }
        // Retriable stays said: the abort is needed either way, but a timeout is not the
        // record's fault (the runner's poison-pill rule tells them apart).
        return KafkaError(code: error.code, message: error.message, isRetriable: error.isRetriable, isFatal: false, txnRequiresAbort: true)
    }

    func recordFailure(_ error: KafkaError) {
        failed.add(1, ordering: .relaxed)
        pending.withLock { state in
            state.count += 1
            if state.first == nil { state.first = error }
        }
    }

    func takeFailures() -> KafkaError? {
        pending.withLock { state in
            defer { state = (0, nil) }
            guard let first = state.first else { return nil }
            return KafkaError(
                code: first.code,
                message: "\(state.count) enqueued record(s) failed; first: \(first.message)",
                isRetriable: first.isRetriable, isFatal: first.isFatal, txnRequiresAbort: first.txnRequiresAbort
            )
        }
    }
}

private let deliveryReportCallback: @convention(c) (OpaquePointer?, UnsafePointer<rd_kafka_message_t>?, UnsafeMutableRawPointer?) -> Void = { _, message, opaque in
    guard let message, let tracker = RdKafkaClient.callbacks(of: opaque)?.deliveries else { return }
    let record = message.pointee
    // The common case, an enqueued record delivered, only counts: no topic name is
    // built for it (this runs once per record on the delivery thread).
    if record._private == nil, record.err == RD_KAFKA_RESP_ERR_NO_ERROR {
        tracker.delivered.add(1, ordering: .relaxed)
        return
    }
    var result: Result<KafkaDeliveryReport, KafkaError>
    if record.err == RD_KAFKA_RESP_ERR_NO_ERROR {
        let topic = record.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? ""
        result = .success(KafkaDeliveryReport(topic: topic, partition: record.partition, offset: record.offset))
    } else {
        let topic = record.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? "?"
        result = .failure(tracker.classify(KafkaError(record.err, context: "delivery to \(topic)")))
    }
    if let promise = record._private {
        Unmanaged<DeliveryPromise>.fromOpaque(promise).takeRetainedValue().complete(result)
    } else if case .failure(let error) = result {
        tracker.recordFailure(error)
    }
}

/// A dedicated thread that calls a blocking poll function until stopped; librdkafka
/// serves callbacks only inside such calls.
final class PollThread: Sendable {
    private let running = Atomic<Bool>(true)

    init(name: String, poll: @escaping @Sendable () -> Void) {
        // The closure holds `poll`, and with it the client it polls, until the loop ends.
        let thread = Thread { [self] in
            while running.load(ordering: .acquiring) { poll() }
        }
        thread.name = name
        thread.start()
    }

    /// Ends the thread after its current poll, without waiting for it (up to one poll
    /// timeout): a producer's close would otherwise take that long for nothing.
    func stop() {
        running.store(false, ordering: .releasing)
    }
}

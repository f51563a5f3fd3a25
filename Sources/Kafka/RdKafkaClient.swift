import CKafka
import Synchronization
import Dispatch
import Logging

/// Owns one `rd_kafka_t` handle and the callbacks' context.
///
/// `@unchecked Sendable`: librdkafka documents its handle as thread-safe for every call
/// made here; the only mutable Swift state lives in ``RdKafkaCallbacks`` behind a
/// `Mutex`.
final class RdKafkaClient: @unchecked Sendable {
    let handle: OpaquePointer
    let callbacks: RdKafkaCallbacks
    /// Runs librdkafka's blocking calls (commit, flush, transactions, admin requests) so
    /// that they never block Swift's cooperative thread pool.
    let blockingQueue: DispatchQueue

    enum Kind {
        case producer, consumer
    }

    /// Builds the configuration (every property checked by librdkafka, in order) and the
    /// handle. `configure` may register extra callbacks on the `rd_kafka_conf_t`.
    init(
        kind: Kind,
        properties: [(String, String)],
        callbacks: RdKafkaCallbacks,
        name: String,
        configure: (OpaquePointer) -> Void = { _ in }
    ) throws(KafkaError) {
        let conf = rd_kafka_conf_new()!
        var errstr = [CChar](repeating: 0, count: 512)
        for (key, value) in properties {
            let result = rd_kafka_conf_set(conf, key, value, &errstr, errstr.count)
            if result != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                throw .configuration(String(cBuffer: errstr))
            }
        }
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(callbacks).toOpaque())
        rd_kafka_conf_set_log_cb(conf, rdkafkaLogCallback)
        rd_kafka_conf_set_stats_cb(conf, rdkafkaStatsCallback)
        rd_kafka_conf_set_error_cb(conf, rdkafkaErrorCallback)
        configure(conf)

        let type = kind == .producer ? RD_KAFKA_PRODUCER : RD_KAFKA_CONSUMER
        // rd_kafka_new takes ownership of conf on success only.
        guard let handle = rd_kafka_new(type, conf, &errstr, errstr.count) else {
            rd_kafka_conf_destroy(conf)
            throw .configuration(String(cBuffer: errstr))
        }
        self.handle = handle
        unclosedClients.add(1, ordering: .relaxed)
        self.callbacks = callbacks
        self.blockingQueue = DispatchQueue(label: "orderfleet.kafka.\(name)")
        if kind == .consumer {
            // Route logs, errors and rebalances to the consumer queue, so that the
            // batch call serves them in order with the messages.
            rd_kafka_poll_set_consumer(handle)
            consumerQueue = rd_kafka_queue_get_consumer(handle)
        } else {
            consumerQueue = nil
        }
    }

    /// Consumer only: the consumer queue that batches are read from; it must be
    /// destroyed before the handle.
    let consumerQueue: OpaquePointer?

    /// Set once the owner closed the client (a consumer left its group, a producer
    /// flushed): it counts as closed before its handle is destroyed.
    private let closedMark = Atomic<Bool>(false)

    /// Counts the client as closed (once); its handle lives on until the last reference goes.
    func markClosed() {
        if !closedMark.exchange(true, ordering: .relaxed) { unclosedClients.subtract(1, ordering: .relaxed) }
    }

    deinit {
        // A client dropped without being closed is closed by its destruction.
        let closedByDestroy = !closedMark.exchange(true, ordering: .relaxed)
        // rd_kafka_destroy can block for seconds (a consumer leaves its group), and the
        // last reference is often dropped inside a task: destroy off the cooperative pool.
        let handle = UncheckedHandle(pointer: handle)
        let queue = consumerQueue.map(UncheckedHandle.init)
        let callbacks = callbacks
        DispatchQueue.global().async {
            if let queue { rd_kafka_queue_destroy(queue.pointer) }
            rd_kafka_destroy(handle.pointer)
            withExtendedLifetime(callbacks) {}  // the C callbacks use it until destroy returns
            if closedByDestroy { unclosedClients.subtract(1, ordering: .relaxed) }
        }
    }

    /// Runs a blocking librdkafka call on `queue` (default ``blockingQueue``) and resumes
    /// the caller with its result.
    func blocking<T: Sendable>(on queue: DispatchQueue? = nil, _ body: @escaping @Sendable () throws(KafkaError) -> T) async throws(KafkaError) -> T {
        let result: Result<T, KafkaError> = await withCheckedContinuation { continuation in
            (queue ?? blockingQueue).async {
                do throws(KafkaError) {
                    continuation.resume(returning: .success(try body()))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
        return try result.get()
    }

    /// The fatal error raised on this handle, if any.
    func fatalError() -> KafkaError? {
        var errstr = [CChar](repeating: 0, count: 512)
        let err = rd_kafka_fatal_error(handle, &errstr, errstr.count)
        guard err != RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
        return KafkaError(code: .init(err), message: String(cBuffer: errstr), isFatal: true)
    }

    static func callbacks(of opaque: UnsafeMutableRawPointer?) -> RdKafkaCallbacks? {
        guard let opaque else { return nil }
        return Unmanaged<RdKafkaCallbacks>.fromOpaque(opaque).takeUnretainedValue()
    }
}

/// `@unchecked Sendable`: a librdkafka handle pointer, passed to the thread that destroys it.
private struct UncheckedHandle: @unchecked Sendable {
    let pointer: OpaquePointer
}

/// What librdkafka's C callbacks reach through the handle's opaque pointer.
final class RdKafkaCallbacks: Sendable {
    let logger: Logger
    let statistics: KafkaStatistics
    /// Producer only: routes delivery reports.
    let deliveries: DeliveryTracker?
    /// Consumer only: applies and records rebalances.
    let rebalance: RebalanceHandler?

    init(logger: Logger, clientID: String, deliveries: DeliveryTracker? = nil, rebalance: RebalanceHandler? = nil) {
        self.logger = logger
        self.statistics = KafkaStatistics(clientID: clientID)
        self.deliveries = deliveries
        self.rebalance = rebalance
    }
}

private let rdkafkaLogCallback: @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> Void = { rk, level, facility, message in
    guard let rk, let callbacks = RdKafkaClient.callbacks(of: rd_kafka_opaque(rk)) else { return }
    let text = message.map { String(cString: $0) } ?? ""
    let fac = facility.map { String(cString: $0) } ?? ""
    // librdkafka uses syslog levels.
    let swiftLevel: Logger.Level = switch level {
    case ...2: .critical
    case 3: .error
    case 4: .warning
    case 5: .notice
    case 6: .info
    default: .debug
    }
    callbacks.logger.log(level: swiftLevel, "\(text)", metadata: ["kafka.facility": "\(fac)"])
}

private let rdkafkaErrorCallback: @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafeMutableRawPointer?) -> Void = { _, err, reason, opaque in
    guard let callbacks = RdKafkaClient.callbacks(of: opaque) else { return }
    let code = KafkaError.Code(rawValue: err)
    let text = reason.map { String(cString: $0) } ?? ""
    if code == .allBrokersDown { callbacks.statistics.allBrokersDown() }
    // Most client errors (a broker connection dropped) are transient and librdkafka
    // recovers by itself; fatal ones surface through the next call on the handle.
    let level: Logger.Level = code == .fatal ? .critical : .warning
    callbacks.logger.log(level: level, "kafka client error", metadata: ["kafka.error": "\(code.name)", "kafka.reason": "\(text)"])
}

private let rdkafkaStatsCallback: @convention(c) (OpaquePointer?, UnsafeMutablePointer<CChar>?, Int, UnsafeMutableRawPointer?) -> Int32 = { _, json, length, opaque in
    guard let json, let callbacks = RdKafkaClient.callbacks(of: opaque) else { return 0 }
    let bytes = UnsafeRawBufferPointer(start: json, count: length)
    callbacks.statistics.record(json: Array(bytes))
    return 0  // librdkafka frees the buffer
}

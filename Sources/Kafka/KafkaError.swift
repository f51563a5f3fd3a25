import CKafka

/// The one error type of the Kafka module: librdkafka's error code, its message and
/// the error class that tells the caller what to do next.
///
/// librdkafka classifies errors of transactional producers (retriable, abortable,
/// fatal); the same flags are set here for every error so that callers can branch on
/// them without knowing codes: retry a retriable one, abort and rewind when
/// ``txnRequiresAbort`` is set, and stop the process when ``isFatal`` is set.
public struct KafkaError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A librdkafka error code (`rd_kafka_resp_err_t`): negative values are local to the
    /// client, non-negative ones come from the broker protocol.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        /// The raw `rd_kafka_resp_err_t` value.
        public let rawValue: Int32
        /// Wraps a raw `rd_kafka_resp_err_t` value.
        public init(rawValue: Int32) { self.rawValue = rawValue }

        init(_ err: rd_kafka_resp_err_t) { self.rawValue = err.rawValue }

        /// librdkafka's name of the code, e.g. `UNKNOWN_TOPIC_OR_PART` or `_TIMED_OUT`.
        public var name: String { String(cString: rd_kafka_err2name(rd_kafka_resp_err_t(rawValue: rawValue))) }

        /// The code's name, as librdkafka prints it.
        public var description: String { name }

        /// No error.
        public static let noError = Code(RD_KAFKA_RESP_ERR_NO_ERROR)
        /// A local timeout (request, flush or transaction call).
        public static let timedOut = Code(RD_KAFKA_RESP_ERR__TIMED_OUT)
        /// A consumer's position is out of range and `auto.offset.reset=error` forbids
        /// moving it: the records there were deleted before they were read.
        public static let autoOffsetReset = Code(RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET)
        /// The local produce queue is full.
        public static let queueFull = Code(RD_KAFKA_RESP_ERR__QUEUE_FULL)
        /// An invalid argument or configuration value.
        public static let invalidArgument = Code(RD_KAFKA_RESP_ERR__INVALID_ARG)
        /// A fatal error was raised; the client instance is unusable.
        public static let fatal = Code(RD_KAFKA_RESP_ERR__FATAL)
        /// A message timed out in the producer queue before it was acknowledged.
        public static let messageTimedOut = Code(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT)
        /// The instance is being destroyed.
        public static let destroyed = Code(RD_KAFKA_RESP_ERR__DESTROY)
        /// The topic or partition does not exist.
        public static let unknownTopicOrPartition = Code(RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
        /// The topic does not exist (client-side view).
        public static let unknownTopic = Code(RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC)
        /// CreateTopics: the topic exists already.
        public static let topicAlreadyExists = Code(RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
        /// The client is not authorized for the topic.
        public static let topicAuthorizationFailed = Code(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED)
        /// The broker rejected the message as too large.
        public static let messageTooLarge = Code(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE)
        /// Another producer with the same `transactional.id` took over.
        public static let producerFenced = Code(RD_KAFKA_RESP_ERR__FENCED)
        /// The broker fenced this producer's epoch.
        public static let invalidProducerEpoch = Code(RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH)
        /// The broker says the producer is fenced.
        public static let brokerProducerFenced = Code(RD_KAFKA_RESP_ERR_PRODUCER_FENCED)
        /// A transactional operation in the wrong state.
        public static let state = Code(RD_KAFKA_RESP_ERR__STATE)
        /// A topic configuration conflicts with the one requested (raised by ``KafkaAdmin``).
        public static let topicConfigConflict = Code(RD_KAFKA_RESP_ERR_INVALID_CONFIG)
        /// A static group member with the same `group.instance.id` joined: this one is out.
        public static let fencedInstanceID = Code(RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID)
        /// No broker of the cluster can be reached.
        public static let allBrokersDown = Code(RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
    }

    /// What a caller does about an error, from the error alone.
    public enum Class: String, Sendable, CustomStringConvertible {
        /// Clears up by itself: retry the same call with backoff (a broker away, a timeout).
        case retriable
        /// The open transaction is doomed: abort it, rewind to the committed offsets and
        /// retry with backoff. Errors that fit no other class land here too.
        case abortable
        /// The client instance is unusable (fenced, broken idempotence): make a new one,
        /// or stop when another instance took over.
        case fatal
        /// This record can never be written as it is (too large, invalid): retrying is
        /// pointless; it becomes a dead letter (a worker) or a 4xx (the gateway).
        case recordRejected = "record-rejected"

        /// The class's name.
        public var description: String { rawValue }
    }

    /// The error's class: fatal first, then a rejected record, then abortable, then
    /// retriable; anything else is abortable.
    public var errorClass: Class {
        if isFatal { return .fatal }
        if Self.recordRejectedCodes.contains(code.rawValue) { return .recordRejected }
        if txnRequiresAbort { return .abortable }
        if isRetriable { return .retriable }
        return .abortable
    }

    /// Another instance with the same `transactional.id` (or static `group.instance.id`)
    /// took over: restarting would only fence it back.
    public var isFenced: Bool {
        [Code.producerFenced, .invalidProducerEpoch, .brokerProducerFenced, .fencedInstanceID].contains(code)
    }

    /// The error code.
    public let code: Code
    /// A human-readable message (librdkafka's, plus context added by this module).
    public let message: String
    /// The operation may succeed if retried as is.
    public let isRetriable: Bool
    /// The client instance is unusable: the process should stop and be restarted.
    public let isFatal: Bool
    /// The current transaction must be aborted (and consumption rewound) before going on.
    public let txnRequiresAbort: Bool

    /// Creates an error; the class flags default to a plain, non-retriable error.
    public init(code: Code, message: String, isRetriable: Bool = false, isFatal: Bool = false, txnRequiresAbort: Bool = false) {
        self.code = code
        self.message = message
        self.isRetriable = isRetriable
        self.isFatal = isFatal
        self.txnRequiresAbort = txnRequiresAbort
    }

    /// `NAME: message`, with the class flags when set.
    public var description: String {
        var flags: [String] = []
        if isRetriable { flags.append("retriable") }
        if txnRequiresAbort { flags.append("abortable") }
        if isFatal { flags.append("fatal") }
        let suffix = flags.isEmpty ? "" : " [\(flags.joined(separator: ", "))]"
        return "\(code.name): \(message)\(suffix)"
    }

    /// From a bare response code, with librdkafka's description of it.
    init(_ err: rd_kafka_resp_err_t, context: String? = nil) {
        let text = String(cString: rd_kafka_err2str(err))
        self.init(
            code: Code(err),
            message: context.map { "\($0): \(text)" } ?? text,
            isRetriable: KafkaError.retriableCodes.contains(err.rawValue),
            isFatal: err == RD_KAFKA_RESP_ERR__FATAL
        )
    }

    /// From a bare code and a message that librdkafka wrote into an error buffer.
    init(_ err: rd_kafka_resp_err_t, message: String) {
        self.init(code: Code(err), message: message, isRetriable: KafkaError.retriableCodes.contains(err.rawValue))
    }

    /// Takes ownership of an `rd_kafka_error_t` (and destroys it), keeping its class flags.
    init(consuming error: OpaquePointer, context: String? = nil) {
        defer { rd_kafka_error_destroy(error) }
        let text = String(cString: rd_kafka_error_string(error))
        self.init(
            code: Code(rd_kafka_error_code(error)),
            message: context.map { "\($0): \(text)" } ?? text,
            isRetriable: rd_kafka_error_is_retriable(error) != 0,
            isFatal: rd_kafka_error_is_fatal(error) != 0,
            txnRequiresAbort: rd_kafka_error_txn_requires_abort(error) != 0
        )
    }

    /// Codes that clear up by themselves when a non-transactional call is retried.
    private static let retriableCodes: Set<Int32> = [
        RD_KAFKA_RESP_ERR__TIMED_OUT.rawValue,
        RD_KAFKA_RESP_ERR__QUEUE_FULL.rawValue,
        RD_KAFKA_RESP_ERR__TRANSPORT.rawValue,
        RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN.rawValue,
        RD_KAFKA_RESP_ERR__WAIT_COORD.rawValue,
        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT.rawValue,
        RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION.rawValue,
        RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE.rawValue,
        RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE.rawValue,
        RD_KAFKA_RESP_ERR_NOT_COORDINATOR.rawValue,
        RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS.rawValue,
        RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS.rawValue,
        RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND.rawValue,
        RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION.rawValue,
        RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS.rawValue,
        RD_KAFKA_RESP_ERR__MSG_TIMED_OUT.rawValue,
        RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE.rawValue,
    ]

    /// Codes that say the record itself can never be written (whatever the retries).
    private static let recordRejectedCodes: Set<Int32> = [
        RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE.rawValue,
        RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE.rawValue,
        RD_KAFKA_RESP_ERR_INVALID_RECORD.rawValue,
        RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE.rawValue,
        RD_KAFKA_RESP_ERR_INVALID_MSG.rawValue,
    ]
}

extension KafkaError {
    /// A configuration property that librdkafka rejected; `message` is librdkafka's, which
    /// names the property.
    static func configuration(_ message: String) -> KafkaError {
        KafkaError(code: .invalidArgument, message: "invalid Kafka configuration: \(message)")
    }

    /// Throws if `err` is not `NO_ERROR`.
    static func check(_ err: rd_kafka_resp_err_t, _ context: @autoclosure () -> String) throws(KafkaError) {
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, context: context()) }
    }

    /// Throws if `error` (an owned `rd_kafka_error_t`) is set.
    static func check(consuming error: OpaquePointer?, _ context: @autoclosure () -> String) throws(KafkaError) {
        if let error { throw KafkaError(consuming: error, context: context()) }
    }
}

extension String {
    /// The NUL-terminated text in a C error buffer that librdkafka filled.
    init(cBuffer buffer: [CChar]) {
        let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        self.init(decoding: bytes, as: UTF8.self)
    }
}

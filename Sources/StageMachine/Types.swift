import Contracts
import Workers

/// A partition of a topic, as the machine tracks ownership and offsets.
public struct TopicPartition: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The topic.
    public var topic: String
    /// The partition number; state and idempotency keys live in the same number.
    public var partition: Int32

    /// A partition.
    public init(topic: String, partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    /// Topic first, then number: the order rewinds and sweeps go in.
    public static func < (lhs: TopicPartition, rhs: TopicPartition) -> Bool {
        (lhs.topic, lhs.partition) < (rhs.topic, rhs.partition)
    }

    /// `topic/partition`.
    public var description: String { "\(topic)/\(partition)" }
}

/// Where an input record sits: the identity the poison-pill rule charges failures to.
public struct RecordPosition: Hashable, Sendable {
    /// Its topic.
    public var topic: String
    /// Its partition.
    public var partition: Int32
    /// Its offset.
    public var offset: Int64

    /// A position.
    public init(topic: String, partition: Int32, offset: Int64) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
    }

    /// Its partition.
    public var topicPartition: TopicPartition { TopicPartition(topic: topic, partition: partition) }
}

/// One fetched input record, decoded by the driver (decoding is the contract's, not Kafka's).
public struct InputRecord: Sendable {
    /// What the driver made of the record's bytes.
    public enum Content: Sendable {
        /// A valid envelope.
        case envelope(Envelope)
        /// Bytes no contract accepts: the record becomes a dead letter.
        case undecodable(String)
        /// A keyed record without a value: a compacted input's delete (e.g. a released
        /// reservation in the inventory changelog, which stock feed reads). Consumed, no effect.
        case tombstone
    }

    /// Where it was read.
    public var position: RecordPosition
    /// Its content.
    public var content: Content

    /// A fetched record.
    public init(position: RecordPosition, content: Content) {
        self.position = position
        self.content = content
    }
}

/// One record the machine asks the driver to write. Records carry no Kafka types: the
/// driver encodes them (the simulation stores them as they are).
public enum OutputRecord: Sendable {
    /// A stage output to its topic (keyed by its event's partition key).
    case output(topic: String, envelope: Envelope)
    /// A changelog record of `partition`'s state; nil deletes.
    case state(partition: Int32, key: String, envelope: Envelope?)
    /// An idempotency record (stage-qualified key) of `partition`; nil envelope is the
    /// tombstone of an expired key.
    case idempotency(partition: Int32, key: String, envelope: Envelope?, expiresAt: Int64?)
    /// The input at `input` goes to the dead-letter topic, for `error`. Its id derives
    /// from the input's position and stage, so that a replayed dead letter is the same one.
    case deadLetter(input: RecordPosition, error: String, attempts: Int, referenceOnly: Bool)
    /// At least once: one input's (or timer firing's) records, written to the
    /// idempotency topic's `partition` and acknowledged before any of them; nil
    /// `records` marks it done. A restore redoes every intent not marked done, exactly
    /// as first computed, so a replay never recomputes an effect that may be out.
    case intent(partition: Int32, key: String, records: [OutputRecord]?)
    /// A record the driver encoded itself (a dead letter read back from an intent).
    case encoded(EncodedRecord)
}

/// A record in the driver's own encoding, carried by the machine as it is.
public struct EncodedRecord: Sendable, Hashable {
    /// One header.
    public struct Header: Sendable, Hashable {
        /// Its name.
        public var name: String
        /// Its value.
        public var value: [UInt8]?
        /// A header.
        public init(name: String, value: [UInt8]?) {
            self.name = name
            self.value = value
        }
    }

    /// The topic.
    public var topic: String
    /// The partition, nil to partition by key.
    public var partition: Int32?
    /// Key bytes.
    public var key: [UInt8]?
    /// Value bytes.
    public var value: [UInt8]?
    /// Headers in order.
    public var headers: [Header]

    /// A record.
    public init(topic: String, partition: Int32?, key: [UInt8]?, value: [UInt8]?, headers: [Header]) {
        self.topic = topic
        self.partition = partition
        self.key = key
        self.value = value
        self.headers = headers
    }
}

/// A write or client failure, classified by the driver (KafkaError's classes) or by the
/// simulated broker.
public struct RuntimeFailure: Error, Sendable, Hashable, CustomStringConvertible {
    /// What a caller does about it.
    public enum Class: String, Sendable, Hashable {
        /// Clears up by itself: retry the same call with backoff.
        case retriable
        /// The open transaction is doomed: abort, rewind, retry.
        case abortable
        /// The client is unusable (fenced, broken idempotence).
        case fatal
        /// This record can never be written as it is.
        case recordRejected = "record-rejected"
    }

    /// Its class.
    public var errorClass: Class
    /// Another instance with the same id took over: restarting would only fence it back.
    public var fenced: Bool
    /// The producer reports itself broken (a new session makes a new one).
    public var producerBroken: Bool
    /// The error alone says the call may succeed if retried as is.
    public var retriable: Bool
    /// The transaction must be aborted before going on.
    public var requiresAbort: Bool
    /// For logs and dead letters.
    public var message: String

    /// A failure.
    public init(
        _ errorClass: Class, message: String, fenced: Bool = false, producerBroken: Bool = false, retriable: Bool? = nil,
        requiresAbort: Bool? = nil
    ) {
        self.errorClass = errorClass
        self.message = message
        self.fenced = fenced
        self.producerBroken = producerBroken
        self.retriable = retriable ?? (errorClass == .retriable)
        self.requiresAbort = requiresAbort ?? (errorClass == .abortable)
    }

    /// Fatal, or the producer broke.
    public var isFatal: Bool { errorClass == .fatal || producerBroken }

    /// `message`.
    public var description: String { message }
}

/// Why the machine stopped its session.
public struct StopReason: Sendable, Hashable, CustomStringConvertible {
    /// What happened.
    public var message: String
    /// Whether a new session may get past it.
    public var restartable: Bool

    /// A stop.
    public init(message: String, restartable: Bool) {
        self.message = message
        self.restartable = restartable
    }

    /// `message`.
    public var description: String { message }
}

/// A record read back from a changelog or the idempotency topic while restoring.
public enum RestoredRecord: Sendable {
    /// A state value (nil: deleted).
    case state(partition: Int32, key: String, value: Event?)
    /// An idempotency key of this stage (prefix removed); nil expiry is a tombstone.
    case key(partition: Int32, key: String, expiresAt: Int64?)
    /// An intent of this stage (full key); nil records: done.
    case intent(partition: Int32, key: String, records: [OutputRecord]?)
}

/// Failed writes charged to the inputs they were for: the poison-pill rule.
///
/// A transaction that fails is charged to the input being written when it failed, or
/// to its only input. Failures that say nothing about a record (Kafka unreachable, a
/// timeout) are not charged: they would dead-letter innocent records during an outage.
/// After two failed transactions in a row the runner isolates: one input per
/// transaction, so that a failure at commit names its input. It outlives a session.
public struct RecordFailures: Sendable {
    /// Failed transactions in a row.
    public private(set) var streak = 0
    /// One input per transaction until the failing one is found.
    public private(set) var isolating = false
    private var cleanWhileIsolating = 0
    private var charged: [RecordPosition: (attempts: Int, error: String)] = [:]

    /// No failures.
    public init() {}

    /// Charges a failure to `suspect` (if any and if the error can be the record's).
    public mutating func failed(_ suspect: RecordPosition?, error: RuntimeFailure, poisonAfter: Int) {
        streak += 1
        if streak >= 2, !isolating {
            isolating = true
            cleanWhileIsolating = 0
        }
        guard let suspect, error.errorClass == .recordRejected || !error.retriable else { return }
        var entry = charged[suspect] ?? (0, "")
        // A record the broker can never take is a poison pill at once.
        entry.attempts = error.errorClass == .recordRejected ? max(entry.attempts + 1, poisonAfter) : entry.attempts + 1
        entry.error = error.message
        charged[suspect] = entry
    }

    /// `inputs` were committed: their charges are cleared, the streak ends, and
    /// isolation ends once nothing is charged or a whole batch went through.
    public mutating func committed(_ inputs: [RecordPosition], batchSize: Int) {
        streak = 0
        for input in inputs { charged[input] = nil }
        guard isolating else { return }
        cleanWhileIsolating += inputs.count
        if charged.isEmpty || cleanWhileIsolating >= batchSize { isolating = false }
    }

    /// The charges of `position` if it failed `after` times or more: dead-letter it.
    public func poison(_ position: RecordPosition, after: Int) -> (attempts: Int, error: String)? {
        guard let entry = charged[position], entry.attempts >= after else { return nil }
        return entry
    }
}

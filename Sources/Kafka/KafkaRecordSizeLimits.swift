import Logging
import Synchronization

/// The largest record each topic takes, as one fact for everything that writes.
///
/// A record must fit two limits: the producer's `message.max.bytes` (librdkafka refuses
/// a larger one locally, default 1,000,000) and the topic's `max.message.bytes` (the
/// broker refuses a larger batch, default 1,048,588). Writers check a record with
/// ``fits(_:)`` before producing it, so that a record that can never be written is
/// handled as such (a dead letter, a 413) instead of failing the same way on every retry.
///
/// Topic limits are read with one DescribeConfigs request (``load(topics:admin:timeout:)``);
/// until it answers, and for brokers that do not describe configs, the broker default
/// stands.
public final class KafkaRecordSizeLimits: Sendable {
    /// Kafka's default `max.message.bytes` of a topic (and `message.max.bytes` of a broker).
    public static let brokerDefault = 1_048_588
    /// librdkafka's default `message.max.bytes` of a producer.
    public static let producerDefault = 1_000_000
    /// Room kept for the record batch's and the record's own framing, which neither
    /// limit counts the same way.
    public static let framing = 512

    /// The producer's limit (`message.max.bytes` of the configuration, or librdkafka's default).
    public let producerLimit: Int
    private let topicLimits = Mutex<[String: Int]>([:])

    /// Limits for records produced with `kafka`'s properties.
    public init(kafka: KafkaConfiguration) {
        producerLimit = kafka.properties["message.max.bytes"].flatMap(Int.init) ?? Self.producerDefault
    }

    /// The largest record, in bytes as counted by ``size(of:)``, that `topic` takes.
    public func limit(for topic: String) -> Int {
        let topicLimit = topicLimits.withLock { $0[topic] } ?? Self.brokerDefault
        return min(topicLimit, producerLimit) - Self.framing
    }

    /// Whether `message` fits its topic.
    public func fits(_ message: KafkaProducerMessage) -> Bool {
        Self.size(of: message) <= limit(for: message.topic)
    }

    /// Sets a topic's `max.message.bytes` (as read from the broker).
    public func set(_ bytes: Int, for topic: String) {
        topicLimits.withLock { $0[topic] = bytes }
    }

    /// Reads `max.message.bytes` of `topics`; on failure (a broker without
    /// DescribeConfigs, or none reachable) the defaults stay and the reason is logged.
    public func load(topics: [String], admin: KafkaAdmin, timeout: Duration = .seconds(5), logger: Logger) async {
        do {
            let limits = try await admin.maxMessageBytes(of: topics, timeout: timeout)
            topicLimits.withLock { $0.merge(limits) { $1 } }
            logger.debug("record size limits read", metadata: ["topics": "\(limits.count)"])
        } catch {
            logger.info("topic record size limits not readable; using the broker default", metadata: [
                "default_bytes": "\(Self.brokerDefault)", "error": "\(error)",
            ])
        }
    }

    /// A record's size as librdkafka counts it against `message.max.bytes`: key, value
    /// and headers, with a few bytes of framing per header.
    public static func size(of message: KafkaProducerMessage) -> Int {
        var size = (message.key?.count ?? 0) + (message.value?.count ?? 0)
        for header in message.headers { size += header.name.utf8.count + (header.value?.count ?? 0) + 10 }
        return size
    }
}

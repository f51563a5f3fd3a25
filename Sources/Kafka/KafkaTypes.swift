import CKafka

/// One record header: a name and optional bytes (Kafka allows null header values).
public struct KafkaHeader: Sendable, Hashable {
    /// The header's name.
    public var name: String
    /// The header's bytes; `nil` is a null value.
    public var value: [UInt8]?

    /// A header with raw bytes.
    public init(name: String, value: [UInt8]?) {
        self.name = name
        self.value = value
    }

    /// A header with a UTF-8 string value.
    public init(name: String, string: String) {
        self.init(name: name, value: Array(string.utf8))
    }

    /// The value decoded as UTF-8, if it is valid UTF-8.
    public var stringValue: String? {
        value.flatMap { String(validating: $0, as: UTF8.self) }
    }
}

/// A record to produce.
public struct KafkaProducerMessage: Sendable, Hashable {
    /// Target topic.
    public var topic: String
    /// Explicit partition; `nil` lets the partitioner choose by key (murmur2, as
    /// Kafka's Java client, so that co-partitioned topics line up).
    public var partition: Int32?
    /// The key; records with the same key land on the same partition.
    public var key: [UInt8]?
    /// The value; `nil` is a tombstone in a compacted topic.
    public var value: [UInt8]?
    /// Record headers, in order.
    public var headers: [KafkaHeader]

    /// A record with raw key and value bytes.
    public init(topic: String, partition: Int32? = nil, key: [UInt8]?, value: [UInt8]?, headers: [KafkaHeader] = []) {
        self.topic = topic
        self.partition = partition
        self.key = key
        self.value = value
        self.headers = headers
    }

    /// A record with a UTF-8 key and value.
    public init(topic: String, partition: Int32? = nil, key: String?, value: String?, headers: [KafkaHeader] = []) {
        self.init(topic: topic, partition: partition, key: key.map { Array($0.utf8) }, value: value.map { Array($0.utf8) }, headers: headers)
    }
}

/// A consumed record.
public struct KafkaMessage: Sendable, Hashable {
    /// Its topic.
    public var topic: String
    /// Its partition.
    public var partition: Int32
    /// Its offset in the partition.
    public var offset: Int64
    /// The key bytes, if any.
    public var key: [UInt8]?
    /// The value bytes; `nil` for a tombstone.
    public var value: [UInt8]?
    /// Record headers, in order.
    public var headers: [KafkaHeader]
    /// Record timestamp in milliseconds since the Unix epoch, if the broker set one.
    public var timestampMilliseconds: Int64?

    /// Creates a message (for tests and replays).
    public init(topic: String, partition: Int32, offset: Int64, key: [UInt8]?, value: [UInt8]?, headers: [KafkaHeader] = [], timestampMilliseconds: Int64? = nil) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.headers = headers
        self.timestampMilliseconds = timestampMilliseconds
    }

    /// The key as UTF-8, if it is valid UTF-8.
    public var keyString: String? { key.flatMap { String(validating: $0, as: UTF8.self) } }
    /// The value as UTF-8, if it is valid UTF-8.
    public var valueString: String? { value.flatMap { String(validating: $0, as: UTF8.self) } }
    /// The first header with this name.
    public func header(_ name: String) -> KafkaHeader? { headers.first { $0.name == name } }
    /// The offset to commit once this message is processed: the next one to read.
    public var nextOffset: KafkaTopicPartitionOffset { .init(topic: topic, partition: partition, offset: offset + 1) }
}

/// A partition of a topic.
public struct KafkaTopicPartition: Sendable, Hashable, CustomStringConvertible, Comparable {
    /// The topic.
    public var topic: String
    /// The partition number.
    public var partition: Int32

    /// Names a partition.
    public init(topic: String, partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    /// `topic[partition]`, as librdkafka prints it.
    public var description: String { "\(topic)[\(partition)]" }

    /// Orders by topic, then partition.
    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.topic, lhs.partition) < (rhs.topic, rhs.partition)
    }
}

/// A position in a partition: for commits, the offset of the next message to read.
public struct KafkaTopicPartitionOffset: Sendable, Hashable, CustomStringConvertible {
    /// The topic.
    public var topic: String
    /// The partition number.
    public var partition: Int32
    /// The offset, or one of the logical offsets (``beginning``, ``end``, ``invalid``).
    public var offset: Int64

    /// The oldest retained offset.
    public static let beginning = ckafka_offset_beginning()
    /// The offset after the newest message.
    public static let end = ckafka_offset_end()
    /// No offset (e.g. nothing committed yet).
    public static let invalid = ckafka_offset_invalid()

    /// Names a position.
    public init(topic: String, partition: Int32, offset: Int64) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
    }

    /// The partition, without the offset.
    public var topicPartition: KafkaTopicPartition { .init(topic: topic, partition: partition) }

    /// `topic[partition]@offset`.
    public var description: String { "\(topic)[\(partition)]@\(offset)" }
}

/// Where the broker stored a produced record.
public struct KafkaDeliveryReport: Sendable, Hashable {
    /// The topic.
    public var topic: String
    /// The partition it was written to.
    public var partition: Int32
    /// Its offset there.
    public var offset: Int64
}

/// Builds and reads `rd_kafka_topic_partition_list_t`, which owns copies of everything.
enum TopicPartitionList {
    static func make(_ entries: [KafkaTopicPartitionOffset]) -> UnsafeMutablePointer<rd_kafka_topic_partition_list_t> {
        let list = rd_kafka_topic_partition_list_new(Int32(clamping: entries.count))!
        for entry in entries {
            rd_kafka_topic_partition_list_add(list, entry.topic, entry.partition).pointee.offset = entry.offset
        }
        return list
    }

    static func make(_ partitions: [KafkaTopicPartition]) -> UnsafeMutablePointer<rd_kafka_topic_partition_list_t> {
        make(partitions.map { KafkaTopicPartitionOffset(topic: $0.topic, partition: $0.partition, offset: KafkaTopicPartitionOffset.invalid) })
    }

    static func read(_ list: UnsafePointer<rd_kafka_topic_partition_list_t>) -> [KafkaTopicPartitionOffset] {
        let buffer = UnsafeBufferPointer(start: list.pointee.elems, count: Int(list.pointee.cnt))
        return buffer.map { KafkaTopicPartitionOffset(topic: String(cString: $0.topic), partition: $0.partition, offset: $0.offset) }
    }

    /// The first per-partition error in the list, if any.
    static func firstError(_ list: UnsafePointer<rd_kafka_topic_partition_list_t>, context: String) -> KafkaError? {
        let buffer = UnsafeBufferPointer(start: list.pointee.elems, count: Int(list.pointee.cnt))
        guard let failed = buffer.first(where: { $0.err != RD_KAFKA_RESP_ERR_NO_ERROR }) else { return nil }
        return KafkaError(failed.err, context: "\(context) \(String(cString: failed.topic))[\(failed.partition)]")
    }
}

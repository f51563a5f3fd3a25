import CKafka
import Logging

/// A topic to create: name, partition count, replication factor and topic configs
/// (`cleanup.policy`, `retention.ms`, `min.insync.replicas`, …).
public struct KafkaTopicSpec: Sendable, Hashable {
    /// Topic name.
    public var name: String
    /// Number of partitions.
    public var partitions: Int32
    /// Replicas per partition.
    public var replicationFactor: Int16
    /// Topic-level configs by Kafka's names.
    public var configs: [String: String]

    /// Describes a topic to create.
    public init(name: String, partitions: Int32, replicationFactor: Int16, configs: [String: String] = [:]) {
        self.name = name
        self.partitions = partitions
        self.replicationFactor = replicationFactor
        self.configs = configs
    }
}

/// A topic as the cluster has it.
public struct KafkaTopicDescription: Sendable, Hashable {
    /// Topic name.
    public var name: String
    /// Number of partitions.
    public var partitions: Int32
    /// Replicas of partition 0.
    public var replicationFactor: Int16
    /// Every config the broker reports for the topic, defaults included.
    public var configs: [String: String]
}

extension KafkaTopicDescription {
    /// Every setting where this topic differs from `spec`, as `setting=actual, wanted
    /// setting=wanted`; empty when the topic is as wanted.
    public func differences(from spec: KafkaTopicSpec) -> [String] {
        var result: [String] = []
        if partitions != spec.partitions {
            result.append("partitions=\(partitions), wanted partitions=\(spec.partitions)")
        }
        if replicationFactor != spec.replicationFactor {
            result.append("replication.factor=\(replicationFactor), wanted replication.factor=\(spec.replicationFactor)")
        }
        for (key, value) in spec.configs.sorted(by: { $0.key < $1.key }) where configs[key] != value {
            result.append("\(key)=\(configs[key] ?? "(unset)"), wanted \(key)=\(value)")
        }
        return result
    }
}

/// What ``KafkaAdmin/createTopic(_:timeout:)`` did.
public enum KafkaTopicCreation: Sendable, Hashable {
    /// The topic did not exist and was created.
    case created
    /// The topic existed with the requested settings; nothing changed.
    case alreadyExists
}

/// A consumer group as the cluster lists it.
public struct KafkaGroupListing: Sendable, Hashable {
    /// `group.id`.
    public var groupID: String
    /// Group state, e.g. `Stable`, `Empty`, `PreparingRebalance`.
    public var state: String
    /// Number of members.
    public var members: Int
}

/// How far a group is behind on one partition.
public struct KafkaPartitionLag: Sendable, Hashable {
    /// The topic.
    public var topic: String
    /// The partition.
    public var partition: Int32
    /// The group's committed offset, `nil` if none.
    public var committed: Int64?
    /// The partition's high watermark.
    public var high: Int64
    /// Records not yet committed by the group: high watermark − committed (the whole
    /// partition when nothing is committed, counted from the low watermark).
    public var lag: Int64
}

/// Topic and group administration.
///
/// ``createTopic(_:timeout:)`` is idempotent: an existing topic with the same
/// partitions, replication factor and requested configs is fine, a different one is an
/// error that names the setting. (librdkafka's mock cluster does not answer
/// CreateTopics; create its topics with ``EmbeddedKafka/createTopic(_:partitions:replicationFactor:)``.)
public final class KafkaAdmin: Sendable {
    private let client: RdKafkaClient
    private let configuration: KafkaConfiguration
    private let logger: Logger

    /// Creates an admin client; throws if librdkafka rejects a property.
    public init(configuration: KafkaConfiguration, logger: Logger = Logger(label: "orderfleet.kafka.admin")) throws(KafkaError) {
        let callbacks = RdKafkaCallbacks(logger: logger, clientID: configuration.clientID)
        // Nobody polls the admin handle's main queue, so it must not fill it with statistics.
        var properties = configuration.baseProperties.filter { $0.0 != "statistics.interval.ms" }
        properties.append(contentsOf: configuration.properties.sorted { $0.key < $1.key })
        client = try RdKafkaClient(kind: .producer, properties: properties, callbacks: callbacks, name: "admin")
        self.configuration = configuration
        self.logger = logger
    }

    /// Creates the topic, or checks that the existing one has the same settings.
    public func createTopic(_ spec: KafkaTopicSpec, timeout: Duration = .seconds(30)) async throws(KafkaError) -> KafkaTopicCreation {
        let client = client
        let created = try await client.blocking { () throws(KafkaError) -> Bool in
            var errstr = [CChar](repeating: 0, count: 512)
            guard let topic = rd_kafka_NewTopic_new(spec.name, spec.partitions, Int32(spec.replicationFactor), &errstr, errstr.count) else {
                throw KafkaError(code: .invalidArgument, message: "topic \(spec.name): \(String(cBuffer: errstr))")
            }
            defer { rd_kafka_NewTopic_destroy(topic) }
            for (key, value) in spec.configs.sorted(by: { $0.key < $1.key }) {
                try KafkaError.check(rd_kafka_NewTopic_set_config(topic, key, value), "topic \(spec.name) config \(key)")
            }
            return try Self.request(client, RD_KAFKA_ADMIN_OP_CREATETOPICS, timeout: timeout) { options, queue in
                var topics: [OpaquePointer?] = [topic]
                rd_kafka_CreateTopics(client.handle, &topics, 1, options, queue)
            } result: { event throws(KafkaError) -> Bool in
                var count = 0
                guard let result = rd_kafka_event_CreateTopics_result(event),
                      let topics = rd_kafka_CreateTopics_result_topics(result, &count), count == 1 else {
                    throw KafkaError(code: .state, message: "CreateTopics returned no result for \(spec.name)")
                }
                let err = rd_kafka_topic_result_error(topics[0])
                if err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS { return false }
                if err != RD_KAFKA_RESP_ERR_NO_ERROR {
                    let text = rd_kafka_topic_result_error_string(topics[0]).map { String(cString: $0) } ?? ""
                    throw KafkaError(err, message: "create topic \(spec.name): \(text)")
                }
                return true
            }
        }
        if created {
            logger.info("created topic", metadata: ["topic": "\(spec.name)", "partitions": "\(spec.partitions)"])
            return .created
        }
        let existing = try await describeTopic(spec.name, timeout: timeout)
        if let conflict = Self.conflict(between: spec, and: existing) { throw conflict }
        return .alreadyExists
    }

    /// The first difference between a wanted topic and an existing one, as an error
    /// naming the setting; `nil` when they agree.
    static func conflict(between spec: KafkaTopicSpec, and existing: KafkaTopicDescription) -> KafkaError? {
        existing.differences(from: spec).first.map {
            KafkaError(code: .topicConfigConflict, message: "topic \(spec.name) exists with \($0)")
        }
    }

    /// The topic's partitions, replication factor and configs.
    public func describeTopic(_ name: String, timeout: Duration = .seconds(30)) async throws(KafkaError) -> KafkaTopicDescription {
        let client = client
        let topic = try await client.blocking { () throws(KafkaError) -> TopicMetadata in
            guard let topic = try Self.metadata(client, timeout: timeout).first(where: { $0.name == name }) else {
                throw KafkaError(code: .unknownTopicOrPartition, message: "topic \(name) does not exist")
            }
            if topic.error != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(topic.error, context: "metadata of topic \(name)") }
            return topic
        }
        let configs = try await client.blocking { () throws(KafkaError) -> [String: String] in
            guard let resource = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, name) else {
                throw KafkaError(code: .invalidArgument, message: "bad topic name \(name)")
            }
            defer { rd_kafka_ConfigResource_destroy(resource) }
            return try Self.request(client, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS, timeout: timeout) { options, queue in
                var resources: [OpaquePointer?] = [resource]
                rd_kafka_DescribeConfigs(client.handle, &resources, 1, options, queue)
            } result: { event throws(KafkaError) -> [String: String] in
                var count = 0
                guard let result = rd_kafka_event_DescribeConfigs_result(event),
                      let resources = rd_kafka_DescribeConfigs_result_resources(result, &count), count == 1, let described = resources[0] else {
                    throw KafkaError(code: .state, message: "DescribeConfigs returned no result for \(name)")
                }
                let err = rd_kafka_ConfigResource_error(described)
                if err != RD_KAFKA_RESP_ERR_NO_ERROR {
                    throw KafkaError(err, message: "describe configs of \(name): \(rd_kafka_ConfigResource_error_string(described).map { String(cString: $0) } ?? "")")
                }
                var entryCount = 0
                var configs: [String: String] = [:]
                if let entries = rd_kafka_ConfigResource_configs(described, &entryCount) {
                    for index in 0..<entryCount {
                        guard let entry = entries[index], let key = rd_kafka_ConfigEntry_name(entry) else { continue }
                        configs[String(cString: key)] = rd_kafka_ConfigEntry_value(entry).map { String(cString: $0) } ?? ""
                    }
                }
                return configs
            }
        }
        return KafkaTopicDescription(name: name, partitions: topic.partitions, replicationFactor: Int16(clamping: topic.replicas), configs: configs)
    }

    /// `max.message.bytes` of each topic that has it set or defaulted by the broker, in
    /// one DescribeConfigs request; topics the broker does not describe are left out.
    /// Throws when the broker does not answer (some Kafka-protocol brokers have no
    /// DescribeConfigs).
    public func maxMessageBytes(of topics: [String], timeout: Duration = .seconds(5)) async throws(KafkaError) -> [String: Int] {
        let client = client
        return try await client.blocking { () throws(KafkaError) -> [String: Int] in
            let resources: [OpaquePointer?] = topics.map { rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, $0) }
            defer { for resource in resources { if let resource { rd_kafka_ConfigResource_destroy(resource) } } }
            guard !resources.contains(where: { $0 == nil }) else { throw KafkaError(code: .invalidArgument, message: "bad topic name in \(topics)") }
            return try Self.request(client, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS, timeout: timeout) { options, queue in
                var list = resources
                rd_kafka_DescribeConfigs(client.handle, &list, list.count, options, queue)
            } result: { event throws(KafkaError) -> [String: Int] in
                var count = 0
                guard let result = rd_kafka_event_DescribeConfigs_result(event),
                      let described = rd_kafka_DescribeConfigs_result_resources(result, &count) else { return [:] }
                var limits: [String: Int] = [:]
                for index in 0..<count {
                    guard let resource = described[index], rd_kafka_ConfigResource_error(resource) == RD_KAFKA_RESP_ERR_NO_ERROR else { continue }
                    let name = String(cString: rd_kafka_ConfigResource_name(resource))
                    var entryCount = 0
                    guard let entries = rd_kafka_ConfigResource_configs(resource, &entryCount) else { continue }
                    for entry in UnsafeBufferPointer(start: entries, count: entryCount) {
                        guard let entry, let key = rd_kafka_ConfigEntry_name(entry), String(cString: key) == "max.message.bytes",
                              let value = rd_kafka_ConfigEntry_value(entry), let bytes = Int(String(cString: value)) else { continue }
                        limits[name] = bytes
                    }
                }
                return limits
            }
        }
    }

    /// The partition count of every topic in the cluster, from metadata alone (cheaper
    /// than ``describeTopic(_:timeout:)``, and answered by brokers without DescribeConfigs).
    public func partitionCounts(timeout: Duration = .seconds(30)) async throws(KafkaError) -> [String: Int32] {
        let client = client
        return try await client.blocking { () throws(KafkaError) in
            var counts: [String: Int32] = [:]
            for topic in try Self.metadata(client, timeout: timeout) where topic.error == RD_KAFKA_RESP_ERR_NO_ERROR {
                counts[topic.name] = topic.partitions
            }
            return counts
        }
    }

    /// Number of brokers in the cluster, which bounds the replication factor.
    public func brokerCount(timeout: Duration = .seconds(30)) async throws(KafkaError) -> Int {
        let client = client
        return try await client.blocking { () throws(KafkaError) in
            var metadata: UnsafePointer<rd_kafka_metadata>?
            try KafkaError.check(rd_kafka_metadata(client.handle, 0, nil, &metadata, timeout.timeoutMilliseconds), "metadata")
            guard let metadata else { return 0 }
            defer { rd_kafka_metadata_destroy(metadata) }
            return Int(metadata.pointee.broker_cnt)
        }
    }

    /// Names of every topic in the cluster.
    public func listTopics(timeout: Duration = .seconds(30)) async throws(KafkaError) -> [String] {
        let client = client
        return try await client.blocking { () throws(KafkaError) in
            try Self.metadata(client, timeout: timeout).filter { $0.error == RD_KAFKA_RESP_ERR_NO_ERROR }.map(\.name).sorted()
        }
    }

    /// Every consumer group the cluster knows.
    public func listGroups(timeout: Duration = .seconds(30)) async throws(KafkaError) -> [KafkaGroupListing] {
        let client = client
        return try await client.blocking { () throws(KafkaError) in
            var list: UnsafePointer<rd_kafka_group_list>?
            try KafkaError.check(rd_kafka_list_groups(client.handle, nil, &list, timeout.timeoutMilliseconds), "list groups")
            guard let list else { return [] }
            defer { rd_kafka_group_list_destroy(list) }
            let groups = UnsafeBufferPointer(start: list.pointee.groups, count: Int(list.pointee.group_cnt))
            return groups.map {
                KafkaGroupListing(
                    groupID: String(cString: $0.group),
                    state: $0.state.map { String(cString: $0) } ?? "",
                    members: Int($0.member_cnt)
                )
            }.sorted { $0.groupID < $1.groupID }
        }
    }

    /// The group's lag on every partition of these topics.
    public func lag(group: String, topics: [String], timeout: Duration = .seconds(30)) async throws(KafkaError) -> [KafkaPartitionLag] {
        let client = client
        let partitions = try await client.blocking { () throws(KafkaError) in
            try Self.metadata(client, timeout: timeout)
                .filter { topics.contains($0.name) && $0.error == RD_KAFKA_RESP_ERR_NO_ERROR }
                .flatMap { topic in (0..<topic.partitions).map { KafkaTopicPartition(topic: topic.name, partition: $0) } }
        }
        // A consumer handle that never subscribes reads the group's offsets without
        // joining it, so the group is not disturbed.
        var properties = configuration.baseProperties
        properties.append(("group.id", group))
        properties.append(contentsOf: configuration.properties.sorted { $0.key < $1.key })
        let reader = try RdKafkaClient(kind: .consumer, properties: properties, callbacks: RdKafkaCallbacks(logger: logger, clientID: configuration.clientID), name: "lag")
        return try await reader.blocking { () throws(KafkaError) in
            let list = TopicPartitionList.make(partitions)
            defer { rd_kafka_topic_partition_list_destroy(list) }
            defer { _ = rd_kafka_consumer_close(reader.handle) }
            try KafkaError.check(rd_kafka_committed(reader.handle, list, timeout.timeoutMilliseconds), "committed offsets of \(group)")
            return try TopicPartitionList.read(list).map { entry throws(KafkaError) in
                var low: Int64 = 0
                var high: Int64 = 0
                try KafkaError.check(
                    rd_kafka_query_watermark_offsets(reader.handle, entry.topic, entry.partition, &low, &high, timeout.timeoutMilliseconds),
                    "watermarks of \(entry.topic)[\(entry.partition)]"
                )
                let committed = entry.offset >= 0 ? entry.offset : nil
                return KafkaPartitionLag(topic: entry.topic, partition: entry.partition, committed: committed, high: high, lag: high - (committed ?? low))
            }
        }
    }

    // MARK: Internals

    private struct TopicMetadata: Sendable {
        var name: String
        var partitions: Int32
        var replicas: Int32
        /// A per-topic error (e.g. no leader yet right after creation).
        var error: rd_kafka_resp_err_t
    }

    /// Metadata of all topics: asking for all avoids the auto-creation that a request
    /// for one unknown topic can trigger on some brokers.
    private static func metadata(_ client: RdKafkaClient, timeout: Duration) throws(KafkaError) -> [TopicMetadata] {
        var metadata: UnsafePointer<rd_kafka_metadata>?
        try KafkaError.check(rd_kafka_metadata(client.handle, 1, nil, &metadata, timeout.timeoutMilliseconds), "metadata")
        guard let metadata else { return [] }
        defer { rd_kafka_metadata_destroy(metadata) }
        let topics = UnsafeBufferPointer(start: metadata.pointee.topics, count: Int(metadata.pointee.topic_cnt))
        return topics.map { topic in
            let replicas = topic.partition_cnt > 0 ? topic.partitions[0].replica_cnt : 0
            return TopicMetadata(name: String(cString: topic.topic), partitions: topic.partition_cnt, replicas: replicas, error: topic.err)
        }
    }

    /// Sends one admin request and waits for its result event on a private queue.
    private static func request<T>(
        _ client: RdKafkaClient,
        _ operation: rd_kafka_admin_op_t,
        timeout: Duration,
        send: (OpaquePointer, OpaquePointer) -> Void,
        result: (OpaquePointer) throws(KafkaError) -> T
    ) throws(KafkaError) -> T {
        let options = rd_kafka_AdminOptions_new(client.handle, operation)!
        defer { rd_kafka_AdminOptions_destroy(options) }
        var errstr = [CChar](repeating: 0, count: 512)
        _ = rd_kafka_AdminOptions_set_request_timeout(options, timeout.timeoutMilliseconds, &errstr, errstr.count)
        if operation == RD_KAFKA_ADMIN_OP_CREATETOPICS {
            _ = rd_kafka_AdminOptions_set_operation_timeout(options, timeout.timeoutMilliseconds, &errstr, errstr.count)
        }
        let queue = rd_kafka_queue_new(client.handle)!
        defer { rd_kafka_queue_destroy(queue) }
        send(options, queue)
        // The request itself times out after `timeout`; wait a little longer for its event.
        guard let event = rd_kafka_queue_poll(queue, Int32(clamping: Int(timeout.timeoutMilliseconds) + 5000)) else {
            throw KafkaError(code: .timedOut, message: "admin request timed out after \(timeout)", isRetriable: true)
        }
        defer { rd_kafka_event_destroy(event) }
        let err = rd_kafka_event_error(event)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError(err, message: rd_kafka_event_error_string(event).map { String(cString: $0) } ?? "admin request failed")
        }
        return try result(event)
    }
}

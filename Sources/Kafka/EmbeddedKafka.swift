import CKafka
import Logging

/// Kafka protocol request types, for error injection into ``EmbeddedKafka``.
public enum KafkaAPIKey: Int16, Sendable, CaseIterable {
    /// Produce.
    case produce = 0
    /// Fetch.
    case fetch = 1
    /// ListOffsets.
    case listOffsets = 2
    /// Metadata.
    case metadata = 3
    /// OffsetCommit.
    case offsetCommit = 8
    /// OffsetFetch.
    case offsetFetch = 9
    /// FindCoordinator.
    case findCoordinator = 10
    /// JoinGroup.
    case joinGroup = 11
    /// Heartbeat.
    case heartbeat = 12
    /// SyncGroup.
    case syncGroup = 14
    /// InitProducerId.
    case initProducerID = 22
    /// AddPartitionsToTxn.
    case addPartitionsToTransaction = 24
    /// AddOffsetsToTxn.
    case addOffsetsToTransaction = 25
    /// EndTxn.
    case endTransaction = 26
    /// TxnOffsetCommit.
    case transactionOffsetCommit = 28
}

/// An in-process Kafka cluster: librdkafka's mock cluster, several brokers listening on
/// loopback TCP at random ports, for the demo and fast tests.
///
/// Any Kafka client (this module, `kcat`, another process) can connect to
/// ``bootstrapServers``. Its limits (librdkafka 2.0.2): no Admin CreateTopics (use
/// ``createTopic(_:partitions:replicationFactor:)``), no compaction, `read_committed`
/// does not hide aborted records, offsets sent in a transaction are not stored, and
/// each partition keeps only about 5 MiB. The cluster lives until this object is gone.
public final class EmbeddedKafka: Sendable {
    private let cluster: MockCluster
    /// Comma-separated `host:port` of the brokers.
    public let bootstrapServers: String
    /// Number of brokers.
    public let brokerCount: Int

    /// Starts a cluster of `brokers` brokers.
    public init(brokers: Int = 3, logger: Logger = Logger(label: "orderfleet.kafka.embedded")) throws(KafkaError) {
        guard brokers > 0 else { throw .configuration("the embedded cluster needs at least one broker, got \(brokers)") }
        // The mock cluster hangs off a client instance; this one only hosts it.
        let host = try RdKafkaClient(
            kind: .producer,
            properties: [("client.id", "embedded-kafka"), ("log_level", "3")],
            callbacks: RdKafkaCallbacks(logger: logger, clientID: "embedded-kafka"),
            name: "embedded"
        )
        guard let pointer = rd_kafka_mock_cluster_new(host.handle, Int32(brokers)) else {
            throw KafkaError(code: .state, message: "could not start the mock cluster")
        }
        cluster = MockCluster(host: host, pointer: pointer)
        bootstrapServers = String(cString: rd_kafka_mock_cluster_bootstraps(pointer))
        brokerCount = brokers
    }

    /// A client configuration pointing at this cluster.
    public var configuration: KafkaConfiguration { KafkaConfiguration(bootstrapServers: bootstrapServers) }

    /// Creates a topic (the mock cluster's own API; CreateTopics requests hang on it).
    public func createTopic(_ name: String, partitions: Int32, replicationFactor: Int32 = 1) throws(KafkaError) {
        try KafkaError.check(
            rd_kafka_mock_topic_create(cluster.pointer, name, partitions, min(replicationFactor, Int32(brokerCount))),
            "create topic \(name)"
        )
    }

    /// Makes the next requests of this type fail with these errors, one error per request.
    public func injectErrors(_ errors: [KafkaError.Code], into request: KafkaAPIKey) {
        let codes = errors.map { rd_kafka_resp_err_t(rawValue: $0.rawValue) }
        codes.withUnsafeBufferPointer {
            rd_kafka_mock_push_request_errors_array(cluster.pointer, request.rawValue, $0.count, $0.baseAddress)
        }
    }

    /// Drops errors injected for this request type that have not fired yet.
    public func clearInjectedErrors(for request: KafkaAPIKey) {
        rd_kafka_mock_clear_request_errors(cluster.pointer, request.rawValue)
    }

    /// Makes every request for the topic fail with this error (``KafkaError/Code/noError`` to stop).
    public func setTopicError(_ topic: String, _ error: KafkaError.Code) {
        rd_kafka_mock_topic_set_error(cluster.pointer, topic, rd_kafka_resp_err_t(rawValue: error.rawValue))
    }

    /// Takes a broker (ids start at 1) off the network: its connections drop.
    public func setBrokerDown(_ brokerID: Int32) throws(KafkaError) {
        try KafkaError.check(rd_kafka_mock_broker_set_down(cluster.pointer, brokerID), "broker \(brokerID) down")
    }

    /// Brings a broker back.
    public func setBrokerUp(_ brokerID: Int32) throws(KafkaError) {
        try KafkaError.check(rd_kafka_mock_broker_set_up(cluster.pointer, brokerID), "broker \(brokerID) up")
    }
}

/// `@unchecked Sendable`: an `rd_kafka_mock_cluster_t`, whose functions lock internally
/// and may be called from any thread.
private final class MockCluster: @unchecked Sendable {
    let host: RdKafkaClient
    let pointer: OpaquePointer

    init(host: RdKafkaClient, pointer: OpaquePointer) {
        self.host = host
        self.pointer = pointer
    }

    deinit { rd_kafka_mock_cluster_destroy(pointer) }
}

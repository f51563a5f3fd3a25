import Contracts
import Fleet
import Foundation
import Kafka
import Logging
import ServiceLifecycle
import Synchronization
import Testing
import Workers

/// Topics and inputs for stage-runner tests on a (possibly shared) broker.
struct FleetFixture {
    let cluster: TestCluster
    let input: String
    let output: String
    let partitions: Int32

    /// Fresh input and output topics, and the catalog's idempotency and dead-letter topics.
    static func make(_ needs: TestCluster.Needs = .full, partitions: Int32 = 6, extra: [String] = []) async throws -> FleetFixture {
        let cluster = try TestCluster.make(needs)
        try await cluster.ensureTopics([TopicCatalog.idempotencyTopic, TopicCatalog.deadLetterTopic])
        let input = try await cluster.createTopic("fleet-in", partitions: partitions)
        let output = try await cluster.createTopic("fleet-out", partitions: partitions)
        return FleetFixture(cluster: cluster, input: input, output: output, partitions: partitions)
    }

    /// A worker configuration for tests: no HTTP server, short commit interval.
    func configuration(instance: String = TestCluster.uniqueName("w"), mode: DeliveryMode = .exactlyOnce) -> WorkerConfiguration {
        var configuration = WorkerConfiguration(brokers: cluster.bootstrapServers, instanceID: instance)
        configuration.mode = mode
        configuration.httpPort = nil
        configuration.statisticsInterval = nil
        configuration.sessionTimeout = .seconds(6)
        return configuration
    }

    /// Produces `count` enveloped events with keys `key-<i % keys>` and returns their ids.
    func produceEvents(_ count: Int, to topic: String? = nil, keys: Int = 1000, subjectPrefix: String = "bucket") async throws -> [String] {
        let producer = try cluster.producer()
        var ids: [String] = []
        for index in 0..<count {
            let envelope = Self.envelope(index, keys: keys, subjectPrefix: subjectPrefix)
            ids.append(envelope.id)
            try await producer.enqueue(try KafkaProducerMessage(envelope, topic: topic ?? input))
        }
        try await producer.close()
        return ids
    }

    static func envelope(_ index: Int, keys: Int = 1000, subjectPrefix: String = "bucket", id: String = UUID().uuidString.lowercased()) -> Envelope {
        let bucket = ReportBucket(report: subjectPrefix, bucket: "key-\(index % keys)", values: ["n": Int64(index)], updatedAt: Date())
        return Envelope(id: id, source: "test", time: Date(), event: bucket.event)
    }

    /// Every committed record of `topic` (read_committed), from the beginning to where
    /// its log ended when the read began, as a restore reads it.
    func readAll(_ topic: String, partitions: Int32? = nil) async throws -> [KafkaMessage] {
        var kafka = cluster.configuration
        kafka.clientID = TestCluster.uniqueName("reader")
        return try await TopicScan.records(
            in: (0..<(partitions ?? self.partitions)).map { KafkaTopicPartition(topic: topic, partition: $0) }, kafka: kafka,
            logger: TestCluster.logger, timeout: .seconds(60))
    }

    /// The `oms_causation_id` of every record: the input each output answers.
    static func causations(_ messages: [KafkaMessage]) -> [String] {
        messages.compactMap { $0.header(EnvelopeHeader.causationID)?.stringValue }
    }
}

extension TestCluster {
    /// Creates these catalog topics, as `oms topics apply` would on one broker, if missing
    /// (they are shared by the tests on a shared broker).
    func ensureTopics(_ names: [String]) async throws {
        for name in names {
            let spec = try #require(TopicCatalog.spec(named: name))
            if let embedded {
                try? embedded.createTopic(name, partitions: Int32(spec.partitions), replicationFactor: 1)
            } else {
                var configs = spec.configs
                configs["min.insync.replicas"] = "1"
                let admin = try KafkaAdmin(configuration: configuration, logger: Self.logger)
                _ = try await admin.createTopic(KafkaTopicSpec(name: name, partitions: Int32(spec.partitions), replicationFactor: 1, configs: configs))
            }
        }
    }
}

/// Runs stage runners in-process in a service group, as `oms worker` does.
final class RunningWorkers: Sendable {
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    init(_ services: [any Service]) {
        let group = ServiceGroup(configuration: .init(services: services.map { .init(service: $0) }, logger: TestCluster.logger))
        self.group = group
        task = Task { try await group.run() }
    }

    /// Graceful shutdown: every runner finishes its batch, commits and leaves.
    func stop() async throws {
        await group.triggerGracefulShutdown()
        try await task.value
    }
}


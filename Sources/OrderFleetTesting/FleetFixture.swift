import Contracts
import Fleet
import Foundation
import Kafka
import Logging
import ServiceLifecycle
import Synchronization
import Workers

/// Topics and inputs for stage-runner tests on a (possibly shared) broker.
public struct FleetFixture: Sendable {
    /// The broker.
    public let cluster: TestCluster
    /// A fresh input topic.
    public let input: String
    /// A fresh output topic.
    public let output: String
    /// Partitions of each.
    public let partitions: Int32

    /// A fixture of existing topics.
    public init(cluster: TestCluster, input: String, output: String, partitions: Int32) {
        self.cluster = cluster
        self.input = input
        self.output = output
        self.partitions = partitions
    }

    /// Fresh input and output topics, and the catalog's idempotency and dead-letter topics.
    public static func make(_ needs: TestCluster.Needs = .full, partitions: Int32 = 6, extra: [String] = []) async throws -> FleetFixture {
        let cluster = try TestCluster.make(needs)
        try await cluster.ensureTopics([TopicCatalog.idempotencyTopic, TopicCatalog.deadLetterTopic])
        let input = try await cluster.createTopic("fleet-in", partitions: partitions)
        let output = try await cluster.createTopic("fleet-out", partitions: partitions)
        return FleetFixture(cluster: cluster, input: input, output: output, partitions: partitions)
    }

    /// A worker configuration for tests: no HTTP server, short commit interval.
    public func configuration(instance: String = TestCluster.uniqueName("w"), mode: DeliveryMode = .exactlyOnce) -> WorkerConfiguration {
        var configuration = WorkerConfiguration(brokers: cluster.bootstrapServers, instanceID: instance)
        configuration.mode = mode
        configuration.httpPort = nil
        configuration.statisticsInterval = nil
        configuration.sessionTimeout = .seconds(6)
        return configuration
    }

    /// Produces `count` enveloped events with keys `key-<i % keys>` and returns their ids.
    public func produceEvents(_ count: Int, to topic: String? = nil, keys: Int = 1000, subjectPrefix: String = "bucket") async throws -> [String] {
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

    /// A `ReportBucket` event keyed `key-<index % keys>`, in the trace of `traceparent` if given.
    public static func envelope(
        _ index: Int, keys: Int = 1000, subjectPrefix: String = "bucket", id: String = UUID().uuidString.lowercased(), traceparent: TraceParent? = nil
    ) -> Envelope {
        let bucket = ReportBucket(report: subjectPrefix, bucket: "key-\(index % keys)", values: ["n": Int64(index)], updatedAt: Date())
        return Envelope(id: id, source: "test", time: Date(), traceparent: traceparent, event: bucket.event)
    }

    /// Every committed record of `topic` (read_committed), from the beginning to where
    /// its log ended when the read began, as a restore reads it.
    public func readAll(_ topic: String, partitions: Int32? = nil) async throws -> [KafkaMessage] {
        var kafka = cluster.configuration
        kafka.clientID = TestCluster.uniqueName("reader")
        return try await TopicScan.records(
            in: (0..<(partitions ?? self.partitions)).map { KafkaTopicPartition(topic: topic, partition: $0) }, kafka: kafka,
            logger: TestCluster.logger, timeout: .seconds(60))
    }

    /// The `oms_causation_id` of every record: the input each output answers.
    public static func causations(_ messages: [KafkaMessage]) -> [String] {
        messages.compactMap { $0.header(EnvelopeHeader.causationID)?.stringValue }
    }
}

extension TestCluster {
    /// Creates these catalog topics, as `oms topics apply` would on one broker, if missing
    /// (they are shared by the tests on a shared broker).
    public func ensureTopics(_ names: [String]) async throws {
        for name in names {
            guard let spec = TopicCatalog.spec(named: name) else { throw NoidaServer.NoidaError(message: "no topic \(name) in the catalog") }
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
public final class RunningWorkers: Sendable {
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    /// Starts `services` in a service group.
    public init(_ services: [any Service]) {
        let group = ServiceGroup(configuration: .init(services: services.map { .init(service: $0) }, logger: TestCluster.logger))
        self.group = group
        task = Task { try await group.run() }
    }

    /// Graceful shutdown: every runner finishes its batch, commits and leaves.
    public func stop() async throws {
        await group.triggerGracefulShutdown()
        try await task.value
    }
}


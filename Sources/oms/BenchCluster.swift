import Contracts
import Foundation
import Kafka
import Logging

/// The broker a benchmark measures (`oms bench-stage`, `oms bench-pipeline`): one given
/// by address, its topics made with the admin API, or the embedded one in this process,
/// its topics made through the mock cluster (which has no controller for the admin API
/// to ask).
struct BenchCluster {
    let kafka: KafkaConfiguration
    /// The admin client of a broker given by address; nil on the embedded broker.
    let admin: KafkaAdmin?
    let embedded: EmbeddedKafka?

    /// - Parameter catalogTopics: which of the catalog's topics a broker given by address
    ///   gets (nil: all); the embedded broker gets all of them.
    init(brokers: String?, catalogTopics: Set<String>? = nil, logger: Logger) async throws {
        if let brokers {
            kafka = KafkaConfiguration(bootstrapServers: brokers, clientID: "oms-bench")
            let admin = try KafkaAdmin(configuration: kafka, logger: logger)
            let brokerCount = try await admin.brokerCount()
            for spec in TopicCatalog.topics where catalogTopics?.contains(spec.name) ?? true {
                _ = try await admin.createTopic(TopicProvisioning.kafkaSpec(for: spec, brokers: brokerCount))
            }
            (self.admin, embedded) = (admin, nil)
        } else {
            let (bootstrap, embedded) = try await TopicProvisioning.cluster(brokers: nil, clientID: "oms-bench", logger: logger)
            kafka = KafkaConfiguration(bootstrapServers: bootstrap, clientID: "oms-bench")
            (admin, self.embedded) = (nil, embedded)
        }
    }

    var bootstrap: String { kafka.bootstrapServers }

    /// Ends a benchmark. On the embedded broker it waits for every client of the runs to
    /// close (none then logs that its broker went away) and ends the process, as `oms
    /// demo` does: librdkafka 2.0.2's mock cluster destroy can wait forever once no
    /// client is left.
    func finish() async {
        guard embedded != nil else { return }
        _ = await KafkaLibrary.waitForClientsToClose(leaving: 1, timeout: .seconds(15))
        Foundation.exit(0)
    }

    /// Makes the benchmark's own topics.
    func createTopics(_ names: [String], partitions: Int32) async throws {
        if let embedded {
            for name in names { try embedded.createTopic(name, partitions: partitions, replicationFactor: 3) }
        } else {
            try await admin!.createTopics(names, partitions: partitions)
        }
    }
}

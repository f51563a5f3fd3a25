import ArgumentParser
import Foundation
import Contracts
import Kafka
import Logging
import ServiceLifecycle

struct BrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker",
        abstract: "Run an embedded Kafka cluster (librdkafka's mock cluster) until SIGINT or SIGTERM.",
        discussion: "Prints the bootstrap address; other processes and kcat can connect to it. Topics are auto-created with 4 partitions on first use unless created with --topic."
    )

    @Option(help: "Number of brokers.")
    var brokers = 3

    @Option(name: .customLong("topic"), help: ArgumentHelp("Create a topic at start-up (repeatable).", valueName: "name[:partitions]"))
    var topics: [String] = []

    @Flag(help: "Create every topic of the OrderFleet catalog at start-up.")
    var catalog = false

    @Option(help: "Write the bootstrap address to this file once the cluster is up.")
    var bootstrapFile: String?

    func run() async throws {
        let logger = Logger(label: "oms.broker")
        let cluster = try EmbeddedKafka(brokers: brokers, logger: logger)
        for topic in topics {
            let parts = topic.split(separator: ":", maxSplits: 1)
            guard let name = parts.first, !name.isEmpty else { throw ValidationError("--topic \(topic): empty name") }
            let partitions = parts.count > 1 ? Int32(parts[1]) : 6
            guard let partitions, partitions > 0 else { throw ValidationError("--topic \(topic): partitions must be a positive integer") }
            try cluster.createTopic(String(name), partitions: partitions, replicationFactor: Int32(min(3, brokers)))
        }
        if catalog { try TopicProvisioning.createAll(on: cluster) }
        print("embedded Kafka: \(brokers) broker(s) at \(cluster.bootstrapServers)")
        if let bootstrapFile {
            // Written atomically, so a reader never sees a partial address.
            try Data(cluster.bootstrapServers.utf8).write(to: URL(fileURLWithPath: bootstrapFile), options: .atomic)
        }
        print("press Ctrl-C to stop")
        let group = ServiceGroup(
            services: [EmbeddedKafkaService(cluster: cluster)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
        try await group.run()
        print("embedded Kafka stopped")
    }
}

/// Keeps the embedded cluster alive until graceful shutdown.
struct EmbeddedKafkaService: Service {
    let cluster: EmbeddedKafka

    func run() async throws {
        try? await gracefulShutdown()
        withExtendedLifetime(cluster) {}
    }
}

import ArgumentParser
import Contracts
import Fleet
import Foundation
import Kafka
import Logging

struct TopicsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topics",
        abstract: "Create, check and describe the topics of the catalog (topics/topics.yaml).",
        subcommands: [Apply.self, Describe.self, Create.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a topic outside the catalog (e.g. the test stages' topics); idempotent."
        )

        @OptionGroup var client: ClientOptions
        @Argument(help: "Topic names.")
        var names: [String]
        @Option(help: "Partitions.")
        var partitions: Int32 = 6
        @Flag(help: "cleanup.policy=compact (a changelog).")
        var compact = false

        func run() async throws {
            var logger = Logger(label: "oms.topics")
            logger.logLevel = .warning
            let admin = try KafkaAdmin(configuration: client.kafkaConfiguration(clientID: "oms-topics"), logger: logger)
            let replication = Int16(min(3, try await admin.brokerCount()))
            for name in names {
                let spec = KafkaTopicSpec(name: name, partitions: partitions, replicationFactor: replication, configs: compact ? ["cleanup.policy": "compact"] : [:])
                switch try await admin.createTopic(spec) {
                case .created: print("created  \(name) (\(partitions) partitions, rf \(replication))")
                case .alreadyExists: print("ok       \(name)")
                }
            }
        }
    }

    struct Apply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create every catalog topic that is missing and check the others.",
            discussion: """
                Idempotent. A topic that exists with other settings (partitions, replication factor, \
                cleanup.policy, retention.ms, min.insync.replicas) is reported as drift and left unchanged; \
                the command then exits with status 2. The replication factor is capped at the number of \
                brokers (and min.insync.replicas at the replication factor), so the catalog applies to a \
                one-broker development cluster too.
                """
        )

        @OptionGroup var client: ClientOptions

        func run() async throws {
            var logger = Logger(label: "oms.topics")
            logger.logLevel = .warning
            let admin = try KafkaAdmin(configuration: client.kafkaConfiguration(clientID: "oms-topics"), logger: logger)
            let brokers = try await admin.brokerCount()
            var drifted = 0
            for spec in TopicCatalog.topics {
                let wanted = TopicProvisioning.kafkaSpec(for: spec, brokers: brokers)
                let result: Result<KafkaTopicCreation, KafkaError>
                do {
                    result = .success(try await admin.createTopic(wanted))
                } catch {
                    result = .failure(error)
                }
                switch result {
                case .success(.created):
                    print("created  \(spec.name) (\(wanted.partitions) partitions, rf \(wanted.replicationFactor))")
                case .success(.alreadyExists):
                    print("ok       \(spec.name)")
                case .failure(let error) where error.code == .topicConfigConflict:
                    drifted += 1
                    let existing = try await admin.describeTopic(spec.name)
                    print("drift    \(spec.name): \(existing.differences(from: wanted).joined(separator: "; "))")
                case .failure(let error):
                    throw error
                }
            }
            let violations = TopicCatalog.coPartitioningViolations(stages: Set(StageRegistry.names))
            for violation in violations { print("catalog  \(violation)") }
            if drifted > 0 || !violations.isEmpty {
                print("\(drifted) topic(s) differ from the catalog; nothing was changed")
                throw ExitCode(2)
            }
        }
    }

    struct Describe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print each catalog topic as the cluster has it.")

        @OptionGroup var client: ClientOptions

        func run() async throws {
            var logger = Logger(label: "oms.topics")
            logger.logLevel = .warning
            let admin = try KafkaAdmin(configuration: client.kafkaConfiguration(clientID: "oms-topics"), logger: logger)
            let existing = Set(try await admin.listTopics())
            for spec in TopicCatalog.topics {
                guard existing.contains(spec.name) else {
                    print("\(spec.name)\tmissing")
                    continue
                }
                let topic = try await admin.describeTopic(spec.name)
                let configs = ["cleanup.policy", "retention.ms", "min.insync.replicas"].map { "\($0)=\(topic.configs[$0] ?? "-")" }
                print("\(spec.name)\tpartitions=\(topic.partitions)\treplication.factor=\(topic.replicationFactor)\t\(configs.joined(separator: "\t"))")
            }
        }
    }
}

/// Maps the catalog to what a given cluster can hold.
enum TopicProvisioning {
    /// The catalog's topic with its replication factor capped at the broker count and
    /// `min.insync.replicas` at the replication factor.
    static func kafkaSpec(for spec: TopicSpec, brokers: Int) -> KafkaTopicSpec {
        let replication = max(1, min(spec.replicationFactor, brokers))
        var configs = spec.configs
        configs["min.insync.replicas"] = String(min(spec.minInsyncReplicas, replication))
        return KafkaTopicSpec(name: spec.name, partitions: Int32(spec.partitions), replicationFactor: Int16(replication), configs: configs)
    }

    /// Creates every catalog topic on an embedded cluster (its CreateTopics hangs, so
    /// through the mock cluster's own API; it keeps no topic configs).
    /// `brokers` with every catalog topic created, or, without brokers, a new embedded
    /// 3-broker cluster with them (kept alive by the caller through `embedded`).
    static func cluster(brokers: String?, clientID: String, logger: Logger) async throws -> (bootstrap: String, embedded: EmbeddedKafka?) {
        if let brokers {
            let admin = try KafkaAdmin(configuration: KafkaConfiguration(bootstrapServers: brokers, clientID: clientID), logger: logger)
            let brokerCount = try await admin.brokerCount()
            for spec in TopicCatalog.topics { _ = try await admin.createTopic(kafkaSpec(for: spec, brokers: brokerCount)) }
            return (brokers, nil)
        }
        let cluster = try EmbeddedKafka(brokers: 3, logger: logger)
        try createAll(on: cluster)
        return (cluster.bootstrapServers, cluster)
    }

    static func createAll(on cluster: EmbeddedKafka) throws {
        for spec in TopicCatalog.topics {
            try cluster.createTopic(spec.name, partitions: Int32(spec.partitions), replicationFactor: Int32(min(spec.replicationFactor, cluster.brokerCount)))
        }
    }
}

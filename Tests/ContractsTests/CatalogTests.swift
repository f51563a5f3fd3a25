import Foundation
import Testing
import Yams

@testable import Contracts

@Suite struct TopicCatalogTests {
    /// The stages as `readers` name them (the fleet's list is Fleet.StageRegistry, which
    /// this pure target does not link).
    static let stages: Set<String> = [
        "intake", "payment", "fraud-velocity", "inventory", "allocation", "shipping", "tracking", "returns", "channel-sync", "stock-feed", "view", "customer-facts", "customers", "erp-feed", "sla-watch", "report",
    ]

    @Test func catalogCoversTheDesignTopics() {
        let names = TopicCatalog.topics.map(\.name)
        #expect(names.count == 51)
        #expect(Set(names).count == names.count)
        #expect(names.allSatisfy { $0.hasPrefix("oms.") })
        for spec in TopicCatalog.topics {
            #expect(spec.partitions == 6 && spec.replicationFactor == 3 && spec.minInsyncReplicas == 2, "\(spec.name)")
            #expect(!spec.eventTypes.isEmpty, "\(spec.name) carries no event type")
        }
        for type in EventRegistry.all {
            #expect(TopicCatalog.spec(named: type.topic) != nil, "\(type.eventType) goes to unknown topic \(type.topic)")
        }
    }

    @Test func configs() throws {
        let inbound = try #require(TopicCatalog.spec(named: "oms.orders.inbound"))
        #expect(inbound.configs == ["cleanup.policy": "delete", "min.insync.replicas": "2", "retention.ms": "604800000"])
        let dlq = try #require(TopicCatalog.spec(named: "oms.deadletter"))
        #expect(dlq.configs["retention.ms"] == "2592000000")
        let levels = try #require(TopicCatalog.spec(named: "oms.inventory.levels"))
        #expect(levels.configs == ["cleanup.policy": "compact", "min.insync.replicas": "2"])
        let compacted = Set(TopicCatalog.topics.filter { $0.cleanupPolicy == .compact }.map(\.name))
        #expect(compacted == [
            "oms.catalog.products", "oms.inventory.levels", "oms.allocation.state", "oms.shipments.index",
            "oms.orders.state", "oms.reports", "oms.idempotency", "oms.payments.holds", "oms.payments.velocity",
            "oms.shipping.state", "oms.tracking.state", "oms.returns.state", "oms.sla.state", "oms.channels.state",
            "oms.outbound.deliveries", "oms.stockfeed.state", "oms.customers.state", "oms.webhooks.subscriptions",
            "oms.invoices", "oms.invoicing.state", "oms.invoicing.series", "oms.fulfilment.state",
        ])
    }

    @Test func topicsYAMLAgreesWithTheCatalog() throws {
        let yaml = try Repo.text("topics/topics.yaml")
        let document = try #require(try Yams.load(yaml: yaml) as? [String: Any])
        let entries = try #require(document["topics"] as? [[String: Any]])
        #expect(entries.count == TopicCatalog.topics.count)
        for (entry, spec) in zip(entries, TopicCatalog.topics) {
            #expect(entry["name"] as? String == spec.name)
            #expect(entry["key"] as? String == spec.key, "\(spec.name)")
            #expect(entry["partitions"] as? Int == spec.partitions, "\(spec.name)")
            #expect(entry["replication_factor"] as? Int == spec.replicationFactor, "\(spec.name)")
            #expect(entry["min_insync_replicas"] as? Int == spec.minInsyncReplicas, "\(spec.name)")
            #expect(entry["cleanup_policy"] as? String == spec.cleanupPolicy.rawValue, "\(spec.name)")
            #expect((entry["retention_ms"] as? Int).map(Int64.init) == spec.retentionMs, "\(spec.name)")
            #expect(entry["co_partition_group"] as? String == spec.coPartitionGroup, "\(spec.name)")
            #expect(entry["writers"] as? [String] == spec.writers, "\(spec.name)")
            #expect(entry["readers"] as? [String] == spec.readers, "\(spec.name)")
            #expect(Set(entry.keys) == [
                "name", "key", "partitions", "replication_factor", "min_insync_replicas", "cleanup_policy", "retention_ms",
                "co_partition_group", "writers", "readers",
            ], "\(spec.name)")
        }
    }

    @Test func topicsYAMLDecodesIntoSpecs() throws {
        let file = try YAMLDecoder().decode(TopicsFile.self, from: try Repo.text("topics/topics.yaml"))
        #expect(file.topics == TopicCatalog.topics)
        // And the catalog written out decodes back to itself (snake_case keys, null retention).
        let written = try YAMLEncoder().encode(TopicsFile(topics: TopicCatalog.topics))
        #expect(try YAMLDecoder().decode(TopicsFile.self, from: written).topics == TopicCatalog.topics)
    }

    @Test func coPartitioningHoldsByDefault() {
        #expect(TopicCatalog.coPartitioningViolations(stages: Self.stages).isEmpty)
    }

    @Test func coPartitioningViolationsAreReported() throws {
        var topics = TopicCatalog.topics
        let index = try #require(topics.firstIndex { $0.name == "oms.inventory.results" })
        topics[index].partitions = 12
        let violations = TopicCatalog.coPartitioningViolations(topics, stages: Self.stages)
        // Both the order group and the idempotency rule (12 > 6) are broken.
        #expect(violations.map(\.group) == ["order", "oms.idempotency"])
        #expect(violations.first?.partitionsByTopic["oms.inventory.results"] == 12)
        #expect(violations.first?.partitionsByTopic["oms.orders.placed"] == 6)
        #expect(violations.first?.message.contains("oms.inventory.results=12") == true)

        // Widening a whole group and the idempotency topic together is fine.
        var wide = TopicCatalog.topics
        for i in wide.indices where wide[i].coPartitionGroup == "tracking" || wide[i].name == "oms.idempotency" {
            wide[i].partitions = 12
        }
        #expect(TopicCatalog.coPartitioningViolations(wide, stages: Self.stages).isEmpty)

        var narrowIdempotency = TopicCatalog.topics
        let idem = try #require(narrowIdempotency.firstIndex { $0.name == "oms.idempotency" })
        narrowIdempotency[idem].partitions = 3
        let idemViolations = TopicCatalog.coPartitioningViolations(narrowIdempotency, stages: Self.stages)
        #expect(idemViolations.count == 1)
        #expect(idemViolations.first?.group == "oms.idempotency")
        // A topic no stage reads (oms.notifications, read by the notifier) does not constrain it.
        #expect(idemViolations.first?.partitionsByTopic["oms.notifications"] == nil)
        #expect(idemViolations.first?.partitionsByTopic["oms.orders.placed"] == 6)
    }
}

@Suite struct AsyncAPITests {
    static func document() throws -> [String: Any] {
        try #require(try Yams.load(yaml: try Repo.text("topics/asyncapi.yaml")) as? [String: Any])
    }

    @Test func listsExactlyTheCatalogTopicsWithTheirMessages() throws {
        let doc = try Self.document()
        #expect(doc["asyncapi"] as? String == "3.0.0")
        let channels = try #require(doc["channels"] as? [String: [String: Any]])
        let components = try #require((doc["components"] as? [String: Any])?["messages"] as? [String: [String: Any]])
        #expect(Set(channels.values.compactMap { $0["address"] as? String }) == Set(TopicCatalog.topics.map(\.name)))
        #expect(channels.count == TopicCatalog.topics.count)
        let root = try Repo.root()
        for (_, channel) in channels {
            let address = try #require(channel["address"] as? String)
            let spec = try #require(TopicCatalog.spec(named: address))
            let messages = try #require(channel["messages"] as? [String: [String: String]], "\(address)")
            let expected = EventRegistry.all.filter { $0.topic == address }
            #expect(Set(messages.keys) == Set(expected.map { String(describing: $0) }), "\(address)")
            for type in expected {
                let name = String(describing: type)
                #expect(messages[name]?["$ref"] == "#/components/messages/\(name)")
                let message = try #require(components[name], "\(name)")
                #expect(message["name"] as? String == type.eventType.ceType)
                let payloadRef = try #require((message["payload"] as? [String: String])?["$ref"])
                #expect(payloadRef == "./schemas/\(type.eventType.ceType).json")
                #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent("topics").appendingPathComponent(payloadRef).path))
                let headers = try #require(message["headers"] as? [String: Any])
                let headerProperties = try #require(headers["properties"] as? [String: [String: Any]])
                #expect(headerProperties["ce_type"]?["const"] as? String == type.eventType.ceType)
                #expect(headerProperties["ce_specversion"]?["const"] as? String == "1.0")
                #expect(Set(headerProperties.keys) == Set(EnvelopeHeader.all))
                let key = (message["bindings"] as? [String: Any]).flatMap { $0["kafka"] as? [String: Any] }.flatMap { $0["key"] as? [String: Any] }
                #expect(key?["description"] as? String == spec.key, "\(name)")
            }
            let kafka = try #require((channel["bindings"] as? [String: Any])?["kafka"] as? [String: Any])
            #expect(kafka["partitions"] as? Int == spec.partitions)
            #expect(kafka["replicas"] as? Int == spec.replicationFactor)
            #expect(kafka["topic"] as? String == address)
            let config = try #require(kafka["topicConfiguration"] as? [String: Any])
            #expect(config["cleanup.policy"] as? [String] == [spec.cleanupPolicy.rawValue])
            #expect((config["retention.ms"] as? Int).map(Int64.init) == spec.retentionMs, "\(address)")
            #expect(config["min.insync.replicas"] as? Int == spec.minInsyncReplicas)
        }
        #expect(Set(components.keys) == Set(EventRegistry.all.map { String(describing: $0) }))
    }

    @Test func everyChannelHasSendAndReceiveOperations() throws {
        let doc = try Self.document()
        let channels = try #require(doc["channels"] as? [String: [String: Any]])
        let operations = try #require(doc["operations"] as? [String: [String: Any]])
        for id in channels.keys {
            let refs = operations.values.filter { ($0["channel"] as? [String: String])?["$ref"] == "#/channels/\(id)" }
            #expect(Set(refs.compactMap { $0["action"] as? String }) == ["send", "receive"], "\(id)")
        }
    }
}

@Suite struct DocumentationTests {
    @Test func eventsDocumentListsEveryEventTypeAndItsTopic() throws {
        let text = try Repo.text("docs/EVENTS.md")
        for type in EventRegistry.all {
            #expect(text.contains("| `\(type.eventType.ceType)` | `\(String(describing: type))` | `\(type.topic)` |"), "\(type.eventType)")
        }
    }
}

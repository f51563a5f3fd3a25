/// Kafka `cleanup.policy` of a topic.
public enum CleanupPolicy: String, Sendable, Hashable, Codable, CaseIterable {
    /// Time/size-based deletion: event streams.
    case delete
    /// Keep the latest record per key: state and changelogs restored on assignment.
    case compact
}

/// One topic as the fleet needs it created.
public struct TopicSpec: Sendable, Hashable, Codable {
    /// Topic name, e.g. `oms.orders.placed`.
    public var name: String
    /// What the record key is (documentation; the events compute it).
    public var key: String
    /// Partition count; co-partitioned topics must agree.
    public var partitions: Int
    /// Replicas per partition.
    public var replicationFactor: Int
    /// `min.insync.replicas`; with acks=all, writes survive one broker loss.
    public var minInsyncReplicas: Int
    /// Delete or compact.
    public var cleanupPolicy: CleanupPolicy
    /// `retention.ms`; nil keeps the broker default.
    public var retentionMs: Int64?
    /// Topics in the same group are joined or restored together and must be co-partitioned.
    public var coPartitionGroup: String?
    /// Components that produce to the topic.
    public var writers: [String]
    /// Components that consume from the topic.
    public var readers: [String]

    /// The snake_case names of `topics/topics.yaml`, so the file decodes straight into specs.
    enum CodingKeys: String, CodingKey {
        case name, key, partitions, writers, readers
        case replicationFactor = "replication_factor"
        case minInsyncReplicas = "min_insync_replicas"
        case cleanupPolicy = "cleanup_policy"
        case retentionMs = "retention_ms"
        case coPartitionGroup = "co_partition_group"
    }

    /// Builds a spec with the house defaults (6 partitions, RF 3, min ISR 2).
    public init(
        name: String, key: String, partitions: Int = 6, replicationFactor: Int = 3, minInsyncReplicas: Int = 2,
        cleanupPolicy: CleanupPolicy, retentionMs: Int64? = nil, coPartitionGroup: String? = nil,
        writers: [String], readers: [String]
    ) {
        self.name = name
        self.key = key
        self.partitions = partitions
        self.replicationFactor = replicationFactor
        self.minInsyncReplicas = minInsyncReplicas
        self.cleanupPolicy = cleanupPolicy
        self.retentionMs = retentionMs
        self.coPartitionGroup = coPartitionGroup
        self.writers = writers
        self.readers = readers
    }

    /// The Kafka topic configs to create the topic with.
    public var configs: [String: String] {
        var configs = [
            "cleanup.policy": cleanupPolicy.rawValue,
            "min.insync.replicas": String(minInsyncReplicas),
        ]
        if let retentionMs { configs["retention.ms"] = String(retentionMs) }
        return configs
    }

    /// The `ce_type`s that may appear on this topic.
    public var eventTypes: [EventType] {
        EventRegistry.all.filter { $0.topic == name }.map { $0.eventType }
    }
}

/// A broken co-partitioning rule, reported instead of thrown so all can be shown at once.
public struct CoPartitionViolation: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The co-partition group (or `oms.idempotency` for the idempotency rule).
    public var group: String
    /// Partition count per topic involved.
    public var partitionsByTopic: [String: Int]
    /// What is wrong.
    public var message: String

    /// Same as ``message``.
    public var description: String { message }
}

/// The shape of `topics/topics.yaml`: `{topics: [TopicSpec]}`.
///
/// Decoding it (e.g. with Yams' `YAMLDecoder`) gives specs with any per-topic
/// overrides an operator made; check them with
/// ``TopicCatalog/coPartitioningViolations(_:stages:)`` before applying.
public struct TopicsFile: Sendable, Hashable, Codable {
    /// Every topic, in catalog order.
    public var topics: [TopicSpec]

    /// Wraps a topic list.
    public init(topics: [TopicSpec]) {
        self.topics = topics
    }
}

/// Every topic of the system (docs/EVENTS.md); `topics/topics.yaml` mirrors it.
public enum TopicCatalog {
    private static let day: Int64 = 86_400_000
    static let order = "order"
    static let inventory = "inventory"
    static let tracking = "tracking"
    static let customer = "customer"
    static let entity = "entity"

    /// The topics with their default settings.
    public static let topics: [TopicSpec] = [
        TopicSpec(
            name: "oms.catalog.products", key: "sku", cleanupPolicy: .compact,
            writers: ["pim-connector", "oms catalog import"], readers: ["intake", "allocation", "shipping", "returns"]),
        TopicSpec(
            name: "oms.orders.inbound", key: "channel/externalOrderId", cleanupPolicy: .delete, retentionMs: 7 * day,
            writers: ["gateway", "marketplaces", "returns"], readers: ["intake"]),
        TopicSpec(
            name: "oms.orders.placed", key: "orderId", cleanupPolicy: .delete, coPartitionGroup: order,
            writers: ["intake"], readers: ["payment", "allocation", "fulfilment", "shipping", "returns", "view", "report", "channel-sync", "erp-feed", "invoicing"]),
        TopicSpec(
            name: "oms.orders.rejected", key: "orderId", cleanupPolicy: .delete, coPartitionGroup: order,
            writers: ["intake"], readers: ["view", "report"]),
        TopicSpec(
            name: "oms.payments.checked", key: "orderId", cleanupPolicy: .delete, coPartitionGroup: order,
            writers: ["fraud-velocity", "payment"], readers: ["payment", "allocation", "view"]),
        TopicSpec(
            name: "oms.payments.screening", key: "customerKey", cleanupPolicy: .delete, coPartitionGroup: customer,
            writers: ["payment"], readers: ["fraud-velocity"]),
        TopicSpec(
            name: "oms.payments.velocity", key: "customerKey", cleanupPolicy: .compact, coPartitionGroup: customer,
            writers: ["fraud-velocity"], readers: ["fraud-velocity"]),
        TopicSpec(
            name: "oms.payments.holds", key: "orderId", cleanupPolicy: .compact, coPartitionGroup: order,
            writers: ["payment"], readers: ["payment"]),
        TopicSpec(
            name: "oms.inventory.commands", key: "sku", cleanupPolicy: .delete, coPartitionGroup: inventory,
            writers: ["allocation", "shipping", "returns", "ops"], readers: ["inventory"]),
        TopicSpec(
            name: "oms.inventory.results", key: "orderId", cleanupPolicy: .delete, coPartitionGroup: order,
            writers: ["inventory"], readers: ["allocation", "report"]),
        TopicSpec(
            name: "oms.inventory.levels", key: "sku[/orderId/lineId/location or :waiting]", cleanupPolicy: .compact, coPartitionGroup: inventory,
            writers: ["inventory"], readers: ["inventory", "allocation", "returns", "gateway", "stock-feed"]),
        TopicSpec(
            name: "oms.allocation.state", key: "orderId", cleanupPolicy: .compact, coPartitionGroup: order,
            writers: ["allocation"], readers: ["allocation"]),
        TopicSpec(
            name: "oms.orders.allocated", key: "orderId", cleanupPolicy: .delete, coPartitionGroup: order,
            writers: ["allocation"], readers: ["fulfilment", "shipping", "returns", "view", "report"]),
        TopicSpec(
            name: "oms.orders.commands", key: "orderId", cleanupPolicy: .delete, coPartitionGroup: order,
            writers: ["gateway", "ops", "intake", "returns"], readers: ["payment", "shipping"]),
        TopicSpec(
            name: "oms.orders.cancellations", key: "orderId", cleanupPolicy: .delete, coPartitionGroup: order,
            writers: ["shipping"], readers: ["payment", "allocation", "fulfilment", "returns", "view", "report", "channel-sync", "invoicing"]),
        TopicSpec(
            name: "oms.shipping.state", key: "orderId", cleanupPolicy: .compact, coPartitionGroup: order,
            writers: ["shipping"], readers: ["shipping"]),
        TopicSpec(
            name: "oms.fulfilment.requests", key: "orderId", cleanupPolicy: .delete, coPartitionGroup: order,
            writers: ["fulfilment"], readers: ["WMS, 3PLs, stores, vendors"]),
        TopicSpec(
            name: "oms.fulfilment.inbound", key: "orderId", cleanupPolicy: .delete, coPartitionGroup: order,
            writers: ["gateway", "locations"], readers: ["fulfilment"]),
        TopicSpec(
            name: "oms.fulfilment.events", key: "orderId", cleanupPolicy: .delete, coPartitionGroup: order,
            writers: ["fulfilment"], readers: ["allocation", "shipping", "view", "report"]),
        TopicSpec(
            name: "oms.fulfilment.state", key: "orderId", cleanupPolicy: .compact, coPartitionGroup: order,
            writers: ["fulfilment"], readers: ["fulfilment"]),
        TopicSpec(
            name: "oms.shipments.created", key: "orderId", cleanupPolicy: .delete, coPartitionGroup: order,
            writers: ["shipping"], readers: ["returns", "view", "report", "channel-sync", "erp-feed", "invoicing"]),
        TopicSpec(
            name: "oms.shipments.index", key: "carrier/trackingNumber", cleanupPolicy: .compact,
            coPartitionGroup: tracking, writers: ["shipping", "returns"], readers: ["tracking"]),
        TopicSpec(
            name: "oms.tracking.inbound", key: "carrier/trackingNumber", cleanupPolicy: .delete,
            coPartitionGroup: tracking, writers: ["gateway", "carriers"], readers: ["tracking"]),
        TopicSpec(
            name: "oms.tracking.state", key: "carrier/trackingNumber", cleanupPolicy: .compact,
            coPartitionGroup: tracking, writers: ["tracking"], readers: ["tracking"]),
        TopicSpec(
            name: "oms.shipments.tracking", key: "orderId", cleanupPolicy: .delete, coPartitionGroup: order,
            writers: ["tracking", "fulfilment"], readers: ["returns", "view", "report"]),
        TopicSpec(
            name: "oms.returns.requests", key: "orderId", cleanupPolicy: .delete, coPartitionGroup: order,
            writers: ["gateway", "warehouses", "returns"], readers: ["returns"]),
        TopicSpec(
            name: "oms.returns.events", key: "orderId", cleanupPolicy: .delete, coPartitionGroup: order,
            writers: ["returns"], readers: ["view", "payments-connector", "report", "erp-feed"]),
        TopicSpec(
            name: "oms.returns.state", key: "orderId", cleanupPolicy: .compact, coPartitionGroup: order,
            writers: ["returns"], readers: ["returns"]),
        TopicSpec(
            name: "oms.payments.commands", key: "orderId", cleanupPolicy: .delete, coPartitionGroup: order,
            writers: ["shipping", "returns"], readers: ["view", "payments-connector", "report", "channel-sync", "erp-feed"]),
        TopicSpec(
            name: "oms.orders.state", key: "orderId", cleanupPolicy: .compact, coPartitionGroup: order,
            writers: ["view"], readers: ["view", "sla-watch", "customer-facts", "gateway", "oms orders"]),
        TopicSpec(
            name: "oms.notifications", key: "orderId", cleanupPolicy: .delete, coPartitionGroup: order,
            writers: ["view"], readers: ["email-connector"]),
        TopicSpec(
            name: "oms.invoicing.state", key: "orderId", cleanupPolicy: .compact, coPartitionGroup: order,
            writers: ["invoicing"], readers: ["invoicing"]),
        TopicSpec(
            name: "oms.invoices.requests", key: "legalEntity", cleanupPolicy: .delete, coPartitionGroup: entity,
            writers: ["invoicing"], readers: ["invoice-numbering"]),
        TopicSpec(
            name: "oms.invoicing.series", key: "legalEntity/series or legalEntity/order/orderId", cleanupPolicy: .compact,
            coPartitionGroup: entity, writers: ["invoice-numbering"], readers: ["invoice-numbering"]),
        TopicSpec(
            name: "oms.invoices", key: "legalEntity/series/sequence", cleanupPolicy: .compact,
            writers: ["invoice-numbering"], readers: ["gateway", "report"]),
        TopicSpec(
            name: "oms.payments.outcomes", key: "orderId", cleanupPolicy: .delete, coPartitionGroup: order,
            writers: ["payments-connector"], readers: ["view", "report", "invoicing"]),
        TopicSpec(
            name: "oms.alerts", key: "orderId", cleanupPolicy: .delete, coPartitionGroup: order,
            writers: ["sla-watch", "fulfilment", "every connector"], readers: ["operators", "report"]),
        TopicSpec(
            name: "oms.channels.commands", key: "orderId", cleanupPolicy: .delete, coPartitionGroup: order,
            writers: ["channel-sync"], readers: ["channel-connector"]),
        TopicSpec(
            name: "oms.channels.state", key: "orderId", cleanupPolicy: .compact, coPartitionGroup: order,
            writers: ["channel-sync"], readers: ["channel-sync"]),
        TopicSpec(
            name: "oms.outbound.deliveries", key: "connector/commandId", cleanupPolicy: .compact, coPartitionGroup: order,
            writers: ["every connector"], readers: ["every connector", "operators"]),
        TopicSpec(
            name: "oms.webhooks.subscriptions", key: "subscriptionId", cleanupPolicy: .compact,
            writers: ["oms webhooks", "gateway", "webhooks-connector"], readers: ["webhooks-connector", "gateway"]),
        TopicSpec(
            name: "oms.channels.stock", key: "sku", cleanupPolicy: .delete, coPartitionGroup: inventory,
            writers: ["stock-feed"], readers: ["stock-connector"]),
        TopicSpec(
            name: "oms.stockfeed.requests", key: "sku", cleanupPolicy: .delete, coPartitionGroup: inventory,
            writers: ["oms channels resync"], readers: ["stock-feed"]),
        TopicSpec(
            name: "oms.stockfeed.state", key: "sku", cleanupPolicy: .compact, coPartitionGroup: inventory,
            writers: ["stock-feed"], readers: ["stock-feed"]),
        TopicSpec(
            name: "oms.customers.facts", key: "customerId", cleanupPolicy: .delete, coPartitionGroup: customer,
            writers: ["customer-facts"], readers: ["customers"]),
        TopicSpec(
            name: "oms.customers.state", key: "customerId", cleanupPolicy: .compact, coPartitionGroup: customer,
            writers: ["customers"], readers: ["customers", "gateway", "CRM"]),
        TopicSpec(
            name: "oms.erp.feed", key: "orderId", cleanupPolicy: .delete, coPartitionGroup: order,
            writers: ["erp-feed"], readers: ["ERP", "oms erp export"]),
        TopicSpec(
            name: "oms.sla.state", key: "orderId", cleanupPolicy: .compact, coPartitionGroup: order,
            writers: ["sla-watch"], readers: ["sla-watch"]),
        TopicSpec(
            name: "oms.reports", key: "report/bucket", cleanupPolicy: .compact,
            writers: ["report"], readers: ["gateway", "oms report"]),
        TopicSpec(
            name: "oms.idempotency", key: "stage/key", cleanupPolicy: .compact,
            writers: ["every stage"], readers: ["every stage"]),
        TopicSpec(
            name: "oms.deadletter", key: "original key", cleanupPolicy: .delete, retentionMs: 30 * day,
            writers: ["every stage"], readers: ["operators", "report"]),
    ]

    /// The spec of the topic called `name`, if it is in the catalog.
    public static func spec(named name: String) -> TopicSpec? {
        topics.first { $0.name == name }
    }

    /// The name of the idempotency topic, whose partition numbers mirror input partitions.
    public static let idempotencyTopic = "oms.idempotency"
    /// Where records a stage cannot process go, with the reason.
    public static let deadLetterTopic = "oms.deadletter"

    /// Checks the co-partitioning rules over `topics` (e.g. after per-topic overrides):
    /// every topic of a group has the same partition count, and `oms.idempotency`
    /// has at least as many partitions as any topic a stage consumes, because
    /// idempotency keys are written to the same partition number as their input.
    ///
    /// - Parameter stages: the names of the stages (as they appear in `readers`), which
    ///   write idempotency keys; the fleet's list is `Fleet.StageRegistry.names`.
    public static func coPartitioningViolations(_ topics: [TopicSpec] = topics, stages: Set<String>) -> [CoPartitionViolation] {
        var violations: [CoPartitionViolation] = []
        var groups: [String: [TopicSpec]] = [:]
        for topic in topics {
            if let group = topic.coPartitionGroup { groups[group, default: []].append(topic) }
        }
        for (group, members) in groups.sorted(by: { $0.key < $1.key }) {
            let counts = Set(members.map(\.partitions))
            guard counts.count > 1 else { continue }
            let byTopic = Dictionary(uniqueKeysWithValues: members.map { ($0.name, $0.partitions) })
            let detail = members.map { "\($0.name)=\($0.partitions)" }.joined(separator: ", ")
            violations.append(
                CoPartitionViolation(
                    group: group, partitionsByTopic: byTopic,
                    message: "co-partition group '\(group)' has unequal partition counts: \(detail)"))
        }
        if let idempotency = topics.first(where: { $0.name == idempotencyTopic }) {
            let stageInputs = topics.filter {
                $0.name != idempotencyTopic && $0.readers.contains { reader in stages.contains(reader) }
            }
            let tooWide = stageInputs.filter { $0.partitions > idempotency.partitions }
            if !tooWide.isEmpty {
                var byTopic = Dictionary(uniqueKeysWithValues: tooWide.map { ($0.name, $0.partitions) })
                byTopic[idempotency.name] = idempotency.partitions
                let detail = tooWide.map { "\($0.name)=\($0.partitions)" }.joined(separator: ", ")
                violations.append(
                    CoPartitionViolation(
                        group: idempotencyTopic, partitionsByTopic: byTopic,
                        message:
                            "\(idempotencyTopic) has \(idempotency.partitions) partitions but stage inputs have more: \(detail)"
                    ))
            }
        }
        return violations
    }
}

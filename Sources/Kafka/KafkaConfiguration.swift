import CKafka
import Foundation

/// Settings shared by every Kafka client of this project: where the brokers are and
/// how to reach them, plus a pass-through of any librdkafka property.
///
/// The typed fields cover what OrderFleet sets on purpose; everything else (SASL, TLS,
/// tuning) goes into ``properties`` under librdkafka's own names, see librdkafka's
/// CONFIGURATION.md. Properties are applied after the typed fields, so they win. An
/// unknown key or an invalid value makes the client's initializer throw a
/// ``KafkaError`` whose message is librdkafka's and names the key.
public struct KafkaConfiguration: Sendable {
    /// Comma-separated `host:port` list (`bootstrap.servers`).
    public var bootstrapServers: String
    /// `client.id`, shown in broker logs and metrics.
    public var clientID: String
    /// How often librdkafka emits statistics (`statistics.interval.ms`); when set, they
    /// are exported through swift-metrics (see ``KafkaStatistics``).
    public var statisticsInterval: Duration?
    /// Any librdkafka property by its own name, e.g. `security.protocol`,
    /// `sasl.mechanism`, `ssl.ca.location`, `linger.ms`.
    public var properties: [String: String]
    /// How long a consumer's fetch may wait at the broker for records to arrive
    /// (`fetch.wait.max.ms`) for consumers made from this configuration; nil:
    /// ``KafkaConsumerConfiguration/defaultFetchWait``.
    ///
    /// Apache Kafka (and noida-db) answer a waiting fetch as soon as records arrive, so a
    /// long wait costs no latency there and spares an idle consumer ~100 empty fetches a
    /// second. librdkafka's mock cluster (the embedded broker) holds an empty answer for
    /// the whole wait instead, which adds up to the wait to every hop: hence the short
    /// default.
    public var fetchWait: Duration?

    /// Creates a configuration for the given brokers.
    public init(
        bootstrapServers: String,
        clientID: String = "orderfleet",
        statisticsInterval: Duration? = nil,
        properties: [String: String] = [:]
    ) {
        self.bootstrapServers = bootstrapServers
        self.clientID = clientID
        self.statisticsInterval = statisticsInterval
        self.properties = properties
    }

    var baseProperties: [(String, String)] {
        var result: [(String, String)] = [
            ("bootstrap.servers", bootstrapServers),
            ("client.id", clientID),
        ]
        if let statisticsInterval {
            result.append(("statistics.interval.ms", String(statisticsInterval.milliseconds)))
        }
        return result
    }
}

/// Producer settings: idempotent with `acks=all` unless told otherwise.
public struct KafkaProducerConfiguration: Sendable {
    /// Brokers, security and pass-through properties.
    public var kafka: KafkaConfiguration
    /// `enable.idempotence`: no duplicates or reordering on producer retries.
    public var idempotent: Bool = true
    /// `transactional.id`; set it to use the transaction methods of ``KafkaProducer``.
    public var transactionalID: String?
    /// `transaction.timeout.ms`.
    public var transactionTimeout: Duration = .seconds(60)
    /// `linger.ms`: how long to wait to fill a batch; small keeps latency low.
    public var linger: Duration = .milliseconds(5)
    /// `message.timeout.ms`: how long a message may wait for acknowledgement before its
    /// delivery fails.
    public var messageTimeout: Duration = .seconds(30)
    /// `partitioner`: murmur2 like the Java client's default, so that a key lands on the
    /// same partition whichever client wrote it (librdkafka's own default is CRC32).
    public var partitioner: String = "murmur2_random"

    /// Creates producer settings over the given client settings.
    public init(kafka: KafkaConfiguration) { self.kafka = kafka }

    package var librdkafkaProperties: [(String, String)] {
        var result = kafka.baseProperties
        result.append(("enable.idempotence", idempotent ? "true" : "false"))
        result.append(("acks", "all"))
        result.append(("linger.ms", String(linger.milliseconds)))
        result.append(("message.timeout.ms", String(messageTimeout.milliseconds)))
        result.append(("partitioner", partitioner))
        if let transactionalID {
            result.append(("transactional.id", transactionalID))
            result.append(("transaction.timeout.ms", String(transactionTimeout.milliseconds)))
        }
        result.append(contentsOf: kafka.properties.sorted { $0.key < $1.key })
        return result
    }
}

/// Group-consumer settings: manual offset management, `read_committed`,
/// cooperative-sticky assignment and a short fetch wait, as the stage runtime needs (docs/ARCHITECTURE.md).
public struct KafkaConsumerConfiguration: Sendable {
    /// Where a group without committed offsets starts.
    public enum OffsetReset: String, Sendable {
        /// The oldest retained message.
        case earliest
        /// Only messages produced from now on.
        case latest
    }

    /// Which messages of transactional producers a consumer sees.
    public enum IsolationLevel: String, Sendable {
        /// Only committed transactions' messages (and non-transactional ones).
        case readCommitted = "read_committed"
        /// Everything, including aborted transactions' messages.
        case readUncommitted = "read_uncommitted"
    }

    /// Brokers, security and pass-through properties.
    public var kafka: KafkaConfiguration
    /// `group.id`.
    public var groupID: String
    /// `auto.offset.reset`.
    public var offsetReset: OffsetReset = .earliest
    /// `isolation.level`.
    public var isolationLevel: IsolationLevel = .readCommitted
    /// `fetch.wait.max.ms`: ``KafkaConfiguration/fetchWait``, else ``defaultFetchWait``.
    public var fetchWaitMax: Duration
    /// The fetch wait when none is configured: short, for the embedded broker (see
    /// ``KafkaConfiguration/fetchWait``).
    public static let defaultFetchWait: Duration = .milliseconds(10)
    /// `session.timeout.ms`: how long a silent member keeps its partitions.
    public var sessionTimeout: Duration = .seconds(10)
    /// `partition.assignment.strategy`.
    public var assignmentStrategy: String = "cooperative-sticky"
    /// The most messages one batch of ``KafkaConsumer/batches`` carries.
    public var maxBatchSize: Int = 1000
    /// How long one batch call waits for the first message before polling again; bounds
    /// how fast cancellation and ``KafkaConsumer/close()`` are noticed.
    public var pollTimeout: Duration = .milliseconds(100)

    /// Creates consumer settings for the group `groupID`.
    public init(kafka: KafkaConfiguration, groupID: String) {
        self.kafka = kafka
        self.groupID = groupID
        fetchWaitMax = kafka.fetchWait ?? Self.defaultFetchWait
    }

    package var librdkafkaProperties: [(String, String)] {
        var result = kafka.baseProperties
        result.append(("group.id", groupID))
        result.append(("auto.offset.reset", offsetReset.rawValue))
        result.append(("isolation.level", isolationLevel.rawValue))
        // Offsets are committed explicitly (commit(_:)) or in a transaction, never by a
        // timer that may commit records not yet processed.
        result.append(("enable.auto.commit", "false"))
        result.append(("enable.auto.offset.store", "false"))
        result.append(("fetch.wait.max.ms", String(fetchWaitMax.milliseconds)))
        result.append(("session.timeout.ms", String(sessionTimeout.milliseconds)))
        result.append(("partition.assignment.strategy", assignmentStrategy))
        // librdkafka 2.0.2 counts this "per partition" minimum over the one queue all
        // assigned partitions feed: at its default (100,000) a consumer taking large
        // batches of many partitions stops fetching all of them at once and resumes late
        // (docs/BENCHMARKS.md, "Kafka API vs kcat"). The queue stays bounded by
        // `queued.max.messages.kbytes` (64 MiB).
        result.append(("queued.min.messages", "1000000"))
        result.append(contentsOf: kafka.properties.filter { !Self.producerOnlyProperties.contains($0.key) }.sorted { $0.key < $1.key })
        return result
    }

    /// Properties of librdkafka's producer scope ("P" in its CONFIGURATION.md) that
    /// operators set in ``KafkaConfiguration/properties`` for every client of a process,
    /// such as `compression.type`: a consumer ignores them, but warns (`CONFWARN`) once
    /// per property and client, hundreds of lines for a fleet process, so they are not
    /// given to consumers. Read from the linked librdkafka's own table, so a property a
    /// later version adds or rescopes needs no list kept here.
    package static let producerOnlyProperties: Set<String> = {
        guard let table = ckafka_properties_table() else { return [] }
        defer { free(table) }
        return producerScoped(in: String(cString: table))
    }()

    /// The names whose scope column is "P" in a table of `name | scope | range | ...` rows.
    package static func producerScoped(in table: String) -> Set<String> {
        var names = Set<String>()
        for line in table.split(separator: "\n") {
            let columns = line.split(separator: "|", maxSplits: 2, omittingEmptySubsequences: false)
            guard columns.count == 3, columns[1].trimmingCharacters(in: .whitespaces) == "P" else { continue }
            names.insert(columns[0].trimmingCharacters(in: .whitespaces))
        }
        return names
    }
}

extension KafkaConfiguration {
    /// The same settings under another client id (one per client, so logs and metrics tell them apart).
    public func with(clientID: String) -> KafkaConfiguration {
        var copy = self
        copy.clientID = clientID
        return copy
    }
}

extension Duration {
    /// Whole milliseconds, rounded down, as librdkafka's `*.ms` properties and timeouts take them.
    var milliseconds: Int {
        let (seconds, attoseconds) = components
        let (whole, overflow) = Int(seconds).multipliedReportingOverflow(by: 1000)
        if overflow { return seconds < 0 ? Int.min : Int.max }
        return whole.addingReportingOverflow(Int(attoseconds / 1_000_000_000_000_000)).partialValue
    }

    var timeoutMilliseconds: Int32 { Int32(clamping: milliseconds) }
}

import Configuration
import Foundation
import Kafka
import Logging
import SystemPackage

/// How a stage's effects reach Kafka.
public enum DeliveryMode: String, Sendable, CaseIterable {
    /// One Kafka transaction per batch: outputs, state, idempotency keys and consumed
    /// offsets commit together or not at all.
    case exactlyOnce = "exactly-once"
    /// For brokers without transactions: outputs are flushed, then offsets committed. A
    /// crash in between replays inputs; deterministic event ids and idempotency keys
    /// keep every effect single for readers that dedupe on `ce_id`.
    case atLeastOnce = "at-least-once"
}

/// A start-up setting that is missing or wrong; the message names the key.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    /// The key, as written in a config file (`worker.batch.size`); its environment
    /// variable is ``environmentName``.
    public var key: String
    /// What is wrong.
    public var reason: String

    /// An error about `key`.
    public init(key: String, reason: String) {
        self.key = key
        self.reason = reason
    }

    /// The environment variable that sets ``key``.
    public var environmentName: String { WorkerConfiguration.environmentName(of: key) }

    /// `configuration key worker.batch.size (WORKER_BATCH_SIZE): ...`
    public var description: String { "configuration key \(key) (\(environmentName)): \(reason)" }
}

/// Everything a worker process reads at start-up, from environment variables and an
/// optional JSON config file (environment wins). docs/OPERATIONS.md lists every key.
public struct WorkerConfiguration: Sendable {
    /// Brokers, security and librdkafka pass-through properties.
    public var kafka: KafkaConfiguration
    /// Transactions or at-least-once.
    public var mode: DeliveryMode = .exactlyOnce
    /// At least once, whether the write-ahead intents are written; never read from the
    /// configuration: `false` is unsafe and only measures their cost (`oms bench-stage`).
    package var writesIntents = true
    /// This worker's stable identity: its transactional ids are `oms.<stage>.<instance>`,
    /// so a restarted worker fences its dead predecessor's open transaction at once.
    /// Unique per running worker of a stage.
    public var instanceID: String
    /// Most records per consumer batch and per transaction. Under a backlog the batch is
    /// what amortizes the commit's round trips to the brokers (at least once, four
    /// flushes a batch); otherwise the commit interval closes batches long before this.
    public var batchSize: Int = 5000
    /// How long a transaction stays open collecting batches before it commits.
    public var commitInterval: Duration = .milliseconds(100)
    /// Attempts for an input whose stage fails with a retryable error, before it is
    /// dead-lettered.
    public var retryAttempts: Int = 5
    /// First retry delay; doubles per attempt.
    public var retryBackoff: Duration = .milliseconds(100)
    /// How long an idempotency key is remembered.
    public var idempotencyRetention: Duration = .seconds(7 * 86_400)
    /// `transaction.timeout.ms`: how long the broker keeps a dead worker's transaction open.
    public var transactionTimeout: Duration = .seconds(30)
    /// `session.timeout.ms`: how long a worker that stopped answering (killed, frozen)
    /// keeps its partitions before the group hands them to others.
    public var sessionTimeout: Duration = .seconds(10)
    /// `partition.assignment.strategy` of the stage's consumer: `range` (eager: every
    /// rebalance moves all partitions) by default, because noida-db does not complete
    /// the cooperative protocol's second rebalance and librdkafka 2.0.2's
    /// cooperative-sticky assignor can abort on close; `cooperative-sticky` on a real
    /// Kafka moves only the partitions that change owner. A stateful stage with several
    /// inputs always uses `range`, which keeps partition N of every input together.
    public var assignmentStrategy: String = "range"
    /// Static group membership (`group.instance.id` = ``instanceID``): a restarted
    /// worker takes its partitions back without a rebalance, and a dead one keeps them
    /// until `session.timeout.ms`. Off by default, because a static member does not
    /// leave the group on shutdown either (its partitions wait for the session timeout).
    public var staticMembership = false
    /// `max.poll.interval.ms`: the longest a worker may go without asking for records
    /// (a batch plus a state restore) before it is thrown out of the group; also how
    /// long a rebalance waits for members that do not rejoin.
    public var maxPollInterval: Duration = .seconds(300)
    /// The longest a state restore may take before the worker gives up (and exits).
    public var restoreTimeout: Duration = .seconds(600)
    /// How often librdkafka statistics (consumer lag) are exported; nil disables them.
    public var statisticsInterval: Duration? = .seconds(5)
    /// The health and metrics server's address; port 0 picks a free one, nil disables it.
    public var httpHost: String = "0.0.0.0"
    /// See ``httpHost``.
    public var httpPort: Int? = 9464
    /// Log level.
    public var logLevel: Logger.Level = .info
    /// `otel.exporter.otlp.endpoint` (`OTEL_EXPORTER_OTLP_ENDPOINT`): the OTLP/HTTP
    /// collector the tracing spans go to, as OpenTelemetry's variable of that name means
    /// it (`/v1/traces` is appended). Nil, the default, exports nothing; an `oms` built
    /// without the `OTLP` package trait cannot export and says so at start-up.
    public var otlpEndpoint: String?
    /// `otel.service.name` (`OTEL_SERVICE_NAME`): the service the spans are reported
    /// under; nil lets the command choose (`oms-worker`, `oms-gateway`, …).
    public var serviceName: String?

    /// Defaults, for these brokers.
    public init(brokers: String, instanceID: String = WorkerConfiguration.defaultInstanceID) {
        kafka = KafkaConfiguration(bootstrapServers: brokers)
        self.instanceID = instanceID
    }

    /// The host name: unique per pod or machine, and stable across restarts.
    public static var defaultInstanceID: String {
        ProcessInfo.processInfo.hostName.isEmpty ? "worker" : ProcessInfo.processInfo.hostName
    }

    /// Reads the configuration from environment variables and, if given, a JSON file.
    public static func load(environment: [String: String] = ProcessInfo.processInfo.environment, file: String? = nil) async throws -> WorkerConfiguration {
        try WorkerConfiguration(reader: try await reader(environment: environment, file: file))
    }

    /// The reader over environment variables and, if given, a JSON file (environment
    /// first), for settings beyond this type's, such as a stage's own.
    public static func reader(environment: [String: String] = ProcessInfo.processInfo.environment, file: String? = nil) async throws(ConfigurationError) -> ConfigReader {
        var providers: [any ConfigProvider] = [EnvironmentVariablesProvider(environmentVariables: environment)]
        if let file {
            do {
                providers.append(try await FileProvider<JSONSnapshot>(filePath: FilePath(file)))
            } catch {
                throw ConfigurationError(key: "config file", reason: "cannot read \(file): \(error)")
            }
        }
        return ConfigReader(providers: providers)
    }

    /// Reads the configuration from any swift-configuration reader.
    public init(reader: ConfigReader) throws(ConfigurationError) {
        let keys = KeyReader(reader: reader)
        guard let brokers = try keys.string("kafka.brokers"), !brokers.isEmpty else {
            throw ConfigurationError(key: "kafka.brokers", reason: "required: the bootstrap servers, host:port[,host:port...]")
        }
        self.init(brokers: brokers, instanceID: try keys.string("worker.instance.id") ?? Self.defaultInstanceID)
        var properties: [String: String] = [:]
        for (key, property, secret) in Self.kafkaPropertyKeys {
            if let value = try keys.string(key, secret: secret) { properties[property] = value }
        }
        for entry in try keys.list("kafka.properties") {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty else {
                throw ConfigurationError(key: "kafka.properties", reason: "'\(entry)' is not key=value")
            }
            properties[parts[0]] = parts[1]
        }
        kafka.properties = properties
        if let mode = try keys.string("worker.mode") {
            guard let parsed = DeliveryMode(rawValue: mode) else {
                throw ConfigurationError(key: "worker.mode", reason: "'\(mode)' is not one of \(DeliveryMode.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            self.mode = parsed
        }
        batchSize = try keys.int("worker.batch.size", default: batchSize, in: 1...100_000)
        commitInterval = .milliseconds(try keys.int("worker.commit.interval.ms", default: 100, in: 1...60_000))
        retryAttempts = try keys.int("worker.retry.attempts", default: retryAttempts, in: 1...100)
        retryBackoff = .milliseconds(try keys.int("worker.retry.backoff.ms", default: 100, in: 1...60_000))
        idempotencyRetention = .seconds(try keys.int("worker.idempotency.retention.s", default: 7 * 86_400, in: 1...(365 * 86_400)))
        transactionTimeout = .milliseconds(try keys.int("worker.transaction.timeout.ms", default: 30_000, in: 1_000...900_000))
        sessionTimeout = .milliseconds(try keys.int("worker.session.timeout.ms", default: 10_000, in: 1_000...300_000))
        // librdkafka wants socket.timeout.ms (60 s) above the fetch wait by a second or more.
        let fetchWait = try keys.int("kafka.fetch.wait.ms", default: Int(KafkaConsumerConfiguration.defaultFetchWait.milliseconds), in: 1...30_000)
        kafka.fetchWait = .milliseconds(fetchWait)
        if let strategy = try keys.string("worker.assignment.strategy") {
            guard ["range", "roundrobin", "cooperative-sticky"].contains(strategy) else {
                throw ConfigurationError(key: "worker.assignment.strategy", reason: "'\(strategy)' is not one of range, roundrobin, cooperative-sticky")
            }
            assignmentStrategy = strategy
        }
        staticMembership = try keys.bool("worker.static.membership", default: false)
        maxPollInterval = .milliseconds(try keys.int("worker.max.poll.interval.ms", default: 300_000, in: 1_000...3_600_000))
        restoreTimeout = .seconds(try keys.int("worker.restore.timeout.s", default: 600, in: 1...86_400))
        let statistics = try keys.int("worker.statistics.interval.ms", default: 5_000, in: 0...3_600_000)
        statisticsInterval = statistics == 0 ? nil : .milliseconds(statistics)
        httpHost = try keys.string("http.host") ?? httpHost
        let port = try keys.int("http.port", default: 9464, in: -1...65_535)
        httpPort = port < 0 ? nil : port
        if let level = try keys.string("log.level") {
            guard let parsed = Logger.Level(rawValue: level) else {
                throw ConfigurationError(key: "log.level", reason: "'\(level)' is not one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            logLevel = parsed
        }
        otlpEndpoint = try keys.string("otel.exporter.otlp.endpoint").flatMap { $0.isEmpty ? nil : $0 }
        serviceName = try keys.string("otel.service.name").flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Config keys that map to one librdkafka property each: key, property, secret.
    static let kafkaPropertyKeys: [(String, String, Bool)] = [
        ("kafka.security.protocol", "security.protocol", false),
        ("kafka.sasl.mechanism", "sasl.mechanism", false),
        ("kafka.sasl.username", "sasl.username", false),
        ("kafka.sasl.password", "sasl.password", true),
        ("kafka.ssl.ca.location", "ssl.ca.location", false),
        ("kafka.ssl.certificate.location", "ssl.certificate.location", false),
        ("kafka.ssl.key.location", "ssl.key.location", false),
        ("kafka.ssl.key.password", "ssl.key.password", true),
    ]

    /// The keys ``init(reader:)`` reads besides ``kafkaPropertyKeys``. Keep in step with
    /// it: deployment manifests are checked against this list, so a key missing here
    /// fails those checks rather than being silently ignored in production.
    static let scalarKeys = [
        "kafka.brokers", "kafka.properties", "worker.instance.id", "worker.mode", "worker.batch.size",
        "worker.commit.interval.ms", "worker.retry.attempts", "worker.retry.backoff.ms",
        "worker.idempotency.retention.s", "worker.transaction.timeout.ms", "worker.session.timeout.ms",
        "worker.assignment.strategy", "worker.static.membership", "worker.max.poll.interval.ms",
        "worker.restore.timeout.s", "worker.statistics.interval.ms", "http.host", "http.port", "log.level",
        "otel.exporter.otlp.endpoint", "otel.service.name", "kafka.fetch.wait.ms",
    ]

    /// The environment variables a worker reads (`KAFKA_BROKERS`, `WORKER_BATCH_SIZE`, …):
    /// every key of ``init(reader:)`` and the business rules file (``RulesFile/key``,
    /// `RULES_FILE`). For tooling that checks deployment manifests for misspelt names,
    /// which the worker would otherwise ignore without a word.
    public static let knownEnvironmentVariables: Set<String> = Set(
        (scalarKeys + kafkaPropertyKeys.map { key, _, _ in key } + [RulesFile.key]).map(environmentName(of:))
    )

    /// `worker.batch.size` → `WORKER_BATCH_SIZE`, as swift-configuration's environment
    /// provider maps keys.
    public static func environmentName(of key: String) -> String {
        key.uppercased().map { $0.isLetter || $0.isNumber ? $0 : "_" }.reduce(into: "") { $0.append($1) }
    }
}

/// Typed reads that tell "absent" (use the default) from "present but wrong" (stop);
/// shared by the worker's and the gateway's configuration.
package struct KeyReader {
    let reader: ConfigReader

    package init(reader: ConfigReader) { self.reader = reader }

    package func string(_ key: String, secret: Bool = false) throws(ConfigurationError) -> String? {
        if let value = reader.string(forKey: ConfigKey(key), isSecret: secret) { return value }
        if reader.int(forKey: ConfigKey(key)) != nil || reader.bool(forKey: ConfigKey(key)) != nil {
            throw ConfigurationError(key: key, reason: "must be a string")
        }
        return nil
    }

    package func int(_ key: String, default defaultValue: Int, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
        let value: Int
        if let number = reader.int(forKey: ConfigKey(key)) {
            value = number
        } else if let text = reader.string(forKey: ConfigKey(key)) {
            throw ConfigurationError(key: key, reason: "'\(text)' is not an integer (allowed: \(range.lowerBound)...\(range.upperBound))")
        } else {
            return defaultValue
        }
        guard range.contains(value) else {
            throw ConfigurationError(key: key, reason: "\(value) is out of range \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }

    package func bool(_ key: String, default defaultValue: Bool) throws(ConfigurationError) -> Bool {
        if let value = reader.bool(forKey: ConfigKey(key)) { return value }
        if let text = reader.string(forKey: ConfigKey(key)) {
            throw ConfigurationError(key: key, reason: "'\(text)' is not true or false")
        }
        return defaultValue
    }

    package func list(_ key: String, secret: Bool = false) throws(ConfigurationError) -> [String] {
        if let values = reader.stringArray(forKey: ConfigKey(key), isSecret: secret) { return values.filter { !$0.isEmpty } }
        return try string(key, secret: secret).map { [$0] } ?? []
    }
}

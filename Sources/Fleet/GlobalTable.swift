import Contracts
import Foundation
import Kafka
import Logging
import Synchronization

/// A whole compacted topic held in memory by every instance and kept current: the
/// lookups a stage makes across partitions (e.g. allocation reading every inventory
/// level). Values are the decoded events; tombstones delete.
public final class GlobalTable: Sendable {
    /// The topic.
    public let topic: String
    private let state = Mutex<[String: Event]>([:])
    private let reader: PartitionReader
    private let partitions: Int32
    private let logger: Logger
    private let keep: @Sendable (Event) -> Bool

    /// Connects; ``catchUp(timeout:)`` reads.
    init(topic: String, partitions: Int32, kafka: KafkaConfiguration, logger: Logger, keep: @escaping @Sendable (Event) -> Bool = { _ in true }) throws(KafkaError) {
        self.topic = topic
        self.partitions = partitions
        self.logger = logger
        self.keep = keep
        reader = try PartitionReader(kafka: kafka, name: "\(kafka.clientID).table", batchSize: 10_000, logger: logger)
    }

    /// The current value of `key`.
    public func value(_ key: String) -> Event? { state.withLock { $0[key] } }

    /// How many keys hold a value.
    public var count: Int { state.withLock { $0.count } }

    /// A table of `topic` (which must exist), not yet read; ``catchUp(timeout:)`` reads it
    /// and ``follow()`` keeps it current, e.g. for the gateway's lookups. Only values
    /// `keep` accepts are held (a key whose new value it refuses is dropped).
    public static func open(
        topic: String, kafka: KafkaConfiguration, logger: Logger, keep: @escaping @Sendable (Event) -> Bool = { _ in true }
    ) async throws -> GlobalTable {
        let admin = try KafkaAdmin(configuration: kafka)
        guard let partitions = try await admin.partitionCounts()[topic] else {
            throw KafkaError(code: .unknownTopic, message: "topic \(topic) does not exist")
        }
        return try GlobalTable(topic: topic, partitions: partitions, kafka: kafka, logger: logger, keep: keep)
    }

    /// Every key with its value, at this moment.
    public var values: [String: Event] { state.withLock { $0 } }

    /// Reads until every partition reached its end once, then returns.
    public func catchUp(timeout: Duration) async throws(KafkaError) {
        let parts = (0..<partitions).map { KafkaTopicPartition(topic: topic, partition: $0) }
        _ = try await reader.read(parts, timeout: timeout, keepAssigned: true) { apply($0) }
    }

    /// Follows the topic until the task is cancelled.
    public func follow() async throws(KafkaError) {
        try await reader.follow { apply($0) }
    }

    /// Stops reading.
    public func close() async { await reader.close() }

    /// Reads a compacted topic once to its end and returns the latest value per key: for
    /// commands that look at state (`oms orders show`) without running a stage.
    public static func snapshot(topic: String, kafka: KafkaConfiguration, timeout: Duration = .seconds(60)) async throws -> [String: Event] {
        let table = try await open(topic: topic, kafka: kafka, logger: Logger(label: "oms.snapshot"))
        try await table.catchUp(timeout: timeout)
        let values = table.values
        await table.close()
        return values
    }

    private func apply(_ messages: [KafkaMessage]) {
        var decoded: [(String, Event?)] = []
        decoded.reserveCapacity(messages.count)
        for message in messages {
            guard let key = message.keyString else { continue }
            guard message.value != nil else {
                decoded.append((key, nil))
                continue
            }
            do {
                let event = try Envelope.decode(message.eventRecord).event
                decoded.append((key, keep(event) ? event : nil))
            } catch {
                logger.error("undecodable record in global table", metadata: [
                    "topic": "\(topic)", "partition": "\(message.partition)", "offset": "\(message.offset)", "error": "\(error)",
                ])
            }
        }
        state.withLock { values in
            for (key, value) in decoded { values[key] = value }
        }
    }
}

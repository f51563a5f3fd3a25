import Contracts
import Kafka
import Logging
import Synchronization

/// A whole compacted topic held in memory by every instance and kept current: the
/// lookups a stage makes across partitions (e.g. allocation reading every inventory
/// level). Values are the decoded events; tombstones delete.
public final class GlobalTable: Sendable {
    /// The topic.
    public let topic: String
    private let values = Mutex<[String: Event]>([:])
    private let consumer: KafkaConsumer
    private let logger: Logger

    /// Connects; ``run(untilCaughtUp:)`` reads.
    init(topic: String, partitions: Int32, kafka: KafkaConfiguration, logger: Logger) throws(KafkaError) {
        self.topic = topic
        self.logger = logger
        var kafka = kafka
        kafka.properties["enable.partition.eof"] = "true"
        kafka.properties["receive.message.max.bytes"] = kafka.properties["receive.message.max.bytes"] ?? PartitionReader.receiveLimit
        consumer = try KafkaConsumer(configuration: KafkaConsumerConfiguration(kafka: kafka, groupID: "\(kafka.clientID).table"), logger: logger)
        try consumer.assign((0..<partitions).map { KafkaTopicPartitionOffset(topic: topic, partition: $0, offset: KafkaTopicPartitionOffset.beginning) })
    }

    /// The current value of `key`.
    public func value(_ key: String) -> Event? { values.withLock { $0[key] } }

    /// How many keys hold a value.
    public var count: Int { values.withLock { $0.count } }

    /// Reads until every partition reached its end once, then returns.
    func catchUp(partitions: Int32, timeout: Duration) async throws(KafkaError) {
        var pending = Set(0..<partitions)
        let deadline = ContinuousClock.now + timeout
        for part in pending {
            let marks = try await consumer.watermarks(topic: topic, partition: part)
            if marks.high <= marks.low { pending.remove(part) }
        }
        while !pending.isEmpty {
            guard ContinuousClock.now < deadline else {
                throw KafkaError(code: .timedOut, message: "global table \(topic) did not catch up within \(timeout)")
            }
            for event in try await consumer.poll() {
                if case .endOfPartition(let end) = event { pending.remove(end.partition) }
                apply(event)
            }
        }
    }

    /// Follows the topic until the task is cancelled.
    func follow() async throws(KafkaError) {
        while !Task.isCancelled {
            for event in try await consumer.poll() { apply(event) }
        }
    }

    func close() async { try? await consumer.close() }

    private func apply(_ event: KafkaConsumerEvent) {
        guard case .messages(let messages) = event else { return }
        var decoded: [(String, Event?)] = []
        decoded.reserveCapacity(messages.count)
        for message in messages {
            guard let key = message.keyString else { continue }
            guard message.value != nil else {
                decoded.append((key, nil))
                continue
            }
            do {
                decoded.append((key, try Envelope.decode(message.eventRecord).event))
            } catch {
                logger.error("undecodable record in global table", metadata: [
                    "topic": "\(topic)", "partition": "\(message.partition)", "offset": "\(message.offset)", "error": "\(error)",
                ])
            }
        }
        values.withLock { values in
            for (key, value) in decoded { values[key] = value }
        }
    }
}

extension KafkaMessage {
    /// The record as the contracts see it.
    var eventRecord: EventRecord {
        EventRecord(key: keyString ?? "", headers: headers.map { EventHeader(name: $0.name, value: $0.value ?? []) }, value: value ?? [])
    }
}

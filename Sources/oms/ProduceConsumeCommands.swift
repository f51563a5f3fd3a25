import ArgumentParser
import Foundation
import Kafka
import Logging

struct ProduceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "produce",
        abstract: "Produce records: the given values, or one record per line of standard input.",
        discussion: "Returns after the broker acknowledged every record (acks=all, idempotent)."
    )

    @OptionGroup var client: ClientOptions

    @Option(help: "Topic to produce to.")
    var topic: String

    @Option(help: "Key of every record.")
    var key: String?

    @Option(help: "Split each input line at the first occurrence of this string into key and value.")
    var keyDelimiter: String?

    @Option(name: .customLong("header"), help: ArgumentHelp("A header of every record (repeatable).", valueName: "name=value"))
    var headers: [String] = []

    @Argument(help: "Values to produce; read lines from standard input when none are given.")
    var values: [String] = []

    func run() async throws {
        let headers = try headers.map { header in
            guard let equals = header.firstIndex(of: "=") else { throw ValidationError("--header \(header): expected name=value") }
            return KafkaHeader(name: String(header[..<equals]), string: String(header[header.index(after: equals)...]))
        }
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(kafka: client.kafkaConfiguration()))
        var count = 0
        func send(_ line: String) async throws {
            var recordKey = key
            var value = line
            if let keyDelimiter, let range = line.range(of: keyDelimiter) {
                recordKey = String(line[..<range.lowerBound])
                value = String(line[range.upperBound...])
            }
            try await producer.enqueue(KafkaProducerMessage(topic: topic, key: recordKey, value: value, headers: headers))
            count += 1
        }
        if values.isEmpty {
            while let line = readLine() { try await send(line) }
        } else {
            for value in values { try await send(value) }
        }
        try await producer.close()
        print("produced \(count) record(s) to \(topic)")
    }
}

struct ConsumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consume",
        abstract: "Consume records and print partition, offset, key, headers and value.",
        discussion: "Commits what it printed, so a second run with the same --group goes on where the first stopped."
    )

    @OptionGroup var client: ClientOptions

    @Option(name: .customLong("topic"), help: "Topic to consume (repeatable).")
    var topics: [String]

    @Option(help: "Consumer group; a fresh one per run by default.")
    var group: String?

    @Option(help: "Stop after this many records.")
    var count: Int?

    @Option(help: "Stop after this many seconds without a record.")
    var idleTimeout: Double = 5

    @Flag(help: "Start at the end of the partitions instead of the beginning (for a new group).")
    var latest = false

    func run() async throws {
        var configuration = KafkaConsumerConfiguration(
            kafka: try client.kafkaConfiguration(),
            groupID: group ?? "oms-consume-\(UUID().uuidString.prefix(8))"
        )
        configuration.offsetReset = latest ? .latest : .earliest
        let consumer = try KafkaConsumer(configuration: configuration)
        try consumer.subscribe(topics: topics)
        var seen = 0
        var lastRecord = ContinuousClock.now
        // poll() rather than events(): it comes back empty when nothing arrives, so the
        // idle timeout also ends a wait on a topic that stays empty.
        events: while true {
            for event in try await consumer.poll() {
                switch event {
                case .messages(let messages):
                    for (index, message) in messages.enumerated() {
                        print(Self.format(message))
                        seen += 1
                        if let count, seen >= count {
                            try await consumer.commit(Self.commitOffsets(messages[...index]))
                            break events
                        }
                    }
                    try await consumer.commit(Self.commitOffsets(messages[...]))
                    lastRecord = .now
                case .assigned(let parts), .revoked(let parts), .lost(let parts):
                    FileHandle.standardError.write(Data("# \(event.name): \(parts.map(\.description).joined(separator: " "))\n".utf8))
                case .endOfPartition:
                    break
                }
            }
            if ContinuousClock.now - lastRecord > .seconds(idleTimeout) { break }
        }
        try await consumer.close()
        FileHandle.standardError.write(Data("# consumed \(seen) record(s)\n".utf8))
    }

    /// The highest next offset per partition.
    static func commitOffsets(_ messages: ArraySlice<KafkaMessage>) -> [KafkaTopicPartitionOffset] {
        var next: [KafkaTopicPartition: Int64] = [:]
        for message in messages {
            let part = KafkaTopicPartition(topic: message.topic, partition: message.partition)
            next[part] = max(next[part] ?? 0, message.offset + 1)
        }
        return next.map { KafkaTopicPartitionOffset(topic: $0.key.topic, partition: $0.key.partition, offset: $0.value) }
    }

    static func format(_ message: KafkaMessage) -> String {
        let headers = message.headers.map { "\($0.name)=\($0.stringValue ?? "<\($0.value?.count ?? 0) bytes>")" }.joined(separator: ",")
        let key = message.keyString ?? message.key.map { "<\($0.count) bytes>" } ?? "<null>"
        let value = message.valueString ?? message.value.map { "<\($0.count) bytes>" } ?? "<null>"
        return "\(message.topic)[\(message.partition)]@\(message.offset)\tkey=\(key)\theaders=\(headers)\t\(value)"
    }
}

extension KafkaConsumerEvent {
    var name: String {
        switch self {
        case .messages: "messages"
        case .assigned: "assigned"
        case .revoked: "revoked"
        case .lost: "lost"
        case .endOfPartition: "end"
        }
    }
}

import ArgumentParser
import Foundation
import Kafka
import Logging

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Start an embedded Kafka cluster and run orders through it, printing what happens.",
        discussion: "For now a Kafka round trip: order events are produced with keys and headers, read back by a consumer group in batches, and their offsets committed."
    )

    @Option(help: "Number of order events to send.")
    var orders = 1000

    @Option(help: "Partitions of the demo topic.")
    var partitions: Int32 = 6

    func run() async throws {
        var logger = Logger(label: "oms.demo")
        logger.logLevel = .warning
        let topic = "oms.demo.orders"
        let cluster = try EmbeddedKafka(brokers: 3, logger: logger)
        try cluster.createTopic(topic, partitions: partitions, replicationFactor: 3)
        print("1. embedded Kafka: 3 brokers at \(cluster.bootstrapServers); topic \(topic) with \(partitions) partitions")

        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(kafka: cluster.configuration), logger: logger)
        let clock = ContinuousClock()
        let first = try await producer.send(Self.order(0, topic: topic))
        print("2. sent order-00000 and waited for the acknowledgement: stored at \(first.topic)[\(first.partition)]@\(first.offset)")
        let produceTime = try await clock.measure {
            for index in 1..<max(orders, 1) { try await producer.enqueue(Self.order(index, topic: topic)) }
            try await producer.flush()
        }
        print("3. enqueued \(max(orders, 1) - 1) more orders and flushed in \(produceTime.formatted(.units(allowed: [.milliseconds])))")
        try await producer.close()

        var configuration = KafkaConsumerConfiguration(kafka: cluster.configuration, groupID: "oms-demo")
        configuration.maxBatchSize = 500
        let consumer = try KafkaConsumer(configuration: configuration, logger: logger)
        try consumer.subscribe(topics: [topic])
        var received = 0
        var batches = 0
        var perPartition: [Int32: Int] = [:]
        var sample: KafkaMessage?
        let consumeTime = try await clock.measure {
            for try await event in consumer.events() {
                switch event {
                case .assigned(let parts):
                    print("4. the consumer group assigned \(parts.count) partitions to this member")
                case .messages(let messages):
                    batches += 1
                    received += messages.count
                    sample = sample ?? messages.first
                    for message in messages { perPartition[message.partition, default: 0] += 1 }
                    try await consumer.commit(ConsumeCommand.commitOffsets(messages[...]))
                case .revoked, .lost, .endOfPartition:
                    break
                }
                if received >= max(orders, 1) { break }
            }
        }
        print("5. consumed \(received) orders in \(batches) batches in \(consumeTime.formatted(.units(allowed: [.milliseconds]))), committing after each batch")
        print("   per partition: \(perPartition.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: " "))")
        if let sample {
            print("   e.g. \(ConsumeCommand.format(sample))")
        }
        let committed = try await consumer.committed((0..<partitions).map { KafkaTopicPartition(topic: topic, partition: $0) })
        let total = committed.reduce(Int64(0)) { $0 + max($1.offset, 0) }
        print("6. committed offsets of group oms-demo sum to \(total) (= \(received) orders read)")
        try await consumer.close()
        guard received == max(orders, 1), total == Int64(received) else {
            throw ValidationError("round trip incomplete: sent \(max(orders, 1)), received \(received), committed \(total)")
        }
        print("done: every order sent was received once and committed.")
    }

    static func order(_ index: Int, topic: String) -> KafkaProducerMessage {
        let id = String(format: "order-%05d", index)
        let value = #"{"orderId":"\#(id)","channel":"demo","lines":[{"sku":"SKU-\#(index % 17)","quantity":\#(1 + index % 3)}],"total":{"minorUnits":\#(1999 + index),"currency":"EUR"}}"#
        return KafkaProducerMessage(
            topic: topic, key: id, value: value,
            headers: [
                KafkaHeader(name: "ce_type", string: "oms.demo.order.v1"),
                KafkaHeader(name: "ce_id", string: UUID().uuidString.lowercased()),
            ]
        )
    }
}

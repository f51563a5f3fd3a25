import Foundation
import Kafka
import OrderFleetTesting
import Synchronization
import Testing

@Suite("Producer and consumer on a real broker")
struct ProducerConsumerTests {
    @Test("a record keeps its key, headers and value through the broker")
    func roundTrip() async throws {
        let cluster = try TestCluster.make(.basic)
        let topic = try await cluster.createTopic("roundtrip")
        let producer = try cluster.producer()
        let headers = [
            KafkaHeader(name: "ce_type", string: "oms.order.placed.v1"),
            KafkaHeader(name: "binary", value: [0, 255, 7]),
            KafkaHeader(name: "empty", value: nil),
        ]
        let report = try await producer.send(KafkaProducerMessage(topic: topic, key: "order-1", value: #"{"total":1999}"#, headers: headers))
        #expect(report.topic == topic)
        #expect(report.offset >= 0)
        try await producer.enqueue(KafkaProducerMessage(topic: topic, key: "order-2", value: nil as String?))
        try await producer.close()

        let consumer = try cluster.consumer(group: TestCluster.uniqueName("roundtrip"))
        try consumer.subscribe(topics: [topic])
        let messages = try await collect(consumer) { seen, _ in seen.count >= 2 }
        try await consumer.close()

        let first = try #require(messages.first { $0.keyString == "order-1" })
        #expect(first.partition == report.partition)
        #expect(first.offset == report.offset)
        #expect(first.valueString == #"{"total":1999}"#)
        #expect(first.headers == headers)
        #expect(first.timestampMilliseconds != nil)
        let tombstone = try #require(messages.first { $0.keyString == "order-2" })
        #expect(tombstone.value == nil)
        #expect(messages.count == 2)
    }

    @Test("a delivery the broker refuses surfaces as an error, awaited or enqueued",
          .enabled(if: ProcessInfo.processInfo.environment["KAFKA_BROKERS"] == nil, "needs the mock cluster's error injection"))
    func deliveryFailure() async throws {
        let cluster = try TestCluster.make(.basic)
        let embedded = try #require(cluster.embedded)
        let topic = try await cluster.createTopic("refused", partitions: 1)
        let producer = try cluster.producer()
        // Warm up so that the injected error hits a Produce request, not the metadata path.
        _ = try await producer.send(KafkaProducerMessage(topic: topic, key: "warm", value: "up"))

        // A per-record refusal: the broker rejects this batch only.
        embedded.injectErrors([.messageTooLarge], into: .produce)
        let awaited = await #expect(throws: KafkaError.self) {
            try await producer.send(KafkaProducerMessage(topic: topic, key: "k", value: "v"))
        }
        #expect(awaited?.code == .messageTooLarge)
        #expect(awaited?.message.contains(topic) == true)

        embedded.injectErrors([.messageTooLarge], into: .produce)
        try await producer.enqueue(KafkaProducerMessage(topic: topic, key: "k", value: "v"))
        let flushed = await #expect(throws: KafkaError.self) { try await producer.flush() }
        #expect(flushed?.code == .messageTooLarge)
        #expect(flushed?.message.contains("1 enqueued record(s) failed") == true)
        #expect(producer.enqueuedDeliveries.failed == 1)

        // The producer goes on once the broker accepts again.
        let report = try await producer.send(KafkaProducerMessage(topic: topic, key: "k", value: "after"))
        #expect(report.offset >= 1)
        try await producer.flush()
    }

    @Test("a batch enqueue delivers every record once, in order per partition, across topics")
    func batchEnqueue() async throws {
        let cluster = try TestCluster.make(.basic)
        let first = try await cluster.createTopic("batch-a", partitions: 3)
        let second = try await cluster.createTopic("batch-b", partitions: 1)
        let producer = try cluster.producer()
        let header = KafkaHeader(name: "ce_type", string: "oms.test.v1")
        // Runs of one topic broken by the other, so that the cached topic handle changes.
        var batch: [KafkaProducerMessage] = []
        for index in 0..<300 {
            let topic = (index / 50) % 2 == 0 ? first : second
            batch.append(KafkaProducerMessage(topic: topic, key: "key-\(index % 7)", value: "\(index)", headers: index % 3 == 0 ? [header] : []))
        }
        try await producer.enqueue(contentsOf: batch)
        try await producer.enqueue(contentsOf: [])
        try await producer.flush()
        #expect(producer.enqueuedDeliveries == (delivered: 300, failed: 0))
        try await producer.close()

        let consumer = try cluster.consumer(group: TestCluster.uniqueName("batch"))
        try await consumer.assign(
            (0..<3).map { KafkaTopicPartitionOffset(topic: first, partition: $0, offset: KafkaTopicPartitionOffset.beginning) }
                + [KafkaTopicPartitionOffset(topic: second, partition: 0, offset: KafkaTopicPartitionOffset.beginning)]
        )
        let messages = try await collect(consumer) { seen, _ in seen.count >= 300 }
        try await consumer.close()

        #expect(messages.count == 300)
        let values = messages.compactMap { $0.valueString.flatMap(Int.init) }
        #expect(Set(values) == Set(0..<300))
        // Same key, same partition: its records come back in the order they were sent.
        for key in 0..<7 {
            for topic in [first, second] {
                let sent = (0..<300).filter { $0 % 7 == key && (($0 / 50) % 2 == 0) == (topic == first) }
                let read = messages.filter { $0.topic == topic && $0.keyString == "key-\(key)" }
                #expect(read.compactMap { $0.valueString.flatMap(Int.init) } == sent)
                #expect(Set(read.map(\.partition)).count <= 1)
            }
        }
        for message in messages {
            let index = try #require(message.valueString.flatMap(Int.init))
            #expect(message.headers == (index % 3 == 0 ? [header] : []))
            #expect(message.key == Array("key-\(index % 7)".utf8))
        }
    }

    @Test("a batch enqueue on a closed producer throws and enqueues nothing")
    func batchEnqueueClosed() async throws {
        let cluster = try TestCluster.make(.basic)
        let topic = try await cluster.createTopic("batch-closed", partitions: 1)
        let producer = try cluster.producer()
        try await producer.close()
        let error = await #expect(throws: KafkaError.self) {
            try await producer.enqueue(contentsOf: [KafkaProducerMessage(topic: topic, key: "k", value: "v")])
        }
        #expect(error?.code == .state)
        #expect(producer.enqueuedDeliveries == (delivered: 0, failed: 0))
    }

    @Test("pause stops delivery until resume; seek re-reads from an offset")
    func pauseResumeSeek() async throws {
        let cluster = try TestCluster.make(.basic)
        let topic = try await cluster.createTopic("seek", partitions: 1)
        try await cluster.produce(topic, count: 10)
        let consumer = try cluster.consumer(group: TestCluster.uniqueName("seek"))
        let partition = KafkaTopicPartition(topic: topic, partition: 0)
        try await consumer.assign([KafkaTopicPartitionOffset(topic: topic, partition: 0, offset: KafkaTopicPartitionOffset.beginning)])
        #expect(try consumer.assignment() == [partition])

        let all = try await collect(consumer) { seen, _ in seen.count >= 10 }
        #expect(all.map(\.offset) == Array(0..<10))

        try await consumer.seek([KafkaTopicPartitionOffset(topic: topic, partition: 0, offset: 5)])
        let again = try await collect(consumer) { seen, _ in seen.count >= 5 }
        #expect(again.map(\.offset) == Array(5..<10))
        #expect(again.map(\.valueString) == (5..<10).map { "value-\($0)" })

        try await consumer.pause([partition])
        try await cluster.produce(topic, count: 5, prefix: "late-")
        let whilePaused = try await collect(consumer, timeout: .seconds(2)) { _, _ in false }
        #expect(whilePaused.isEmpty)

        try await consumer.resume([partition])
        let resumed = try await collect(consumer) { seen, _ in seen.count >= 5 }
        #expect(resumed.map(\.offset) == Array(10..<15))
        #expect(resumed.first?.keyString == "late-key-0")

        let (low, high) = try await consumer.watermarks(topic: topic, partition: 0)
        #expect(low == 0)
        #expect(high == 15)
        try await consumer.close()
    }

    @Test("two members split the partitions; when one leaves the other takes over from the committed offsets")
    func groupRebalance() async throws {
        let cluster = try TestCluster.make(.basic)
        let topic = try await cluster.createTopic("group", partitions: 4)
        let group = TestCluster.uniqueName("group")
        let first = try GroupMember(cluster, group: group, topic: topic)
        let second = try GroupMember(cluster, group: group, topic: topic)

        try await eventually("both members own 2 partitions") { first.assignment.count == 2 && second.assignment.count == 2 }
        #expect(first.assignment.isDisjoint(with: second.assignment))

        try await cluster.produce(topic, count: 200, prefix: "a-")
        try await eventually("200 records consumed") { first.values.count + second.values.count >= 200 }
        #expect(!first.values.isEmpty)
        #expect(!second.values.isEmpty)

        try await second.stop()
        // close() revokes inside the rebalance callback; the hook sees it.
        #expect(second.hookEvents.contains { if case .revoked(let parts) = $0 { parts.count == 2 } else { false } })
        try await eventually("the remaining member owns all 4 partitions") { first.assignment.count == 4 }

        try await cluster.produce(topic, count: 200, prefix: "b-")
        try await eventually("400 records consumed") { first.values.count + second.values.count >= 400 }
        try await Task.sleep(for: .milliseconds(500))  // a duplicate would show up now
        try await first.stop()

        let all = first.values + second.values
        #expect(all.count == 400)
        #expect(Set(all).count == 400)
        #expect(Set(all) == Set((0..<200).map { "a-value-\($0)" } + (0..<200).map { "b-value-\($0)" }))
    }
}

/// A consumer group member that consumes in a task, committing after each batch.
final class GroupMember: Sendable {
    private struct State {
        var assignment: Set<KafkaTopicPartition> = []
        var values: [String] = []
        var hookEvents: [KafkaConsumerEvent] = []
    }

    private let consumer: KafkaConsumer
    private let state: Locked<State>
    private let task = Locked<Task<Void, any Error>?>(nil)

    init(_ cluster: TestCluster, group: String, topic: String) throws {
        let state = Locked(State())
        self.state = state
        self.consumer = try cluster.consumer(group: group) { [state] event in
            state.withLock { $0.hookEvents.append(event) }
        }
        let consumer = consumer
        try consumer.subscribe(topics: [topic])
        let loop = Task { [consumer, state] in
            for try await event in consumer.events() {
                switch event {
                case .assigned(let parts):
                    state.withLock { $0.assignment.formUnion(parts) }
                case .revoked(let parts), .lost(let parts):
                    state.withLock { $0.assignment.subtract(parts) }
                case .messages(let batch):
                    try await consumer.commit(batch.map(\.nextOffset))
                    state.withLock { $0.values.append(contentsOf: batch.compactMap(\.valueString)) }
                case .endOfPartition:
                    break
                }
            }
        }
        task.withLock { $0 = loop }
    }

    var assignment: Set<KafkaTopicPartition> { state.withLock { $0.assignment } }
    var values: [String] { state.withLock { $0.values } }
    /// What the synchronous rebalance hook saw, in order.
    var hookEvents: [KafkaConsumerEvent] { state.withLock { $0.hookEvents } }

    /// Leaves the group (its partitions go to the other members at once).
    func stop() async throws {
        let loop = task.withLock { $0 }
        try await consumer.close()
        try await loop?.value
    }
}

/// Waits until `condition` holds, failing the test after `timeout`.
func eventually(_ what: String, timeout: Duration = .seconds(45), _ condition: () -> Bool) async throws {
    guard try await waitUntil(timeout: timeout, interval: .milliseconds(50), condition) else {
        Issue.record("timed out waiting until \(what)")
        throw CancellationError()
    }
}

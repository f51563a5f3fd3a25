import Foundation
import Kafka
import OrderFleetTesting
import Testing

/// Features the mock cluster lacks; these run on noida-db (or `KAFKA_BROKERS`).
@Suite("Transactions and admin on a full broker")
struct TransactionAdminTests {
    @Test("a committed transaction is visible to read_committed readers, an aborted one is not")
    func commitAndAbort() async throws {
        let cluster = try TestCluster.make(.full)
        let topic = try await cluster.createTopic("txn", partitions: 2)
        let producer = try cluster.producer(transactionalID: TestCluster.uniqueName("txn"))
        try await producer.initTransactions()

        try producer.beginTransaction()
        for index in 0..<5 { try await producer.enqueue(KafkaProducerMessage(topic: topic, key: "k\(index)", value: "committed-\(index)")) }
        try await producer.commitTransaction()

        try producer.beginTransaction()
        for index in 0..<5 { try await producer.enqueue(KafkaProducerMessage(topic: topic, key: "k\(index)", value: "aborted-\(index)")) }
        try await producer.flush()  // the records reach the log before the abort marker
        try await producer.abortTransaction()

        // A committed marker after the aborted records: a reader that sees it has seen
        // everything before it.
        try producer.beginTransaction()
        for partition in Int32(0)..<2 { try await producer.enqueue(KafkaProducerMessage(topic: topic, partition: partition, key: "end", value: "end")) }
        try await producer.commitTransaction()
        try await producer.close()

        let committedReader = try cluster.consumer(group: TestCluster.uniqueName("rc"), isolation: .readCommitted)
        try committedReader.subscribe(topics: [topic])
        let committed = try await collect(committedReader) { seen, _ in seen.filter { $0.valueString == "end" }.count == 2 }
        try await committedReader.close()
        let committedValues = committed.compactMap(\.valueString).filter { $0 != "end" }
        #expect(committedValues.sorted() == (0..<5).map { "committed-\($0)" })

        let uncommittedReader = try cluster.consumer(group: TestCluster.uniqueName("ru"), isolation: .readUncommitted)
        try uncommittedReader.subscribe(topics: [topic])
        let everything = try await collect(uncommittedReader) { seen, _ in seen.filter { $0.valueString == "end" }.count == 2 }
        try await uncommittedReader.close()
        #expect(everything.compactMap(\.valueString).filter { $0.hasPrefix("aborted-") }.count == 5)
    }

    @Test("offsets sent in a transaction become the group's committed offsets when it commits")
    func transactionalOffsets() async throws {
        let cluster = try TestCluster.make(.full)
        let input = try await cluster.createTopic("txn-in", partitions: 3)
        let output = try await cluster.createTopic("txn-out", partitions: 3)
        try await cluster.produce(input, count: 30)
        let group = TestCluster.uniqueName("txn-group")
        let consumer = try cluster.consumer(group: group)
        try consumer.subscribe(topics: [input])
        let messages = try await collect(consumer) { seen, _ in seen.count >= 30 }
        #expect(messages.count == 30)

        let producer = try cluster.producer(transactionalID: TestCluster.uniqueName("txn-offsets"))
        try await producer.initTransactions()
        try producer.beginTransaction()
        for message in messages {
            try await producer.enqueue(KafkaProducerMessage(topic: output, key: message.key, value: message.value.map { $0 + Array("!".utf8) }))
        }
        let next = Dictionary(grouping: messages, by: \.partition).map { partition, records in
            KafkaTopicPartitionOffset(topic: input, partition: partition, offset: records.map(\.offset).max()! + 1)
        }
        try await producer.sendOffsetsToTransaction(next, groupMetadata: try consumer.groupMetadata())
        try await producer.commitTransaction()
        try await producer.close()

        let committed = try await consumer.committed((0..<3).map { KafkaTopicPartition(topic: input, partition: $0) })
        #expect(Set(committed) == Set(next))
        try await consumer.close()

        let admin = try KafkaAdmin(configuration: cluster.configuration, logger: TestCluster.logger)
        let lag = try await admin.lag(group: group, topics: [input])
        #expect(lag.count == 3)
        #expect(lag.allSatisfy { $0.lag == 0 })
        #expect(lag.map { $0.committed ?? -1 }.reduce(0, +) == 30)
        #expect(try await admin.listGroups().contains { $0.groupID == group })
    }

    @Test("a second producer with the same transactional.id fences the first, which gets a fatal error")
    func fencedProducer() async throws {
        let cluster = try TestCluster.make(.full)
        let topic = try await cluster.createTopic("fenced", partitions: 1)
        let transactionalID = TestCluster.uniqueName("fenced")
        let old = try cluster.producer(transactionalID: transactionalID)
        try await old.initTransactions()
        let new = try cluster.producer(transactionalID: transactionalID)
        try await new.initTransactions()

        let error = await #expect(throws: KafkaError.self) {
            try old.beginTransaction()
            try await old.enqueue(KafkaProducerMessage(topic: topic, key: "k", value: "from the zombie"))
            try await old.commitTransaction()
        }
        #expect(error?.isFatal == true)
        #expect(old.fatalError != nil)

        // The new producer works.
        try new.beginTransaction()
        try await new.enqueue(KafkaProducerMessage(topic: topic, key: "k", value: "from the new one"))
        try await new.commitTransaction()
        try await new.close()
    }

    @Test("create topic is idempotent and names the conflicting setting")
    func createTopicIdempotent() async throws {
        let cluster = try TestCluster.make(.full)
        let admin = try KafkaAdmin(configuration: cluster.configuration, logger: TestCluster.logger)
        let name = TestCluster.uniqueName("admin")
        let spec = KafkaTopicSpec(name: name, partitions: 3, replicationFactor: 1, configs: ["cleanup.policy": "compact", "retention.ms": "604800000"])
        #expect(try await admin.createTopic(spec) == .created)
        #expect(try await admin.createTopic(spec) == .alreadyExists)

        let described = try await admin.describeTopic(name)
        #expect(described.partitions == 3)
        #expect(described.replicationFactor == 1)
        #expect(described.configs["cleanup.policy"] == "compact")
        #expect(described.configs["retention.ms"] == "604800000")
        #expect(try await admin.listTopics().contains(name))

        var morePartitions = spec
        morePartitions.partitions = 6
        let partitionConflict = await #expect(throws: KafkaError.self) { try await admin.createTopic(morePartitions) }
        #expect(partitionConflict?.code == .topicConfigConflict)
        #expect(partitionConflict?.message.contains("partitions=3, wanted partitions=6") == true)

        var otherPolicy = spec
        otherPolicy.configs["cleanup.policy"] = "delete"
        let policyConflict = await #expect(throws: KafkaError.self) { try await admin.createTopic(otherPolicy) }
        #expect(policyConflict?.message.contains("cleanup.policy=compact, wanted cleanup.policy=delete") == true)

        let missing = await #expect(throws: KafkaError.self) { try await admin.describeTopic(TestCluster.uniqueName("missing")) }
        #expect(missing?.code == .unknownTopicOrPartition)
    }
}

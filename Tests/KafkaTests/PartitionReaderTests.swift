import Dispatch
import Fleet
import Foundation
import Kafka
import OrderFleetTesting
import Synchronization
import Testing

@Suite("restoring state partitions", .serialized)
struct PartitionReaderTests {
    /// The embedded broker keeps ~5 MiB per partition, as a topic cut by retention would:
    /// records written while a restore waits push the log's start past its position.
    @Test("a restore whose next records are deleted before it reads them fails, naming the partition, instead of skipping them")
    func restoreNoticesDeletedRecords() async throws {
        let cluster = try TestCluster.make(.basic)
        guard cluster.embedded != nil else { return }  // a real broker's retention is not ours to trigger
        let topic = try await cluster.createTopic("state", partitions: 1)
        let producer = try cluster.producer()
        let value = [UInt8](repeating: 0x61, count: 100_000)
        func write(_ range: Range<Int>) async throws {
            for index in range {
                try await producer.enqueue(KafkaProducerMessage(topic: topic, partition: 0, key: Array("k\(index)".utf8), value: value))
            }
            try await producer.flush()
        }
        try await write(0..<30)

        var kafka = cluster.configuration
        // Fetch little ahead, so that the reader's next fetch is still to come while it waits.
        kafka.properties["queued.max.messages.kbytes"] = "300"
        kafka.properties["max.partition.fetch.bytes"] = "200000"
        let reader = try PartitionReader(kafka: kafka, name: "test.restore", batchSize: 1, logger: TestCluster.logger, restoring: true)
        let written = DispatchSemaphore(value: 0)
        let started = Atomic<Bool>(false)
        let writer = Task.detached {
            while !started.load(ordering: .acquiring) { try await Task.sleep(for: .milliseconds(10)) }
            // 7 MB more: the first 30 records and those after them are cut away.
            try await write(30..<100)
            written.signal()
        }
        var read = 0
        let outcome: Result<Int, KafkaError>
        do {
            outcome = .success(try await reader.read([KafkaTopicPartition(topic: topic, partition: 0)], timeout: .seconds(60)) { messages in
                read += messages.count
                if !started.load(ordering: .acquiring) {
                    started.store(true, ordering: .releasing)
                    _ = written.wait(timeout: .now() + 60)
                }
            })
        } catch {
            outcome = .failure(error)
        }
        try await writer.value
        await reader.close()
        try await producer.close()
        guard case .failure(let error) = outcome else {
            Issue.record("the restore read \(read) records and ended as if nothing was missing")
            return
        }
        #expect(error.code == .autoOffsetReset)
        #expect(error.message.contains("\(topic) [0]"), "\(error.message)")
        #expect(error.message.contains("compacted"), "\(error.message)")
        #expect(read < 100)
    }
}

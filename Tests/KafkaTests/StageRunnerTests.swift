import Contracts
import Fleet
import Foundation
import Kafka
import OrderFleetTesting
import ReferenceStages
import Testing
import Workers

/// The stage runtime in-process against noida-db (transactions, read_committed).
@Suite("stage runner", .serialized)
struct StageRunnerTests {
    @Test("pass-through: every input once, duplicates skipped, poison and malformed records dead-lettered, the rest goes on")
    func passThroughExactlyOnce() async throws {
        let fixture = try await FleetFixture.make()
        let stage = PassThroughStage(name: TestCluster.uniqueName("pass"), input: fixture.input, output: fixture.output)
        var ids = try await fixture.produceEvents(1500)
        // The same event published twice (a producer retry from outside): one outcome.
        let again = FleetFixture.envelope(42, id: ids[42])
        let producer = try fixture.cluster.producer()
        try await producer.enqueue(try KafkaProducerMessage(again, topic: fixture.input))
        // Malformed: no CloudEvents headers; and valid headers with a broken payload.
        try await producer.enqueue(KafkaProducerMessage(topic: fixture.input, key: "key-1", value: "not an event"))
        var broken = try KafkaProducerMessage(FleetFixture.envelope(1), topic: fixture.input)
        broken.value = Array("{\"report\":".utf8)
        try await producer.enqueue(broken)
        // Rejected by the stage itself.
        let poison = FleetFixture.envelope(3, subjectPrefix: "poison")
        try await producer.enqueue(try KafkaProducerMessage(poison, topic: fixture.input))
        try await producer.close()
        ids += try await fixture.produceEvents(500)

        let runner = StageRunner(stage: stage, configuration: fixture.configuration(), logger: TestCluster.logger)
        let workers = RunningWorkers([runner])
        let done = try await waitUntil {
            FleetFixture.causations(try await fixture.readAll(fixture.output)).count >= ids.count
        }
        #expect(done)
        #expect(runner.status.isReady)
        try await workers.stop()
        #expect(runner.status.phase == .stopped)

        let outputs = try await fixture.readAll(fixture.output)
        let causes = FleetFixture.causations(outputs)
        #expect(causes.count == ids.count, "one output per distinct input")
        #expect(Set(ids).subtracting(causes).isEmpty, "no lost input")
        #expect(Set(outputs.compactMap { $0.header(EnvelopeHeader.id)?.stringValue }).count == outputs.count, "output ids are unique")

        let letters = try await fixture.readAll(TopicCatalog.deadLetterTopic, partitions: 6).filter { $0.header(DeadLetterHeader.stage)?.stringValue == stage.name }
        #expect(letters.count == 3)
        for letter in letters {
            #expect(letter.header(DeadLetterHeader.topic)?.stringValue == fixture.input)
            #expect(letter.header(DeadLetterHeader.attempts)?.stringValue == "1")
            #expect(Int64(letter.header(DeadLetterHeader.offset)?.stringValue ?? "") != nil)
            #expect(letter.header(DeadLetterHeader.time)?.stringValue != nil)
            let original = try DeadLetters.original(of: letter)
            #expect(original.topic == fixture.input)
        }
        let errors = letters.compactMap { $0.header(DeadLetterHeader.error)?.stringValue }
        #expect(errors.contains { $0.contains("poison") }, "\(errors)")

        let keys = try await fixture.readAll(TopicCatalog.idempotencyTopic, partitions: 6).compactMap(\.keyString).filter { $0.hasPrefix("\(stage.name)/") }
        // At most one key per input, each written once. Not "exactly": noida-db drops a
        // producer's committed batches from read_committed fetches that start past one of its
        // abort markers (docs/ARCHITECTURE.md, "Brokers"), and this test aborts on purpose, so
        // the read-back can miss a few keys that the broker holds (seen: 1,996 of 2,000, once
        // in five runs under load). The outputs above are the effect, checked exactly.
        #expect(keys.count <= ids.count && keys.count >= ids.count * 99 / 100, "\(keys.count) keys for \(ids.count) inputs")
        #expect(Set(keys).count == keys.count, "each idempotency key written once")
    }

    @Test("a restore waits for another producer's transaction open before the keys it must read: a re-sent input stays a duplicate")
    func restoreReadsPastOpenTransactions() async throws {
        let fixture = try await FleetFixture.make()
        let stage = PassThroughStage(name: TestCluster.uniqueName("behind"), input: fixture.input, output: fixture.output)
        let first = StageRunner(stage: stage, configuration: fixture.configuration(instance: "a"), logger: TestCluster.logger)
        let running = RunningWorkers([first])
        #expect(try await waitUntil { first.status.isReady })
        // Another stage's transaction, open on every partition of the shared key topic before
        // this stage writes a key there: a read_committed read stops where it starts.
        let other = try fixture.cluster.producer(transactionalID: TestCluster.uniqueName("other"))
        try await other.initTransactions()
        try other.beginTransaction()
        for partition in Int32(0)..<6 {
            try await other.enqueue(KafkaProducerMessage(topic: TopicCatalog.idempotencyTopic, partition: partition, key: "other/\(partition)", value: "{}"))
        }
        try await other.flush()

        var ids = try await fixture.produceEvents(200)
        #expect(try await waitUntil { Set(FleetFixture.causations(try await fixture.readAll(fixture.output))).count >= ids.count })
        try await running.stop()

        // Inputs re-sent (a channel's retry): duplicates only if the restarted runner knows
        // their keys, which stand behind the open transaction until it ends.
        let producer = try fixture.cluster.producer()
        for index in 0..<20 {
            try await producer.enqueue(try KafkaProducerMessage(FleetFixture.envelope(index, id: ids[index]), topic: fixture.input))
        }
        try await producer.close()
        ids += try await fixture.produceEvents(300)
        let commit = Task {
            try await Task.sleep(for: .seconds(3))
            try await other.commitTransaction()
            try await other.close()
        }
        let second = StageRunner(stage: stage, configuration: fixture.configuration(instance: "a"), logger: TestCluster.logger)
        let restarted = RunningWorkers([second])
        #expect(try await waitUntil { Set(FleetFixture.causations(try await fixture.readAll(fixture.output))).count >= ids.count })
        try await restarted.stop()
        try await commit.value

        let causes = FleetFixture.causations(try await fixture.readAll(fixture.output))
        #expect(causes.count == ids.count, "one output per distinct input, none for the re-sent ones")
        #expect(Set(causes) == Set(ids))
    }

    @Test("idempotency keys past their retention are tombstoned and forgotten")
    func idempotencyRetention() async throws {
        let fixture = try await FleetFixture.make()
        let stage = PassThroughStage(name: TestCluster.uniqueName("expire"), input: fixture.input, output: fixture.output)
        var configuration = fixture.configuration()
        configuration.idempotencyRetention = .seconds(1)
        let first = try await fixture.produceEvents(20)
        let workers = RunningWorkers([StageRunner(stage: stage, configuration: configuration, logger: TestCluster.logger)])
        #expect(try await waitUntil { try await fixture.readAll(fixture.output).count >= 20 })
        try await Task.sleep(for: .seconds(2))
        // A later transaction sweeps the expired keys.
        _ = try await fixture.produceEvents(1)
        let prefix = "\(stage.name)/"
        #expect(try await waitUntil {
            try await fixture.readAll(TopicCatalog.idempotencyTopic, partitions: 6).filter { $0.value == nil && ($0.keyString ?? "").hasPrefix(prefix) }.count >= 20
        })
        try await workers.stop()
        let tombstoned = Set(try await fixture.readAll(TopicCatalog.idempotencyTopic, partitions: 6)
            .filter { $0.value == nil }.compactMap(\.keyString))
        #expect(Set(first.map { prefix + $0 }).isSubset(of: tombstoned))
    }

    @Test("a stateful stage continues from its changelog after a restart")
    func countingStageRestores() async throws {
        let fixture = try await FleetFixture.make()
        let changelog = try await fixture.cluster.createTopic("fleet-state", partitions: fixture.partitions)
        let stage = CountingStage(name: TestCluster.uniqueName("count"), input: fixture.input, changelog: changelog, output: fixture.output)
        _ = try await fixture.produceEvents(100, keys: 5)

        var runner = StageRunner(stage: stage, configuration: fixture.configuration(instance: "a"), logger: TestCluster.logger)
        var workers = RunningWorkers([runner])
        #expect(try await waitUntil { try await fixture.readAll(fixture.output).count >= 100 })
        try await workers.stop()

        _ = try await fixture.produceEvents(5, keys: 5)
        runner = StageRunner(stage: stage, configuration: fixture.configuration(instance: "a"), logger: TestCluster.logger)
        workers = RunningWorkers([runner])
        #expect(try await waitUntil { try await fixture.readAll(fixture.output).count >= 105 })
        try await workers.stop()

        var last: [String: Int64] = [:]
        for message in try await fixture.readAll(fixture.output) {
            guard case .reportBucket(let bucket) = try Envelope.decode(message.eventRecord).event else { continue }
            last[bucket.bucket] = max(last[bucket.bucket] ?? 0, bucket.values["count"] ?? 0)
        }
        #expect(last.count == 5)
        #expect(last.values.allSatisfy { $0 == 21 }, "20 counted before the restart, 1 after: \(last)")
    }
}

/// Instances of one stage joining and leaving its group.
@Suite("stage scale-out", .serialized)
struct ScaleOutTests {
    @Test("a 2nd and 3rd instance take partitions; stopping one hands them back; every input is processed once")
    func scaleOutAndIn() async throws {
        let fixture = try await FleetFixture.make()
        let stage = PassThroughStage(name: TestCluster.uniqueName("scale"), input: fixture.input, output: fixture.output)
        func runner(_ name: String, commitInterval: Duration = .milliseconds(100)) -> StageRunner<PassThroughStage> {
            var configuration = fixture.configuration(instance: name)
            configuration.commitInterval = commitInterval
            configuration.batchSize = 100_000
            return StageRunner(stage: stage, configuration: configuration, logger: TestCluster.logger)
        }
        var ids = try await fixture.produceEvents(500)
        // The first instance keeps its transaction open for seconds, so the rebalance that
        // the others cause finds it open: it must abort and rewind, not commit.
        let first = runner("a", commitInterval: .seconds(4))
        let one = RunningWorkers([first])
        #expect(try await waitUntil { first.status.partitions == 6 && first.status.isReady })

        let second = runner("b")
        let third = runner("c")
        let more = RunningWorkers([second, third])
        ids += try await fixture.produceEvents(500)
        #expect(try await waitUntil {
            [first, second, third].allSatisfy { $0.status.partitions == 2 && $0.status.isReady }
        }, "partitions: \(first.status.partitions) \(second.status.partitions) \(third.status.partitions)")
        ids += try await fixture.produceEvents(500)

        try await more.stop()
        #expect(third.status.phase == .stopped)
        #expect(try await waitUntil { first.status.partitions == 6 }, "the leavers' partitions come back")
        ids += try await fixture.produceEvents(500)
        #expect(try await waitUntil { Set(FleetFixture.causations(try await fixture.readAll(fixture.output))).count >= ids.count })
        try await one.stop()

        let causes = FleetFixture.causations(try await fixture.readAll(fixture.output))
        #expect(causes.count == ids.count, "no duplicates across the hand-overs")
        #expect(Set(ids).subtracting(causes).isEmpty)
    }
}

/// `oms dlq` as an operator runs it.
@Suite("dead-letter commands", .serialized)
struct DeadLetterCommandTests {
    @Test("oms dlq list, show and replay a dead letter back onto its topic")
    func listShowReplay() async throws {
        let fixture = try await FleetFixture.make()
        let stage = PassThroughStage(name: TestCluster.uniqueName("dlq"), input: fixture.input, output: fixture.output)
        let poison = FleetFixture.envelope(1, subjectPrefix: "poison")
        let producer = try fixture.cluster.producer()
        try await producer.enqueue(try KafkaProducerMessage(poison, topic: fixture.input))
        try await producer.close()
        _ = try await fixture.produceEvents(10)

        let workers = RunningWorkers([StageRunner(stage: stage, configuration: fixture.configuration(), logger: TestCluster.logger)])
        #expect(try await waitUntil { try await fixture.readAll(fixture.output).count >= 10 })
        try await workers.stop()

        let brokers = ["--brokers", fixture.cluster.bootstrapServers]
        let list = try await OMSCommandTests.run(OMSCommandTests.omsBinary, ["dlq", "list", "--stage", stage.name] + brokers)
        #expect(list.status == 0)
        let lines = list.output.split(separator: "\n")
        #expect(lines.count == 1)
        let fields = lines.first?.split(separator: "\t").map(String.init) ?? []
        #expect(fields.count == 6)
        #expect(fields.dropFirst(2).first == stage.name)
        #expect(fields.last?.contains("poison") == true)
        let id = fields.first ?? ""

        let show = try await OMSCommandTests.run(OMSCommandTests.omsBinary, ["dlq", "show", id] + brokers)
        #expect(show.status == 0)
        #expect(show.output.contains("ce_id: \(poison.id)"))
        #expect(show.output.contains("original value: {"))

        let replay = try await OMSCommandTests.run(OMSCommandTests.omsBinary, ["dlq", "replay", id] + brokers)
        #expect(replay.status == 0)
        #expect(replay.output.contains("-> \(fixture.input)["))
        let again = try await fixture.readAll(fixture.input).filter { $0.header(EnvelopeHeader.id)?.stringValue == poison.id }
        #expect(again.count == 2, "the original and its replay")
        #expect(again.first?.value == again.last?.value)
        #expect(again.first?.key == again.last?.key)
        #expect(again.first?.headers == again.last?.headers)

        let missing = try await OMSCommandTests.run(OMSCommandTests.omsBinary, ["dlq", "replay", "0:999999"] + brokers)
        #expect(missing.status != 0)
    }
}

/// Answers each input with the global table's value under the input's key.
struct LookupStage: Stage {
    let name: String
    let inputTopics: [String]
    let table: String
    let output: String
    var globalTables: [String] { [table] }

    func process(_ input: StageInput, state: StageState) throws(StageFailure) -> StageOutcome {
        guard let value = state.table(table, key: input.envelope.key) else { throw .rejected("no \(input.envelope.key) in \(table)") }
        return StageOutcome(outputs: [StageOutput(value, topic: output)])
    }
}

@Suite("global tables", .serialized)
struct GlobalTableTests {
    @Test("a global table is read whole before processing, follows updates and tombstones")
    func lookups() async throws {
        let fixture = try await FleetFixture.make()
        let table = try await fixture.cluster.createTopic("fleet-table", partitions: 3)
        let stage = LookupStage(name: TestCluster.uniqueName("lookup"), inputTopics: [fixture.input], table: table, output: fixture.output)
        func entry(_ key: String, _ value: Int64) -> ReportBucket {
            ReportBucket(report: "tbl", bucket: key, values: ["v": value], updatedAt: Date())
        }
        let producer = try fixture.cluster.producer()
        for bucket in [entry("k1", 1), entry("k2", 2), entry("k3", 3), entry("k1", 10)] {
            try await producer.enqueue(try KafkaProducerMessage(Envelope(id: UUID().uuidString, source: "test", time: Date(), event: bucket.event), topic: table))
        }
        try await producer.enqueue(KafkaProducerMessage(topic: table, key: "tbl/k3", value: nil as String?))
        try await producer.flush()

        let workers = RunningWorkers([StageRunner(stage: stage, configuration: fixture.configuration(), logger: TestCluster.logger)])
        func ask(_ key: String) async throws {
            let question = Envelope(id: UUID().uuidString, source: "test", time: Date(), event: entry(key, 0).event)
            _ = try await producer.send(try KafkaProducerMessage(question, topic: fixture.input))
        }
        for key in ["k1", "k2", "k3"] { try await ask(key) }
        #expect(try await waitUntil { try await fixture.readAll(fixture.output).count >= 2 })
        // Updates arrive while the stage runs.
        _ = try await producer.send(try KafkaProducerMessage(Envelope(id: UUID().uuidString, source: "test", time: Date(), event: entry("k4", 4).event), topic: table))
        try await Task.sleep(for: .milliseconds(500))
        try await ask("k4")
        #expect(try await waitUntil { try await fixture.readAll(fixture.output).count >= 3 })
        try await workers.stop()
        try await producer.close()

        var answers: [String: Int64] = [:]
        for message in try await fixture.readAll(fixture.output) {
            if case .reportBucket(let bucket) = try Envelope.decode(message.eventRecord).event { answers[bucket.bucket] = bucket.values["v"] }
        }
        #expect(answers == ["k1": 10, "k2": 2, "k4": 4], "latest value per key; the tombstoned key is gone")
        let letters = try await fixture.readAll(TopicCatalog.deadLetterTopic, partitions: 6).filter { $0.header(DeadLetterHeader.stage)?.stringValue == stage.name }
        #expect(letters.count == 1)
        #expect(letters.first?.header(DeadLetterHeader.error)?.stringValue?.contains("no tbl/k3") == true)
    }
}

import Contracts
import Digests
import Fleet
import Foundation
import Kafka
import OrderFleetTesting
import Testing
import Workers

/// Defects found in use: a record that can never be written, Kafka going away under a
/// running worker, a script reading `oms broker`'s output.
@Suite("resilience: poison records, Kafka outages, line-buffered output", .serialized)
struct ResilienceTests {
    @Test("a ~1 MiB poison record is dead-lettered with a reference; an order on another partition is placed within 10 s; the worker lives")
    func poisonRecordNearTheSizeLimit() async throws {
        let broker = try await EmbeddedBrokerProcess.start(topics: [])
        defer { broker.stop() }
        let cluster = broker.cluster
        let scenario = try await PipelineScenario.make(cluster: cluster, rules: "locations:\n  - {id: WH-1, type: warehouse, country: US}\n")
        let sku = "\(scenario.run)-LAMP"
        try await scenario.produce([
            CatalogProduct(
                sku: sku, title: sku, weightGrams: 500, dimensions: Dimensions(lengthMm: 1, widthMm: 1, heightMm: 1),
                blockedCountries: [], hazmat: false, prices: []
            ).event,
        ])
        let intake = WorkerFleet(
            fixture: scenario.fixture, stage: "intake-\(scenario.run)", mode: .atLeastOnce, staticMembership: false,
            arguments: ["worker", "intake"], overrides: ["RULES_FILE": scenario.rulesFile])
        defer { intake.stopAll() }
        let port = Int(try NoidaServer.freePort())
        try intake.start(0, httpPort: port)
        let ready = try await waitUntil(timeout: .seconds(60)) { await LocalHTTP.readiness(port: port) == 200 }
        try #require(ready, "intake ready; log in \(intake.directory.path)")

        // The broker takes it; as a dead letter (value kept whole, base64) it would not fit.
        let poison = Array(repeating: UInt8(ascii: "#"), count: 1_040_000)
        var kafka = cluster.configuration
        kafka.properties["message.max.bytes"] = "2000000"
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(kafka: kafka), logger: TestCluster.logger)
        _ = try await producer.send(KafkaProducerMessage(topic: InboundChannelOrder.topic, partition: 0, key: Array("poison".utf8), value: poison))
        let order = scenario.canonical("valid", lines: [(sku, 1, 1_000)])
        let envelope = Envelope(id: UUID().uuidString.lowercased(), source: "test", time: Date(), event: try scenario.inbound(order))
        var valid = try KafkaProducerMessage(envelope, topic: InboundChannelOrder.topic)
        valid.partition = 1
        let sent = ContinuousClock.now
        _ = try await producer.send(valid)
        try await producer.close()

        let orderID = DeterministicID.orderID(channel: "web", externalOrderID: order.externalOrderId)
        let placed = try await waitUntil(timeout: .seconds(10)) {
            try await scenario.events(OrderPlaced.topic).contains { if case .orderPlaced(let e) = $0.event { e.orderId == orderID } else { false } }
        }
        #expect(placed, "the valid order was placed within 10 s (\(ContinuousClock.now - sent)); log in \(intake.directory.path)")
        #expect(intake.process(0)?.isRunning == true, "the worker process is alive")

        let letters = try await scenario.fixture.readAll(TopicCatalog.deadLetterTopic, partitions: 6)
            .filter { $0.header(DeadLetterHeader.topic)?.stringValue == InboundChannelOrder.topic && $0.header(DeadLetterHeader.offset)?.stringValue != nil }
            .filter { $0.keyString == "poison" }
        try #require(letters.count == 1, "one dead letter for the poison record")
        let letter = letters[0]
        #expect(letter.header(DeadLetterHeader.truncated)?.stringValue == "true")
        #expect(letter.header(DeadLetterHeader.valueSize)?.stringValue == String(poison.count))
        let digest = Digests.sha256(poison).map { String(format: "%02x", $0) }.joined()
        #expect(letter.header(DeadLetterHeader.valueSHA256)?.stringValue == digest)
        #expect(letter.header(DeadLetterHeader.partition)?.stringValue == "0")
        #expect((letter.value?.count ?? .max) < 100_000, "the letter keeps a reference, not the record")
        guard case .deadLetter(let event)? = try? Envelope.decode(letter.eventRecord).event else {
            Issue.record("not a DeadLetter event")
            return
        }
        #expect(event.rawValue.map { Array($0) } == Array(poison.prefix(DeadLetters.keptValueBytes)), "the first bytes are kept")
        #expect(throws: DeadLetterError.self, "a reference cannot be replayed as the record") { try DeadLetters.original(of: letter) }
    }

    @Test("Kafka gone for longer than the clients wait: the worker stays up, says not ready, and finishes every input when Kafka is back")
    func outageLeavesTheWorkerRunning() async throws {
        let fixture = try await FleetFixture.make(.basic)
        guard let embedded = fixture.cluster.embedded else { return }  // A real cluster cannot be stopped from here.
        let stage = TestCluster.uniqueName("outage")
        // Deliveries and requests give up after 3 s: the outage outlasts them, so the
        // worker sees failed deliveries, timed-out polls and rewinds, all retriable.
        let fleet = WorkerFleet(
            fixture: fixture, stage: stage, mode: .atLeastOnce, staticMembership: false,
            overrides: ["KAFKA_PROPERTIES": "message.timeout.ms=3000,socket.timeout.ms=3000", "WORKER_RETRY_BACKOFF_MS": "50"])
        defer { fleet.stopAll() }
        var ids = try await fixture.produceEvents(12_000)
        let port = Int(try NoidaServer.freePort())
        try fleet.start(0, httpPort: port)
        let started = try await waitUntil(timeout: .seconds(60)) { !(try await fixture.readAll(fixture.output)).isEmpty }
        try #require(started, "worker started; log in \(fleet.directory.path)")
        // Queued just before Kafka goes, so that the worker is mid-work then however fast
        // it got (it had finished the first 12,000 by then in a run).
        ids += try await fixture.produceEvents(20_000)
        for broker in Int32(1)...3 { try embedded.setBrokerDown(broker) }
        let unready = try await waitUntil(timeout: .seconds(20)) { await LocalHTTP.readiness(port: port) == 503 }
        try await Task.sleep(for: .seconds(8))
        for broker in Int32(1)...3 { try embedded.setBrokerUp(broker) }
        #expect(unready, "/readyz said not ready during the outage")

        let complete = try await waitUntil(timeout: .seconds(240)) {
            Set(FleetFixture.causations(try await fixture.readAll(fixture.output))).isSuperset(of: ids)
        }
        #expect(complete, "every input has its outcome after the outage; log in \(fleet.directory.path)")
        #expect(fleet.process(0)?.isRunning == true, "the worker process never exited")
        let log = try String(contentsOf: fleet.directory.appendingPathComponent("w0.log"), encoding: .utf8)
        #expect(log.contains("cannot make progress") || log.contains("starting a new one in this process"), "the outage hit the worker mid-work")
        let readyAgain = try await waitUntil(timeout: .seconds(30)) { await LocalHTTP.readiness(port: port) == 200 }
        #expect(readyAgain, "/readyz is 200 again")
    }

    @Test("an idle worker says not ready while no broker can be reached, and ready again once one can")
    func idleWorkerIsNotReadyWithoutKafka() async throws {
        let fixture = try await FleetFixture.make(.basic)
        guard let embedded = fixture.cluster.embedded else { return }  // A real cluster cannot be stopped from here.
        let fleet = WorkerFleet(
            fixture: fixture, stage: TestCluster.uniqueName("idle-outage"), mode: .atLeastOnce, staticMembership: false,
            overrides: ["WORKER_STATISTICS_INTERVAL_MS": "500"])
        defer { fleet.stopAll() }
        let ids = try await fixture.produceEvents(10)
        let port = Int(try NoidaServer.freePort())
        try fleet.start(0, httpPort: port)
        let done = try await waitUntil(timeout: .seconds(60)) {
            Set(FleetFixture.causations(try await fixture.readAll(fixture.output))).isSuperset(of: ids)
        }
        try #require(done, "worker processed its inputs; log in \(fleet.directory.path)")
        let ready = try await waitUntil(timeout: .seconds(20)) { await LocalHTTP.readiness(port: port) == 200 }
        try #require(ready, "/readyz is 200 while idle with Kafka up")

        for broker in Int32(1)...3 { try embedded.setBrokerDown(broker) }
        var body = ""
        let unready = try await waitUntil(timeout: .seconds(30)) {
            guard let answer = try? await LocalHTTP.get(port: port, path: "/readyz"), answer.status == 503 else { return false }
            body = answer.text
            return true
        }
        for broker in Int32(1)...3 { try embedded.setBrokerUp(broker) }
        #expect(unready, "/readyz says not ready while every broker is down, though the worker has nothing to do")
        #expect(body.contains("kafka=unreachable"), "and says why: \(body)")
        let readyAgain = try await waitUntil(timeout: .seconds(30)) { await LocalHTTP.readiness(port: port) == 200 }
        #expect(readyAgain, "/readyz is 200 again once a broker is back")
    }

    @Test("oms broker's output reaches a file or pipe line by line, while it runs")
    func brokerOutputIsLineBuffered() async throws {
        let process = Process()
        process.executableURL = OMSCommandTests.omsBinary
        process.arguments = ["broker", "--brokers", "1"]
        process.environment = omsChildEnvironment()
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        defer {
            process.terminate()
            process.waitUntilExit()
        }
        let received = Locked<String?>(nil)
        // Reads until the first line ends (or the pipe closes when the broker stops).
        Task.detached {
            var bytes: [UInt8] = []
            while !bytes.contains(UInt8(ascii: "\n")) {
                let chunk = pipe.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                bytes += chunk
            }
            received.withLock { $0 = String(decoding: bytes, as: UTF8.self) }
        }
        let arrived = try await waitUntil(timeout: .seconds(10)) { received.withLock { $0 } != nil }
        #expect(arrived && process.isRunning, "the bootstrap line arrived while the broker runs")
        let line = received.withLock { $0 } ?? ""
        #expect(line.hasPrefix("embedded Kafka: 1 broker(s) at 127.0.0.1:"), "\(line)")
    }
}

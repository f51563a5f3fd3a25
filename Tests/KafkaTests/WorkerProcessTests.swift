import Contracts
import Fleet
import Foundation
import Kafka
import OrderFleetTesting
import Synchronization
import Testing

/// `oms worker` as separate processes that are killed with SIGKILL and restarted, as a
/// supervisor would: nothing may be lost or duplicated.
@Suite("worker processes", .serialized)
struct WorkerProcessTests {
    @Test("exactly once: 20k events through 3 pass-through workers killed with -9 and restarted")
    func exactlyOnceUnderKills() async throws {
        let fixture = try await FleetFixture.make(.full)
        let stage = TestCluster.uniqueName("pass")
        let fleet = WorkerFleet(fixture: fixture, stage: stage, mode: .exactlyOnce)
        defer { fleet.stopAll() }
        for instance in 0..<3 { try fleet.start(instance) }

        let producing = Task { try await fixture.produceEvents(20_000) }
        let kills = try await fleet.killRandomly(for: .seconds(20), every: .seconds(3))
        let ids = try await producing.value
        // How many kills fit in 20 s depends on how fast killed workers die and restart on
        // a loaded machine; the test needs several, not a rate.
        #expect(kills >= 2)

        let complete = try await waitUntil(timeout: .seconds(180)) {
            Set(FleetFixture.causations(try await fixture.readAll(fixture.output))).count >= ids.count
        }
        #expect(complete, "every input has its outcome; worker logs in \(fleet.directory.path)")
        fleet.stopAll()

        let causes = FleetFixture.causations(try await fixture.readAll(fixture.output))
        #expect(causes.count == ids.count, "no duplicate outcome (read_committed)")
        #expect(Set(ids).subtracting(causes).isEmpty, "no lost input")
        let keys = try await fixture.readAll(TopicCatalog.idempotencyTopic, partitions: 6).compactMap(\.keyString).filter { $0.hasPrefix("\(stage)/") }
        #expect(keys.count == ids.count, "each idempotency key written once")
        #expect(Set(keys).count == keys.count)
    }

    @Test("an embedded broker that dies under a test says how: its exit and its log")
    func embeddedBrokerDeathIsReported() async throws {
        let broker = try await EmbeddedBrokerProcess.start(topics: [])
        defer { broker.stop() }
        try broker.checkAlive()
        kill(broker.process.processIdentifier, SIGKILL)
        broker.process.waitUntilExit()
        let error = try #require(throws: EmbeddedBrokerProcess.Died.self) { try broker.checkAlive() }
        #expect(error.description.contains("signal 9"), "\(error)")
        #expect(error.description.contains("embedded Kafka: 3 broker(s) at \(broker.bootstrap)"), "its log: \(error)")
    }

    @Test("at least once on the embedded broker: one effect per input after worker kills")
    func atLeastOnceUnderKills() async throws {
        let broker = try await EmbeddedBrokerProcess.start(topics: ["fleet-in:6", "fleet-out:6"])
        defer { broker.stop() }
        let cluster = broker.cluster
        let fixture = FleetFixture(cluster: cluster, input: "fleet-in", output: "fleet-out", partitions: 6)
        let stage = TestCluster.uniqueName("alo")
        // Dynamic members: the embedded broker expires a killed member's session and
        // hands its partitions to the survivor (the path noida-db cannot test). The mock
        // cluster waits for members to rejoin a rebalance only the session timeout less a
        // second, and a runner does not poll its group while it restores: on a loaded CI
        // machine restores here took 12-18 s, longer than a 6 s session's wait, so each
        // member was dropped in turn and nothing moved (stop 34's CI). 30 s leaves room.
        let fleet = WorkerFleet(
            fixture: fixture, stage: stage, mode: .atLeastOnce, staticMembership: false, overrides: ["WORKER_SESSION_TIMEOUT_MS": "30000"])
        defer { fleet.stopAll() }
        for instance in 0..<2 { try fleet.start(instance) }

        let producing = Task { try await fixture.produceEvents(5_000) }
        let kills = try await fleet.killRandomly(for: .seconds(12), every: .seconds(3))
        let ids = try await producing.value
        // As above: several kills, however many fit on a loaded machine.
        #expect(kills >= 2)
        // A killed member's partitions move only when its 30 s session expires.
        let complete = try await waitUntil(timeout: .seconds(240)) {
            Set(FleetFixture.causations(try await fixture.readAll(fixture.output))).count >= ids.count
        }
        #expect(complete, "worker logs in \(fleet.directory.path)")
        fleet.stopAll()

        let outputs = try await fixture.readAll(fixture.output)
        #expect(Set(FleetFixture.causations(outputs)) == Set(ids), "every input has an effect")
        // A replayed input yields the same output id: one effect per input for readers
        // that dedupe on ce_id, however many records a crash repeated.
        let effects = Set(outputs.compactMap { $0.header(EnvelopeHeader.id)?.stringValue })
        #expect(effects.count == ids.count)
        #expect(outputs.count >= ids.count)
    }

    @Test("a worker serves /healthz, /readyz and /metrics, and stops cleanly on SIGTERM with its offsets committed")
    func healthMetricsAndGracefulStop() async throws {
        let fixture = try await FleetFixture.make(.full)
        let stage = TestCluster.uniqueName("http")
        let fleet = WorkerFleet(fixture: fixture, stage: stage, mode: .exactlyOnce)
        defer { fleet.stopAll() }
        let port = Int(try NoidaServer.freePort())
        try fleet.start(0, httpPort: port)

        #expect(try await waitUntil(timeout: .seconds(60)) { await LocalHTTP.readiness(port: port) == 200 })
        let ids = try await fixture.produceEvents(300)
        #expect(try await waitUntil { try await fixture.readAll(fixture.output).count >= ids.count })
        let health = try await LocalHTTP.get(port: port, path: "/healthz")
        #expect(health.status == 200)
        #expect(health.text.contains("\(stage) running partitions=6"))
        let metrics = try await LocalHTTP.get(port: port, path: "/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.text.contains("oms_stage_records_in_total{stage=\"\(stage)\"} 300"), "\(metrics.text.prefix(2000))")
        #expect(metrics.text.contains("oms_stage_records_out_total{stage=\"\(stage)\"} 300"))
        #expect(metrics.text.contains("oms_stage_commit_seconds"))
        #expect(metrics.text.contains("oms_stage_restore_seconds"))
        #expect((try await LocalHTTP.get(port: port, path: "/nope")).status == 404)
        // Lag per owned partition, computed by the runner (librdkafka's own statistic
        // stays unknown when offsets are committed through transactions): 0 once done.
        let lagLines = { (body: String) in body.split(separator: "\n").filter { $0.hasPrefix("oms_stage_consumer_lag{") } }
        let caughtUp = try await waitUntil(timeout: .seconds(20)) {
            let lines = lagLines((try await LocalHTTP.get(port: port, path: "/metrics")).text)
            return lines.count == 6 && lines.allSatisfy { $0.hasSuffix(" 0") || $0.hasSuffix(" 0.0") }
        }
        let lag = lagLines((try await LocalHTTP.get(port: port, path: "/metrics")).text)
        #expect(caughtUp, "\(lag)")

        #expect(fleet.terminate(0) == 0, "graceful stop exits 0")
        let consumer = try fixture.cluster.consumer(group: "oms.\(stage)")
        let committed = try await consumer.committed((0..<fixture.partitions).map { KafkaTopicPartition(topic: fixture.input, partition: $0) })
        try await consumer.close()
        #expect(committed.reduce(Int64(0)) { $0 + max($1.offset, 0) } == Int64(ids.count), "the last batch was committed before leaving")
    }

    @Test("a second worker with the same instance id fences the first, which exits non-zero")
    func fencedWorkerExits() async throws {
        let fixture = try await FleetFixture.make(.full)
        let fleet = WorkerFleet(fixture: fixture, stage: TestCluster.uniqueName("fence"), mode: .exactlyOnce)
        defer { fleet.stopAll() }
        try fleet.start(0)
        _ = try await fixture.produceEvents(100)
        #expect(try await waitUntil { try await fixture.readAll(fixture.output).count >= 100 })
        let first = try #require(fleet.process(0))
        try fleet.start(0)  // same WORKER_INSTANCE_ID=w0: its init_transactions fences the first
        _ = try await fixture.produceEvents(100)
        #expect(try await waitUntil(timeout: .seconds(60)) { !first.isRunning }, "the fenced worker stops")
        #expect(first.terminationStatus != 0)
        let log = (try? String(contentsOf: fleet.directory.appendingPathComponent("w0.log"), encoding: .utf8)) ?? ""
        #expect(log.contains("fenced"))
        #expect(try await waitUntil { FleetFixture.causations(try await fixture.readAll(fixture.output)).count >= 200 }, "the new one carries on")
    }

    @Test("oms fleet runs several stages in one process")
    func fleetProcess() async throws {
        let fixture = try await FleetFixture.make(.full)
        let counts = try await fixture.cluster.createTopic("fleet-counts-in", partitions: 6)
        let state = try await fixture.cluster.createTopic("fleet-counts-state", partitions: 6)
        let counted = try await fixture.cluster.createTopic("fleet-counts-out", partitions: 6)
        let fleet = WorkerFleet(fixture: fixture, stage: TestCluster.uniqueName("pass"), mode: .exactlyOnce)
        defer { fleet.stopAll() }
        var environment = fleet.environment(0)
        environment["COUNTER_NAME"] = TestCluster.uniqueName("count")
        environment["COUNTER_INPUT"] = counts
        environment["COUNTER_STATE"] = state
        environment["COUNTER_OUTPUT"] = counted
        try fleet.start(0, arguments: ["fleet", "--stage", "passthrough", "--stage", "counter"], environment: environment)
        _ = try await fixture.produceEvents(50)
        _ = try await fixture.produceEvents(30, to: counts, keys: 3)
        #expect(try await waitUntil { try await fixture.readAll(fixture.output).count >= 50 })
        #expect(try await waitUntil { try await fixture.readAll(counted).count >= 30 })
        #expect(fleet.terminate(0) == 0)
    }

    @Test("a wrong setting stops oms worker at start-up with a message naming the key")
    func badSettingNamesTheKey() throws {
        let process = Process()
        process.executableURL = OMSCommandTests.omsBinary
        process.arguments = ["worker", "passthrough"]
        process.environment = omsChildEnvironment(["KAFKA_BROKERS": "127.0.0.1:1", "WORKER_BATCH_SIZE": "lots"], base: ["PATH": "/usr/bin:/bin"])
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus != 0)
        #expect(message.contains("worker.batch.size (WORKER_BATCH_SIZE): 'lots' is not an integer"), "\(message)")
    }
}

/// `oms broker` (the embedded mock cluster) in its own process, so that worker
/// processes share it. Its output goes to a log file, so that a broker that died during
/// a test says how (``checkAlive()``).
struct EmbeddedBrokerProcess {
    let process: Process
    let bootstrap: String
    /// Its standard output and error.
    let log: URL

    /// Starts it and waits (off Swift's pool: a receiver in the test process may need
    /// its threads meanwhile) until it has written its address.
    static func start(topics: [String]) async throws -> EmbeddedBrokerProcess {
        try await onOwnThread { try startWaiting(topics: topics) }
    }

    private static func startWaiting(topics: [String]) throws -> EmbeddedBrokerProcess {
        let name = "oms-broker-\(UUID().uuidString)"
        let file = FileManager.default.temporaryDirectory.appendingPathComponent(name)
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("\(name).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let output = try FileHandle(forWritingTo: log)
        let process = Process()
        process.executableURL = OMSCommandTests.omsBinary
        process.arguments = ["broker", "--catalog", "--bootstrap-file", file.path] + topics.flatMap { ["--topic", $0] }
        process.environment = omsChildEnvironment()
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try? output.close()
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if let text = try? String(contentsOf: file, encoding: .utf8), !text.isEmpty {
                return EmbeddedBrokerProcess(process: process, bootstrap: text.trimmingCharacters(in: .whitespacesAndNewlines), log: log)
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
        process.terminate()
        throw BrokerStartError()
    }

    /// `KAFKA_PROPERTIES` for worker processes on this broker: their records lz4-compressed.
    /// It keeps only the last ~5 MiB (of stored, so compressed, bytes) of a partition;
    /// uncompressed, the 250-order life cycle under kills outgrew that on every
    /// `oms.idempotency` partition, where every stage's keys and intents go, and restores
    /// lost records under them ("records were deleted before the restore read them", 8 to
    /// 15 times a run).
    static let compressedProducers = "compression.type=lz4"

    /// A test cluster on this broker, as the worker processes reach it.
    var cluster: TestCluster { TestCluster(bootstrapServers: bootstrap, embedded: nil) }

    struct BrokerStartError: Error {}

    /// The broker ended on its own while a test needed it.
    struct Died: Error, CustomStringConvertible {
        let description: String
    }

    /// Throws ``Died``, with its exit and the end of its log, if the broker is gone:
    /// every later call to it would only fail on transport errors.
    func checkAlive() throws {
        guard !process.isRunning else { return }
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        let reason = process.terminationReason == .uncaughtSignal ? "signal" : "status"
        throw Died(description: "the embedded broker (pid \(process.processIdentifier)) ended on its own, \(reason) \(process.terminationStatus); the end of its log (\(log.path)): \(text.suffix(2_000))")
    }

    /// Stops it. Its log stays if it had ended on its own.
    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: log)
    }
}

/// Worker processes of one stage, by instance number; their output goes to files.
final class WorkerFleet: Sendable {
    let fixture: FleetFixture
    let stage: String
    let mode: DeliveryMode
    let staticMembership: Bool
    /// The `oms` arguments every instance runs with.
    let arguments: [String]
    /// Settings on top of ``environment(_:httpPort:)``'s.
    let overrides: [String: String]
    let directory: URL
    private let processes = Mutex<[Int: Process]>([:])

    init(
        fixture: FleetFixture, stage: String, mode: DeliveryMode, staticMembership: Bool = true,
        arguments: [String] = ["worker", "passthrough"], overrides: [String: String] = [:]
    ) {
        self.fixture = fixture
        self.stage = stage
        self.mode = mode
        self.staticMembership = staticMembership
        self.arguments = arguments
        self.overrides = overrides
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("oms-workers-\(stage)")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    /// The environment of instance `n`, as an operator would set it.
    func environment(_ instance: Int, httpPort: Int = -1) -> [String: String] {
        var environment = omsChildEnvironment()
        environment["KAFKA_BROKERS"] = fixture.cluster.bootstrapServers
        environment["WORKER_SESSION_TIMEOUT_MS"] = "6000"
        // noida-db never expires the session of a member that died: a killed dynamic
        // member would keep its partitions for good. A static member's partitions go
        // back to the instance that restarts under the same id, as under a supervisor.
        environment["WORKER_STATIC_MEMBERSHIP"] = String(staticMembership)
        environment["WORKER_INSTANCE_ID"] = "w\(instance)"
        environment["WORKER_MODE"] = mode.rawValue
        environment["WORKER_STATISTICS_INTERVAL_MS"] = "0"
        environment["WORKER_TRANSACTION_TIMEOUT_MS"] = "10000"
        environment["HTTP_PORT"] = String(httpPort)
        environment["LOG_LEVEL"] = "info"
        environment["PASSTHROUGH_NAME"] = stage
        environment["PASSTHROUGH_INPUT"] = fixture.input
        environment["PASSTHROUGH_OUTPUT"] = fixture.output
        environment.merge(overrides) { $1 }
        return environment
    }

    /// Starts (or restarts) instance `n` of ``arguments`` (or other arguments).
    func start(_ instance: Int, httpPort: Int = -1, arguments: [String]? = nil, environment: [String: String]? = nil) throws {
        let process = Process()
        process.executableURL = OMSCommandTests.omsBinary
        process.arguments = arguments ?? self.arguments
        process.environment = environment ?? self.environment(instance, httpPort: httpPort)
        let log = directory.appendingPathComponent("w\(instance).log")
        if !FileManager.default.fileExists(atPath: log.path) { _ = FileManager.default.createFile(atPath: log.path, contents: nil) }
        let handle = try FileHandle(forWritingTo: log)
        handle.seekToEndOfFile()
        // Never the test process's own pipes: `swift test` waits for them to close.
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        processes.withLock { $0[instance] = process }
    }

    /// The process of instance `n`, if started.
    func process(_ instance: Int) -> Process? { processes.withLock { $0[instance] } }

    /// The lines of every instance's log that contain `text`.
    func logLines(containing text: String) -> [String] {
        let files = (try? FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)) ?? []
        return files.filter { $0.pathExtension == "log" }.flatMap { file in
            ((try? String(contentsOf: file, encoding: .utf8)) ?? "").split(separator: "\n").filter { $0.contains(text) }.map(String.init)
        }
    }

    /// SIGKILLs instance `n` and waits for it to die.
    func kill(_ instance: Int) {
        guard let process = processes.withLock({ $0[instance] }) else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// SIGTERMs instance `n` and returns its exit status.
    func terminate(_ instance: Int) -> Int32? {
        guard let process = processes.withLock({ $0.removeValue(forKey: instance) }) else { return nil }
        process.terminate()
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// Kills a random instance and restarts it, every `interval`, for `duration` and at
    /// least `minimum` times however slowly restarted processes come up on a loaded
    /// machine; returns how many kills there were.
    func killRandomly(for duration: Duration, every interval: Duration, minimum: Int = 2) async throws -> Int {
        let deadline = ContinuousClock.now + duration
        var kills = 0
        while ContinuousClock.now < deadline || kills < minimum {
            try await Task.sleep(for: interval)
            guard let victim = processes.withLock({ $0.keys.randomElement() }) else { break }
            kill(victim)
            kills += 1
            try start(victim)
        }
        return kills
    }

    func stopAll() {
        let all = processes.withLock { processes in
            defer { processes.removeAll() }
            return Array(processes.values)
        }
        for process in all where process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }
}

import Contracts
import Fleet
import Foundation
import Kafka
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
        #expect(kills >= 4)

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
}

/// Worker processes of one stage, by instance number; their output goes to files.
final class WorkerFleet: Sendable {
    let fixture: FleetFixture
    let stage: String
    let mode: DeliveryMode
    let directory: URL
    private let processes = Mutex<[Int: Process]>([:])

    init(fixture: FleetFixture, stage: String, mode: DeliveryMode) {
        self.fixture = fixture
        self.stage = stage
        self.mode = mode
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("oms-workers-\(stage)")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    /// The environment of instance `n`, as an operator would set it.
    func environment(_ instance: Int, httpPort: Int = -1) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["KAFKA_BROKERS"] = fixture.cluster.bootstrapServers
        environment["WORKER_SESSION_TIMEOUT_MS"] = "6000"
        // noida-db never expires the session of a member that died: a killed dynamic
        // member would keep its partitions for good. A static member's partitions go
        // back to the instance that restarts under the same id, as under a supervisor.
        environment["WORKER_STATIC_MEMBERSHIP"] = "true"
        environment["WORKER_INSTANCE_ID"] = "w\(instance)"
        environment["WORKER_MODE"] = mode.rawValue
        environment["WORKER_STATISTICS_INTERVAL_MS"] = "0"
        environment["WORKER_TRANSACTION_TIMEOUT_MS"] = "10000"
        environment["HTTP_PORT"] = String(httpPort)
        environment["LOG_LEVEL"] = "info"
        environment["PASSTHROUGH_NAME"] = stage
        environment["PASSTHROUGH_INPUT"] = fixture.input
        environment["PASSTHROUGH_OUTPUT"] = fixture.output
        return environment
    }

    /// Starts (or restarts) instance `n` of `oms worker passthrough`.
    func start(_ instance: Int, httpPort: Int = -1) throws {
        let process = Process()
        process.executableURL = OMSCommandTests.omsBinary
        process.arguments = ["worker", "passthrough"]
        process.environment = environment(instance, httpPort: httpPort)
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

    /// Kills a random instance and restarts it, every `interval`, for `duration`;
    /// returns how many kills there were.
    func killRandomly(for duration: Duration, every interval: Duration) async throws -> Int {
        let deadline = ContinuousClock.now + duration
        var kills = 0
        while ContinuousClock.now < deadline {
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

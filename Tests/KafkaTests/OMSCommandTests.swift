import Contracts
import Fleet
import Foundation
import Kafka
import OrderFleetTesting
import Testing

/// The `oms` executable, run as a user would, as a separate process.
@Suite("oms commands")
struct OMSCommandTests {
    static var omsBinary: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("oms")
    }

    /// Which of a command's streams a run returns; the others are discarded.
    enum Printed: Sendable {
        /// Standard output.
        case output
        /// Standard error.
        case errors
        /// Both in one pipe, in the order written (logs go to standard error).
        case both
    }

    /// Runs a command to completion and returns its exit status and what it `printed`.
    /// It is waited for off Swift's pool (``onOwnThread(_:)``): tests beside it, or the
    /// caller's own receivers, answer the processes they run there.
    static func run(
        _ executable: URL, _ arguments: [String], printed: Printed = .output, environment: [String: String] = [:], directory: URL? = nil
    ) async throws -> (status: Int32, output: String) {
        try await onOwnThread {
            let process = Process()
            process.executableURL = executable
            process.arguments = arguments
            process.environment = omsChildEnvironment(environment)
            if let directory { process.currentDirectoryURL = directory }
            let pipe = Pipe()
            process.standardOutput = printed == .errors ? FileHandle.nullDevice : pipe
            process.standardError = printed == .output ? FileHandle.nullDevice : pipe
            process.standardInput = FileHandle.nullDevice
            try process.run()
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return (process.terminationStatus, String(decoding: data, as: UTF8.self))
        }
    }

    /// What keeps a crashed test process's brokers and workers from loading the machine
    /// for later runs (``omsChildEnvironment(_:base:)``): once one ran for an hour.
    @Test("an oms process started with OMS_EXIT_WITH_PARENT=<its parent> ends within seconds of that parent; without it, it runs on")
    func exitsWithItsParent() async throws {
        /// `oms broker` started by a Python process that ends at once, leaving it an orphan;
        /// its pid. Python, not a shell: it closes every other descriptor in the child, so
        /// the broker does not keep the write end of the pipe ``run(_:_:printed:environment:directory:)``
        /// reads to its end.
        func orphanBroker(watching: Bool) async throws -> Int32 {
            let script = """
                import os, subprocess, sys
                env = dict(os.environ)
                env.pop("OMS_EXIT_WITH_PARENT", None)
                if sys.argv[2] == "watch": env["OMS_EXIT_WITH_PARENT"] = str(os.getpid())
                broker = subprocess.Popen([sys.argv[1], "broker", "--brokers", "1"], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                print(broker.pid)
                """
            let started = try await Self.run(URL(fileURLWithPath: "/usr/bin/python3"), ["-c", script, Self.omsBinary.path, watching ? "watch" : "-"])
            return try #require(Int32(started.output.trimmingCharacters(in: .whitespacesAndNewlines)), "\(started.output)")
        }
        let watching = try await orphanBroker(watching: true)
        let unwatched = try await orphanBroker(watching: false)
        defer { kill(unwatched, SIGKILL) }
        let ended = try await waitUntil(timeout: .seconds(15)) { processHasEnded(watching) }
        #expect(ended, "the broker whose parent ended has ended too")
        #expect(!processHasEnded(unwatched), "a broker without the setting runs on")
    }

    @Test("oms broker serves a cluster that kcat -L can list, and stops on SIGTERM")
    func brokerWithKcat() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("oms-broker-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: file) }
        let broker = Process()
        broker.executableURL = Self.omsBinary
        broker.arguments = ["broker", "--catalog", "--topic", "extra:2", "--bootstrap-file", file.path]
        broker.environment = omsChildEnvironment()
        broker.standardOutput = FileHandle.nullDevice
        broker.standardError = FileHandle.nullDevice
        broker.standardInput = FileHandle.nullDevice
        try broker.run()
        defer { if broker.isRunning { broker.terminate() } }

        var bootstrap = ""
        try await eventually("the bootstrap file is written") {
            bootstrap = (try? String(contentsOf: file, encoding: .utf8)) ?? ""
            return !bootstrap.isEmpty
        }
        let kcat = try await Self.run(URL(fileURLWithPath: "/usr/bin/env"), ["kcat", "-L", "-b", bootstrap])
        #expect(kcat.status == 0)
        #expect(kcat.output.contains("3 brokers:"))
        #expect(kcat.output.contains(#"topic "oms.orders.placed" with 6 partitions"#))
        #expect(kcat.output.contains(#"topic "extra" with 2 partitions"#))

        broker.terminate()  // SIGTERM
        broker.waitUntilExit()
        #expect(broker.terminationReason == .exit)
        #expect(broker.terminationStatus == 0)
    }

    @Test("oms topics apply creates the catalog, is idempotent and reports drift",
          .enabled(if: ProcessInfo.processInfo.environment["KAFKA_BROKERS"] == nil, "needs a fresh broker without the catalog topics"))
    func topicsApply() async throws {
        let cluster = try TestCluster.make(.full)
        let admin = try KafkaAdmin(configuration: cluster.configuration, logger: TestCluster.logger)
        // A topic that exists with the wrong settings beforehand.
        _ = try await admin.createTopic(KafkaTopicSpec(name: "oms.alerts", partitions: 2, replicationFactor: 1))

        let first = try await Self.run(Self.omsBinary, ["topics", "apply", "--brokers", cluster.bootstrapServers])
        #expect(first.status == 2)
        #expect(first.output.contains("drift    oms.alerts: partitions=2, wanted partitions=6"))
        // Other tests on the shared broker may have created a few catalog topics already.
        let created = first.output.split(separator: "\n").filter { $0.hasPrefix("created") }
        let existing = first.output.split(separator: "\n").filter { $0.hasPrefix("ok") }
        #expect(created.count + existing.count == TopicCatalog.topics.count - 1, "every catalog topic but the drifted one")

        let inventoryLevels = try await admin.describeTopic("oms.inventory.levels")
        #expect(inventoryLevels.partitions == 6)
        #expect(inventoryLevels.configs["cleanup.policy"] == "compact")
        #expect(inventoryLevels.configs["min.insync.replicas"] == "1")
        let inbound = try await admin.describeTopic("oms.orders.inbound")
        #expect(inbound.configs["cleanup.policy"] == "delete")
        #expect(inbound.configs["retention.ms"] == "604800000")
        #expect(try await admin.describeTopic("oms.alerts").partitions == 2)  // drift is left alone

        let second = try await Self.run(Self.omsBinary, ["topics", "apply", "--brokers", cluster.bootstrapServers])
        #expect(second.status == 2)
        #expect(!second.output.split(separator: "\n").contains { $0.hasPrefix("created") })
        #expect(second.output.split(separator: "\n").filter { $0.hasPrefix("ok") }.count == TopicCatalog.topics.count - 1)

        let describe = try await Self.run(Self.omsBinary, ["topics", "describe", "--brokers", cluster.bootstrapServers])
        #expect(describe.status == 0)
        #expect(describe.output.contains("oms.deadletter\tpartitions=6\treplication.factor=1\tcleanup.policy=delete\tretention.ms=2592000000"))
    }

    @Test("oms fulfilment import: a vendor's answers into oms.fulfilment.inbound under ids that make a second import the same answers; a wrong file refused naming its line")
    func fulfilmentImport() async throws {
        let cluster = try TestCluster.make(.basic)
        try await cluster.ensureTopics([FulfilmentUpdate.topic])
        let order = TestCluster.uniqueName("order")
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("answers-\(UUID().uuidString).csv")
        defer { try? FileManager.default.removeItem(at: file) }
        try """
            update_id,order_id,location,kind,line_id,quantity,weight_grams,carrier,tracking_number
            v-1,\(order),SUP-ACME,picked,1,2,,,
            v-2,\(order),SUP-ACME,shipped,,,1200,ups,1Z999
            """.write(to: file, atomically: true, encoding: .utf8)
        for _ in 0..<2 {
            let imported = try await Self.run(Self.omsBinary, ["fulfilment", "import", file.path, "--brokers", cluster.bootstrapServers])
            #expect(imported.status == 0)
            #expect(imported.output.contains("imported 2 answer(s) into oms.fulfilment.inbound"), "\(imported.output)")
        }
        let records = try await TopicScan.records(of: [FulfilmentUpdate.topic], kafka: cluster.configuration, logger: TestCluster.logger)
            .filter { $0.keyString == order }
        let envelopes = records.compactMap { try? Envelope.decode($0.eventRecord) }
        #expect(envelopes.count == 4)
        #expect(Set(envelopes.map(\.id)).count == 2, "imported twice, two answers: the fulfilment stage skips the repeats by id")
        let kinds = envelopes.compactMap { if case .fulfilmentUpdate(let update) = $0.event { update.kind } else { nil } }
        #expect(Set(kinds) == [.picked, .shipped])

        try "update_id,order_id,location,kind\nv-3,\(order),SUP-ACME,shipped\n".write(to: file, atomically: true, encoding: .utf8)
        let refused = try await Self.run(Self.omsBinary, ["fulfilment", "import", file.path, "--brokers", cluster.bootstrapServers], printed: .errors)
        #expect(refused.status == 64)
        #expect(refused.output.contains("line 2: update v-3: a shipped answer needs carrier and trackingNumber"), "\(refused.output)")
    }

    @Test("oms version names librdkafka's version")
    func version() async throws {
        let result = try await Self.run(Self.omsBinary, ["version"])
        #expect(result.status == 0)
        #expect(result.output.contains("librdkafka \(KafkaLibrary.version)"))
        #expect(KafkaLibrary.version.hasPrefix("2."))
    }

    @Test("a bad -X property stops oms with librdkafka's message naming the key")
    func badProperty() async throws {
        let result = try await Self.run(Self.omsBinary, ["produce", "--brokers", "127.0.0.1:1", "--topic", "t", "-X", "no.such.key=1", "v"], printed: .errors)
        #expect(result.status != 0)
        #expect(result.output.contains("no.such.key"))
    }

    @Test("oms report --fx-rates: a bad rates file stops it before Kafka, naming the file and the line")
    func reportBadRates() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("fx-\(UUID().uuidString).csv")
        defer { try? FileManager.default.removeItem(at: file) }
        try "# base: EUR\ndate,currency,rate\n2026-01-01,USD,abc\n".write(to: file, atomically: true, encoding: .utf8)
        let result = try await Self.run(Self.omsBinary, ["report", "orders", "--brokers", "127.0.0.1:1", "--fx-rates", file.path], printed: .errors)
        #expect(result.status == 64)
        #expect(result.output.contains("\(file.path) line 3: rate 'abc' is not a number"), "\(result.output)")
    }
}

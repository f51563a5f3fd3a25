import Foundation
import Kafka
import Logging
import Synchronization

/// A broker for one test: `KAFKA_BROKERS` when set (any real Kafka), otherwise the
/// embedded mock cluster or the shared noida-db process, by what the test needs
/// (docs/ARCHITECTURE.md, "Brokers").
public struct TestCluster: Sendable {
    /// What a test needs of its broker.
    public enum Needs: Sendable {
        /// Anything librdkafka's mock cluster does: produce, consume, groups, injection.
        case basic
        /// Transactions with read_committed, transactional offsets, CreateTopics.
        case full
    }

    /// Where the broker listens.
    public let bootstrapServers: String
    /// Set when the broker is the embedded mock cluster.
    public let embedded: EmbeddedKafka?

    /// A broker at `bootstrapServers`; `embedded` when it is that mock cluster.
    public init(bootstrapServers: String, embedded: EmbeddedKafka?) {
        self.bootstrapServers = bootstrapServers
        self.embedded = embedded
    }

    /// The tests' logger: errors only, unless `TEST_LOG_LEVEL` says otherwise.
    public static let logger: Logger = {
        var logger = Logger(label: "test")
        logger.logLevel = ProcessInfo.processInfo.environment["TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .error
        return logger
    }()

    /// `KAFKA_BROKERS` when set; else a new embedded mock cluster (`.basic`) or the
    /// shared noida-db (`.full`).
    public static func make(_ needs: Needs) throws -> TestCluster {
        if let brokers = ProcessInfo.processInfo.environment["KAFKA_BROKERS"], !brokers.isEmpty {
            return TestCluster(bootstrapServers: brokers, embedded: nil)
        }
        switch needs {
        case .basic:
            let cluster = try EmbeddedKafka(brokers: 3, logger: logger)
            return TestCluster(bootstrapServers: cluster.bootstrapServers, embedded: cluster)
        case .full:
            return TestCluster(bootstrapServers: try NoidaServer.shared.bootstrapServers(), embedded: nil)
        }
    }

    /// A client configuration for this broker.
    public var configuration: KafkaConfiguration { KafkaConfiguration(bootstrapServers: bootstrapServers, clientID: "test") }

    /// A topic name no other test uses, on a broker that may be shared.
    public static func uniqueName(_ prefix: String) -> String {
        "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())"
    }

    /// Creates a fresh topic with a unique name.
    public func createTopic(_ prefix: String, partitions: Int32 = 3) async throws -> String {
        let name = Self.uniqueName(prefix)
        if let embedded {
            try embedded.createTopic(name, partitions: partitions, replicationFactor: 1)
        } else {
            let admin = try KafkaAdmin(configuration: configuration, logger: Self.logger)
            _ = try await admin.createTopic(KafkaTopicSpec(name: name, partitions: partitions, replicationFactor: 1))
        }
        return name
    }

    /// A producer that lingers 1 ms; transactional with `transactionalID`.
    public func producer(transactionalID: String? = nil) throws -> KafkaProducer {
        var configuration = KafkaProducerConfiguration(kafka: configuration)
        configuration.transactionalID = transactionalID
        configuration.linger = .milliseconds(1)
        return try KafkaProducer(configuration: configuration, logger: Self.logger)
    }

    /// A group member with 6 s sessions, read_committed unless said.
    public func consumer(
        group: String,
        isolation: KafkaConsumerConfiguration.IsolationLevel = .readCommitted,
        maxBatchSize: Int = 1000,
        onRebalance: (@Sendable (KafkaConsumerEvent) -> Void)? = nil
    ) throws -> KafkaConsumer {
        var configuration = KafkaConsumerConfiguration(kafka: configuration, groupID: group)
        configuration.isolationLevel = isolation
        configuration.maxBatchSize = maxBatchSize
        configuration.sessionTimeout = .seconds(6)
        return try KafkaConsumer(configuration: configuration, logger: Self.logger, onRebalance: onRebalance)
    }

    /// Produces `count` records `key-i` / `value-i` and waits for their acknowledgement.
    public func produce(_ topic: String, count: Int, prefix: String = "") async throws {
        let producer = try producer()
        for index in 0..<count {
            try await producer.enqueue(KafkaProducerMessage(topic: topic, key: "\(prefix)key-\(index)", value: "\(prefix)value-\(index)"))
        }
        try await producer.close()
    }
}

/// Reads events until `predicate` says stop or `timeout` passes; returns every message seen.
public func collect(
    _ consumer: KafkaConsumer,
    timeout: Duration = .seconds(30),
    commit: Bool = false,
    until predicate: @escaping @Sendable (_ messages: [KafkaMessage], _ event: KafkaConsumerEvent) -> Bool
) async throws -> [KafkaMessage] {
    let seen = Locked<[KafkaMessage]>([])
    let reader = Task {
        for try await event in consumer.events() {
            if case .messages(let batch) = event {
                if commit { try await consumer.commit(batch.map(\.nextOffset)) }
                seen.withLock { $0.append(contentsOf: batch) }
            }
            if predicate(seen.withLock { $0 }, event) { return }
        }
    }
    // Iteration ends when its task is cancelled, so the deadline holds even when no
    // event ever comes.
    let watchdog = Task {
        try await Task.sleep(for: timeout)
        reader.cancel()
    }
    defer { watchdog.cancel() }
    try await reader.value
    return seen.withLock { $0 }
}

/// The shared noida-db broker of this test process (docs/ARCHITECTURE.md, "Brokers"): started on first use
/// with a fresh data directory and a free port, stopped by PID when the process exits.
/// A watchdog shell stops it too if the test process dies without running exit handlers.
public final class NoidaServer: Sendable {
    /// The process's broker.
    public static let shared = NoidaServer()

    /// A broker of its own (started on first use, stopped by ``stop()``).
    public init() {}

    private let state = Mutex<(bootstrap: String?, pid: Int32?, dataDir: String?, failure: String?)>((nil, nil, nil, nil))

    /// Starts the broker on first use; its address.
    public func bootstrapServers() throws -> String {
        try state.withLock { state in
            if let bootstrap = state.bootstrap { return bootstrap }
            if let failure = state.failure { throw NoidaError(message: failure) }
            do {
                let started = try Self.start()
                state = (started.bootstrap, started.pid, started.dataDir, nil)
                atexit { NoidaServer.shared.stop() }
                return started.bootstrap
            } catch {
                state.failure = "\(error)"
                throw error
            }
        }
    }

    struct NoidaError: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }

    /// The data directory of the running server (for restart tests).
    public var dataDirectory: String? { state.withLock { $0.dataDir } }

    /// Stops the broker and deletes its data.
    public func stop() {
        state.withLock { state in
            if let pid = state.pid {
                kill(pid, SIGTERM)
                // Foundation's Process reaps its children itself, so poll for the exit
                // instead of waiting on the pid; a stuck broker gets SIGKILL.
                for _ in 0..<50 where kill(pid, 0) == 0 { usleep(50_000) }
                if kill(pid, 0) == 0 { kill(pid, SIGKILL) }
            }
            if let dir = state.dataDir { try? FileManager.default.removeItem(atPath: dir) }
            state = (nil, nil, nil, nil)
        }
    }

    /// The noida-db executable: `NOIDA_DB_BIN`, else the one in `.venv`.
    public static func binary() throws -> String {
        let environment = ProcessInfo.processInfo.environment
        if let path = environment["NOIDA_DB_BIN"], FileManager.default.isExecutableFile(atPath: path) { return path }
        let lib = repositoryRoot.appendingPathComponent(".venv/lib")
        let pythons = (try? FileManager.default.contentsOfDirectory(atPath: lib.path)) ?? []
        for python in pythons.sorted() {
            let path = lib.appendingPathComponent(python).appendingPathComponent("site-packages/noida_db/noida-db").path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        throw NoidaError(message: "noida-db not found: run scripts/setup (it installs noida-db into .venv) or set NOIDA_DB_BIN or KAFKA_BROKERS")
    }

    /// The checkout this test kit was built from (where Package.swift is).
    public static var repositoryRoot: URL {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    }

    private static func start() throws -> (bootstrap: String, pid: Int32, dataDir: String) {
        let binary = try binary()
        let port = try freePort()
        let dataDir = FileManager.default.temporaryDirectory.appendingPathComponent("noida-\(getpid())-\(port)").path
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: dataDir + "/noida.log", contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["start", "--data-dir", dataDir, "--only", "kafka", "--kafka-port", "\(port)"]
        let logFile = FileHandle(forWritingAtPath: dataDir + "/noida.log") ?? FileHandle.nullDevice
        process.standardOutput = logFile
        process.standardError = logFile
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // A watchdog stops the broker if this test process dies without its exit handler.
        let watchdog = Process()
        watchdog.executableURL = URL(fileURLWithPath: "/bin/sh")
        watchdog.arguments = ["-c", #"while kill -0 "$0" 2>/dev/null; do sleep 1; done; kill "$1" 2>/dev/null; sleep 5; kill -9 "$1" 2>/dev/null"#, "\(getpid())", "\(process.processIdentifier)"]
        // Its stdio must not hold the test runner's pipes: `swift test` waits for their
        // end before it reaps this process, and a zombie still passes `kill -0`.
        watchdog.standardInput = FileHandle.nullDevice
        watchdog.standardOutput = FileHandle.nullDevice
        watchdog.standardError = FileHandle.nullDevice
        try watchdog.run()
        let bootstrap = "127.0.0.1:\(port)"
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if canConnect(port: port) { return (bootstrap, process.processIdentifier, dataDir) }
            guard process.isRunning else { break }
            usleep(100_000)
        }
        process.terminate()
        let log = (try? String(contentsOfFile: dataDir + "/noida.log", encoding: .utf8)) ?? ""
        throw NoidaError(message: "noida-db did not start on port \(port): \(log)")
    }

    /// A TCP port free on 127.0.0.1 now.
    public static func freePort() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw NoidaError(message: "no free port") }
        return UInt16(bigEndian: address.sin_port)
    }

    /// Whether something accepts connections on 127.0.0.1:`port`.
    public static func canConnect(port: UInt16) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = port.bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}

/// A value behind a lock, shareable by reference between tasks and callbacks.
public final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>

    /// Holds `value`.
    public init(_ value: Value) { mutex = Mutex(value) }

    /// Runs `body` on the value, under the lock.
    public func withLock<R: Sendable>(_ body: (inout Value) throws -> R) rethrows -> R {
        try mutex.withLock { try body(&$0) }
    }
}

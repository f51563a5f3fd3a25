import Configuration
import Fleet
import Foundation
import Kafka
import Testing

/// Worker settings from environment variables and a JSON file (pure, no broker).
@Suite("worker configuration")
struct WorkerConfigurationTests {
    func configuration(_ environment: [String: String]) throws -> WorkerConfiguration {
        try WorkerConfiguration(reader: ConfigReader(provider: EnvironmentVariablesProvider(environmentVariables: environment)))
    }

    @Test("environment variables map to keys; defaults fill the rest")
    func environment() throws {
        let settings = try configuration([
            "KAFKA_BROKERS": "k1:9092,k2:9092", "WORKER_MODE": "at-least-once", "WORKER_BATCH_SIZE": "250",
            "WORKER_COMMIT_INTERVAL_MS": "10", "WORKER_INSTANCE_ID": "pod-3", "HTTP_PORT": "-1",
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_PASSWORD": "s3cret",
            "KAFKA_PROPERTIES": "linger.ms=2,compression.type=lz4", "WORKER_STATIC_MEMBERSHIP": "true",
        ])
        #expect(settings.kafka.bootstrapServers == "k1:9092,k2:9092")
        #expect(settings.mode == .atLeastOnce)
        #expect(settings.batchSize == 250)
        #expect(settings.commitInterval == .milliseconds(10))
        #expect(settings.instanceID == "pod-3")
        #expect(settings.httpPort == nil)
        #expect(settings.staticMembership)
        #expect(settings.kafka.properties == [
            "security.protocol": "SASL_SSL", "sasl.password": "s3cret", "linger.ms": "2", "compression.type": "lz4",
        ])
        #expect(settings.retryAttempts == 5)
        #expect(settings.idempotencyRetention == .seconds(7 * 86_400))
        #expect(KafkaConsumerConfiguration(kafka: settings.kafka, groupID: "g").fetchWaitMax == .milliseconds(10))
    }

    @Test("KAFKA_FETCH_WAIT_MS sets how long every consumer of the process waits at the broker")
    func fetchWait() throws {
        let settings = try configuration(["KAFKA_BROKERS": "k:9092", "KAFKA_FETCH_WAIT_MS": "500"])
        #expect(KafkaConsumerConfiguration(kafka: settings.kafka, groupID: "g").fetchWaitMax == .milliseconds(500))
        #expect(WorkerConfiguration.knownEnvironmentVariables.contains("KAFKA_FETCH_WAIT_MS"))
    }

    @Test("a wrong or missing value names its key and environment variable", arguments: [
        (["WORKER_BATCH_SIZE": "lots"], "worker.batch.size (WORKER_BATCH_SIZE): 'lots' is not an integer"),
        (["WORKER_BATCH_SIZE": "0"], "worker.batch.size (WORKER_BATCH_SIZE): 0 is out of range"),
        (["WORKER_MODE": "twice"], "worker.mode (WORKER_MODE): 'twice' is not one of exactly-once, at-least-once"),
        (["LOG_LEVEL": "loud"], "log.level (LOG_LEVEL): 'loud' is not one of"),
        (["KAFKA_PROPERTIES": "linger.ms"], "kafka.properties (KAFKA_PROPERTIES): 'linger.ms' is not key=value"),
        (["WORKER_STATIC_MEMBERSHIP": "maybe"], "worker.static.membership (WORKER_STATIC_MEMBERSHIP): 'maybe' is not true or false"),
        (["KAFKA_FETCH_WAIT_MS": "60000"], "kafka.fetch.wait.ms (KAFKA_FETCH_WAIT_MS): 60000 is out of range 1...30000"),
    ])
    func wrongValue(_ environment: [String: String], _ message: String) throws {
        var environment = environment
        environment["KAFKA_BROKERS"] = "k:9092"
        let error = #expect(throws: ConfigurationError.self) { try configuration(environment) }
        #expect(error?.description.contains(message) == true, "\(error?.description ?? "")")
    }

    @Test("brokers are required")
    func missingBrokers() throws {
        let error = #expect(throws: ConfigurationError.self) { try configuration([:]) }
        #expect(error?.key == "kafka.brokers")
    }

    @Test("a JSON file sets nested keys and the environment overrides it")
    func jsonFile() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("oms-config-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data(#"{"kafka": {"brokers": "file:9092"}, "worker": {"batch": {"size": 42}, "mode": "at-least-once"}}"#.utf8).write(to: file)
        let fromFile = try await WorkerConfiguration.load(environment: [:], file: file.path)
        #expect(fromFile.kafka.bootstrapServers == "file:9092")
        #expect(fromFile.batchSize == 42)
        #expect(fromFile.mode == .atLeastOnce)
        let overridden = try await WorkerConfiguration.load(environment: ["WORKER_BATCH_SIZE": "7"], file: file.path)
        #expect(overridden.batchSize == 7)
        await #expect(throws: ConfigurationError.self) { try await WorkerConfiguration.load(environment: [:], file: "/nonexistent.json") }
    }
}

import Foundation
import Kafka
import Testing

@Suite("Configuration")
struct ConfigurationTests {
    private let kafka = KafkaConfiguration(bootstrapServers: "127.0.0.1:1")

    @Test("consumers are not given librdkafka's producer-only properties, read from librdkafka's own table; the rest reach them, and producers get all")
    func producerOnlyProperties() {
        var shared = kafka
        shared.properties = ["compression.type": "lz4", "linger.ms": "2", "socket.timeout.ms": "3000", "fetch.max.bytes": "1000"]
        let consumer = Dictionary(KafkaConsumerConfiguration(kafka: shared, groupID: "g").librdkafkaProperties) { $1 }
        #expect(consumer["compression.type"] == nil && consumer["linger.ms"] == nil)
        #expect(consumer["socket.timeout.ms"] == "3000" && consumer["fetch.max.bytes"] == "1000")
        let producer = Dictionary(KafkaProducerConfiguration(kafka: shared).librdkafkaProperties) { $1 }
        #expect(producer["compression.type"] == "lz4" && producer["linger.ms"] == "2" && producer["socket.timeout.ms"] == "3000")
        // The linked librdkafka's table, not a list of ours: it has dozens of producer properties.
        #expect(KafkaConsumerConfiguration.producerOnlyProperties.isSuperset(of: ["acks", "compression.type", "transactional.id", "message.timeout.ms"]))
        #expect(!KafkaConsumerConfiguration.producerOnlyProperties.contains("bootstrap.servers"))
        #expect(!KafkaConsumerConfiguration.producerOnlyProperties.contains("fetch.max.bytes"))
    }

    @Test("librdkafka's property table: the names of scope P, padded columns trimmed, other rows and lines ignored")
    func producerScopedRows() {
        let table = """
            ## Global configuration properties

            Property                                 | C/P | Range           |       Default | Importance | Description
            -----------------------------------------|-----|-----------------|--------------:|------------| ----------
            client.id                                |  *  |                 |       rdkafka | low        | Client identifier.
            linger.ms                                |  P  | 0 .. 900000     |             5 | high       | Delay | in ms.
            fetch.wait.max.ms                        |  C  | 0 .. 300000     |           500 | low        | Maximum time.
            acks                                     |  P  | -1 .. 1000      |            -1 | high       | Alias.
            """
        #expect(KafkaConsumerConfiguration.producerScoped(in: table) == ["linger.ms", "acks"])
    }

    @Test("an unknown property stops start-up with librdkafka's message naming it")
    func unknownKey() {
        var configuration = KafkaProducerConfiguration(kafka: kafka)
        configuration.kafka.properties["no.such.property"] = "1"
        let error = #expect(throws: KafkaError.self) { try KafkaProducer(configuration: configuration) }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.contains("no.such.property") == true)
    }

    @Test("an invalid value stops start-up naming the property")
    func invalidValue() {
        var configuration = KafkaConsumerConfiguration(kafka: kafka, groupID: "g")
        configuration.kafka.properties["session.timeout.ms"] = "soon"
        let error = #expect(throws: KafkaError.self) { try KafkaConsumer(configuration: configuration) }
        #expect(error?.message.contains("session.timeout.ms") == true)
    }

    @Test("SASL and TLS properties pass through to librdkafka")
    func securityPassThrough() throws {
        var configuration = KafkaProducerConfiguration(kafka: kafka)
        configuration.kafka.properties = [
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "SCRAM-SHA-256",
            "sasl.username": "oms",
            "sasl.password": "secret",
        ]
        _ = try KafkaProducer(configuration: configuration)

        configuration.kafka.properties = ["sasl.mechanism": "NOT-A-MECHANISM", "security.protocol": "SASL_PLAINTEXT"]
        let error = #expect(throws: KafkaError.self) { try KafkaProducer(configuration: configuration) }
        #expect(error?.message.contains("sasl.mechanism") == true || error?.message.contains("NOT-A-MECHANISM") == true)
    }

    @Test("a zero batch size is refused")
    func batchSize() {
        var configuration = KafkaConsumerConfiguration(kafka: kafka, groupID: "g")
        configuration.maxBatchSize = 0
        let error = #expect(throws: KafkaError.self) { try KafkaConsumer(configuration: configuration) }
        #expect(error?.message.contains("maxBatchSize") == true)
    }

    @Test("error classes: librdkafka codes keep their names")
    func errorNames() {
        #expect(KafkaError.Code.unknownTopicOrPartition.name == "UNKNOWN_TOPIC_OR_PART")
        #expect(KafkaError.Code.producerFenced.name == "_FENCED")
        let error = KafkaError(code: .timedOut, message: "slow", isRetriable: true)
        #expect(error.description == "_TIMED_OUT: slow [retriable]")
    }
}

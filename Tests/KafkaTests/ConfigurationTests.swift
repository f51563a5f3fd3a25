import Foundation
import Kafka
import Testing

@Suite("Configuration")
struct ConfigurationTests {
    private let kafka = KafkaConfiguration(bootstrapServers: "127.0.0.1:1")

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

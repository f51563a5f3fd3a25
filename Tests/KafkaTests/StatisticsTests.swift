import Foundation
import Kafka
import Metrics
import MetricsTestKit
import OrderFleetTesting
import Testing

/// The one test in this process that bootstraps swift-metrics (it can be done once).
@Suite("librdkafka statistics")
struct StatisticsTests {
    static let metrics: TestMetrics = {
        let metrics = TestMetrics()
        MetricsSystem.bootstrap(metrics)
        return metrics
    }()

    @Test("statistics feed swift-metrics gauges")
    func statisticsToMetrics() async throws {
        let metrics = Self.metrics
        let cluster = try TestCluster.make(.basic)
        let topic = try await cluster.createTopic("stats", partitions: 1)
        let clientID = TestCluster.uniqueName("stats")
        var configuration = KafkaProducerConfiguration(kafka: cluster.configuration)
        configuration.kafka.clientID = clientID
        configuration.kafka.statisticsInterval = .milliseconds(100)
        let producer = try KafkaProducer(configuration: configuration, logger: TestCluster.logger)
        for index in 0..<50 { try await producer.enqueue(KafkaProducerMessage(topic: topic, key: "k", value: "v\(index)")) }
        try await producer.flush()

        try await eventually("librdkafka reported 50 transmitted messages") {
            let gauge = try? metrics.expectGauge("kafka_client_transmitted_messages", [("client_id", clientID)])
            return (gauge?.lastValue ?? 0) >= 50
        }
        try await producer.close()
    }
}

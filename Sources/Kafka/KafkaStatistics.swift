import Foundation
import Metrics
import Synchronization

/// Feeds librdkafka's statistics (emitted every `statistics.interval.ms`) into
/// swift-metrics gauges, so they reach whatever backend the process bootstrapped
/// (Prometheus in OrderFleet's workers).
///
/// Only a few figures are kept: what an operator looks at first when a client
/// misbehaves. Per-partition consumer lag is the one that drives autoscaling.
final class KafkaStatistics: Sendable {
    private let clientID: String
    private let queuedMessages: Gauge
    private let transmittedMessages: Gauge
    private let receivedMessages: Gauge
    /// Whether some broker connection is up, as of the last statistics (or the last
    /// all-brokers-down error); nil until either came.
    private let brokersUp = Mutex<Bool?>(nil)

    /// Whether a broker of the cluster is reachable: false once librdkafka reported all
    /// brokers down or its statistics show no connection up, true again once they show
    /// one up. True before anything is known (statistics off, or not yet emitted).
    var brokersReachable: Bool { brokersUp.withLock { $0 } ?? true }

    /// librdkafka said that no broker can be reached.
    func allBrokersDown() { brokersUp.withLock { $0 = false } }

    init(clientID: String) {
        self.clientID = clientID
        let dimensions = [("client_id", clientID)]
        queuedMessages = Gauge(label: "kafka_client_queued_messages", dimensions: dimensions)
        transmittedMessages = Gauge(label: "kafka_client_transmitted_messages", dimensions: dimensions)
        receivedMessages = Gauge(label: "kafka_client_received_messages", dimensions: dimensions)
    }

    func record(json: [UInt8]) {
        guard let root = (try? JSONSerialization.jsonObject(with: Data(json))) as? [String: Any] else { return }
        if let value = root["msg_cnt"] as? Int { queuedMessages.record(value) }
        if let value = root["txmsgs"] as? Int { transmittedMessages.record(value) }
        if let value = root["rxmsgs"] as? Int { receivedMessages.record(value) }
        if let brokers = root["brokers"] as? [String: Any] {
            let up = brokers.values.contains { (($0 as? [String: Any])?["state"] as? String) == "UP" }
            brokersUp.withLock { $0 = up }
        }
        guard let topics = root["topics"] as? [String: Any] else { return }
        for (topic, entry) in topics {
            guard let partitions = (entry as? [String: Any])?["partitions"] as? [String: Any] else { continue }
            for (partition, stats) in partitions {
                // librdkafka reports -1 for partitions this consumer does not fetch.
                guard partition != "-1", let lag = (stats as? [String: Any])?["consumer_lag"] as? Int, lag >= 0 else { continue }
                Gauge(
                    label: "kafka_consumer_lag",
                    dimensions: [("client_id", clientID), ("topic", topic), ("partition", partition)]
                ).record(lag)
            }
        }
    }
}

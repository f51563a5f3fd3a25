import ArgumentParser
import Foundation
import Kafka

/// Options shared by every command that talks to a Kafka cluster.
struct ClientOptions: ParsableArguments {
    @Option(name: .long, help: "Bootstrap servers, host:port[,host:port…]. Default: $KAFKA_BROKERS.")
    var brokers: String?

    @Option(name: .customShort("X"), help: ArgumentHelp("A librdkafka property, e.g. -X security.protocol=SASL_SSL (repeatable).", valueName: "key=value"))
    var properties: [String] = []

    func kafkaConfiguration(clientID: String = "oms") throws -> KafkaConfiguration {
        guard let brokers = brokers ?? ProcessInfo.processInfo.environment["KAFKA_BROKERS"], !brokers.isEmpty else {
            throw ValidationError("no brokers: pass --brokers or set KAFKA_BROKERS")
        }
        var parsed: [String: String] = [:]
        for property in properties {
            guard let equals = property.firstIndex(of: "="), equals != property.startIndex else {
                throw ValidationError("-X \(property): expected key=value")
            }
            parsed[String(property[..<equals])] = String(property[property.index(after: equals)...])
        }
        return KafkaConfiguration(bootstrapServers: brokers, clientID: clientID, properties: parsed)
    }
}

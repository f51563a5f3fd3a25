import Contracts
import Kafka

extension KafkaMessage {
    /// The record as the contracts see it, for `Envelope.decode`.
    public var eventRecord: EventRecord {
        EventRecord(key: keyString ?? "", headers: headers.map { EventHeader(name: $0.name, value: $0.value ?? []) }, value: value ?? [])
    }
}

extension KafkaProducerMessage {
    /// The envelope as a Kafka record (binary-mode CloudEvents) for `topic`; `key`
    /// replaces the event's own partition key (e.g. a changelog's state key).
    public init(_ envelope: Envelope, topic: String, partition: Int32? = nil, key: String? = nil) throws(ContractError) {
        let record = try envelope.record()
        self.init(
            topic: topic, partition: partition, key: Array((key ?? record.key).utf8), value: record.value,
            headers: record.headers.map { KafkaHeader(name: $0.name, value: $0.value) }
        )
    }
}

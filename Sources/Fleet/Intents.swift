import Contracts
import Foundation
import Kafka
import StageMachine

/// The Kafka encoding of an at-least-once intent (``OutputRecord/intent(partition:key:records:)``):
/// the records of one input as JSON, each as the Kafka record it is written as, so that
/// a restore writes them again byte for byte (dead letters included) and reads the
/// state changes and keys back into memory.
enum IntentCodec {
    struct Item: Codable {
        enum Kind: String, Codable { case record, state, key }
        var kind: Kind
        var topic: String
        var partition: Int32?
        var key: Data?
        var value: Data?
        var headers: [Header]
        var expiresAt: Int64?
    }

    struct Header: Codable {
        var name: String
        var value: Data?
    }

    /// The value of an intent record holding `messages` (with what each one is).
    static func encode(_ items: [(OutputRecord, KafkaProducerMessage)]) throws -> [UInt8] {
        let encoded = items.map { record, message in
            let kind: Item.Kind
            var expiresAt: Int64?
            switch record {
            case .state: kind = .state
            case .idempotency(_, _, _, let expiry):
                kind = .key
                expiresAt = expiry
            default: kind = .record
            }
            return Item(
                kind: kind, topic: message.topic, partition: message.partition, key: message.key.map { Data($0) },
                value: message.value.map { Data($0) }, headers: message.headers.map { Header(name: $0.name, value: $0.value.map { Data($0) }) },
                expiresAt: expiresAt)
        }
        // Written without Foundation's encoder: at least once writes one intent per input.
        return encoded.canonicalJSON()
    }

    /// The records of an intent's value: state and keys as the machine applies them,
    /// the rest as encoded records.
    static func decode(_ value: [UInt8]) throws -> [OutputRecord] {
        let items = try JSONDecoder().decode([Item].self, from: Data(value))
        return try items.map { item in
            let headers = item.headers.map { KafkaHeader(name: $0.name, value: $0.value.map { [UInt8]($0) }) }
            let message = KafkaMessage(
                topic: item.topic, partition: item.partition ?? 0, offset: 0, key: item.key.map { [UInt8]($0) },
                value: item.value.map { [UInt8]($0) }, headers: headers)
            switch item.kind {
            case .record:
                return .encoded(EncodedRecord(
                    topic: item.topic, partition: item.partition, key: message.key, value: message.value,
                    headers: headers.map { EncodedRecord.Header(name: $0.name, value: $0.value) }))
            case .state:
                let envelope = message.value == nil ? nil : try Envelope.decode(message.eventRecord)
                return .state(partition: item.partition ?? 0, key: message.keyString ?? "", envelope: envelope)
            case .key:
                let envelope = try Envelope.decode(message.eventRecord)
                return .idempotency(partition: item.partition ?? 0, key: message.keyString ?? "", envelope: envelope, expiresAt: item.expiresAt)
            }
        }
    }
}

extension IntentCodec.Item: CanonicalJSONWritable {
    /// The members in key order, absent ones left out, as `JSONDecoder` reads them back.
    func writeCanonicalJSON(to json: inout CanonicalJSONWriter) {
        json.beginObject()
        if let expiresAt { json.member("expiresAt", expiresAt) }
        json.member("headers", headers)
        if let key { json.member("key", key) }
        json.member("kind", kind)
        if let partition { json.member("partition", partition) }
        json.member("topic", topic)
        if let value { json.member("value", value) }
        json.endObject()
    }
}

extension IntentCodec.Item.Kind: CanonicalJSONWritable {}

extension IntentCodec.Header: CanonicalJSONWritable {
    /// `{"name":…,"value":…}`, the value left out when absent.
    func writeCanonicalJSON(to json: inout CanonicalJSONWriter) {
        json.beginObject()
        json.member("name", name)
        if let value { json.member("value", value) }
        json.endObject()
    }
}

import Contracts
import Foundation
import Kafka
import StageMachine

/// The Kafka encoding of an at-least-once intent (``OutputRecord/intent(partition:key:records:)``):
/// the records of one input, each as the Kafka record it is written as, so that a restore
/// writes them again byte for byte (dead letters included) and reads the state changes and
/// keys back into memory.
///
/// Written in a binary form (``binaryFormat`` first, then length-prefixed fields): every
/// at-least-once input writes one, holding a copy of each of its records, and JSON with
/// base64 bytes took ~6 % of the pass-through stage's samples (issue 23). Intents written
/// before, as a JSON array, still read: a restore after an upgrade may find one not done.
enum IntentCodec {
    /// What a record of an intent is: one byte in the binary form, its name in the JSON one.
    enum Kind: UInt8, Codable, CaseIterable {
        case record = 0, state = 1, key = 2

        init(from decoder: any Decoder) throws {
            let name = try decoder.singleValueContainer().decode(String.self)
            guard let kind = Kind.allCases.first(where: { "\($0)" == name }) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown kind of record '\(name)'"))
            }
            self = kind
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode("\(self)")
        }
    }

    /// A record of an intent in the JSON form that versions before the binary one wrote.
    struct Item: Codable {
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

    /// The first byte of a binary intent; a JSON one starts with `[`.
    static let binaryFormat: UInt8 = 1

    /// The value of an intent record holding `messages` (with what each one is).
    static func encode(_ items: [(OutputRecord, KafkaProducerMessage)]) throws -> [UInt8] {
        var writer = BinaryWriter()
        writer.bytes.reserveCapacity(size(of: items.lazy.map(\.1)))
        writer.bytes.append(binaryFormat)
        writer.count(items.count)
        for (record, message) in items {
            var expiresAt: Int64?
            switch record {
            case .state: writer.bytes.append(Kind.state.rawValue)
            case .idempotency(_, _, _, let expiry):
                writer.bytes.append(Kind.key.rawValue)
                expiresAt = expiry
            default: writer.bytes.append(Kind.record.rawValue)
            }
            writer.field(message.topic)
            writer.optional(message.partition)
            writer.field(message.key)
            writer.field(message.value)
            writer.count(message.headers.count)
            for header in message.headers {
                writer.field(header.name)
                writer.field(header.value)
            }
            writer.optional(expiresAt)
        }
        return writer.bytes
    }

    /// The size of an intent holding `messages`, at most: the records' own bytes
    /// (``KafkaRecordSizeLimits/size(of:)``, which counts 10 bytes per header, 8 used here)
    /// plus 31 bytes and the topic's name each, plus 5.
    static func size(of messages: some Sequence<KafkaProducerMessage>) -> Int {
        messages.reduce(5) { $0 + KafkaRecordSizeLimits.size(of: $1) + $1.topic.utf8.count + 31 }
    }

    /// The records of an intent's value: state and keys as the machine applies them,
    /// the rest as encoded records.
    static func decode(_ value: [UInt8]) throws -> [OutputRecord] {
        guard value.first == binaryFormat else { return try decodeJSON(value) }
        var reader = BinaryReader(bytes: value, position: 1)
        let count = try reader.count()
        var records: [OutputRecord] = []
        records.reserveCapacity(count)
        for _ in 0..<count {
            guard let kind = Kind(rawValue: try reader.byte()) else { throw IntentFormatError(reason: "unknown kind of record") }
            let topic = String(decoding: try reader.field() ?? [], as: UTF8.self)
            let partition: Int32? = try reader.optional()
            let key = try reader.field()
            let value = try reader.field()
            var headers: [KafkaHeader] = []
            let headerCount = try reader.count()
            headers.reserveCapacity(headerCount)
            for _ in 0..<headerCount {
                headers.append(KafkaHeader(name: String(decoding: try reader.field() ?? [], as: UTF8.self), value: try reader.field()))
            }
            let expiresAt: Int64? = try reader.optional()
            records.append(try record(kind: kind, topic: topic, partition: partition, key: key, value: value, headers: headers, expiresAt: expiresAt))
        }
        guard reader.position == value.count else { throw IntentFormatError(reason: "\(value.count - reader.position) bytes after the last record") }
        return records
    }

    /// An intent written before the binary form: a JSON array of ``Item``s.
    private static func decodeJSON(_ value: [UInt8]) throws -> [OutputRecord] {
        let items = try JSONDecoder().decode([Item].self, from: Data(value))
        return try items.map { item in
            let headers = item.headers.map { KafkaHeader(name: $0.name, value: $0.value.map { [UInt8]($0) }) }
            return try record(
                kind: item.kind, topic: item.topic, partition: item.partition, key: item.key.map { [UInt8]($0) }, value: item.value.map { [UInt8]($0) },
                headers: headers, expiresAt: item.expiresAt)
        }
    }

    private static func record(
        kind: Kind, topic: String, partition: Int32?, key: [UInt8]?, value: [UInt8]?, headers: [KafkaHeader], expiresAt: Int64?
    ) throws -> OutputRecord {
        // State and keys are decoded, through the message an envelope is read from; other
        // records are written back as they are.
        func message() -> KafkaMessage { KafkaMessage(topic: topic, partition: partition ?? 0, offset: 0, key: key, value: value, headers: headers) }
        switch kind {
        case .record:
            return .encoded(EncodedRecord(
                topic: topic, partition: partition, key: key, value: value, headers: headers.map { EncodedRecord.Header(name: $0.name, value: $0.value) }))
        case .state:
            let message = message()
            let envelope = value == nil ? nil : try Envelope.decode(message.eventRecord)
            return .state(partition: partition ?? 0, key: message.keyString ?? "", envelope: envelope)
        case .key:
            let message = message()
            let envelope = try Envelope.decode(message.eventRecord)
            return .idempotency(partition: partition ?? 0, key: message.keyString ?? "", envelope: envelope, expiresAt: expiresAt)
        }
    }

    /// Why an intent's value cannot be read.
    struct IntentFormatError: Error, CustomStringConvertible {
        var reason: String
        var description: String { "intent: \(reason)" }
    }

    /// Little-endian integers; a field is its length (-1: absent) and its bytes.
    private struct BinaryWriter {
        var bytes: [UInt8] = []

        mutating func integer<T: FixedWidthInteger>(_ value: T) {
            withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
        }

        mutating func count(_ value: Int) { integer(UInt32(value)) }

        mutating func field(_ value: [UInt8]?) {
            guard let value else { return integer(Int32(-1)) }
            integer(Int32(value.count))
            bytes.append(contentsOf: value)
        }

        /// A name, its UTF-8 bytes appended without an array of its own.
        mutating func field(_ text: String) {
            integer(Int32(text.utf8.count))
            bytes.append(contentsOf: text.utf8)
        }

        mutating func optional<T: FixedWidthInteger>(_ value: T?) {
            guard let value else { return bytes.append(0) }
            bytes.append(1)
            integer(value)
        }
    }

    private struct BinaryReader {
        let bytes: [UInt8]
        var position: Int

        mutating func byte() throws -> UInt8 {
            guard position < bytes.count else { throw IntentFormatError(reason: "cut short at byte \(position)") }
            defer { position += 1 }
            return bytes[position]
        }

        mutating func integer<T: FixedWidthInteger>(_: T.Type = T.self) throws -> T {
            let size = MemoryLayout<T>.size
            guard bytes.count - position >= size else { throw IntentFormatError(reason: "cut short at byte \(position)") }
            var value = T.zero
            withUnsafeMutableBytes(of: &value) { target in
                bytes.withUnsafeBytes { source in target.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[position..<position + size])) }
            }
            position += size
            return T(littleEndian: value)
        }

        mutating func count() throws -> Int { Int(try integer(UInt32.self)) }

        mutating func field() throws -> [UInt8]? {
            let length = try integer(Int32.self)
            guard length >= 0 else { return nil }
            guard bytes.count - position >= Int(length) else { throw IntentFormatError(reason: "a field of \(length) bytes cut short at byte \(position)") }
            defer { position += Int(length) }
            return Array(bytes[position..<position + Int(length)])
        }

        mutating func optional<T: FixedWidthInteger>() throws -> T? {
            try byte() == 0 ? nil : try integer(T.self)
        }
    }
}

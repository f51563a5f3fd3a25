import Contracts
import Foundation
import Kafka
import StageMachine
import Testing

@testable import Fleet

/// At least once's intents are written in a binary form and read in it or in the JSON
/// form written before: what goes in comes back, either way.
@Suite("at-least-once intents")
struct IntentCodecTests {
    @Test("an intent of a raw record, a state tombstone and an idempotency key reads back as written")
    func intentReadsBackAsWritten() throws {
        let (items, check) = try Self.sample()
        let value = try IntentCodec.encode(items)
        #expect(value.first == IntentCodec.binaryFormat)
        try check(try IntentCodec.decode(value))
    }

    @Test("an intent written as JSON before the binary form still reads")
    func jsonIntentStillReads() throws {
        let (items, check) = try Self.sample()
        // What earlier versions wrote: the records as JSON items, bytes in base64.
        let json = try JSONEncoder().encode(items.map { record, message in
            let kind: IntentCodec.Kind
            var expiresAt: Int64?
            switch record {
            case .state: kind = .state
            case .idempotency(_, _, _, let expiry): (kind, expiresAt) = (.key, expiry)
            default: kind = .record
            }
            return IntentCodec.Item(
                kind: kind, topic: message.topic, partition: message.partition, key: message.key.map { Data($0) }, value: message.value.map { Data($0) },
                headers: message.headers.map { IntentCodec.Header(name: $0.name, value: $0.value.map { Data($0) }) }, expiresAt: expiresAt)
        })
        #expect(json.first == UInt8(ascii: "["))
        try check(try IntentCodec.decode([UInt8](json)))
    }

    @Test("the size check's bound holds and is tight, and a cut intent is refused")
    func sizeBoundAndCutIntent() throws {
        let (items, _) = try Self.sample()
        let value = try IntentCodec.encode(items)
        let bound = IntentCodec.size(of: items.map(\.1))
        // Over by at most 2 bytes a header, and an absent partition's and expiry's 12.
        let headers = items.reduce(0) { $0 + $1.1.headers.count }
        #expect(bound >= value.count && bound <= value.count + 2 * headers + 12 * items.count, "bound \(bound), encoded \(value.count)")
        #expect(throws: IntentCodec.IntentFormatError.self) { try IntentCodec.decode(Array(value.dropLast())) }
        #expect(throws: IntentCodec.IntentFormatError.self) { try IntentCodec.decode(value + [0]) }
    }

    /// Three records of each kind and a check that decoded records are them.
    private static func sample() throws -> ([(OutputRecord, KafkaProducerMessage)], ([OutputRecord]) throws -> Void) {
        let time = Date(timeIntervalSince1970: 1_780_000_000.25)
        let keyRecord = IdempotencyRecord(stage: "intake", key: "k/\"1\"", eventId: "e-1", processedAt: time, expiresAt: time.addingTimeInterval(60))
        let envelope = Envelope(id: "00000000-0000-4000-8000-000000000001", source: "oms/intake", time: time, event: keyRecord.event)
        let written = try envelope.record()
        let keyMessage = KafkaProducerMessage(
            topic: "oms.idempotency", partition: 2, key: Array(written.key.utf8), value: written.value,
            headers: written.headers.map { KafkaHeader(name: $0.name, value: $0.value) })
        let raw = EncodedRecord(
            topic: "oms.deadletter", partition: nil, key: nil, value: [0, 1, 0xFF, 0x22, 0x2F, 0x5C],
            headers: [.init(name: "x/y\"", value: nil), .init(name: "h", value: [0xC3])])
        let rawMessage = KafkaProducerMessage(
            topic: raw.topic, partition: raw.partition, key: raw.key, value: raw.value,
            headers: raw.headers.map { KafkaHeader(name: $0.name, value: $0.value) })
        let tombstone = KafkaProducerMessage(topic: "intake.changelog", partition: 1, key: Array("order-1".utf8), value: nil)

        let items: [(OutputRecord, KafkaProducerMessage)] = [
            (.encoded(raw), rawMessage),
            (.state(partition: 1, key: "order-1", envelope: nil), tombstone),
            (.idempotency(partition: 2, key: written.key, envelope: envelope, expiresAt: 1_780_000_060_250), keyMessage),
        ]
        return (items, { back in try check(back, raw: raw, written: written, envelope: envelope) })
    }

    private static func check(_ back: [OutputRecord], raw: EncodedRecord, written: EventRecord, envelope: Envelope) throws {
        #expect(back.count == 3)
        guard back.count == 3 else { return }
        guard case .encoded(let readRaw) = back[0] else { Issue.record("expected a raw record, got \(back[0])"); return }
        #expect(readRaw == raw)
        guard case .state(let partition, let key, let state) = back[1] else { Issue.record("expected a state record, got \(back[1])"); return }
        #expect(partition == 1 && key == "order-1" && state == nil)
        guard case .idempotency(let keyPartition, let readKey, let readEnvelope, let expiresAt) = back[2] else {
            Issue.record("expected a key, got \(back[2])")
            return
        }
        #expect(keyPartition == 2 && readKey == written.key && readEnvelope == envelope && expiresAt == 1_780_000_060_250)
    }
}

import Contracts
import Foundation
import Kafka
import StageMachine
import Testing

@testable import Fleet

/// At least once's intents are written without Foundation's encoder and read with its
/// decoder (so intents written before the change still read): what goes in comes back.
@Suite("at-least-once intents")
struct IntentCodecTests {
    @Test("an intent of a raw record, a state tombstone and an idempotency key reads back as written")
    func intentReadsBackAsWritten() throws {
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

        let value = try IntentCodec.encode([
            (.encoded(raw), rawMessage),
            (.state(partition: 1, key: "order-1", envelope: nil), tombstone),
            (.idempotency(partition: 2, key: written.key, envelope: envelope, expiresAt: 1_780_000_060_250), keyMessage),
        ])
        let back = try IntentCodec.decode(value)

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

import Contracts
import Foundation
import Kafka
import StageMachine
import Testing

@testable import Fleet

/// The runner encodes an output once for the machine's size check and reuses it for its
/// write and its intent; a record is reused only for the very same record.
@Suite("records encoded once")
struct EncodedRecordCacheTests {
    static let time = Date(timeIntervalSince1970: 1_780_000_000)

    static func envelope(id: String, bucket: String) -> Envelope {
        Envelope(
            id: id, source: "oms/test", time: time,
            event: ReportBucket(report: "r", bucket: bucket, values: ["n": 1], updatedAt: time).event)
    }

    /// Encodes `record` through `cache`, counting the encodings in `count`.
    static func message(_ record: OutputRecord, _ cache: EncodedRecordCache, count: inout Int) throws -> KafkaProducerMessage? {
        try cache.message(for: record) {
            count += 1
            guard case .output(let topic, let envelope) = record else { return nil }
            return try KafkaProducerMessage(envelope, topic: topic)
        }
    }

    @Test("the same output is encoded once however often it is asked for, until the cache is emptied")
    func sameOutputIsEncodedOnce() throws {
        let cache = EncodedRecordCache()
        let record = OutputRecord.output(topic: "oms.reports", envelope: Self.envelope(id: "e-1", bucket: "a"))
        var count = 0
        let first = try Self.message(record, cache, count: &count)
        let again = try Self.message(record, cache, count: &count)
        #expect(count == 1)
        #expect(first?.value == again?.value && first?.value != nil)
        cache.removeAll()
        _ = try Self.message(record, cache, count: &count)
        #expect(count == 2)
    }

    @Test("a record with the same id but other content, or for another topic, is encoded on its own")
    func otherContentIsEncodedAgain() throws {
        let cache = EncodedRecordCache()
        var count = 0
        let first = try Self.message(.output(topic: "oms.reports", envelope: Self.envelope(id: "e-1", bucket: "a")), cache, count: &count)
        let changed = try Self.message(.output(topic: "oms.reports", envelope: Self.envelope(id: "e-1", bucket: "b")), cache, count: &count)
        let elsewhere = try Self.message(.output(topic: "oms.other", envelope: Self.envelope(id: "e-1", bucket: "a")), cache, count: &count)
        #expect(count == 3)
        #expect(first?.value != changed?.value)
        #expect(elsewhere?.topic == "oms.other")
    }

    @Test("tombstones and dead letters are not kept")
    func recordsWithoutEnvelopeAreNotKept() throws {
        let cache = EncodedRecordCache()
        var count = 0
        let tombstone = OutputRecord.state(partition: 0, key: "k", envelope: nil)
        _ = try Self.message(tombstone, cache, count: &count)
        _ = try Self.message(tombstone, cache, count: &count)
        #expect(count == 2)
    }
}

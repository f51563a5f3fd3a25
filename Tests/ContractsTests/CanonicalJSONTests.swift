import Foundation
import Testing

@testable import Contracts

/// The events' own JSON writers (`CanonicalJSONWritable`, generated) against Foundation's
/// encoder, which defines the canonical form: any difference would be a second content
/// under one event id.
@Suite("canonical JSON written without Foundation's encoder")
struct CanonicalJSONTests {
    /// Characters a key or a stage name could hold, the awkward ones above all.
    static let alphabet: [Character] = Array("aZ09-_/.:~\"\\ é中🙂") + (0..<0x20).map { Character(Unicode.Scalar($0)!) }
        + ["\u{7F}", "\u{2028}", "\u{2029}", "\u{FEFF}"]

    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static func text(_ generator: inout Generator) -> String {
        String((0..<Int.random(in: 0...12, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
    }

    /// What Foundation's `JSONEncoder`, configured as ``EventCodec`` configures it, writes.
    static func foundation(_ value: some Encodable) throws -> [UInt8] {
        Array(try EventCodec.makeEncoder().encode(value))
    }

    @Test("every sample event, with every optional field and with none, is written byte for byte as the encoder writes it")
    func everySampleEventMatchesTheEncoder() throws {
        for event in try EventSamples.full() + EventSamples.minimal() {
            let expected = try Self.foundation(event.payload)
            #expect(event.payload.canonicalJSON() == expected, "\(String(decoding: expected, as: UTF8.self))")
            #expect(try EventCodec.encode(event.payload) == expected)
        }
    }

    @Test("maps with awkward keys, integers at their limits and raw bytes are written as the encoder writes them, 2,000 times")
    func mapsIntegersAndBytesMatchTheEncoder() throws {
        var generator = Generator(state: 7)
        let limits: [Int64] = [.min, .max, 0, -1, 9_007_199_254_740_993]
        for round in 0..<2_000 {
            var values: [String: Int64] = [:]
            for _ in 0..<Int.random(in: 0...6, using: &generator) {
                values[Self.text(&generator)] = round % 3 == 0 ? limits.randomElement(using: &generator)! : Int64.random(in: .min ... .max, using: &generator)
            }
            let time = Date(timeIntervalSince1970: Double(Int64.random(in: 0...4_102_444_800_000, using: &generator)) / 1000)
            let bucket = ReportBucket(report: Self.text(&generator), bucket: Self.text(&generator), values: values, updatedAt: time)
            let payload = Data((0..<Int.random(in: 0...40, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) })
            let inbound = InboundChannelOrder(channel: Self.text(&generator), format: .shopifyOrder, externalOrderId: Self.text(&generator), payload: payload, receivedAt: time)
            for (written, expected) in [(bucket.canonicalJSON(), try Self.foundation(bucket)), (inbound.canonicalJSON(), try Self.foundation(inbound))] {
                #expect(written == expected, "\(String(decoding: expected, as: UTF8.self))")
                if written != expected { return }
            }
        }
    }

    /// What Foundation's `JSONDecoder`, configured as ``EventCodec`` configures it, reads.
    static func foundation<T: Decodable>(_ type: T.Type, _ bytes: [UInt8]) throws -> T {
        try EventCodec.makeDecoder().decode(type, from: Data(bytes))
    }

    /// Reads `bytes` without Foundation, as the record path does.
    static func fast<T: CanonicalJSONReadable>(_ type: T.Type, _ bytes: [UInt8]) -> T? {
        (try? JSONValue.parse(bytes)).flatMap { T(canonicalJSON: $0) }
    }

    @Test("every sample event is read back without Foundation's decoder as the decoder reads it")
    func everySampleEventReadsAsTheDecoderReadsIt() throws {
        func check<T: ContractEvent>(_ event: T) throws {
            let bytes = try Self.foundation(event)
            let read = try #require(Self.fast(T.self, bytes), "\(String(decoding: bytes, as: UTF8.self))")
            #expect(read == (try Self.foundation(T.self, bytes)))
            #expect(read == event)
        }
        for event in try EventSamples.full() + EventSamples.minimal() {
            try check(event.payload)
        }
    }

    @Test("maps with awkward keys and escaped strings, integers at their limits and raw bytes read back as the decoder reads them, 2,000 times")
    func mapsIntegersAndBytesReadAsTheDecoderReadsThem() throws {
        var generator = Generator(state: 11)
        for _ in 0..<2_000 {
            var values: [String: Int64] = [:]
            for _ in 0..<Int.random(in: 0...6, using: &generator) {
                values[Self.text(&generator)] = [Int64.min, .max, 0, Int64.random(in: .min ... .max, using: &generator)].randomElement(using: &generator)!
            }
            let time = Date(timeIntervalSince1970: Double(Int64.random(in: 0...4_102_444_800_000, using: &generator)) / 1000)
            let bucket = ReportBucket(report: Self.text(&generator), bucket: Self.text(&generator), values: values, updatedAt: time)
            let bytes = try Self.foundation(bucket)
            let read = Self.fast(ReportBucket.self, bytes)
            #expect(read == bucket, "\(String(decoding: bytes, as: UTF8.self))")
            if read != bucket { return }
        }
    }

    @Test("JSON the fast reader does not take is read by Foundation, which accepts it or names the field", arguments: [
        // Accepted by Foundation only: an integer written with an exponent or a fraction of zero, a duplicate key.
        (#"{"report":"r","bucket":"b","values":{"n":1e2},"updatedAt":"2026-03-01T12:00:00.000Z"}"#, "ok"),
        (#"{"report":"r","bucket":"b","values":{},"updatedAt":"2026-03-01T12:00:00.000Z","report":"r"}"#, "ok"),
        // Rejected, with the field named.
        (#"{"report":"r","bucket":"b","values":{"n":1.5},"updatedAt":"2026-03-01T12:00:00.000Z"}"#, "not valid JSON"),
        (#"{"report":"r","bucket":"b","values":{"n":"1"},"updatedAt":"2026-03-01T12:00:00.000Z"}"#, "values.n"),
        (#"{"report":"r","bucket":null,"values":{},"updatedAt":"2026-03-01T12:00:00.000Z"}"#, "bucket"),
        (#"{"report":"r","bucket":"b","values":{},"updatedAt":"yesterday"}"#, "updatedAt"),
        (#"{"report":"r","values":{},"updatedAt":"2026-03-01T12:00:00.000Z"}"#, "bucket"),
    ])
    func fallsBackToFoundation(json: String, outcome: String) throws {
        let bytes = Array(json.utf8)
        #expect(Self.fast(ReportBucket.self, bytes) == nil)
        if outcome == "ok" {
            #expect(try EventCodec.decode(ReportBucket.self, from: bytes) == (try Self.foundation(ReportBucket.self, bytes)))
        } else {
            #expect(throws: ContractError.self) { try EventCodec.decode(ReportBucket.self, from: bytes) }
            do {
                _ = try EventCodec.decode(ReportBucket.self, from: bytes)
            } catch {
                #expect(error.description.contains(outcome), "\(error)")
            }
        }
    }

    @Test("an idempotency record's JSON is byte for byte what the encoder writes, for 5,000 awkward records")
    func idempotencyRecordMatchesTheEncoder() throws {
        var generator = Generator(state: 23)
        for _ in 0..<5_000 {
            // Milliseconds from before 1970 to past 9999 are where date formatting breaks.
            let millis = { (generator: inout Generator) in Double(Int64.random(in: -62_135_596_800_000...253_402_300_799_999, using: &generator)) / 1000 }
            let record = IdempotencyRecord(
                stage: Self.text(&generator), key: Self.text(&generator), eventId: Self.text(&generator),
                processedAt: Date(timeIntervalSince1970: millis(&generator)), expiresAt: Date(timeIntervalSince1970: millis(&generator) + 0.0004))
            let expected = try Self.foundation(record)
            #expect(record.canonicalJSON() == expected, "\(String(decoding: expected, as: UTF8.self))")
            if record.canonicalJSON() != expected { return }
        }
    }

    @Test("an envelope of an idempotency record carries the canonical JSON and decodes back to the record")
    func idempotencyEnvelopeRoundTrips() throws {
        let record = IdempotencyRecord(stage: "intake", key: "k\"1\n", eventId: "e/1", processedAt: Date(timeIntervalSince1970: 1_700_000_000.123), expiresAt: Date(timeIntervalSince1970: 1_700_604_800.5))
        let envelope = Envelope(id: "00000000-0000-4000-8000-000000000001", source: "oms/intake", time: Date(timeIntervalSince1970: 1_700_000_000), event: record.event)
        let written = try envelope.record()
        #expect(written.value == record.canonicalJSON())
        #expect(try Envelope.decode(written).event == record.event)
    }
}

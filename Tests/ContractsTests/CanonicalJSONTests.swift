import Foundation
import Testing

@testable import Contracts

/// The idempotency record's hand-written JSON against Foundation's encoder, which defines
/// the canonical form: any difference would be a second content under one event id.
@Suite("canonical JSON written by hand")
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

    @Test("an idempotency record's JSON is byte for byte what the encoder writes, for 5,000 awkward records")
    func idempotencyRecordMatchesTheEncoder() throws {
        var generator = Generator(state: 23)
        for _ in 0..<5_000 {
            // Milliseconds from before 1970 to past 9999 are where date formatting breaks.
            let millis = { (generator: inout Generator) in Double(Int64.random(in: -62_135_596_800_000...253_402_300_799_999, using: &generator)) / 1000 }
            let record = IdempotencyRecord(
                stage: Self.text(&generator), key: Self.text(&generator), eventId: Self.text(&generator),
                processedAt: Date(timeIntervalSince1970: millis(&generator)), expiresAt: Date(timeIntervalSince1970: millis(&generator) + 0.0004))
            let expected = try EventCodec.encode(record)
            #expect(record.canonicalJSON() == expected, "\(String(decoding: expected, as: UTF8.self))")
            if record.canonicalJSON() != expected { return }
        }
    }

    @Test("an envelope of an idempotency record carries the hand-written JSON and decodes back to the record")
    func idempotencyEnvelopeRoundTrips() throws {
        let record = IdempotencyRecord(stage: "intake", key: "k\"1\n", eventId: "e/1", processedAt: Date(timeIntervalSince1970: 1_700_000_000.123), expiresAt: Date(timeIntervalSince1970: 1_700_604_800.5))
        let envelope = Envelope(id: "00000000-0000-4000-8000-000000000001", source: "oms/intake", time: Date(timeIntervalSince1970: 1_700_000_000), event: record.event)
        let written = try envelope.record()
        #expect(written.value == record.canonicalJSON())
        #expect(try Envelope.decode(written).event == record.event)
    }
}

import Foundation
import Testing

@testable import Contracts

@Suite struct MoneyTests {
    @Test(arguments: [
        ("12.30", "USD", Int64(1230)), ("12.3", "USD", 1230), ("12", "USD", 1200), ("0.01", "USD", 1),
        ("0", "EUR", 0), ("-5.25", "EUR", -525), ("1000", "JPY", 1000), ("1000.00", "JPY", 1000),
        ("12.300", "USD", 1230), ("1.234", "KWD", 1234), ("1.2", "KWD", 1200), ("007.50", "GBP", 750),
        ("92233720368547758.07", "USD", Int64.max),
    ])
    func parsesExactly(text: String, currency: String, minor: Int64) throws {
        let money = try Money.parse(text, currency: try CurrencyCode(currency))
        #expect(money.minorUnits == minor)
        #expect(money.currency.code == currency)
    }

    @Test(arguments: [
        "", "-", ".5", "5.", "1.005", "12.345", "1e3", "1E-2", "NaN", "nan", "inf", "Infinity", "+5", " 5", "5 ",
        "1,000.00", "1.2.3", "0x10", "١٢", "12.30USD", "--1", "92233720368547758.08", "99999999999999999999999",
    ])
    func rejectsInexactOrGarbage(text: String) {
        #expect(throws: ContractError.self) { try Money.parse(text, currency: .usd) }
    }

    @Test func rejectsDecimalsOnZeroExponentCurrency() {
        let error = contractError { _ = try Money.parse("100.5", currency: .jpy) }
        guard case .invalidAmount(_, let reason)? = error else {
            Issue.record("unexpected \(String(describing: error))")
            return
        }
        #expect(reason.contains("0 decimal places"))
    }

    @Test func formatsDecimalString() throws {
        #expect(Money(minorUnits: 1230, currency: .usd).decimalString == "12.30")
        #expect(Money(minorUnits: 5, currency: .usd).decimalString == "0.05")
        #expect(Money(minorUnits: -5, currency: .usd).decimalString == "-0.05")
        #expect(Money(minorUnits: 1000, currency: .jpy).decimalString == "1000")
        #expect(Money(minorUnits: 1, currency: try CurrencyCode("KWD")).description == "0.001 KWD")
        #expect(Money(minorUnits: Int64.min, currency: .usd).decimalString == "-92233720368547758.08")
    }

    @Test func arithmeticChecksOverflowAndCurrency() throws {
        let big = Money(minorUnits: .max, currency: .usd)
        #expect(throws: ContractError.self) { try big.adding(Money(minorUnits: 1, currency: .usd)) }
        #expect(throws: ContractError.self) { try big.multiplied(by: 2) }
        #expect(throws: ContractError.self) { try Money(minorUnits: .min, currency: .usd).subtracting(Money(minorUnits: 1, currency: .usd)) }
        #expect(
            contractError { _ = try Money(minorUnits: 1, currency: .usd).adding(Money(minorUnits: 1, currency: .eur)) }
                == .currencyMismatch("USD", "EUR"))
        #expect(try Money(minorUnits: 250, currency: .eur).multiplied(by: 3).minorUnits == 750)
    }

    @Test func currencyCodesValidated() throws {
        #expect(try CurrencyCode("JPY").minorUnitExponent == 0)
        #expect(try CurrencyCode("USD").minorUnitExponent == 2)
        #expect(try CurrencyCode("BHD").minorUnitExponent == 3)
        for bad in ["usd", "US", "USDD", "XXX", "ABC", "", "U$D"] {
            #expect(throws: ContractError.self, "\(bad)") { try CurrencyCode(bad) }
        }
    }

    @Test func moneyJSONShape() throws {
        let json = String(decoding: try EventCodec.encode(Money(minorUnits: 1230, currency: .usd)), as: UTF8.self)
        #expect(json == #"{"currency":"USD","minorUnits":1230}"#)
        #expect(throws: ContractError.self) {
            try EventCodec.decode(Money.self, from: Array(#"{"currency":"usd","minorUnits":1}"#.utf8))
        }
        #expect(throws: ContractError.self) {
            try EventCodec.decode(Money.self, from: Array(#"{"currency":"USD","minorUnits":12.5}"#.utf8))
        }
    }
}

@Suite struct AddressAndTimeTests {
    @Test func countryCodes() throws {
        #expect(try CountryCode("DE").code == "DE")
        for bad in ["de", "DEU", "ZZ", "XX", "", "D"] {
            #expect(throws: ContractError.self, "\(bad)") { try CountryCode(bad) }
        }
        #expect(throws: ContractError.self) {
            try EventCodec.decode(CountryCode.self, from: Array(#""UK""#.utf8))
        }
    }

    @Test func rfc3339RoundTripAndOffsets() throws {
        let d = try date("2026-03-01T12:00:00.123Z")
        #expect(RFC3339.format(d) == "2026-03-01T12:00:00.123Z")
        #expect(try date("2026-03-01T07:00:00-05:00") == date("2026-03-01T12:00:00Z"))
        #expect(try date("2026-03-01T13:30:00+01:30") == date("2026-03-01T12:00:00Z"))
        #expect(try date("2026-03-01T12:00:00.123456789Z") == date("2026-03-01T12:00:00.123Z"))
        #expect(try date("2024-02-29T00:00:00Z") == Date(timeIntervalSince1970: 1_709_164_800))
        #expect(RFC3339.format(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000Z")
        #expect(RFC3339.format(Date(timeIntervalSince1970: -0.5)) == "1969-12-31T23:59:59.500Z")
        #expect(RFC3339.format(Date(timeIntervalSince1970: 253_402_300_799.999)) == "9999-12-31T23:59:59.999Z")
        #expect(RFC3339.format(Date(timeIntervalSince1970: 253_402_300_800)) == "10000-01-01T00:00:00.000Z")
    }

    @Test(arguments: [
        "2026-03-01", "2026-03-01T12:00:00", "2026-02-30T00:00:00Z", "2026-13-01T00:00:00Z", "2026-03-01T24:00:00Z",
        "2026-03-01 12:00:00Z", "2026-03-01T12:00:00.Z", "2026-3-1T12:00:00Z", "yesterday", "", "2026-03-01T12:00:00+0100",
    ])
    func rfc3339RejectsNonConforming(text: String) {
        #expect(RFC3339.parse(text) == nil)
    }

    @Test func lenientCarrierTimes() throws {
        #expect(RFC3339.parse("2026-03-05T04:45:00", allowMissingOffset: true, allowDateOnly: false) == (try date("2026-03-05T04:45:00Z")))
        #expect(RFC3339.parse("2026-03-06", allowMissingOffset: true, allowDateOnly: true) == (try date("2026-03-06T00:00:00Z")))
    }
}

@Suite struct IdentifierTests {
    // Expected values computed independently with Python's uuid.uuid5.
    @Test func uuidV5MatchesReferenceImplementation() throws {
        let dns = try #require(UUID(uuidString: "6ba7b810-9dad-11d1-80b4-00c04fd430c8"))
        #expect(DeterministicID.uuidV5(namespace: dns, name: "python.org") == "886313e1-3b8a-5372-9b90-0c9aee199e5d")
        #expect(DeterministicID.uuidString(DeterministicID.eventNamespace) == "3325f2e6-a2a1-504c-81c7-f87d6e38a543")
    }

    @Test func eventIDsAreStableAndDistinct() {
        let a = DeterministicID.eventID(inputEventID: "in-1", stage: "intake", outputIndex: 0)
        #expect(a == DeterministicID.eventID(inputEventID: "in-1", stage: "intake", outputIndex: 0))
        #expect(a == "f788786b-e0e5-5ed7-b3ed-e1718bf0853e")
        var seen: Set<String> = [a]
        for (input, stage, index) in [("in-1", "intake", 1), ("in-1", "payment", 0), ("in-2", "intake", 0), ("in-1", "intake", 10)] {
            let id = DeterministicID.eventID(inputEventID: input, stage: stage, outputIndex: index)
            #expect(seen.insert(id).inserted, "collision for \(input) \(stage) \(index)")
        }
        // The separator keeps part boundaries: ("a", "b1") must not equal ("a" + "b", "1").
        #expect(
            DeterministicID.eventID(inputEventID: "x", stage: "y1", outputIndex: 2)
                != DeterministicID.eventID(inputEventID: "xy", stage: "1", outputIndex: 2))
        let chars = Array(a)
        #expect(chars.count == 36 && chars[14] == "5" && "89ab".contains(chars[19]))
    }

    @Test func orderIDsAreStablePerChannelAndExternalID() {
        let a = DeterministicID.orderID(channel: "shopify", externalOrderID: "1001")
        #expect(a == DeterministicID.orderID(channel: "shopify", externalOrderID: "1001"))
        #expect(a == "07661690-2a2a-5a00-abb2-a9aa39d25a2a")
        #expect(a != DeterministicID.orderID(channel: "amazon", externalOrderID: "1001"))
        #expect(a != DeterministicID.orderID(channel: "shopify", externalOrderID: "1002"))
    }

    @Test func traceparentParsing() throws {
        let text = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        let tp = try TraceParent(parsing: text)
        #expect(tp.description == text)
        #expect(tp.flags == 1)
        for bad in [
            "", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01",
        ] {
            #expect(throws: ContractError.self, "\(bad)") { try TraceParent(parsing: bad) }
        }
        let child = tp.child(forEventID: "e1")
        #expect(child.traceID == tp.traceID)
        #expect(child.parentID != tp.parentID)
        #expect(child == tp.child(forEventID: "e1"))
        #expect(child != tp.child(forEventID: "e2"))
        let root = TraceParent.root(forEventID: "e1")
        #expect(try TraceParent(parsing: root.description) == root)
        // Pinned, computed with Python's hashlib: a replay across an upgrade must derive the same spans.
        #expect(root.description == "00-ec60cd96c463de24ffad8796d73b8606-f2605d1bec60cd96-01")
        #expect(root.child(forEventID: "e2").parentID == "f586598a33717571")
        let unsampled = try TraceParent(parsing: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
        #expect(unsampled.flags == 0 && unsampled.description.hasSuffix("-00"))
        #expect(try TraceParent(parsing: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-fe").flags == 0xFE)
        #expect(throws: ContractError.self) { try TraceParent(parsing: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0G") }
        #expect(throws: ContractError.self) { try TraceParent(parsing: "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01") }
    }
}

@Suite struct JSONValueTests {
    @Test func keepsNumberTextExactly() throws {
        let value = try JSONValue.parse(Array(#"{"a": 0.1, "b": [1e2, -0, 12345678901234567890], "c": "\u00e9\ud83d\ude00"}"#.utf8))
        guard case .object(let o) = value else {
            Issue.record("not an object")
            return
        }
        #expect(o["a"] == .number("0.1"))
        #expect(o["b"] == .array([.number("1e2"), .number("-0"), .number("12345678901234567890")]))
        #expect(o["c"] == .string("é😀"))
    }

    @Test(arguments: [
        "", "{", "{\"a\":1,}", "[1,]", "{\"a\" 1}", "01", "1.", "-", "\"\\x\"", "\"a", "tru", "{\"a\":1}x",
        "{\"a\":1,\"a\":2}", "\"\\ud800\"", "[\"\u{01}\"]", "NaN", "{'a':1}",
    ])
    func rejectsMalformed(text: String) {
        #expect(throws: ContractError.self, "\(text)") { try JSONValue.parse(Array(text.utf8)) }
    }

    @Test func rejectsDeepNestingAndBadUTF8() {
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(throws: ContractError.self) { try JSONValue.parse(Array(deep.utf8)) }
        #expect(contractError { _ = try JSONValue.parse([0x22, 0x61, 0xC3, 0x28, 0x22]) } == .payloadNotUTF8(byteOffset: 2))
        #expect(contractError { _ = try JSONValue.parse([0x22, 0xED, 0xA0, 0x80, 0x22]) } == .payloadNotUTF8(byteOffset: 1))
        #expect(contractError { _ = try JSONValue.parse([0x22, 0xC0, 0xAF, 0x22]) } == .payloadNotUTF8(byteOffset: 1))
    }
}

import Foundation
import Testing

@testable import Contracts

@Suite struct EnvelopeTests {
    static let trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

    static func envelope(_ event: Event) throws -> Envelope {
        Envelope(
            id: "evt-1", source: "oms/test", time: try date("2026-03-01T12:00:00.250Z"),
            traceparent: try TraceParent(parsing: trace), causationID: "cause-1", event: event)
    }

    static func placedRecord() throws -> EventRecord {
        let placed = try #require(try EventSamples.full().first { if case .orderPlaced = $0 { true } else { false } })
        return try envelope(placed).record()
    }

    static func replacing(_ record: EventRecord, header name: String, with value: [UInt8]?) -> EventRecord {
        var copy = record
        copy.headers.removeAll { $0.name == name }
        if let value { copy.headers.append(EventHeader(name: name, value: value)) }
        return copy
    }

    @Test func everyEventTypeHasASample() throws {
        let sampled = Set(try EventSamples.full().map { type(of: $0.payload).eventType })
        #expect(sampled == Set(EventRegistry.knownTypes))
        #expect(EventRegistry.knownTypes.count == 99)
        #expect(Set(EventRegistry.knownTypes.map(\.ceType)).count == EventRegistry.knownTypes.count)
    }

    @Test func encodeDecodeIdentityForEveryEvent() throws {
        for event in try EventSamples.full() + EventSamples.minimal() {
            let original = try Self.envelope(event)
            let record = try original.record()
            let decoded = try Envelope.decode(record)
            #expect(decoded == original, "\(original.type)")
            #expect(try decoded.record() == record, "re-encoding \(original.type) is not byte-identical")
        }
    }

    @Test func headersFollowTheCloudEventsKafkaBinding() throws {
        let record = try Self.placedRecord()
        func header(_ name: String) -> String? {
            record.headerValues(name).first.map { String(decoding: $0, as: UTF8.self) }
        }
        #expect(header("ce_specversion") == "1.0")
        #expect(header("ce_id") == "evt-1")
        #expect(header("ce_type") == "oms.order.placed.v1")
        #expect(header("ce_source") == "oms/test")
        #expect(header("ce_time") == "2026-03-01T12:00:00.250Z")
        #expect(header("ce_subject") == "orderId-1")
        #expect(header("content-type") == "application/json")
        #expect(header("traceparent") == Self.trace)
        #expect(header("oms_causation_id") == "cause-1")
        #expect(record.key == "orderId-1")
        #expect(record.headers.count == 9)
        // The value is the bare event (binary mode): no CloudEvents attributes inside.
        let json = try #require(try JSONSerialization.jsonObject(with: Data(record.value)) as? [String: Any])
        #expect(json["orderId"] as? String == "orderId-1")
        #expect(json["specversion"] == nil && json["data"] == nil)
        // Sorted keys: the bytes are deterministic.
        let text = String(decoding: record.value, as: UTF8.self)
        #expect(text.hasPrefix(#"{"billingAddress":"#))
    }

    @Test func keysFollowTheTopicRules() throws {
        for event in try EventSamples.full() {
            let record = try Self.envelope(event).record()
            let spec = try #require(TopicCatalog.spec(named: type(of: event.payload).topic))
            switch spec.key {
            case "orderId": #expect(record.key == "orderId-1", "\(spec.name)")
            case "sku": #expect(record.key == "sku-1", "\(spec.name)")
            case "customerKey": #expect(record.key == "customerKey-1", "\(spec.name)")
            case "customerId": #expect(record.key == "customerId-1", "\(spec.name)")
            case "subscriptionId": #expect(record.key == "subscriptionId-1", "\(spec.name)")
            case "sku[/orderId/lineId/location or :waiting]":
                // A SKU's level, one of its open reservations or waiting lines, in the SKU's partition.
                #expect(["sku-1", "sku-1/orderId-1/lineId-1/location-1", "sku-1/orderId-1/lineId-1/:waiting"].contains(record.key), "\(spec.name)")
            case "carrier/trackingNumber": #expect(record.key == "carrier-1/trackingNumber-1", "\(spec.name)")
            case "channel/externalOrderId": #expect(record.key == "channel-1/externalOrderId-1", "\(spec.name)")
            case "report/bucket": #expect(record.key == "report-1/bucket-1", "\(spec.name)")
            case "stage/key": #expect(record.key == "stage-1/key-1", "\(spec.name)")
            case "connector/commandId": #expect(record.key == "connector-1/commandId-1", "\(spec.name)")
            case "legalEntity/series/sequence": #expect(record.key == "invoiceId-1", "\(spec.name)")
            case "legalEntity": #expect(record.key == "legalEntity-1", "\(spec.name)")
            case "legalEntity/series or legalEntity/order/orderId":
                #expect(["legalEntity-1/series-1", "legalEntity-1/order/orderId-1"].contains(record.key), "\(spec.name)")
            case "original key": #expect(record.key == String(decoding: [0x00, 0x01, 0xFE, 0xFF] as [UInt8], as: UTF8.self))
            default: Issue.record("unhandled key rule \(spec.key)")
            }
        }
    }

    @Test func optionalHeadersMayBeAbsent() throws {
        var record = try Self.placedRecord()
        record.headers.removeAll { $0.name == "traceparent" || $0.name == "oms_causation_id" }
        let envelope = try Envelope.decode(record)
        #expect(envelope.traceparent == nil)
        #expect(envelope.causationID == nil)
    }

    @Test func contentTypeParametersAreAccepted() throws {
        let record = Self.replacing(try Self.placedRecord(), header: "content-type", with: Array("application/json; charset=utf-8".utf8))
        #expect(throws: Never.self) { try Envelope.decode(record) }
    }

    @Test(arguments: ["ce_specversion", "ce_id", "ce_type", "ce_source", "ce_time", "ce_subject", "content-type"])
    func missingRequiredHeader(name: String) throws {
        let record = Self.replacing(try Self.placedRecord(), header: name, with: nil)
        #expect(contractError { _ = try Envelope.decode(record) } == .missingHeader(name))
    }

    @Test func duplicateHeaderIsRejected() throws {
        var record = try Self.placedRecord()
        record.headers.append(EventHeader(name: "ce_type", string: "oms.order.rejected.v1"))
        #expect(contractError { _ = try Envelope.decode(record) } == .duplicateHeader("ce_type"))
    }

    @Test(arguments: [
        ("ce_specversion", "0.3"), ("ce_time", "yesterday"), ("ce_time", "2026-03-01T12:00:00"),
        ("content-type", "application/avro"), ("traceparent", "00-xyz"), ("ce_type", "oms.order.placed"),
        ("ce_type", "oms.order.placed.v0"), ("ce_type", "oms.order.placed.vx"), ("ce_id", ""), ("oms_causation_id", ""),
        ("ce_subject", "another-order"),
    ])
    func invalidHeaderValue(name: String, value: String) throws {
        let record = Self.replacing(try Self.placedRecord(), header: name, with: Array(value.utf8))
        let error = contractError { _ = try Envelope.decode(record) }
        guard case .invalidHeader(let reported, _)? = error else {
            Issue.record("expected invalidHeader(\(name)), got \(String(describing: error))")
            return
        }
        #expect(reported == name)
    }

    @Test func nonUTF8HeaderValue() throws {
        let record = Self.replacing(try Self.placedRecord(), header: "ce_source", with: [0x6F, 0xFF, 0x6D])
        #expect(contractError { _ = try Envelope.decode(record) } == .invalidHeader(name: "ce_source", reason: "value is not UTF-8 (bad byte at offset 1)"))
    }

    @Test func unknownTypeAndUnknownVersion() throws {
        let base = try Self.placedRecord()
        let unknownType = Self.replacing(base, header: "ce_type", with: Array("oms.order.teleported.v1".utf8))
        #expect(contractError { _ = try Envelope.decode(unknownType) } == .unknownEventType("oms.order.teleported.v1"))
        let unknownVersion = Self.replacing(base, header: "ce_type", with: Array("oms.order.placed.v2".utf8))
        let error = contractError { _ = try Envelope.decode(unknownVersion) }
        #expect(error == .unknownEventVersion(type: "oms.order.placed", version: 2, known: [1]))
        #expect(error?.description == "unknown version v2 of event type 'oms.order.placed' (known: v1)")
    }

    @Test func badPayloads() throws {
        let base = try Self.placedRecord()
        var record = base
        record.value = Array(#"{"orderId": "#.utf8)
        #expect({ if case .malformedJSON? = contractError({ _ = try Envelope.decode(record) }) { true } else { false } }())

        record.value = base.value
        record.value[10] = 0xFF
        #expect(contractError { _ = try Envelope.decode(record) } == .payloadNotUTF8(byteOffset: 10))

        // Wrong field type, reported with its path.
        var object = try #require(try JSONSerialization.jsonObject(with: Data(base.value)) as? [String: Any])
        var lines = try #require(object["lines"] as? [[String: Any]])
        lines[0]["quantity"] = "two"
        object["lines"] = lines
        record.value = Array(try JSONSerialization.data(withJSONObject: object))
        #expect(contractError { _ = try Envelope.decode(record) } == .invalidField(path: "lines[0].quantity", reason: "expected an integer"))

        // Missing required field.
        object = try #require(try JSONSerialization.jsonObject(with: Data(base.value)) as? [String: Any])
        object.removeValue(forKey: "placedAt")
        record.value = Array(try JSONSerialization.data(withJSONObject: object))
        #expect(contractError { _ = try Envelope.decode(record) } == .invalidField(path: "placedAt", reason: "required field is missing"))

        // Invalid value inside a nested type (currency) and a bad date.
        object = try #require(try JSONSerialization.jsonObject(with: Data(base.value)) as? [String: Any])
        object["currency"] = "usd"
        record.value = Array(try JSONSerialization.data(withJSONObject: object))
        let currencyError = contractError { _ = try Envelope.decode(record) }
        guard case .invalidField(let path, _)? = currencyError else {
            Issue.record("got \(String(describing: currencyError))")
            return
        }
        #expect(path == "currency")

        object = try #require(try JSONSerialization.jsonObject(with: Data(base.value)) as? [String: Any])
        object["placedAt"] = "2026-03-01 12:00"
        record.value = Array(try JSONSerialization.data(withJSONObject: object))
        #expect({ if case .invalidField("placedAt", _)? = contractError({ _ = try Envelope.decode(record) }) { true } else { false } }())

        // A huge number where an Int is expected is an error, not a trap.
        record.value = Array(String(decoding: base.value, as: UTF8.self)
            .replacingOccurrences(of: #""quantity":2"#, with: #""quantity":99999999999999999999999"#).utf8)
        #expect(throws: ContractError.self) { try Envelope.decode(record) }

        // Not an object at all.
        record.value = Array("[]".utf8)
        #expect(throws: ContractError.self) { try Envelope.decode(record) }
        record.value = []
        #expect(throws: ContractError.self) { try Envelope.decode(record) }
    }

    @Test func recordKeyMustMatchThePartitionKey() throws {
        var record = try Self.placedRecord()
        record.key = "some-other-key"
        #expect(contractError { _ = try Envelope.decode(record) } == .keyMismatch(expected: "orderId-1", actual: "some-other-key"))
    }

    @Test func stageOutputsAreDeterministic() throws {
        let input = try Self.envelope(try EventSamples.full()[2])
        let event = try EventSamples.full()[3]
        let time = try date("2026-03-01T12:00:01Z")
        let first = Envelope.output(of: input, stage: "intake", outputIndex: 0, event: event, time: time)
        let replay = Envelope.output(of: input, stage: "intake", outputIndex: 0, event: event, time: time)
        #expect(try first.record() == replay.record())
        #expect(first.causationID == input.id)
        #expect(first.traceparent?.traceID == input.traceparent?.traceID)
        #expect(first.traceparent?.parentID != input.traceparent?.parentID)
        #expect(first.source == "oms/intake")
        let second = Envelope.output(of: input, stage: "intake", outputIndex: 1, event: event, time: time)
        #expect(second.id != first.id)
        #expect(first.id == DeterministicID.eventID(inputEventID: input.id, stage: "intake", outputIndex: 0))
    }

    @Test func errorDescriptionsAreSpecific() {
        #expect(ContractError.missingHeader("ce_id").description == "missing header 'ce_id'")
        #expect(ContractError.invalidField(path: "lines[0].quantity", reason: "must be at least 1").description
            == "field 'lines[0].quantity': must be at least 1")
        #expect(ContractError.payloadTooLarge(size: 10, limit: 5).description == "payload of 10 bytes exceeds the limit of 5 bytes")
    }
}

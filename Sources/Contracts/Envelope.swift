import Foundation

/// An event type name plus version, the two halves of `ce_type`.
///
/// Versions are part of the type so a reader can tell "a newer shape of an
/// event I know" (dead-letter it, upgrade later) from "garbage".
public struct EventType: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Dotted name without version, e.g. `oms.order.placed`.
    public let name: String
    /// Schema version, starting at 1.
    public let version: Int

    /// Builds a type from its parts.
    public init(name: String, version: Int) {
        self.name = name
        self.version = version
    }

    /// Splits a `ce_type` such as `oms.order.placed.v1`.
    public init(parsing ceType: String) throws(ContractError) {
        guard let dot = ceType.range(of: ".v", options: .backwards) else {
            throw .invalidHeader(name: EnvelopeHeader.type, reason: "'\(ceType)' has no '.v<N>' version suffix")
        }
        let name = String(ceType[..<dot.lowerBound])
        let digits = ceType[dot.upperBound...]
        guard !name.isEmpty, !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
            digits.first != "0", digits.count <= 6, let version = Int(digits)
        else {
            throw .invalidHeader(name: EnvelopeHeader.type, reason: "'\(ceType)' has no valid '.v<N>' version suffix")
        }
        self.init(name: name, version: version)
    }

    /// The `ce_type` header value.
    public var ceType: String { "\(name).v\(version)" }

    /// Same as ``ceType``.
    public var description: String { ceType }
}

/// What every OMS event type provides so the envelope can route and label it.
public protocol ContractEvent: Sendable, Codable, Hashable, CanonicalJSONWritable, CanonicalJSONReadable {
    /// The type and version written to `ce_type`.
    static var eventType: EventType { get }
    /// The topic records of this event are written to.
    static var topic: String { get }
    /// `ce_subject`: the order id where there is one, otherwise the entity key.
    var subject: String { get }
    /// The Kafka record key; decides the partition, so it must follow the topic's keying rule.
    var partitionKey: String { get }
    /// This value wrapped in the ``Event`` sum type.
    var event: Event { get }
}

extension DeadLetter {
    /// The original key as text (lossy for non-UTF-8 keys), used as key and subject.
    public var originalKeyText: String { String(decoding: rawKey ?? Data(), as: UTF8.self) }
}

/// One Kafka header; values are bytes, as on the wire.
public struct EventHeader: Sendable, Hashable, Codable {
    /// Header name.
    public var name: String
    /// Header value bytes.
    public var value: [UInt8]

    /// Builds a header from raw bytes.
    public init(name: String, value: [UInt8]) {
        self.name = name
        self.value = value
    }

    /// Builds a header from a UTF-8 string.
    public init(name: String, string: String) {
        self.init(name: name, value: Array(string.utf8))
    }
}

/// A Kafka record without Kafka: what the envelope produces and consumes.
///
/// Contracts must not depend on the Kafka module, so the runtime converts
/// between this and its own record type at the edge.
public struct EventRecord: Sendable, Hashable, Codable {
    /// Record key.
    public var key: String
    /// Headers in wire order; names may repeat on the wire, which decoding rejects for envelope headers.
    public var headers: [EventHeader]
    /// Record value (the JSON event).
    public var value: [UInt8]

    /// Builds a record.
    public init(key: String, headers: [EventHeader], value: [UInt8]) {
        self.key = key
        self.headers = headers
        self.value = value
    }

    /// Values of every header called `name`, in wire order.
    public func headerValues(_ name: String) -> [[UInt8]] {
        headers.filter { $0.name == name }.map(\.value)
    }
}

/// Header names of the CloudEvents Kafka binary binding plus OMS extensions.
public enum EnvelopeHeader {
    /// CloudEvents spec version; always `1.0`.
    public static let specVersion = "ce_specversion"
    /// Event id; deterministic for stage outputs.
    public static let id = "ce_id"
    /// Event type with version suffix.
    public static let type = "ce_type"
    /// Producer, e.g. `oms/intake`.
    public static let source = "ce_source"
    /// Event time, RFC 3339.
    public static let time = "ce_time"
    /// Order id (or entity key).
    public static let subject = "ce_subject"
    /// Media type of the value.
    public static let contentType = "content-type"
    /// W3C trace context.
    public static let traceparent = "traceparent"
    /// ce_id of the input event that caused this one.
    public static let causationID = "oms_causation_id"

    /// The only `content-type` written; readers also accept parameters such as `; charset=utf-8`.
    public static let jsonContentType = "application/json"
    /// The only CloudEvents version spoken.
    public static let cloudEventsVersion = "1.0"

    static let all = [specVersion, id, type, source, time, subject, contentType, traceparent, causationID]

    /// The index of `name` in ``all``; nil for any other header.
    static func slot(of name: String) -> Int? {
        switch name {
        case specVersion: 0
        case id: 1
        case type: 2
        case source: 3
        case time: 4
        case subject: 5
        case contentType: 6
        case traceparent: 7
        case causationID: 8
        default: nil
        }
    }
}

/// A typed event with its CloudEvents metadata: the unit every stage reads and writes.
public struct Envelope: Sendable, Hashable {
    /// `ce_id`.
    public var id: String
    /// `ce_source`.
    public var source: String
    /// `ce_time`; millisecond precision on the wire.
    public var time: Date
    /// `traceparent`, absent for records that entered without one.
    public var traceparent: TraceParent?
    /// `oms_causation_id`, absent for events that start a chain (channel input).
    public var causationID: String?
    /// The event.
    public var event: Event

    /// Wraps `event`.
    public init(
        id: String, source: String, time: Date, traceparent: TraceParent? = nil, causationID: String? = nil,
        event: Event
    ) {
        self.id = id
        self.source = source
        self.time = time
        self.traceparent = traceparent
        self.causationID = causationID
        self.event = event
    }

    /// The envelope of the `outputIndex`-th event `stage` emits for `input`.
    ///
    /// Id, trace span and causation are all derived from the input, so a
    /// replay after a crash produces byte-identical records (given the same time).
    public static func output(
        of input: Envelope, stage: String, outputIndex: Int, event: Event, time: Date
    ) -> Envelope {
        output(causedBy: input.id, trace: input.traceparent, stage: stage, outputIndex: outputIndex, event: event, time: time)
    }

    /// The envelope of the `outputIndex`-th event `stage` emits for a cause that is not
    /// an event (a timer firing, named by a stable id), or for an input given by id.
    public static func output(
        causedBy causeID: String, trace: TraceParent?, stage: String, outputIndex: Int, event: Event, time: Date
    ) -> Envelope {
        let id = DeterministicID.eventID(inputEventID: causeID, stage: stage, outputIndex: outputIndex)
        let trace = (trace ?? TraceParent.root(forEventID: causeID)).child(forEventID: id)
        return Envelope(id: id, source: "oms/\(stage)", time: time, traceparent: trace, causationID: causeID, event: event)
    }

    /// `ce_subject`, derived from the event so it cannot disagree with the payload.
    public var subject: String { event.payload.subject }

    /// The record key, derived from the event so it always follows the topic's keying rule.
    public var key: String { event.payload.partitionKey }

    /// The event's type and version.
    public var type: EventType { Swift.type(of: event.payload).eventType }

    /// The topic this envelope belongs on.
    public var topic: String { Swift.type(of: event.payload).topic }

    /// Encodes to a binary-mode CloudEvents Kafka record.
    public func record() throws(ContractError) -> EventRecord {
        let value = event.payload.canonicalJSON()
        var headers = [
            EventHeader(name: EnvelopeHeader.specVersion, string: EnvelopeHeader.cloudEventsVersion),
            EventHeader(name: EnvelopeHeader.id, string: id),
            EventHeader(name: EnvelopeHeader.type, string: type.ceType),
            EventHeader(name: EnvelopeHeader.source, string: source),
            EventHeader(name: EnvelopeHeader.time, string: RFC3339.format(time)),
            EventHeader(name: EnvelopeHeader.subject, string: subject),
            EventHeader(name: EnvelopeHeader.contentType, string: EnvelopeHeader.jsonContentType),
        ]
        if let traceparent {
            headers.append(EventHeader(name: EnvelopeHeader.traceparent, string: traceparent.description))
        }
        if let causationID {
            headers.append(EventHeader(name: EnvelopeHeader.causationID, string: causationID))
        }
        return EventRecord(key: key, headers: headers, value: value)
    }

    /// Decodes a record, validating every header and the payload.
    ///
    /// Never traps: anything malformed becomes a ``ContractError`` whose
    /// description goes into the dead letter.
    public static func decode(_ record: EventRecord) throws(ContractError) -> Envelope {
        // One pass over the headers (every stage decodes every input): how often each
        // envelope header occurs, and its value; then checked in `EnvelopeHeader.all`'s order.
        let names = EnvelopeHeader.all
        var counts = [Int](repeating: 0, count: names.count)
        var values = [[UInt8]](repeating: [], count: names.count)
        for header in record.headers {
            guard let slot = EnvelopeHeader.slot(of: header.name) else { continue }
            counts[slot] += 1
            values[slot] = header.value
        }
        var single = [String?](repeating: nil, count: names.count)
        for slot in names.indices where counts[slot] > 0 {
            if counts[slot] > 1 { throw .duplicateHeader(names[slot]) }
            if let bad = UTF8Validation.firstInvalidOffset(values[slot]) {
                throw .invalidHeader(name: names[slot], reason: "value is not UTF-8 (bad byte at offset \(bad))")
            }
            single[slot] = String(decoding: values[slot], as: UTF8.self)
        }
        func value(_ name: String) -> String? { single[EnvelopeHeader.slot(of: name)!] }
        func required(_ name: String) throws(ContractError) -> String {
            guard let value = value(name) else { throw .missingHeader(name) }
            guard !value.isEmpty else { throw .invalidHeader(name: name, reason: "empty") }
            return value
        }
        let specVersion = try required(EnvelopeHeader.specVersion)
        guard specVersion == EnvelopeHeader.cloudEventsVersion else {
            throw .invalidHeader(name: EnvelopeHeader.specVersion, reason: "'\(specVersion)' is not '1.0'")
        }
        let id = try required(EnvelopeHeader.id)
        let type = try EventType(parsing: try required(EnvelopeHeader.type))
        let source = try required(EnvelopeHeader.source)
        let timeText = try required(EnvelopeHeader.time)
        guard let time = RFC3339.parse(timeText) else {
            throw .invalidHeader(name: EnvelopeHeader.time, reason: "'\(timeText)' is not an RFC 3339 date-time")
        }
        let subject = try required(EnvelopeHeader.subject)
        let contentType = try required(EnvelopeHeader.contentType)
        if contentType != EnvelopeHeader.jsonContentType {
            let mediaType = contentType.split(separator: ";", maxSplits: 1)[0].trimmingCharacters(in: .whitespaces)
            guard mediaType.lowercased() == EnvelopeHeader.jsonContentType else {
                throw .invalidHeader(name: EnvelopeHeader.contentType, reason: "'\(contentType)' is not application/json")
            }
        }
        let traceparent = try value(EnvelopeHeader.traceparent).map { text throws(ContractError) in
            try TraceParent(parsing: text)
        }
        let causationID = value(EnvelopeHeader.causationID)
        if causationID?.isEmpty == true {
            throw .invalidHeader(name: EnvelopeHeader.causationID, reason: "empty")
        }

        let eventType = try EventRegistry.lookup(type)
        let event = try decodePayload(eventType, record.value)
        guard event.payload.partitionKey == record.key else {
            throw .keyMismatch(expected: event.payload.partitionKey, actual: record.key)
        }
        guard event.payload.subject == subject else {
            throw .invalidHeader(
                name: EnvelopeHeader.subject,
                reason: "'\(subject)' does not match the payload's subject '\(event.payload.subject)'")
        }
        return Envelope(
            id: id, source: source, time: time, traceparent: traceparent, causationID: causationID, event: event)
    }

    private static func decodePayload<T: ContractEvent>(_ type: T.Type, _ bytes: [UInt8]) throws(ContractError) -> Event {
        try EventCodec.decode(T.self, from: bytes).event
    }
}

extension EventRegistry {
    private static let byName: [String: [Int: any ContractEvent.Type]] = {
        var table: [String: [Int: any ContractEvent.Type]] = [:]
        for type in all {
            table[type.eventType.name, default: [:]][type.eventType.version] = type
        }
        return table
    }()

    /// The Swift type for a `ce_type`, distinguishing unknown types from unknown versions.
    public static func lookup(_ type: EventType) throws(ContractError) -> any ContractEvent.Type {
        guard let versions = byName[type.name] else { throw .unknownEventType(type.ceType) }
        guard let match = versions[type.version] else {
            throw .unknownEventVersion(type: type.name, version: type.version, known: versions.keys.sorted())
        }
        return match
    }

    /// Every `ce_type` this build reads.
    public static var knownTypes: [EventType] { all.map { $0.eventType } }
}

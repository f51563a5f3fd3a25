import Foundation

/// The one JSON configuration every event is written and read with.
///
/// Sorted keys make the bytes of an event deterministic (same input, same
/// record), which downstream dedupe and golden-file tests rely on. Dates are
/// RFC 3339 UTC through ``RFC3339``. Encoders are created per call because
/// `JSONEncoder` is a mutable class; sharing one across tasks would need a lock.
public enum EventCodec {
    /// A new encoder with the house configuration.
    public static func makeEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(RFC3339.format(date))
        }
        return encoder
    }

    /// A new decoder with the house configuration.
    public static func makeDecoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = RFC3339.parse(text) else {
                throw DecodingError.dataCorruptedError(
                    in: container, debugDescription: "'\(text)' is not an RFC 3339 date-time")
            }
            return date
        }
        return decoder
    }

    // One of each for every call: they are Sendable (options behind a lock), and making
    // one per record cost the record path an allocation-heavy setup each time.
    private static let encoder = makeEncoder()
    private static let decoder = makeDecoder()

    /// Encodes `value` as canonical JSON bytes.
    public static func encode<T: Encodable>(_ value: T) throws(ContractError) -> [UInt8] {
        do {
            return Array(try encoder.encode(value))
        } catch {
            throw .encodingFailed(String(describing: error))
        }
    }

    /// Decodes `type` from JSON bytes, turning every failure into a ``ContractError`` with a field path.
    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws(ContractError) -> T {
        if let bad = UTF8Validation.firstInvalidOffset(bytes) {
            throw .payloadNotUTF8(byteOffset: bad)
        }
        do {
            return try decoder.decode(type, from: Data(bytes))
        } catch let error as DecodingError {
            throw contractError(from: error)
        } catch let error as ContractError {
            throw error
        } catch {
            throw .malformedJSON(reason: String(describing: error))
        }
    }

    static func contractError(from error: DecodingError) -> ContractError {
        func path(_ keys: [any CodingKey], _ extra: (any CodingKey)? = nil) -> String {
            let all = keys + (extra.map { [$0] } ?? [])
            if all.isEmpty { return "$" }
            return all.map { key in key.intValue.map { "[\($0)]" } ?? key.stringValue }
                .joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
        }
        switch error {
        case .keyNotFound(let key, let context):
            return .invalidField(path: path(context.codingPath, key), reason: "required field is missing")
        case .typeMismatch(let type, let context):
            return .invalidField(path: path(context.codingPath), reason: "expected \(jsonTypeName(type))")
        case .valueNotFound(let type, let context):
            return .invalidField(path: path(context.codingPath), reason: "expected \(jsonTypeName(type)), found null")
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty {
                return .malformedJSON(reason: context.debugDescription)
            }
            return .invalidField(path: path(context.codingPath), reason: context.debugDescription)
        @unknown default:
            return .malformedJSON(reason: String(describing: error))
        }
    }

    private static func jsonTypeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Bool.Type: return "a boolean"
        case is Int.Type, is Int64.Type, is Int32.Type, is UInt.Type: return "an integer"
        case is Double.Type, is Float.Type: return "a number"
        default:
            let name = String(describing: type)
            if name.hasPrefix("Array") { return "an array" }
            if name.hasPrefix("Dictionary") { return "an object" }
            return "a value of type \(name)"
        }
    }
}

/// A JSON object written byte for byte as ``EventCodec/encode(_:)`` writes it (keys sorted,
/// slashes unescaped, dates as RFC 3339), without Foundation's encoder: for the records of
/// fixed shape the runtime writes once per input (issue 23; a test holds the two equal).
/// The caller adds the members in key order.
struct CanonicalJSONObject {
    private var bytes: [UInt8] = [UInt8(ascii: "{")]

    init(capacity: Int) { bytes.reserveCapacity(capacity) }

    /// Adds `"key":"value"`.
    mutating func add(_ key: StaticString, _ value: String) {
        if bytes.count > 1 { bytes.append(UInt8(ascii: ",")) }
        bytes.append(UInt8(ascii: "\""))
        key.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":")])
        Self.append(string: value, to: &bytes)
    }

    /// The object, closed.
    consuming func finish() -> [UInt8] {
        bytes.append(UInt8(ascii: "}"))
        return bytes
    }

    private static let hex = Array("0123456789abcdef".utf8)

    /// A JSON string: `"` and `\` escaped, control characters as `\b \f \n \r \t` or
    /// `\u00XX`, everything else as its UTF-8.
    static func append(string: String, to bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "\""))
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x08: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
            case 0x0C: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
            case 0x0A: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0x00..<0x20:
                bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}

extension IdempotencyRecord {
    /// The record's JSON as ``EventCodec/encode(_:)`` writes it, a few times faster.
    public func canonicalJSON() -> [UInt8] {
        var object = CanonicalJSONObject(capacity: 64 + stage.utf8.count + key.utf8.count + eventId.utf8.count + 48)
        object.add("eventId", eventId)
        object.add("expiresAt", RFC3339.format(expiresAt))
        object.add("key", key)
        object.add("processedAt", RFC3339.format(processedAt))
        object.add("stage", stage)
        return object.finish()
    }
}

import Foundation

/// The one JSON configuration every event is written and read with.
///
/// Sorted keys make the bytes of an event deterministic (same input, same
/// record), which downstream dedupe and golden-file tests rely on. Dates are
/// RFC 3339 UTC through ``RFC3339``. Events and their parts are written by their
/// own ``CanonicalJSONWritable`` conformance, which writes the same bytes as the
/// `JSONEncoder` configured here without building its tree of values first.
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
        // Events and their parts write themselves, several times faster (issue 23; a test
        // holds both ways equal); anything else goes through Foundation.
        if let writable = value as? any CanonicalJSONWritable {
            return writable.canonicalJSON()
        }
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
        // Events and their parts read themselves when the JSON is in the plain form they
        // are written in (issue 23); anything else, malformed input above all, goes through
        // Foundation, whose acceptance and error messages stay the contract.
        if let readable = T.self as? any CanonicalJSONReadable.Type,
            let json = try? JSONValue.parse(validatedUTF8: bytes),
            let value = readable.init(canonicalJSON: json) as? T
        {
            return value
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

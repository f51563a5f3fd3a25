import Foundation

/// A value that writes itself as canonical JSON: byte for byte what ``EventCodec/encode(_:)``'s
/// `JSONEncoder` writes (keys sorted by their UTF-8 bytes, slashes unescaped, dates as
/// RFC 3339, data as base64, absent optionals left out), without building Foundation's tree
/// of values first. Every event writes itself this way on the record path (issue 23); the
/// generator writes the conformances of the event types, and a test holds the two encoders
/// equal on every sample event.
public protocol CanonicalJSONWritable {
    /// Appends the value's JSON to `json`.
    func writeCanonicalJSON(to json: inout CanonicalJSONWriter)
}

extension CanonicalJSONWritable {
    /// The value's canonical JSON bytes.
    public func canonicalJSON() -> [UInt8] {
        var writer = CanonicalJSONWriter()
        writeCanonicalJSON(to: &writer)
        return writer.bytes
    }
}

/// The buffer canonical JSON is written into; objects and arrays are written member by
/// member, in the order the caller gives (for objects, sorted by key).
public struct CanonicalJSONWriter {
    /// The JSON written so far.
    public private(set) var bytes: [UInt8] = []
    /// Whether the innermost open object or array has no member yet (no comma needed).
    private var atFirstMember = true

    init() { bytes.reserveCapacity(256) }

    /// Opens an object.
    public mutating func beginObject() {
        bytes.append(UInt8(ascii: "{"))
        atFirstMember = true
    }

    /// Closes the innermost object.
    public mutating func endObject() {
        bytes.append(UInt8(ascii: "}"))
        atFirstMember = false
    }

    /// Writes `"key":value`; `key` needs no escaping (the generator's keys are identifiers).
    public mutating func member(_ key: StaticString, _ value: some CanonicalJSONWritable) {
        separate()
        bytes.append(UInt8(ascii: "\""))
        key.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
        value.writeCanonicalJSON(to: &self)
    }

    /// Writes `"key":value` for a key known only at run time.
    mutating func member(escaping key: String, _ value: some CanonicalJSONWritable) {
        separate()
        string(key)
        bytes.append(UInt8(ascii: ":"))
        value.writeCanonicalJSON(to: &self)
    }

    /// Writes one element of an array.
    mutating func element(_ value: some CanonicalJSONWritable) {
        separate()
        value.writeCanonicalJSON(to: &self)
    }

    /// Opens an array.
    mutating func beginArray() {
        bytes.append(UInt8(ascii: "["))
        atFirstMember = true
    }

    /// Closes the innermost array.
    mutating func endArray() {
        bytes.append(UInt8(ascii: "]"))
        atFirstMember = false
    }

    /// Bytes that are already valid JSON text (a number, `true`).
    mutating func raw(_ text: String) {
        bytes.append(contentsOf: text.utf8)
    }

    private mutating func separate() {
        if atFirstMember {
            atFirstMember = false
        } else {
            bytes.append(UInt8(ascii: ","))
        }
    }

    /// A JSON string as Foundation writes it: `"` and `\` escaped, control characters as
    /// `\b \f \n \r \t` or `\u00XX`, everything else (`/` and non-ASCII too) as its UTF-8.
    mutating func string(_ text: String) {
        var text = text
        bytes.append(UInt8(ascii: "\""))
        // Runs of bytes that need no escaping (nearly all of them) are copied whole.
        text.withUTF8 { utf8 in
            var runStart = 0
            for index in utf8.indices where Self.needsEscape(utf8[index]) {
                if runStart < index { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<index])) }
                escape(utf8[index])
                runStart = index + 1
            }
            if runStart < utf8.count { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart...])) }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    private static func needsEscape(_ byte: UInt8) -> Bool {
        byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\")
    }

    private mutating func escape(_ byte: UInt8) {
        bytes.append(UInt8(ascii: "\\"))
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"): bytes.append(byte)
        case 0x08: bytes.append(UInt8(ascii: "b"))
        case 0x0C: bytes.append(UInt8(ascii: "f"))
        case 0x0A: bytes.append(UInt8(ascii: "n"))
        case 0x0D: bytes.append(UInt8(ascii: "r"))
        case 0x09: bytes.append(UInt8(ascii: "t"))
        default:
            bytes.append(contentsOf: "u00".utf8)
            Hex.append(byte, to: &bytes)
        }
    }

    /// `data` as a base64 JSON string, as `JSONEncoder` writes data. Appended without
    /// ``string(_:)``'s escaping pass: base64 has nothing to escape.
    mutating func base64(_ data: Data) {
        bytes.append(UInt8(ascii: "\""))
        bytes.append(contentsOf: data.base64EncodedString().utf8)
        bytes.append(UInt8(ascii: "\""))
    }
}

extension String: CanonicalJSONWritable {
    /// A JSON string.
    public func writeCanonicalJSON(to json: inout CanonicalJSONWriter) { json.string(self) }
}

extension Bool: CanonicalJSONWritable {
    /// `true` or `false`.
    public func writeCanonicalJSON(to json: inout CanonicalJSONWriter) { json.raw(self ? "true" : "false") }
}

extension CanonicalJSONWritable where Self: FixedWidthInteger {
    /// A JSON integer.
    public func writeCanonicalJSON(to json: inout CanonicalJSONWriter) { json.raw(String(self)) }
}

extension Int: CanonicalJSONWritable, CanonicalJSONReadable {}
extension Int32: CanonicalJSONWritable, CanonicalJSONReadable {}
extension Int64: CanonicalJSONWritable, CanonicalJSONReadable {}

extension Date: CanonicalJSONWritable {
    /// An RFC 3339 string, as ``EventCodec``'s date strategy writes it.
    public func writeCanonicalJSON(to json: inout CanonicalJSONWriter) { json.string(RFC3339.format(self)) }
}

extension Data: CanonicalJSONWritable {
    /// A base64 string, `JSONEncoder`'s default for data.
    public func writeCanonicalJSON(to json: inout CanonicalJSONWriter) { json.base64(self) }
}

extension Array: CanonicalJSONWritable where Element: CanonicalJSONWritable {
    /// A JSON array.
    public func writeCanonicalJSON(to json: inout CanonicalJSONWriter) {
        json.beginArray()
        for element in self { json.element(element) }
        json.endArray()
    }
}

extension Dictionary: CanonicalJSONWritable where Key == String, Value: CanonicalJSONWritable {
    /// A JSON object, keys sorted by their UTF-8 bytes as `JSONEncoder`'s `.sortedKeys` does.
    public func writeCanonicalJSON(to json: inout CanonicalJSONWriter) {
        json.beginObject()
        for (key, value) in sorted(by: { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }) {
            json.member(escaping: key, value)
        }
        json.endObject()
    }
}

extension CanonicalJSONWritable where Self: RawRepresentable, RawValue == String {
    /// The raw value as a JSON string, as `Codable`'s default for string enums.
    public func writeCanonicalJSON(to json: inout CanonicalJSONWriter) { json.string(rawValue) }
}

extension CurrencyCode: CanonicalJSONWritable {
    /// The bare code, as its `encode(to:)` writes it.
    public func writeCanonicalJSON(to json: inout CanonicalJSONWriter) { json.string(code) }
}

extension CountryCode: CanonicalJSONWritable {
    /// The bare code, as its `encode(to:)` writes it.
    public func writeCanonicalJSON(to json: inout CanonicalJSONWriter) { json.string(code) }
}

/// A value read back from canonical JSON without Foundation's decoder: the record path's
/// fast way in (issue 23). It accepts only the plain form ``CanonicalJSONWritable`` writes
/// (integers without fraction or exponent, no duplicate keys); for anything else, or any
/// value that does not fit, it answers nil, and ``EventCodec/decode(_:from:)`` decodes with
/// Foundation instead, which then accepts the input or names what is wrong with it.
public protocol CanonicalJSONReadable {
    /// The value, if `json` is exactly this type's JSON; nil otherwise.
    init?(canonicalJSON json: JSONValue)
}

extension Dictionary where Key == String, Value == JSONValue {
    /// The member `key` read as `T`; nil when absent or not a `T` (the struct is then not read).
    func required<T: CanonicalJSONReadable>(_ key: String) -> T? {
        guard let json = self[key] else { return nil }
        return T(canonicalJSON: json)
    }

    /// An optional member: `.some(nil)` when absent or null, as `decodeIfPresent` reads it;
    /// nil when present but not a `T`.
    func optional<T: CanonicalJSONReadable>(_ key: String) -> T?? {
        guard let json = self[key], json != .null else { return .some(nil) }
        guard let value = T(canonicalJSON: json) else { return nil }
        return .some(value)
    }
}

extension String: CanonicalJSONReadable {
    /// A JSON string.
    public init?(canonicalJSON json: JSONValue) {
        guard case .string(let text) = json else { return nil }
        self = text
    }
}

extension Bool: CanonicalJSONReadable {
    /// `true` or `false`.
    public init?(canonicalJSON json: JSONValue) {
        guard case .bool(let value) = json else { return nil }
        self = value
    }
}

extension CanonicalJSONReadable where Self: FixedWidthInteger {
    /// A JSON integer in range, without fraction or exponent.
    public init?(canonicalJSON json: JSONValue) {
        guard case .number(let text) = json, let value = Self(text) else { return nil }
        self = value
    }
}

extension Date: CanonicalJSONReadable {
    /// An RFC 3339 string, as ``EventCodec``'s date strategy reads it.
    public init?(canonicalJSON json: JSONValue) {
        guard case .string(let text) = json, let date = RFC3339.parse(text) else { return nil }
        self = date
    }
}

extension Data: CanonicalJSONReadable {
    /// A base64 string, as `JSONDecoder`'s default for data reads it.
    public init?(canonicalJSON json: JSONValue) {
        guard case .string(let text) = json, let data = Data(base64Encoded: text) else { return nil }
        self = data
    }
}

extension Array: CanonicalJSONReadable where Element: CanonicalJSONReadable {
    /// A JSON array whose every element is an `Element`.
    public init?(canonicalJSON json: JSONValue) {
        guard case .array(let items) = json else { return nil }
        var elements: [Element] = []
        elements.reserveCapacity(items.count)
        for item in items {
            guard let element = Element(canonicalJSON: item) else { return nil }
            elements.append(element)
        }
        self = elements
    }
}

extension Dictionary: CanonicalJSONReadable where Key == String, Value: CanonicalJSONReadable {
    /// A JSON object whose every value is a `Value`.
    public init?(canonicalJSON json: JSONValue) {
        guard case .object(let members) = json else { return nil }
        var result: [String: Value] = [:]
        result.reserveCapacity(members.count)
        for (key, member) in members {
            guard let value = Value(canonicalJSON: member) else { return nil }
            result[key] = value
        }
        self = result
    }
}

extension CanonicalJSONReadable where Self: RawRepresentable, RawValue == String {
    /// One of the type's raw values, as `Codable`'s default for string enums reads it.
    public init?(canonicalJSON json: JSONValue) {
        guard case .string(let text) = json else { return nil }
        self.init(rawValue: text)
    }
}

extension CurrencyCode: CanonicalJSONReadable {
    /// A valid bare code.
    public init?(canonicalJSON json: JSONValue) {
        guard case .string(let text) = json, let code = try? CurrencyCode(text) else { return nil }
        self = code
    }
}

extension CountryCode: CanonicalJSONReadable {
    /// A valid bare code.
    public init?(canonicalJSON json: JSONValue) {
        guard case .string(let text) = json, let code = try? CountryCode(text) else { return nil }
        self = code
    }
}

/// Every way a record, a payload or a value can fail to be a valid contract.
///
/// Stages never crash on bad input: they catch a `ContractError` and hand the
/// record to `oms.deadletter`, so `description` must tell an operator exactly
/// what is wrong without access to the code.
public enum ContractError: Error, Sendable, Hashable, Codable, CustomStringConvertible {
    /// A required Kafka header is absent.
    case missingHeader(String)
    /// A Kafka header is present but its value is unusable.
    case invalidHeader(name: String, reason: String)
    /// A header that must appear once appears several times, so the record is ambiguous.
    case duplicateHeader(String)
    /// `ce_type` names an event this build does not know at any version.
    case unknownEventType(String)
    /// `ce_type` names a known event at a version this build cannot read.
    case unknownEventVersion(type: String, version: Int, known: [Int])
    /// The record value is not valid UTF-8, so it cannot be JSON.
    case payloadNotUTF8(byteOffset: Int)
    /// The record value is not syntactically valid JSON.
    case malformedJSON(reason: String)
    /// The JSON is well formed but a field is missing, has the wrong type or an invalid value.
    case invalidField(path: String, reason: String)
    /// A channel or carrier body exceeds the configured limit; rejected before parsing.
    case payloadTooLarge(size: Int, limit: Int)
    /// A decimal amount string cannot be turned into exact minor units.
    case invalidAmount(String, reason: String)
    /// Arithmetic on amounts or quantities would not fit in 64 bits.
    case arithmeticOverflow(String)
    /// Two amounts in different currencies were combined.
    case currencyMismatch(String, String)
    /// The record key differs from the key the event's topic is partitioned by.
    case keyMismatch(expected: String, actual: String)
    /// Encoding an event failed; only possible through a bug, reported instead of trapping.
    case encodingFailed(String)

    /// The operator-facing explanation stored in dead letters.
    public var description: String {
        switch self {
        case .missingHeader(let name):
            return "missing header '\(name)'"
        case .invalidHeader(let name, let reason):
            return "invalid header '\(name)': \(reason)"
        case .duplicateHeader(let name):
            return "header '\(name)' appears more than once"
        case .unknownEventType(let type):
            return "unknown event type '\(type)'"
        case .unknownEventVersion(let type, let version, let known):
            let list = known.map { "v\($0)" }.joined(separator: ", ")
            return "unknown version v\(version) of event type '\(type)' (known: \(list))"
        case .payloadNotUTF8(let offset):
            return "payload is not valid UTF-8 (first bad byte at offset \(offset))"
        case .malformedJSON(let reason):
            return "payload is not valid JSON: \(reason)"
        case .invalidField(let path, let reason):
            return "field '\(path)': \(reason)"
        case .payloadTooLarge(let size, let limit):
            return "payload of \(size) bytes exceeds the limit of \(limit) bytes"
        case .invalidAmount(let text, let reason):
            return "invalid amount '\(text)': \(reason)"
        case .arithmeticOverflow(let what):
            return "arithmetic overflow: \(what)"
        case .currencyMismatch(let a, let b):
            return "currency mismatch: \(a) vs \(b)"
        case .keyMismatch(let expected, let actual):
            return "record key '\(actual)' does not match the event's partition key '\(expected)'"
        case .encodingFailed(let reason):
            return "encoding failed: \(reason)"
        }
    }
}

import Digests
import Foundation

/// Name-based (UUIDv5, RFC 9562 §5.5) identifiers.
///
/// A stage that re-processes the same input after a crash must emit the
/// same event ids, so downstream dedupe works even without transactions;
/// and a marketplace that re-sends an order must map to the same orderId.
/// Both are hashes of their inputs rather than random.
public enum DeterministicID {
    /// The RFC 9562 DNS namespace, the conventional root for derived namespaces.
    static let dnsNamespace: [UInt8] = [
        0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8,
    ]
    /// Namespace of event ids: UUIDv5(DNS, "events.orderfleet.oms").
    static let eventNamespace = uuidV5Bytes(namespace: dnsNamespace, name: "events.orderfleet.oms")
    /// Namespace of order ids: UUIDv5(DNS, "orders.orderfleet.oms").
    static let orderNamespace = uuidV5Bytes(namespace: dnsNamespace, name: "orders.orderfleet.oms")

    /// The id of the `outputIndex`-th event a `stage` emits for input `inputEventID`.
    public static func eventID(inputEventID: String, stage: String, outputIndex: Int) -> String {
        uuidString(uuidV5Bytes(namespace: eventNamespace, name: name(inputEventID, stage, String(outputIndex))))
    }

    /// The OMS order id of a channel order, stable across re-sends.
    public static func orderID(channel: String, externalOrderID: String) -> String {
        uuidString(uuidV5Bytes(namespace: orderNamespace, name: name(channel, externalOrderID)))
    }

    /// A UUIDv5 of `name` in a caller-given namespace (UUID string), for other derived keys.
    public static func uuidV5(namespace: UUID, name: String) -> String {
        let n = namespace.uuid
        let bytes = [n.0, n.1, n.2, n.3, n.4, n.5, n.6, n.7, n.8, n.9, n.10, n.11, n.12, n.13, n.14, n.15]
        return uuidString(uuidV5Bytes(namespace: bytes, name: name))
    }

    /// The parts' UTF-8 with a unit separator (0x1F) between them, so ("a/b","c") and
    /// ("a","b/c") never collide; built as bytes, as it is once per output record.
    private static func name(_ parts: String...) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(parts.reduce(parts.count) { $0 + $1.utf8.count })
        for (index, part) in parts.enumerated() {
            if index > 0 { bytes.append(0x1F) }
            bytes.append(contentsOf: part.utf8)
        }
        return bytes
    }

    static func uuidV5Bytes(namespace: [UInt8], name: String) -> [UInt8] {
        uuidV5Bytes(namespace: namespace, name: Array(name.utf8))
    }

    static func uuidV5Bytes(namespace: [UInt8], name: [UInt8]) -> [UInt8] {
        var bytes = Digests.sha1(namespace, name)
        bytes.removeLast(4)  // keeps the allocation
        bytes[6] = (bytes[6] & 0x0F) | 0x50
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        return bytes
    }

    /// The canonical (lowercase, hyphenated) text of 16 UUID bytes.
    public static func uuidString(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(36)
        for (i, byte) in bytes.enumerated() {
            if i == 4 || i == 6 || i == 8 || i == 10 { out.append(UInt8(ascii: "-")) }
            Hex.append(byte, to: &out)
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// A W3C Trace Context `traceparent` (version 00).
///
/// Carried through every stage so one order's path across the fleet is one
/// trace. Parsed strictly, because a malformed header would otherwise
/// propagate garbage into every downstream record.
public struct TraceParent: Sendable, Hashable, Codable, CustomStringConvertible {
    /// 32 lowercase hex digits, not all zero.
    public let traceID: String
    /// 16 lowercase hex digits, not all zero: the span that produced the record.
    public let parentID: String
    /// Trace flags byte (bit 0 = sampled).
    public let flags: UInt8

    /// Parses `00-<trace-id>-<parent-id>-<flags>`.
    public init(parsing text: String) throws(ContractError) {
        // Every record's header: the well-formed case is checked byte by byte without
        // splitting; anything else goes through the field-by-field checks for its message.
        if let valid = Self.wellFormed(text) {
            self = valid
            return
        }
        let parts = text.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
        func invalid(_ reason: String) -> ContractError { .invalidHeader(name: "traceparent", reason: reason) }
        guard parts.count == 4 else { throw invalid("expected 4 dash-separated fields, got \(parts.count)") }
        guard parts[0] == "00" else { throw invalid("unsupported version '\(parts[0])'") }
        guard Self.isLowerHex(parts[1], count: 32), parts[1] != String(repeating: "0", count: 32) else {
            throw invalid("trace-id must be 32 lowercase hex digits, not all zero")
        }
        guard Self.isLowerHex(parts[2], count: 16), parts[2] != String(repeating: "0", count: 16) else {
            throw invalid("parent-id must be 16 lowercase hex digits, not all zero")
        }
        guard Self.isLowerHex(parts[3], count: 2), let flags = UInt8(parts[3], radix: 16) else {
            throw invalid("flags must be 2 lowercase hex digits")
        }
        self.traceID = parts[1]
        self.parentID = parts[2]
        self.flags = flags
    }

    /// The header value.
    public var description: String {
        var out: [UInt8] = []
        out.reserveCapacity(55)
        out.append(contentsOf: [UInt8(ascii: "0"), UInt8(ascii: "0"), UInt8(ascii: "-")])
        out.append(contentsOf: traceID.utf8)
        out.append(UInt8(ascii: "-"))
        out.append(contentsOf: parentID.utf8)
        out.append(UInt8(ascii: "-"))
        Hex.append(flags, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// The same trace with a new parent span derived from `eventID`, so a
    /// re-processed input yields the same traceparent as the first attempt.
    public func child(forEventID eventID: String) -> TraceParent {
        var span = Digests.sha1(Array("\(traceID)/\(eventID)".utf8))
        span.removeLast(12)
        if span.allSatisfy({ $0 == 0 }) { span[7] = 1 }
        return TraceParent(traceID: traceID, parentID: Hex.encode(span), flags: flags)
    }

    /// A new root trace derived from an event id, for records entering the system without one.
    public static func root(forEventID eventID: String) -> TraceParent {
        let digest = Digests.sha1(Array("root/\(eventID)".utf8))
        var trace = Array(digest[0..<16])
        var span = Array(digest[16..<20] + digest[0..<4])
        // All zero is not a valid id: the last digit becomes 1. Checked on the bytes, not
        // against a string of zeros made for each record.
        if trace.allSatisfy({ $0 == 0 }) { trace[15] = 1 }
        if span.allSatisfy({ $0 == 0 }) { span[7] = 1 }
        return TraceParent(traceID: Hex.encode(trace), parentID: Hex.encode(span), flags: 1)
    }

    private init(traceID: String, parentID: String, flags: UInt8) {
        self.traceID = traceID
        self.parentID = parentID
        self.flags = flags
    }

    /// Decodes from the header string form.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        do {
            try self.init(parsing: text)
        } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.description)
        }
    }

    /// Encodes as the header string form.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    /// `text` parsed, if it is a valid version-00 traceparent; nil for anything else.
    private static func wellFormed(_ text: String) -> TraceParent? {
        guard text.utf8.count == 55 else { return nil }
        var text = text
        return text.withUTF8 { b -> TraceParent? in
            guard b[0] == UInt8(ascii: "0"), b[1] == UInt8(ascii: "0"), b[2] == UInt8(ascii: "-"),
                b[35] == UInt8(ascii: "-"), b[52] == UInt8(ascii: "-")
            else { return nil }
            /// The digits as text, if all are lowercase hex and not all zero.
            func lowerHex(_ range: Range<Int>) -> String? {
                var allZero = true
                for index in range {
                    guard Hex.value(ofLowercaseDigit: b[index]) != nil else { return nil }
                    if b[index] != UInt8(ascii: "0") { allZero = false }
                }
                return allZero ? nil : String(decoding: UnsafeBufferPointer(rebasing: b[range]), as: UTF8.self)
            }
            guard let trace = lowerHex(3..<35), let parent = lowerHex(36..<52),
                let high = Hex.value(ofLowercaseDigit: b[53]), let low = Hex.value(ofLowercaseDigit: b[54])
            else { return nil }
            return TraceParent(traceID: trace, parentID: parent, flags: high << 4 | low)
        }
    }

    private static func isLowerHex(_ s: String, count: Int) -> Bool {
        s.utf8.count == count && s.utf8.allSatisfy { Hex.value(ofLowercaseDigit: $0) != nil }
    }
}

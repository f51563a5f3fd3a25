import Foundation

/// Lower-case hexadecimal, as signatures and digests are written in headers.
public enum Hex {
    /// The bytes as lower-case hex, two digits each.
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }

    /// The bytes `text` spells in hex (either case); nil when it is not hex.
    public static func decode(_ text: some StringProtocol) -> Data? {
        guard text.utf8.count.isMultiple(of: 2) else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count / 2)
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            guard let byte = UInt8(text[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        return Data(bytes)
    }
}

import Contracts
import Digests
import Foundation

/// A message ready for SMTP.
struct ComposedEmail: Sendable, Hashable {
    /// `<id@domain>`, brackets included.
    var messageID: String
    /// RFC 5322 text, CRLF line ends, ASCII only.
    var text: String
}

/// Builds the RFC 5322 / MIME message for a notification.
///
/// Everything in it derives from the notification (Message-ID, Date, MIME boundary), so a
/// resend after an unknown outcome is byte-identical and a receiving system that
/// de-duplicates by Message-ID shows it once.
struct EmailComposer: Sendable, Hashable {
    /// The envelope and `From:` address.
    var fromAddress: String
    /// The `From:` display name, if any.
    var fromName: String?
    /// The right-hand side of Message-IDs.
    var messageIDDomain: String

    func compose(
        notificationID: String, notification: Contracts.Notification, recipient: String, rendered: RenderedNotification
    ) -> ComposedEmail {
        let messageID = "<\(Self.messageIDLocalPart(notificationID))@\(messageIDDomain)>"
        let boundary = "=_OrderFleet_" + Hex.encode(Digests.sha256(Array(notificationID.utf8))).prefix(32)
        let from = fromName.map { "\(Self.displayName($0)) <\(fromAddress)>" } ?? fromAddress
        var headers = [
            "From: \(from)",
            "To: \(recipient)",
            "Subject: " + Self.encodeHeaderText(rendered.subject, prefixLength: "Subject: ".count),
            "Date: \(Self.rfc5322Date(notification.createdAt))",
            "Message-ID: \(messageID)",
            "MIME-Version: 1.0",
            "Content-Type: multipart/alternative;\r\n boundary=\"\(boundary)\"",
            "Content-Language: \(rendered.locale)",
            "Auto-Submitted: auto-generated",
            "X-OrderFleet-Notification: \(Self.headerSafe(notificationID))",
        ]
        headers.append("")
        var body = ["This is a multi-part message in MIME format.", ""]
        for (type, content) in [("text/plain", rendered.text), ("text/html", rendered.html)] {
            body.append("--\(boundary)")
            body.append("Content-Type: \(type); charset=utf-8")
            body.append("Content-Transfer-Encoding: base64")
            body.append("")
            body.append(contentsOf: Self.base64Lines(Self.crlf(content)))
        }
        body.append("--\(boundary)--")
        body.append("")
        return ComposedEmail(messageID: messageID, text: (headers + body).joined(separator: "\r\n"))
    }

    // MARK: - Encoding

    /// `text` as is when it is printable ASCII without `=?` (which a reader would take for
    /// an encoded word), else as RFC 2047 base64 encoded words of UTF-8, folded so no
    /// line exceeds 76 characters and no character is split between words.
    static func encodeHeaderText(_ text: String, prefixLength: Int = 0) -> String {
        let plain = text.unicodeScalars.allSatisfy { $0.value >= 32 && $0.value < 127 } && !text.contains("=?")
        if plain && prefixLength + text.utf8.count <= 78 { return text }
        if plain { return fold(text, firstLineUsed: prefixLength) }
        // 39 bytes of UTF-8 make 52 base64 characters, a 64-character word: within RFC
        // 2047's 75 and, after "Subject: ", within its 76 per line.
        var words: [String] = []
        var chunk: [UInt8] = []
        for character in text {
            let bytes = Array(String(character).utf8)
            if chunk.count + bytes.count > 39, !chunk.isEmpty {
                words.append("=?UTF-8?B?\(Data(chunk).base64EncodedString())?=")
                chunk = []
            }
            chunk.append(contentsOf: bytes)
        }
        if !chunk.isEmpty { words.append("=?UTF-8?B?\(Data(chunk).base64EncodedString())?=") }
        return words.joined(separator: "\r\n ")
    }

    /// Folds printable ASCII at spaces so lines stay near 78 characters (RFC 5322 §2.2.3).
    private static func fold(_ text: String, firstLineUsed: Int) -> String {
        var lines: [String] = []
        var line: String?
        var room = 78 - firstLineUsed
        for word in text.split(separator: " ", omittingEmptySubsequences: false) {
            guard let current = line else {
                line = String(word)
                continue
            }
            if current.count + 1 + word.count > room {
                lines.append(current)
                line = String(word)
                room = 77  // a continuation line starts with the space that was folded
            } else {
                line = current + " " + word
            }
        }
        lines.append(line ?? "")
        return lines.joined(separator: "\r\n ")
    }

    /// A display name as a quoted string, or as an encoded word when it is not ASCII.
    static func displayName(_ name: String) -> String {
        if name.unicodeScalars.allSatisfy({ $0.value >= 32 && $0.value < 127 }) {
            let escaped = name.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            return "\"\(escaped)\""
        }
        return encodeHeaderText(name)
    }

    /// The Message-ID's left part: the id's characters that are dot-atom text, others as `-`.
    static func messageIDLocalPart(_ id: String) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~.")
        var result = String(id.map { allowed.contains($0) ? $0 : "-" })
        while result.contains("..") { result = result.replacingOccurrences(of: "..", with: ".") }
        result = result.trimmingCharacters(in: CharacterSet(charactersIn: "."))
        return result.isEmpty ? "-" : result
    }

    /// `Tue, 01 Dec 2026 09:30:00 +0000` (RFC 5322 §3.3), always in UTC, locale-free.
    static func rfc5322Date(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday], from: date)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ value: Int?) -> String { (value ?? 0) < 10 ? "0\(value ?? 0)" : "\(value ?? 0)" }
        return "\(days[(parts.weekday ?? 1) - 1]), \(two(parts.day)) \(months[(parts.month ?? 1) - 1]) \(parts.year ?? 1970) "
            + "\(two(parts.hour)):\(two(parts.minute)):\(two(parts.second)) +0000"
    }

    /// CRLF line ends: the canonical form of text parts (RFC 2046 §4.1.1).
    static func crlf(_ text: String) -> String {
        text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
            .replacingOccurrences(of: "\n", with: "\r\n")
    }

    /// Base64 of the UTF-8 text in lines of 76 characters (RFC 2045 §6.8).
    static func base64Lines(_ text: String) -> [String] {
        let encoded = Data(text.utf8).base64EncodedString()
        var lines: [String] = []
        var index = encoded.startIndex
        while index < encoded.endIndex {
            let end = encoded.index(index, offsetBy: 76, limitedBy: encoded.endIndex) ?? encoded.endIndex
            lines.append(String(encoded[index..<end]))
            index = end
        }
        return lines
    }

    private static func headerSafe(_ text: String) -> String {
        String(text.unicodeScalars.filter { $0.value >= 32 && $0.value < 127 }.map(Character.init))
    }
}

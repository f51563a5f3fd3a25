import Contracts
import Foundation
import Testing

@testable import Outbound

@Suite("Email composer")
struct EmailComposerTests {
    let composer = EmailComposer(fromAddress: "orders@shop.example", fromName: "Shop Team", messageIDDomain: "mail.shop.example")

    func compose(
        _ notification: Contracts.Notification = EmailFixtures.notification(), id: String = "ntf-0001",
        subject: String = "Your order SHOP-1042 has shipped", text: String = "Tracking: JD01\nBye\n",
        html: String = "<p>Tracking: JD01</p>"
    ) -> ComposedEmail {
        let rendered = RenderedNotification(locale: "en", subject: subject, text: text, html: html)
        return composer.compose(notificationID: id, notification: notification, recipient: "jane.doe@example.com", rendered: rendered)
    }

    @Test("Message-ID, Date and boundary derive from the notification, so a resend is byte-identical")
    func stable() {
        let first = compose()
        let second = compose()
        #expect(first.messageID == "<ntf-0001@mail.shop.example>")
        #expect(first.text == second.text)
        #expect(first.text.contains("\r\nMessage-ID: <ntf-0001@mail.shop.example>\r\n"))
        #expect(first.text.contains("\r\nDate: Tue, 01 Dec 2026 08:00:00 +0000\r\n"))
        #expect(first.text.contains("\r\nX-OrderFleet-Notification: ntf-0001\r\n"))
        #expect(first.text.contains("\r\nAuto-Submitted: auto-generated\r\n"))
        #expect(first.text.contains("\r\nMIME-Version: 1.0\r\n"))
        #expect(first.text.hasPrefix("From: \"Shop Team\" <orders@shop.example>\r\nTo: jane.doe@example.com\r\n"))
        let other = compose(id: "ntf-0002")
        #expect(other.messageID == "<ntf-0002@mail.shop.example>")
        #expect(ParsedEmail(other.text).headers["content-type"] != ParsedEmail(first.text).headers["content-type"])
    }

    @Test("the message is ASCII with CRLF line ends and no line over 78 characters")
    func wireForm() {
        let text = compose(subject: String(repeating: "Lange Betreffzeile ", count: 8), text: String(repeating: "x", count: 500)).text
        #expect(text.unicodeScalars.allSatisfy { $0.isASCII })
        #expect(!text.replacingOccurrences(of: "\r\n", with: "").contains("\n"))
        #expect(!text.replacingOccurrences(of: "\r\n", with: "").contains("\r"))
        for line in text.components(separatedBy: "\r\n") { #expect(line.count <= 78, "\(line)") }
    }

    @Test("a non-ASCII subject is RFC 2047 encoded and decodes to the original", arguments: [
        "Ihre Bestellung SHOP-1042 wurde zugestellt – schön!",
        "您的订单 SHOP-1042 已发货",
        "Zustellung für Bestellung SHOP-1042 verzögert sich leider um einige Tage – bitte entschuldigen Sie 🙏",
    ])
    func encodedSubject(subject: String) {
        let text = compose(subject: subject).text
        let parsed = ParsedEmail(text)
        #expect(parsed.headers["subject"]?.hasPrefix("=?UTF-8?B?") == true)
        #expect(parsed.subject == subject)
        for line in text.components(separatedBy: "\r\n") where line.contains("=?UTF-8?B?") {
            #expect(line.count <= 78)
        }
    }

    @Test("an ASCII subject stays readable")
    func asciiSubject() {
        #expect(ParsedEmail(compose().text).headers["subject"] == "Your order SHOP-1042 has shipped")
        #expect(EmailComposer.encodeHeaderText("a =?x?= trick").hasPrefix("=?UTF-8?B?"))
    }

    @Test("both parts are there, base64 in lines of at most 76, and decode to the rendered text")
    func parts() {
        let text = compose(text: "Grüße aus Köln\nSendungsnummer: JD01\n", html: "<p>您好！ &amp; JD01</p>").text
        let parsed = ParsedEmail(text)
        #expect(parsed.headers["content-type"]?.hasPrefix("multipart/alternative; boundary=\"=_OrderFleet_") == true)
        #expect(parsed.parts["text/plain"] == "Grüße aus Köln\r\nSendungsnummer: JD01\r\n")
        #expect(parsed.parts["text/html"] == "<p>您好！ &amp; JD01</p>")
        #expect(text.contains("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n"))
        #expect(text.contains("Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n"))
        let long = compose(text: String(repeating: "äöü ", count: 100)).text
        let base64Lines = long.components(separatedBy: "\r\n").filter { !$0.isEmpty && $0.allSatisfy { $0.isLetter || $0.isNumber || "+/=".contains($0) } }
        #expect(base64Lines.count > 10)
        for line in base64Lines { #expect(line.count <= 76) }
    }

    @Test("templates rendered into a message carry the notification's values")
    func renderedValues() throws {
        let templates = try NotificationTemplates(directory: EmailFixtures.templatesDirectory)
        let notification = EmailFixtures.notification(.shipped, data: EmailFixtures.sampleData.merging(["locale": "de"]) { $1 })
        let rendered = templates.render(notification, locale: templates.locale(for: notification, defaults: [:]))
        let email = composer.compose(notificationID: "ntf-9", notification: notification, recipient: "jane.doe@example.com", rendered: rendered)
        let parsed = ParsedEmail(email.text)
        #expect(parsed.subject == "Ihre Bestellung SHOP-1042 ist unterwegs")
        #expect(parsed.headers["content-language"] == "de")
        let plain = try #require(parsed.parts["text/plain"])
        #expect(plain.contains("Sendungsnummer: JD0146000012345"))
        #expect(plain.contains("Hallo Jane <Doe> & Co,"))
        #expect(plain.contains("5. Dezember 2026"))
        let html = try #require(parsed.parts["text/html"])
        #expect(html.contains("Hallo Jane &lt;Doe&gt; &amp; Co,"))
        #expect(html.contains("href=\"https://track.example/?id=JD0146000012345&amp;lang=x\""))
    }

    @Test("a display name with quotes is escaped, a non-ASCII one encoded")
    func displayNames() {
        #expect(EmailComposer.displayName("Shop \"Best\" Team") == "\"Shop \\\"Best\\\" Team\"")
        #expect(ParsedEmail.decodeEncodedWords(EmailComposer.displayName("Bücherstube Köln")) == "Bücherstube Köln")
    }

    @Test("Message-ID left part keeps dot-atom text and replaces the rest")
    func messageIDLocalPart() {
        #expect(EmailComposer.messageIDLocalPart("9f1c-77ab.x") == "9f1c-77ab.x")
        #expect(EmailComposer.messageIDLocalPart("a b<c>@d") == "a-b-c--d")
        #expect(EmailComposer.messageIDLocalPart(".a..b.") == "a.b")
    }
}

@Suite("SMTP wire helpers")
struct EmailSMTPWireTests {
    @Test("DATA content: CRLF everywhere, leading dots doubled, no final line end")
    func dataPayload() {
        #expect(SMTPClient.dataPayload("a\nb\r\nc\rd\r\n") == "a\r\nb\r\nc\r\nd")
        #expect(SMTPClient.dataPayload(".hidden\r\n..two\r\nok.\r\n.\r\n") == "..hidden\r\n...two\r\nok.\r\n..")
        #expect(SMTPClient.dataPayload("end\r\n\r\n") == "end\r\n")
    }

    @Test("EHLO extensions, queue ids, masks and addresses")
    func helpers() {
        let ehlo = SMTPReply(code: 250, lines: ["mail.example", "SIZE 1000", "STARTTLS", "AUTH=LOGIN PLAIN"])
        let extensions = SMTPClient.extensions(of: ehlo)
        #expect(extensions["STARTTLS"] == [])
        #expect(extensions["AUTH"] == ["LOGIN", "PLAIN"])
        #expect(SMTPClient.queueReference(SMTPReply(code: 250, lines: ["2.0.0 Ok: queued as 4F3A2B1C"])) == "4F3A2B1C")
        #expect(SMTPClient.queueReference(SMTPReply(code: 250, lines: ["OK"])) == nil)
        #expect(SMTPClient.queueReference(SMTPReply(code: 250, lines: ["2.0.0 OK 1690000000 abc.123 - gsmtp"])) == "OK 1690000000 abc.123 - gsmtp")
        #expect(SMTPClient.mask("jane.doe@example.com") == "j***@example.com")
        #expect(SMTPClient.mask("nonsense") == "***")
        #expect(SMTPClient.isDeliverable("jane@example.com"))
        #expect(!SMTPClient.isDeliverable("jane@example.com>\r\nRCPT TO:<x@y.z"))
        #expect(!SMTPClient.isDeliverable("jane doe@example.com"))
        #expect(!SMTPClient.isDeliverable("jäne@example.com"))
        #expect(!SMTPClient.isDeliverable("@example.com"))
    }

    @Test("outcomes map to call results by reply class and by whether the end of data was sent")
    func mapping() {
        func reply(_ code: Int, _ text: String) -> SMTPReply { SMTPReply(code: code, lines: [text]) }
        #expect(EmailEndpoint.result(of: .accepted(reply(250, "2.0.0 Ok: queued as ABC"))) == .delivered(reference: "ABC"))
        #expect(EmailEndpoint.result(of: .refused(reply(550, "5.1.1 mailbox unavailable"), command: "RCPT TO", stage: .transaction))
            == .rejected(status: 550, reason: "550 5.1.1 mailbox unavailable (RCPT TO)"))
        #expect(EmailEndpoint.result(of: .refused(reply(451, "4.3.0 later"), command: "RCPT TO", stage: .transaction))
            == .retry(after: nil, reason: "451 4.3.0 later (RCPT TO)"))
        #expect(EmailEndpoint.result(of: .refused(reply(452, "full"), command: "end of data", stage: .endOfData))
            == .retry(after: nil, reason: "452 full (end of data)"))
        #expect(EmailEndpoint.result(of: .refused(reply(554, "spam"), command: "end of data", stage: .endOfData))
            == .rejected(status: 554, reason: "554 spam (end of data)"))
        #expect(EmailEndpoint.result(of: .refused(reply(535, "bad credentials"), command: "AUTH PLAIN", stage: .session))
            == .retry(after: nil, reason: "535 bad credentials (AUTH PLAIN)"))
        #expect(EmailEndpoint.result(of: .failed(reason: "timed out", stage: .transaction)) == .retry(after: nil, reason: "timed out"))
        #expect(EmailEndpoint.result(of: .failed(reason: "timed out", stage: .endOfData)) == .unknown(reason: "timed out"))
        #expect(EmailEndpoint.result(of: .abandoned(reason: "ledger down")) == .retry(after: nil, reason: "ledger down"))
    }
}

import AsyncHTTPClient
import Contracts
import Foundation
import Testing

@testable import Outbound
@testable import oms

/// Text messages: phone numbers and templates as pure functions, and the Twilio endpoint
/// through the connector runtime against a local server speaking Twilio's Messages API.
@Suite("SMS")
struct SMSTests {
    static func notification(_ kind: NotificationKind, phone: String? = "+49 151 2345-6789", data: [String: String] = [:], id: String = "n-1") -> Envelope {
        let note = Contracts.Notification(
            orderId: "o-1", kind: kind, recipientEmail: "a@b.example",
            data: ["externalOrderId": "#1001", "carrier": "DHL", "trackingNumber": "00340434161094042557", "channel": "web"].merging(data) { $1 },
            recipientPhone: phone, createdAt: Date(timeIntervalSince1970: 1_780_000_000))
        return Envelope(id: id, source: "test", time: note.createdAt, event: note.event)
    }

    static func endpoint(_ base: String, channels: LocalChannels, token: String? = nil, policy: NotificationPolicy = NotificationPolicy(nonUrgentKinds: []), timeout: Duration = .seconds(5)) throws -> TwilioSMS {
        TwilioSMS(
            baseURL: base, accountSID: "AC0123456789abcdef0123456789abcdef", authToken: token ?? channels.token, from: "+15005550006",
            templates: try SMSTemplates(), defaultLocales: ["web": "de"], policy: policy, http: HTTPExchange(client: .shared, timeout: timeout))
    }

    @Test("phone numbers: typed forms become E.164; national numbers and junk are refused")
    func phoneNumbers() {
        #expect(PhoneNumber.e164("+49 (151) 2345-6789") == "+4915123456789")
        #expect(PhoneNumber.e164("0049 151 23456789") == "+4915123456789")
        #expect(PhoneNumber.e164("+1.415.555.0100") == "+14155550100")
        #expect(PhoneNumber.e164("0151 23456789") == nil)
        #expect(PhoneNumber.e164("+12") == nil)
        #expect(PhoneNumber.e164("+49 151 ABC") == nil)
        #expect(PhoneNumber.e164("+0151234567") == nil)
        #expect(PhoneNumber.mask("+4915123456789") == "•••••••••••789")
    }

    @Test("templates: one line per kind and locale, English as the fallback; a kind without a template is not texted")
    func templates() throws {
        let templates = try SMSTemplates()
        #expect(templates.locales == ["en", "de", "zh"])
        let shipped = try #require(Self.notification(.shipped).event.notification)
        #expect(templates.render(shipped, defaults: [:]) == "Your order #1001 has shipped with DHL. Tracking: 00340434161094042557")
        #expect(templates.render(shipped, defaults: ["web": "de"]) == "Ihre Bestellung #1001 wurde verschickt mit DHL. Sendungsnummer: 00340434161094042557")
        var french = shipped
        french.data["locale"] = "fr"
        #expect(templates.render(french, defaults: [:])?.hasPrefix("Your order") == true)
        let confirmed = try #require(Self.notification(.confirmed).event.notification)
        #expect(templates.render(confirmed, defaults: [:]) == nil)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sms-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try "Versandt".write(to: directory.appendingPathComponent("shipped.de.mustache"), atomically: true, encoding: .utf8)
        #expect(throws: NotificationTemplateError.self) { try SMSTemplates(directory: directory.path) }
    }

    @Test("Twilio: one message per notification; the same command again sends nothing; a number without country code is skipped")
    func sends() async throws {
        try await withChannels { channels, base in
            let processor = Harness.processor(try Self.endpoint(base, channels: channels))
            let first = try await processor.settle(Self.notification(.shipped), offset: 3)
            #expect(first.entry.state == .delivered && first.entry.reference?.hasPrefix("SM") == true)
            #expect(try await processor.settle(Self.notification(.shipped), offset: 3) == .alreadySettled(first.entry))
            #expect(channels.ledger.texts == ["+4915123456789|Ihre Bestellung #1001 wurde verschickt mit DHL. Sendungsnummer: 00340434161094042557": 1])
            let national = try await processor.settle(Self.notification(.delivered, phone: "0151 23456789", id: "n-2"), offset: 4)
            #expect(national.entry.state == .skipped && national.entry.reason == "not an international (E.164) phone number")
            let untexted = try await processor.settle(Self.notification(.confirmed, id: "n-3"), offset: 5)
            #expect(untexted.entry.state == .skipped && untexted.entry.reason == "no text message for confirmed")
            #expect(channels.ledger.texts.count == 1)
        }
    }

    @Test("Twilio: an answer lost after the message is reconciled by listing the recipient's messages, not by a second message")
    func lostAnswer() async throws {
        try await withChannels { channels, base in
            channels.setFaults { $0.loseAnswerEvery = 1; $0.holdAnswer = .seconds(2) }
            let processor = Harness.processor(try Self.endpoint(base, channels: channels, timeout: .milliseconds(400)))
            let settled = try await processor.settle(Self.notification(.outForDelivery), offset: 1)
            #expect(settled.entry.state == .delivered)
            #expect(settled.entry.reason == "reconciled: the endpoint has it")
            #expect(settled.entry.reference?.hasPrefix("SM") == true)
            #expect(channels.ledger.lostAnswers == 1 && channels.ledger.texts.values.reduce(0, +) == 1)
        }
    }

    @Test("Twilio: 429 is retried after Retry-After; a wrong token is rejected with Twilio's message; quiet hours wait")
    func refusals() async throws {
        try await withChannels { channels, base in
            channels.setFaults { $0.rateLimitEvery = 2 }
            let processor = Harness.processor(try Self.endpoint(base, channels: channels))
            for index in 0..<3 {
                let settled = try await processor.settle(Self.notification(.delayed, data: ["externalOrderId": "#20\(index)"], id: "d-\(index)"), offset: Int64(index))
                #expect(settled.entry.state == .delivered)
            }
            #expect(channels.ledger.refused >= 1 && channels.ledger.texts.count == 3)
            channels.setFaults { $0.rateLimitEvery = 0 }
            let wrong = Harness.processor(try Self.endpoint(base, channels: channels, token: "wrong"))
            let refused = try await wrong.settle(Self.notification(.shipped, id: "w-1"), offset: 9)
            #expect(refused.entry.state == .rejected && refused.entry.status == 401 && refused.entry.reason == "Authenticate")
            let night = QuietHours(from: "00:00", to: "23:59", timeZone: "UTC")!
            let quiet = try Self.endpoint(base, channels: channels, policy: NotificationPolicy(quietHours: night, nonUrgentKinds: Set(NotificationKind.allCases)))
            let call = OutboundCall(command: Self.notification(.shipped, id: "q-1"), idempotencyKey: "sms/q-1", attempt: 1) {}
            guard case .retry(let after, let reason) = await quiet.perform(call) else {
                Issue.record("quiet hours did not hold the text back")
                return
            }
            #expect(reason == "quiet hours" && after != nil)
        }
    }
}

extension Event {
    /// The notification, if it is one.
    var notification: Contracts.Notification? {
        if case .notification(let note) = self { return note }
        return nil
    }
}

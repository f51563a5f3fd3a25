import Contracts
import Foundation
import Testing

@testable import Outbound

@Suite("Email policy")
struct NotificationPolicyTests {
    let berlinNight = QuietHours(from: "21:00", to: "08:00", timeZone: "Europe/Berlin")!

    /// 2026-12-01 at `hour`:`minute` UTC; Berlin is UTC+1 in December.
    func utc(_ hour: Int, _ minute: Int = 0, day: Int = 1, month: Int = 12) -> Date {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar.date(from: DateComponents(year: 2026, month: month, day: day, hour: hour, minute: minute))!
    }

    @Test("no recipient, or only blanks: skipped")
    func noRecipient() {
        let policy = NotificationPolicy()
        #expect(policy.decide(notification: EmailFixtures.notification(to: nil), now: utc(12)) == .skip(reason: "no recipient"))
        #expect(policy.decide(notification: EmailFixtures.notification(to: "  "), now: utc(12)) == .skip(reason: "no recipient"))
        #expect(policy.decide(notification: EmailFixtures.notification(to: " jane@example.com "), now: utc(12)) == .send(to: "jane@example.com"))
    }

    @Test("opted-out addresses (any case) and customer ids: skipped")
    func optOuts() {
        let policy = NotificationPolicy(optedOutAddresses: ["Jane.Doe@Example.com"], optedOutCustomerIDs: ["cust-9"])
        #expect(policy.decide(notification: EmailFixtures.notification(to: "JANE.DOE@example.COM"), now: utc(12)) == .skip(reason: "opted out"))
        let byCustomer = EmailFixtures.notification(to: "other@example.com", data: ["customerId": "cust-9"])
        #expect(policy.decide(notification: byCustomer, now: utc(12)) == .skip(reason: "opted out"))
        let someoneElse = EmailFixtures.notification(to: "other@example.com", data: ["customerId": "cust-1"])
        #expect(policy.decide(notification: someoneElse, now: utc(12)) == .send(to: "other@example.com"))
    }

    @Test("quiet hours hold a review invitation until 08:00 local time, across midnight")
    func quietHours() {
        let policy = NotificationPolicy(quietHours: berlinNight)
        let review = EmailFixtures.notification(.reviewInvitation)
        // 22:30 Berlin: 9 h 30 min to go.
        #expect(policy.decide(notification: review, now: utc(21, 30)) == .wait(after: .seconds(9 * 3600 + 1800), reason: "quiet hours"))
        // 07:59 Berlin: one minute.
        #expect(policy.decide(notification: review, now: utc(6, 59)) == .wait(after: .seconds(60), reason: "quiet hours"))
        // 08:00 and 20:59 Berlin: outside.
        #expect(policy.decide(notification: review, now: utc(7)) == .send(to: "jane.doe@example.com"))
        #expect(policy.decide(notification: review, now: utc(19, 59)) == .send(to: "jane.doe@example.com"))
        // 21:00 Berlin: inside.
        #expect(policy.decide(notification: review, now: utc(20)) == .wait(after: .seconds(11 * 3600), reason: "quiet hours"))
    }

    @Test("urgent kinds ignore quiet hours; the set of kinds that wait is configurable")
    func urgency() {
        let policy = NotificationPolicy(quietHours: berlinNight)
        #expect(policy.decide(notification: EmailFixtures.notification(.delayed), now: utc(23)) == .send(to: "jane.doe@example.com"))
        let stricter = NotificationPolicy(quietHours: berlinNight, nonUrgentKinds: [.reviewInvitation, .delivered])
        #expect(stricter.decide(notification: EmailFixtures.notification(.delivered), now: utc(23)) == .wait(after: .seconds(8 * 3600), reason: "quiet hours"))
    }

    @Test("a channel's own quiet hours override the default")
    func perChannel() {
        let shanghai = QuietHours(from: "22:00", to: "07:30", timeZone: "Asia/Shanghai")!
        let policy = NotificationPolicy(quietHours: berlinNight, channelQuietHours: ["tmall": shanghai])
        let tmall = EmailFixtures.notification(.reviewInvitation, data: ["channel": "tmall"])
        // 15:00 UTC = 23:00 Shanghai (quiet until 07:30, 8 h 30 min), 16:00 Berlin (not quiet).
        #expect(policy.decide(notification: tmall, now: utc(15)) == .wait(after: .seconds(8 * 3600 + 1800), reason: "quiet hours"))
        let shopify = EmailFixtures.notification(.reviewInvitation, data: ["channel": "shopify"])
        #expect(policy.decide(notification: shopify, now: utc(15)) == .send(to: "jane.doe@example.com"))
    }

    @Test("the end of quiet hours follows the wall clock across a DST switch")
    func daylightSaving() {
        // Night of 28–29 March 2026: Berlin moves from UTC+1 to UTC+2 at 02:00.
        // 23:00 Berlin (22:00 UTC) to 08:00 Berlin (06:00 UTC) is 8 hours, not 9.
        let review = EmailFixtures.notification(.reviewInvitation)
        let policy = NotificationPolicy(quietHours: berlinNight)
        #expect(policy.decide(notification: review, now: utc(22, day: 28, month: 3)) == .wait(after: .seconds(8 * 3600), reason: "quiet hours"))
    }

    @Test("quiet hours parse HH:mm and an IANA zone, and reject anything else")
    func parsing() {
        #expect(QuietHours(from: "21:00", to: "08:00", timeZone: "Europe/Berlin")?.startMinute == 21 * 60)
        #expect(QuietHours(from: "9:00", to: "08:00", timeZone: "Europe/Berlin") == nil)
        #expect(QuietHours(from: "21:00", to: "24:00", timeZone: "Europe/Berlin") == nil)
        #expect(QuietHours(from: "21:00", to: "08:00", timeZone: "Mars/Olympus") == nil)
        #expect(QuietHours(from: "08:00", to: "08:00", timeZone: "UTC")?.remaining(at: utc(8)) == nil)
    }

    @Test("the endpoint applies the policy before connecting, with its injected clock")
    func endpointPolicy() async throws {
        var settings = EmailFixtures.settings(port: try await SMTPTestServer.freePort())
        settings.policy = NotificationPolicy(optedOutAddresses: ["jane.doe@example.com"], quietHours: berlinNight)
        let night = utc(23)
        let endpoint = try EmailEndpoint(settings: settings, now: { night })
        let optedOut = await endpoint.perform(EmailFixtures.call(EmailFixtures.notification(.shipped)))
        #expect(optedOut == .skipped(reason: "opted out"))
        let quiet = await endpoint.perform(EmailFixtures.call(EmailFixtures.notification(.reviewInvitation, to: "max@example.com")))
        #expect(quiet == .retry(after: .seconds(8 * 3600), reason: "quiet hours"))
        let nobody = await endpoint.perform(EmailFixtures.call(EmailFixtures.notification(.shipped, to: nil)))
        #expect(nobody == .skipped(reason: "no recipient"))
        let invalid = await endpoint.perform(EmailFixtures.call(EmailFixtures.notification(.shipped, to: "max@example.com>\r\nDATA")))
        #expect(invalid == .rejected(status: nil, reason: "not a deliverable address"))
    }
}

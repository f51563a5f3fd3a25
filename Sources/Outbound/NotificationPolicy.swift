import Contracts
import Foundation

/// A daily window in which non-urgent messages wait, in the customers' time zone.
public struct QuietHours: Sendable, Hashable {
    /// Minutes after local midnight at which the window opens.
    public var startMinute: Int
    /// Minutes after local midnight at which the window closes; before `startMinute`
    /// for a window across midnight (21:00–08:00).
    public var endMinute: Int
    /// The time zone the window is in.
    public var timeZone: TimeZone

    /// A window from `start` to `end` (`HH:mm`, 24-hour) in the IANA zone `timeZone`
    /// (`Europe/Berlin`); nil when any of them does not parse.
    public init?(from start: String, to end: String, timeZone: String) {
        guard let startMinute = Self.minutes(start), let endMinute = Self.minutes(end),
            let zone = TimeZone(identifier: timeZone)
        else { return nil }
        self.startMinute = startMinute
        self.endMinute = endMinute
        self.timeZone = zone
    }

    /// How long until the window closes, if `now` is inside it; nil outside.
    public func remaining(at now: Date) -> Duration? {
        guard startMinute != endMinute else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let parts = calendar.dateComponents([.hour, .minute], from: now)
        let minute = (parts.hour ?? 0) * 60 + (parts.minute ?? 0)
        let inside =
            startMinute < endMinute
            ? (startMinute..<endMinute).contains(minute)
            : minute >= startMinute || minute < endMinute
        guard inside else { return nil }
        // The calendar, not arithmetic on minutes, so a DST switch inside the window
        // still ends it at the local wall-clock time.
        let end = DateComponents(hour: endMinute / 60, minute: endMinute % 60, second: 0)
        guard let next = calendar.nextDate(after: now, matching: end, matchingPolicy: .nextTime) else { return nil }
        let seconds = next.timeIntervalSince(now)
        return .milliseconds(Int64((seconds * 1000).rounded(.up)))
    }

    private static func minutes(_ text: String) -> Int? {
        let parts = text.split(separator: ":")
        guard parts.count == 2, parts.allSatisfy({ $0.count == 2 }), let hour = Int(parts[0]), let minute = Int(parts[1]),
            (0..<24).contains(hour), (0..<60).contains(minute)
        else { return nil }
        return hour * 60 + minute
    }
}

/// What the policy says about one notification.
public enum PolicyDecision: Sendable, Hashable {
    /// Send it to this address.
    case send(to: String)
    /// Never send it: `reason` is recorded.
    case skip(reason: String)
    /// Not now: ask again after `after`.
    case wait(after: Duration, reason: String)
}

/// Who gets which notification, and when, by email or text message: pure, so the clock
/// is an argument.
public struct NotificationPolicy: Sendable, Hashable {
    /// Addresses (or phone numbers) that receive nothing, compared case-insensitively.
    public var optedOutAddresses: Set<String>
    /// Customer ids (`data["customerId"]`) that receive nothing.
    public var optedOutCustomerIDs: Set<String>
    /// The quiet hours for channels without their own.
    public var quietHours: QuietHours?
    /// Quiet hours per channel (`data["channel"]`), overriding ``quietHours``.
    public var channelQuietHours: [String: QuietHours]
    /// Kinds that wait out quiet hours; the others (a delay, a cancellation) go at once.
    public var nonUrgentKinds: Set<NotificationKind>

    /// A policy; by default nobody is opted out and nothing waits.
    public init(
        optedOutAddresses: Set<String> = [], optedOutCustomerIDs: Set<String> = [], quietHours: QuietHours? = nil,
        channelQuietHours: [String: QuietHours] = [:], nonUrgentKinds: Set<NotificationKind> = [.reviewInvitation]
    ) {
        self.optedOutAddresses = Set(optedOutAddresses.map { Self.normalised($0) })
        self.optedOutCustomerIDs = optedOutCustomerIDs
        self.quietHours = quietHours
        self.channelQuietHours = channelQuietHours
        self.nonUrgentKinds = nonUrgentKinds
    }

    /// Whether, to whom, and when `notification` goes out at `now` by email.
    public func decide(notification: Contracts.Notification, now: Date) -> PolicyDecision {
        decide(notification: notification, recipient: notification.recipientEmail, now: now)
    }

    /// Whether, to whom, and when `notification` goes out at `now` to `recipient` (its
    /// address, or its phone number).
    public func decide(notification: Contracts.Notification, recipient: String?, now: Date) -> PolicyDecision {
        let recipient = recipient.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
        guard !recipient.isEmpty else { return .skip(reason: "no recipient") }
        if optedOutAddresses.contains(Self.normalised(recipient)) { return .skip(reason: "opted out") }
        if let customer = notification.data["customerId"], optedOutCustomerIDs.contains(customer) {
            return .skip(reason: "opted out")
        }
        if nonUrgentKinds.contains(notification.kind) {
            let window = notification.data["channel"].flatMap { channelQuietHours[$0] } ?? quietHours
            if let remaining = window?.remaining(at: now) { return .wait(after: remaining, reason: "quiet hours") }
        }
        return .send(to: recipient)
    }

    private static func normalised(_ address: String) -> String {
        address.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
    }
}

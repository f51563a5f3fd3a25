import Contracts
import Foundation
import Logging
import Mustache

/// The text message templates: one file per notification kind and locale,
/// `<kind>.<locale>.mustache` (`config/notifications/sms`, documented in
/// config/notifications/README.md). A kind without an `en` file is not texted.
public struct SMSTemplates: Sendable {
    /// Where they live unless configured otherwise.
    public static let defaultDirectory = "config/notifications/sms"
    /// The locales found.
    public let locales: Set<String>
    private let templates: [String: MustacheTemplate]

    /// Loads and parses every `*.mustache` file of `directory`; throws
    /// ``NotificationTemplateError`` naming the first file that is misnamed or does not parse.
    public init(directory: String = Self.defaultDirectory) throws {
        var templates: [String: MustacheTemplate] = [:]
        for file in try NotificationTemplates.files(in: directory) {
            let (parts, path) = (file.nameParts, file.path)
            guard parts.count == 2, NotificationKind(rawValue: parts[0]) != nil, !parts[1].isEmpty, parts[1] == parts[1].lowercased() else {
                throw NotificationTemplateError(
                    file: path, reason: "not a text message template name: expected <kind>.<locale>.mustache with kind one of "
                        + NotificationKind.allCases.map(\.rawValue).joined(separator: ", ") + " and a lower-case locale")
            }
            let text = try file.text()
            templates["\(parts[0]).\(parts[1])"] = try NotificationTemplates.parsePlainText(text, file: path)
        }
        for key in templates.keys where templates["\(key.prefix { $0 != "." }).\(NotificationTemplates.fallbackLocale)"] == nil {
            throw NotificationTemplateError(
                file: URL(fileURLWithPath: directory).appendingPathComponent("\(key.prefix { $0 != "." }).\(NotificationTemplates.fallbackLocale).mustache").path,
                reason: "missing: every kind texted needs the fallback locale")
        }
        self.templates = templates
        locales = Set(templates.keys.map { String($0.drop { $0 != "." }.dropFirst()) })
    }

    /// The text for `notification`, one line, or nil when its kind is not texted.
    package func render(_ notification: Contracts.Notification, defaults: [String: String]) -> String? {
        let wanted = NotificationTemplates.locale(for: notification, defaults: defaults, among: locales)
        let kind = notification.kind.rawValue
        guard let template = templates["\(kind).\(wanted)"] ?? templates["\(kind).\(NotificationTemplates.fallbackLocale)"] else { return nil }
        let locale = templates["\(kind).\(wanted)"] == nil ? NotificationTemplates.fallbackLocale : wanted
        return template.render(NotificationTemplates.values(for: notification, locale: locale))
            .split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
    }
}

/// Phone numbers as SMS providers take them.
public enum PhoneNumber {
    /// `number` in E.164 (`+4915112345678`), from the forms people type (spaces, dashes,
    /// dots, brackets, a leading `00`); nil when it has no country code or is no number.
    public static func e164(_ number: String) -> String? {
        var text = number.trimmingCharacters(in: .whitespacesAndNewlines).filter { !" -.()/".contains($0) }
        if text.hasPrefix("00") { text = "+" + text.dropFirst(2) }
        guard text.first == "+" else { return nil }
        let digits = text.dropFirst()
        guard (8...15).contains(digits.count), digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber), digits.first != "0" else { return nil }
        return text
    }

    /// The number with all but its last three digits hidden, for logs.
    public static func mask(_ number: String) -> String {
        String(repeating: "•", count: max(0, number.count - 3)) + number.suffix(3)
    }
}

/// Sends customer notifications as text messages through Twilio's Programmable Messaging
/// REST API (`POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, form-encoded `To`,
/// `From` or `MessagingServiceSid`, `Body`; HTTP Basic with the account SID and auth token).
///
/// Twilio takes no idempotency key, so the point of no return is the POST and a lost
/// answer is reconciled by listing the recipient's recent messages
/// (`GET …/Messages.json?To=…`) and looking for this very body: the body is rendered from
/// the notification alone, so a resend is the same text.
public struct TwilioSMS: OutboundEndpoint {
    /// `sms/twilio`.
    public let name = "sms/twilio"
    /// `https://api.twilio.com`, or a stand-in.
    public var baseURL: String
    /// The account (`AC…`).
    public var accountSID: String
    /// The auth token; never logged.
    public var authToken: String
    /// The sender: an E.164 number, or a messaging service (`MG…`).
    public var from: String
    /// The templates.
    public var templates: SMSTemplates
    /// Locale per channel for notifications without `data["locale"]`.
    public var defaultLocales: [String: String]
    /// Opt-outs (phone numbers) and quiet hours.
    public var policy: NotificationPolicy
    /// The HTTP client.
    public var http: HTTPExchange
    /// The clock of quiet hours.
    public var now: @Sendable () -> Date
    let logger: Logger

    /// An endpoint.
    public init(
        baseURL: String = "https://api.twilio.com", accountSID: String, authToken: String, from: String, templates: SMSTemplates,
        defaultLocales: [String: String] = [:], policy: NotificationPolicy = NotificationPolicy(), http: HTTPExchange,
        now: @escaping @Sendable () -> Date = { Date() }, logger: Logger = Logger(label: "orderfleet.outbound.sms")
    ) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.accountSID = accountSID
        self.authToken = authToken
        self.from = from
        self.templates = templates
        self.defaultLocales = defaultLocales
        self.policy = policy
        self.http = http
        self.now = now
        self.logger = logger
    }

    private var messagesURL: String { "\(baseURL)/2010-04-01/Accounts/\(accountSID)/Messages.json" }
    private var authorization: (String, String) { ("Authorization", "Basic " + Data("\(accountSID):\(authToken)".utf8).base64EncodedString()) }

    /// What is texted for `call`, or why nothing is.
    enum Plan {
        case text(to: String, body: String)
        case answer(CallResult)
    }

    func plan(_ call: OutboundCall) -> Plan {
        guard case .notification(let notification) = call.command.event else {
            return .answer(.rejected(status: nil, reason: "not a notification: \(call.command.type)"))
        }
        guard let body = templates.render(notification, defaults: defaultLocales) else {
            return .answer(.skipped(reason: "no text message for \(notification.kind.rawValue)"))
        }
        guard let raw = notification.recipientPhone, !raw.trimmingCharacters(in: .whitespaces).isEmpty else {
            return .answer(.skipped(reason: "no phone number"))
        }
        guard let phone = PhoneNumber.e164(raw) else { return .answer(.skipped(reason: "not an international (E.164) phone number")) }
        switch policy.decide(notification: notification, recipient: phone, now: now()) {
        case .skip(let reason): return .answer(.skipped(reason: reason))
        case .wait(let after, let reason): return .answer(.retry(after: after, reason: reason))
        case .send(let to): return .text(to: to, body: body)
        }
    }

    /// Applies the policy, renders, and creates the message.
    public func perform(_ call: OutboundCall) async -> CallResult {
        let (to, body): (String, String)
        switch plan(call) {
        case .answer(let result): return result
        case .text(let phone, let text): (to, body) = (phone, text)
        }
        let sender = from.hasPrefix("MG") ? "MessagingServiceSid" : "From"
        let form = HTTPExchange.formEncoded([("To", to), (sender, from), ("Body", body)])
        let outcome = await http.send(
            .POST, messagesURL, headers: [authorization], body: Data(form.utf8), contentType: "application/x-www-form-urlencoded",
            pointOfNoReturn: call.pointOfNoReturn)
        let result = HTTPVerdict.result(of: outcome, now: now()) { response in (response.json as? [String: Any])?["sid"] as? String }
        logger.info("text message", metadata: [
            "notification": "\(call.command.id)", "to": "\(PhoneNumber.mask(to))", "attempt": "\(call.attempt)", "result": "\(result)",
        ])
        return result
    }

    /// Looks for the message among the recipient's most recent ones.
    public func reconcile(_ call: OutboundCall) async -> Reconciliation {
        guard case .text(let to, let body) = plan(call) else { return .didNotHappen }
        var query = URLComponents()
        query.queryItems = [URLQueryItem(name: "To", value: to), URLQueryItem(name: "PageSize", value: "100")]
        switch await http.send(.GET, messagesURL + "?" + (query.percentEncodedQuery ?? ""), headers: [authorization]) {
        case .answered(let response) where (200..<300).contains(response.status):
            let messages = ((response.json as? [String: Any])?["messages"] as? [[String: Any]]) ?? []
            if let sent = messages.first(where: { $0["to"] as? String == to && $0["body"] as? String == body }) {
                return .happened(reference: sent["sid"] as? String)
            }
            return .didNotHappen
        case .answered(let response):
            return .askAgain(reason: "listing messages: HTTP \(response.status): \(HTTPVerdict.message(in: response))")
        case .notSent(let reason), .lost(let reason):
            return .askAgain(reason: "listing messages: \(reason)")
        }
    }
}

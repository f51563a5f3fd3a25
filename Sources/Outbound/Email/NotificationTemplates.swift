import Contracts
import Foundation
import Mustache

/// A template file that is missing or does not parse: a configuration error, reported
/// at start-up rather than as a failure of every message.
public struct NotificationTemplateError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The file at fault, as a path.
    public var file: String
    /// What is wrong with it.
    public var reason: String

    /// `file: reason`.
    public var description: String { "\(file): \(reason)" }
}

/// A notification rendered in one locale, ready for ``EmailComposer``.
struct RenderedNotification: Sendable, Hashable {
    var locale: String
    var subject: String
    var text: String
    var html: String
}

/// The subject, text and HTML templates for every notification kind in every locale,
/// loaded once at start-up.
///
/// Files are named `<kind>.<locale>.<part>.mustache`, part being `subject`, `txt` or
/// `html` (`shipped.de.html.mustache`); `config/notifications/README.md` documents them.
public struct NotificationTemplates: Sendable {
    /// Where the templates live unless configured otherwise.
    public static let defaultDirectory = "config/notifications"
    /// The locale every kind must have and every other locale falls back to.
    public static let fallbackLocale = "en"

    /// The locales found, each with at least one kind.
    public let locales: Set<String>
    private let templates: [Key: MustacheTemplate]

    private struct Key: Hashable {
        var kind: NotificationKind
        var locale: String
        var part: Part
    }

    private enum Part: String, CaseIterable {
        case subject
        case txt
        case html
    }

    /// Loads and parses every `*.mustache` file in `directory`; throws
    /// ``NotificationTemplateError`` naming the first file that is missing, unknown or
    /// does not parse.
    public init(directory: String = Self.defaultDirectory) throws {
        let base = URL(fileURLWithPath: directory, isDirectory: true)
        var templates: [Key: MustacheTemplate] = [:]
        for file in try Self.files(in: directory) {
            let (parts, path) = (file.nameParts, file.path)
            guard parts.count == 3, let kind = NotificationKind(rawValue: parts[0]), let part = Part(rawValue: parts[2]),
                !parts[1].isEmpty, parts[1] == parts[1].lowercased()
            else {
                throw NotificationTemplateError(
                    file: path,
                    reason: "not a template name: expected <kind>.<locale>.<subject|txt|html>.mustache with kind one of "
                        + NotificationKind.allCases.map(\.rawValue).joined(separator: ", ") + " and a lower-case locale")
            }
            let text = try file.text()
            templates[Key(kind: kind, locale: parts[1], part: part)] = try Self.parse(text, part: part, file: path)
        }
        let locales = Set(templates.keys.map(\.locale))
        // A kind is complete in a locale or absent from it, and complete in the fallback
        // locale: a half-translated kind is a mistake, not a reason to mix languages.
        for locale in locales.union([Self.fallbackLocale]).sorted() {
            for kind in NotificationKind.allCases {
                let present = Part.allCases.filter { templates[Key(kind: kind, locale: locale, part: $0)] != nil }
                guard present.count != Part.allCases.count, !present.isEmpty || locale == Self.fallbackLocale else { continue }
                let missing = Part.allCases.first { !present.contains($0) } ?? .subject
                throw NotificationTemplateError(
                    file: base.appendingPathComponent("\(kind.rawValue).\(locale).\(missing.rawValue).mustache").path,
                    reason: "missing")
            }
        }
        self.templates = templates
        self.locales = locales
    }

    /// The locale for `notification`: `data["locale"]` if supported (`de-AT` finds
    /// `de`), else `defaults[data["channel"]]`, else ``fallbackLocale``.
    func locale(for notification: Contracts.Notification, defaults: [String: String]) -> String {
        Self.locale(for: notification, defaults: defaults, among: locales)
    }

    /// The locale for `notification` among `locales` (see ``locale(for:defaults:)``).
    static func locale(for notification: Contracts.Notification, defaults: [String: String], among locales: Set<String>) -> String {
        for candidate in [notification.data["locale"], notification.data["channel"].flatMap { defaults[$0] }] {
            guard let candidate else { continue }
            let lowered = candidate.lowercased().replacingOccurrences(of: "_", with: "-")
            if locales.contains(lowered) { return lowered }
            if let language = lowered.split(separator: "-").first.map(String.init), locales.contains(language) { return language }
        }
        return Self.fallbackLocale
    }

    /// Renders `notification` in `locale`, or in ``fallbackLocale`` when that locale
    /// lacks the kind.
    func render(_ notification: Contracts.Notification, locale: String) -> RenderedNotification {
        let locale = templates[Key(kind: notification.kind, locale: locale, part: .subject)] == nil ? Self.fallbackLocale : locale
        let values = Self.values(for: notification, locale: locale)
        func render(_ part: Part) -> String {
            templates[Key(kind: notification.kind, locale: locale, part: part)]?.render(values) ?? ""
        }
        // A header is one line: whatever the template's layout, the subject is its words.
        let subject = render(.subject).split(whereSeparator: \.isWhitespace).joined(separator: " ")
        return RenderedNotification(locale: locale, subject: subject, text: render(.txt), html: render(.html))
    }

    /// The template's view: the notification's data without empty values (so a
    /// `{{#trackingUrl}}` section is skipped when there is none), the order id, and for
    /// every RFC 3339 time `x` a localised date `xDate`.
    static func values(for notification: Contracts.Notification, locale: String) -> [String: Any] {
        var values: [String: Any] = [:]
        for (key, value) in notification.data where !value.isEmpty {
            values[key] = value
            if let date = Self.parseTime(value) { values[key + "Date"] = Self.formatDate(date, locale: locale) }
        }
        if values["orderId"] == nil { values["orderId"] = notification.orderId }
        values["kind"] = notification.kind.rawValue
        return values
    }

    /// A `*.mustache` file of a template directory.
    struct File {
        /// The name without `.mustache`, split at the dots.
        var nameParts: [String]
        var path: String

        /// Its content; a file that is not UTF-8 names itself.
        func text() throws -> String {
            do {
                return try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw NotificationTemplateError(file: path, reason: "cannot read it as UTF-8 (\(error.localizedDescription))")
            }
        }
    }

    /// The `*.mustache` files of `directory`, sorted by name.
    static func files(in directory: String) throws -> [File] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".mustache") }.sorted()
        } catch {
            throw NotificationTemplateError(file: directory, reason: "cannot list the template directory (\(error.localizedDescription))")
        }
        return names.map { name in
            File(
                nameParts: name.dropLast(".mustache".count).split(separator: ".", omittingEmptySubsequences: false).map(String.init),
                path: URL(fileURLWithPath: directory, isDirectory: true).appendingPathComponent(name).path)
        }
    }

    /// Parses a template whose output is plain text (no HTML escaping).
    static func parsePlainText(_ text: String, file: String) throws -> MustacheTemplate {
        try parse(text, part: .txt, file: file)
    }

    private static func parse(_ text: String, part: Part, file: String) throws -> MustacheTemplate {
        // `{{x}}` escapes for HTML by default; in a subject or a text part that would
        // show `&amp;` to the reader. The pragma goes on line 1 without a line break,
        // so parser line numbers still match the file.
        let pragma = part == .html ? "" : "{{% CONTENT_TYPE: TEXT}}"
        do {
            return try MustacheTemplate(string: pragma + text)
        } catch let error as MustacheTemplate.ParserError {
            let column = error.context.lineNumber == 1 ? error.context.columnNumber - pragma.count : error.context.columnNumber
            throw NotificationTemplateError(
                file: file, reason: "line \(error.context.lineNumber), column \(max(column, 1)): \(error.error)")
        } catch {
            throw NotificationTemplateError(file: file, reason: "\(error)")
        }
    }

    private static func parseTime(_ text: String) -> Date? {
        // Only full timestamps: an order number of digits is not a date.
        guard text.count >= 20, text.dropFirst(10).first == "T" else { return nil }
        return RFC3339.parse(text)
    }

    private static func formatDate(_ date: Date, locale: String) -> String {
        // Dates only, in UTC: delivery estimates are days, and the customer's zone is unknown.
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: locale)
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateStyle = .long
        formatter.timeStyle = .none
        return formatter.string(from: date)
    }
}

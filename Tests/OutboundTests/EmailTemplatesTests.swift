import Contracts
import Foundation
import Testing

@testable import Outbound

@Suite("Notification templates")
struct EmailTemplatesTests {
    static let locales = ["en", "de", "zh"]

    @Test("every kind renders in every locale with sample data", arguments: NotificationKind.allCases)
    func everyKindAndLocale(kind: NotificationKind) throws {
        let templates = try NotificationTemplates(directory: EmailFixtures.templatesDirectory)
        #expect(Set(Self.locales).isSubset(of: templates.locales))
        var subjects: Set<String> = []
        for locale in Self.locales {
            let rendered = templates.render(EmailFixtures.notification(kind), locale: locale)
            #expect(rendered.locale == locale)
            #expect(rendered.subject.contains("SHOP-1042"), "\(kind) \(locale): \(rendered.subject)")
            #expect(!rendered.subject.contains("\n") && !rendered.subject.contains("{{"))
            #expect(rendered.text.contains("SHOP-1042"), "\(kind) \(locale)")
            #expect(rendered.html.contains("SHOP-1042"), "\(kind) \(locale)")
            #expect(rendered.html.hasPrefix("<!DOCTYPE html>"))
            #expect(!rendered.text.contains("{{") && !rendered.html.contains("{{"))
            // Text is not escaped, HTML is.
            #expect(rendered.text.contains("Jane <Doe> & Co"))
            #expect(rendered.html.contains("Jane &lt;Doe&gt; &amp; Co"))
            #expect(!rendered.html.contains("<Doe>"))
            #expect(!rendered.text.contains("\n\n\n"), "no empty lines from skipped sections in \(kind) \(locale)")
            subjects.insert(rendered.subject)
        }
        #expect(subjects.count == Self.locales.count, "each locale has its own wording")
    }

    @Test("an order change says what changed, and only that")
    func orderChanged() throws {
        let templates = try NotificationTemplates(directory: EmailFixtures.templatesDirectory)
        let moved = templates.render(EmailFixtures.notification(.orderChanged, data: ["externalOrderId": "X-1", "shipTo": "Queens, US"]), locale: "en")
        #expect(moved.text.contains("new address in Queens, US"))
        #expect(!moved.text.contains("cancelled") && !moved.text.contains("\n\n\n"))
        let cut = templates.render(
            EmailFixtures.notification(.orderChanged, data: ["externalOrderId": "X-1", "cancelledItems": "1 × SKU-A", "amount": "10.00 USD"]), locale: "de")
        #expect(cut.text.contains("1 × SKU-A") && cut.text.contains("10.00 USD"))
        #expect(!cut.text.contains("Adresse in") && cut.html.contains("<p>Diese Artikel"))
    }

    @Test("optional values: sections disappear without them, localised dates appear with them")
    func optionalValues() throws {
        let templates = try NotificationTemplates(directory: EmailFixtures.templatesDirectory)
        let bare = templates.render(EmailFixtures.notification(.shipped, data: ["externalOrderId": "X-1", "trackingNumber": ""]), locale: "en")
        #expect(!bare.text.contains("Tracking number"))
        #expect(!bare.html.contains("<a href"))
        #expect(bare.text.hasPrefix("Hello,\n"))
        let full = templates.render(EmailFixtures.notification(.shipped), locale: "en")
        #expect(full.text.contains("Tracking number: JD0146000012345"))
        #expect(full.text.contains("December 5, 2026") || full.text.contains("5 December 2026"))
        #expect(templates.render(EmailFixtures.notification(.shipped), locale: "zh").text.contains("2026年12月5日"))
        #expect(templates.render(EmailFixtures.notification(.shipped), locale: "de").text.contains("5. Dezember 2026"))
    }

    @Test("locale: data[locale] if supported, else the channel's default, else en")
    func localeChoice() throws {
        let templates = try NotificationTemplates(directory: EmailFixtures.templatesDirectory)
        let defaults = ["tmall": "zh", "otto": "de", "etsy": "fr"]
        func locale(_ data: [String: String]) -> String { templates.locale(for: EmailFixtures.notification(data: data), defaults: defaults) }
        #expect(locale(["locale": "de"]) == "de")
        #expect(locale(["locale": "de-AT", "channel": "tmall"]) == "de")
        #expect(locale(["locale": "zh_CN"]) == "zh")
        #expect(locale(["locale": "fr", "channel": "tmall"]) == "zh")
        #expect(locale(["channel": "otto"]) == "de")
        #expect(locale(["channel": "etsy"]) == "en")
        #expect(locale([:]) == "en")
    }

    @Test("a locale without a kind falls back to English")
    func fallback() throws {
        let directory = try copyOfTemplates()
        defer { try? FileManager.default.removeItem(at: directory) }
        for part in ["subject", "txt", "html"] {
            try FileManager.default.removeItem(at: directory.appendingPathComponent("delayed.de.\(part).mustache"))
        }
        let templates = try NotificationTemplates(directory: directory.path)
        let rendered = templates.render(EmailFixtures.notification(.delayed), locale: "de")
        #expect(rendered.locale == "en")
        #expect(rendered.subject == "Your order SHOP-1042 is delayed")
    }

    @Test("a syntax error is reported with the file's name and the line")
    func syntaxError() throws {
        let directory = try copyOfTemplates()
        defer { try? FileManager.default.removeItem(at: directory) }
        try "<p>\n{{#carrier}}with {{carrier}}\n</p>\n".write(
            to: directory.appendingPathComponent("shipped.de.html.mustache"), atomically: true, encoding: .utf8)
        let error = try #require(throws: NotificationTemplateError.self) { try NotificationTemplates(directory: directory.path) }
        #expect(error.file.hasSuffix("/shipped.de.html.mustache"))
        #expect(error.description.contains("shipped.de.html.mustache: line"))
    }

    @Test("a syntax error on a text template's first line names the right column")
    func firstLineColumn() throws {
        let directory = try copyOfTemplates()
        defer { try? FileManager.default.removeItem(at: directory) }
        try "Hi {{#a}}x{{/b}}\n".write(to: directory.appendingPathComponent("cancelled.zh.subject.mustache"), atomically: true, encoding: .utf8)
        let error = try #require(throws: NotificationTemplateError.self) { try NotificationTemplates(directory: directory.path) }
        #expect(error.file.hasSuffix("/cancelled.zh.subject.mustache"))
        #expect(error.reason.hasPrefix("line 1, column "))
        let column = Int(error.reason.dropFirst("line 1, column ".count).prefix(while: \.isNumber)) ?? 0
        #expect((1...17).contains(column), "\(error.reason)")
    }

    @Test("a missing part, a missing English kind, and a misnamed file are start-up errors naming the file")
    func missingFiles() throws {
        let directory = try copyOfTemplates()
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.removeItem(at: directory.appendingPathComponent("refunded.zh.html.mustache"))
        var error = try #require(throws: NotificationTemplateError.self) { try NotificationTemplates(directory: directory.path) }
        #expect(error.file.hasSuffix("/refunded.zh.html.mustache") && error.reason == "missing")

        try FileManager.default.removeItem(at: directory.appendingPathComponent("refunded.zh.subject.mustache"))
        try FileManager.default.removeItem(at: directory.appendingPathComponent("refunded.zh.txt.mustache"))
        _ = try NotificationTemplates(directory: directory.path)  // zh without refunded is fine: it falls back

        for part in ["subject", "txt", "html"] {
            try FileManager.default.removeItem(at: directory.appendingPathComponent("refunded.en.\(part).mustache"))
        }
        error = try #require(throws: NotificationTemplateError.self) { try NotificationTemplates(directory: directory.path) }
        #expect(error.file.hasSuffix("/refunded.en.subject.mustache"))

        let other = try copyOfTemplates()
        defer { try? FileManager.default.removeItem(at: other) }
        try "x".write(to: other.appendingPathComponent("shiped.en.txt.mustache"), atomically: true, encoding: .utf8)
        error = try #require(throws: NotificationTemplateError.self) { try NotificationTemplates(directory: other.path) }
        #expect(error.file.hasSuffix("/shiped.en.txt.mustache"))

        error = try #require(throws: NotificationTemplateError.self) { try NotificationTemplates(directory: "/nonexistent/templates") }
        #expect(error.file == "/nonexistent/templates")
    }

    @Test("the endpoint refuses to start with broken templates")
    func endpointStartup() throws {
        let directory = try copyOfTemplates()
        defer { try? FileManager.default.removeItem(at: directory) }
        try "{{^x}}".write(to: directory.appendingPathComponent("confirmed.en.txt.mustache"), atomically: true, encoding: .utf8)
        var settings = EmailFixtures.settings(port: 2525)
        settings.templatesDirectory = directory.path
        let error = try #require(throws: NotificationTemplateError.self) { try EmailEndpoint(settings: settings) }
        #expect(error.file.hasSuffix("/confirmed.en.txt.mustache"))
    }

    private func copyOfTemplates() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("orderfleet-templates-\(UUID().uuidString)")
        try FileManager.default.copyItem(atPath: EmailFixtures.templatesDirectory, toPath: directory.path)
        return directory
    }
}

import Contracts
import Fleet
import Foundation
import NIOSSL

/// The email connector's settings, under `email.*` (docs/OPERATIONS.md §8).
enum EmailConnectorSettings {
    /// The endpoint the settings describe; a missing or wrong setting names its key.
    static func endpoint(keys: KeyReader) throws(ConfigurationError) -> any OutboundEndpoint {
        func required(_ key: String) throws(ConfigurationError) -> String {
            guard let value = try keys.string(key), !value.isEmpty else { throw ConfigurationError(key: key, reason: "required for the email connector") }
            return value
        }
        let securityText = try keys.string("email.smtp.security") ?? "starttls"
        let security: SMTPSecurity
        switch securityText {
        case "none": security = .none
        case "starttls": security = .startTLS
        case "starttls-if-offered": security = .startTLSIfOffered
        default: throw ConfigurationError(key: "email.smtp.security", reason: "'\(securityText)' is not one of none, starttls, starttls-if-offered")
        }
        var tls = TLSConfiguration.makeClientConfiguration()
        if let file = try keys.string("email.smtp.ca.file") {
            do {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(file))
            } catch {
                throw ConfigurationError(key: "email.smtp.ca.file", reason: "cannot read certificates from \(file): \(error)")
            }
        }
        var locales: [String: String] = [:]
        for entry in try keys.list("email.locales") {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw ConfigurationError(key: "email.locales", reason: "'\(entry)' is not channel=locale") }
            locales[parts[0]] = parts[1]
        }
        let settings = EmailSettings(
            host: try required("email.smtp.host"), port: try keys.int("email.smtp.port", default: 587, in: 1...65_535), security: security,
            username: try keys.string("email.smtp.username"), password: try keys.string("email.smtp.password", secret: true), tls: tls,
            fromAddress: try required("email.from"), fromName: try keys.string("email.from.name"),
            messageIDDomain: try required("email.message.id.domain"),
            templatesDirectory: try keys.string("email.templates") ?? NotificationTemplates.defaultDirectory, defaultLocales: locales,
            policy: try policy(keys))
        do {
            return try EmailEndpoint(settings: settings)
        } catch let error as NotificationTemplateError {
            throw ConfigurationError(key: "email.templates", reason: "\(error)")
        } catch {
            throw ConfigurationError(key: "email", reason: "\(error)")
        }
    }

    private static func policy(_ keys: KeyReader) throws(ConfigurationError) -> EmailPolicy {
        var quiet: QuietHours?
        if let window = try keys.string("email.quiet.hours") {
            let parts = window.split(separator: "-").map { String($0).trimmingCharacters(in: .whitespaces) }
            let zone = try keys.string("email.quiet.time.zone") ?? "UTC"
            guard parts.count == 2, let hours = QuietHours(from: parts[0], to: parts[1], timeZone: zone) else {
                throw ConfigurationError(key: "email.quiet.hours", reason: "'\(window)' in time zone '\(zone)' is not HH:MM-HH:MM in a known IANA zone")
            }
            quiet = hours
        }
        var kinds: Set<NotificationKind> = [.reviewInvitation]
        let named = try keys.list("email.quiet.kinds")
        if !named.isEmpty {
            kinds = []
            for name in named {
                guard let kind = NotificationKind(rawValue: name) else {
                    throw ConfigurationError(key: "email.quiet.kinds", reason: "'\(name)' is not a notification kind")
                }
                kinds.insert(kind)
            }
        }
        return EmailPolicy(
            optedOutAddresses: Set(try keys.list("email.opt.out.addresses").map { $0.lowercased() }),
            optedOutCustomerIDs: Set(try keys.list("email.opt.out.customers")), quietHours: quiet, nonUrgentKinds: kinds)
    }
}

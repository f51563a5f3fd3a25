import Contracts
import Fleet
import Foundation
import NIOSSL

/// The settings of the connectors that deliver customer notifications, `email.*` and
/// `sms.*` (docs/OPERATIONS.md §8).
enum NotificationConnectorSettings {
    /// The email endpoint the settings describe; a missing or wrong setting names its key.
    static func email(keys: KeyReader) throws(ConfigurationError) -> any OutboundEndpoint {
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
        let locales = try localeDefaults(keys: keys, key: "email.locales")
        let settings = EmailSettings(
            host: try required("email.smtp.host"), port: try keys.int("email.smtp.port", default: 587, in: 1...65_535), security: security,
            username: try keys.string("email.smtp.username"), password: try keys.string("email.smtp.password", secret: true), tls: tls,
            fromAddress: try required("email.from"), fromName: try keys.string("email.from.name"),
            messageIDDomain: try required("email.message.id.domain"),
            templatesDirectory: try keys.string("email.templates") ?? NotificationTemplates.defaultDirectory, defaultLocales: locales,
            policy: try NotificationPolicy(keys: keys, prefix: "email", optOutKey: "email.opt.out.addresses"))
        do {
            return try EmailEndpoint(settings: settings)
        } catch let error as NotificationTemplateError {
            throw ConfigurationError(key: "email.templates", reason: "\(error)")
        } catch {
            throw ConfigurationError(key: "email", reason: "\(error)")
        }
    }
}

extension NotificationConnectorSettings {
    /// `channel=locale,…` under `key`.
    static func localeDefaults(keys: KeyReader, key: String) throws(ConfigurationError) -> [String: String] {
        var locales: [String: String] = [:]
        for entry in try keys.list(key) {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw ConfigurationError(key: key, reason: "'\(entry)' is not channel=locale") }
            locales[parts[0]] = parts[1]
        }
        return locales
    }

    /// The SMS connector's endpoint from `sms.*` (docs/OPERATIONS.md §8).
    static func sms(keys: KeyReader, http: HTTPExchange) throws(ConfigurationError) -> any OutboundEndpoint {
        func required(_ key: String, secret: Bool = false) throws(ConfigurationError) -> String {
            guard let value = try keys.string(key, secret: secret), !value.isEmpty else { throw ConfigurationError(key: key, reason: "required for the sms connector") }
            return value
        }
        let from = try required("sms.from")
        guard from.hasPrefix("MG") || PhoneNumber.e164(from) == from else {
            throw ConfigurationError(key: "sms.from", reason: "'\(from)' is neither an E.164 number (+4930…) nor a messaging service SID (MG…)")
        }
        let directory = try keys.string("sms.templates") ?? SMSTemplates.defaultDirectory
        let templates: SMSTemplates
        do {
            templates = try SMSTemplates(directory: directory)
        } catch {
            throw ConfigurationError(key: "sms.templates", reason: "\(error)")
        }
        // Texts wake people: by default every kind waits out the quiet hours.
        let policy = try NotificationPolicy(keys: keys, prefix: "sms", optOutKey: "sms.opt.out.numbers", defaultQuietKinds: Set(NotificationKind.allCases))
        return TwilioSMS(
            baseURL: try keys.string("sms.url") ?? "https://api.twilio.com", accountSID: try required("sms.account.sid"),
            authToken: try required("sms.auth.token", secret: true), from: from, templates: templates,
            defaultLocales: try localeDefaults(keys: keys, key: "sms.locales"), policy: policy, http: http)
    }
}

extension NotificationPolicy {
    /// Reads `<prefix>.quiet.hours`, `<prefix>.quiet.time.zone`, `<prefix>.quiet.kinds`,
    /// `<prefix>.opt.out.customers` and the opt-out list `optOutKey`.
    init(keys: KeyReader, prefix: String, optOutKey: String, defaultQuietKinds: Set<NotificationKind> = [.reviewInvitation]) throws(ConfigurationError) {
        var quiet: QuietHours?
        if let window = try keys.string("\(prefix).quiet.hours") {
            let parts = window.split(separator: "-").map { String($0).trimmingCharacters(in: .whitespaces) }
            let zone = try keys.string("\(prefix).quiet.time.zone") ?? "UTC"
            guard parts.count == 2, let hours = QuietHours(from: parts[0], to: parts[1], timeZone: zone) else {
                throw ConfigurationError(key: "\(prefix).quiet.hours", reason: "'\(window)' in time zone '\(zone)' is not HH:MM-HH:MM in a known IANA zone")
            }
            quiet = hours
        }
        var kinds = defaultQuietKinds
        let named = try keys.list("\(prefix).quiet.kinds")
        if !named.isEmpty {
            kinds = []
            for name in named {
                guard let kind = NotificationKind(rawValue: name) else {
                    throw ConfigurationError(key: "\(prefix).quiet.kinds", reason: "'\(name)' is not a notification kind")
                }
                kinds.insert(kind)
            }
        }
        self.init(
            optedOutAddresses: Set(try keys.list(optOutKey).map { $0.lowercased() }),
            optedOutCustomerIDs: Set(try keys.list("\(prefix).opt.out.customers")), quietHours: quiet, nonUrgentKinds: kinds)
    }
}

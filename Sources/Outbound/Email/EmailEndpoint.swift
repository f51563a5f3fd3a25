import Contracts
import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// Everything the email endpoint needs, as plain values; configuration keys map onto it.
public struct EmailSettings: Sendable, CustomStringConvertible {
    /// The SMTP server (submission relay).
    public var host: String
    /// Its port: 587 for submission with STARTTLS, 25 for a local relay.
    public var port: Int
    /// Whether and how the session is encrypted.
    public var security: SMTPSecurity
    /// AUTH user name; nil sends no AUTH.
    public var username: String?
    /// AUTH password; never logged, never in ``description``.
    public var password: String?
    /// Lets AUTH go over an unencrypted session: for a test server only.
    public var allowInsecureAuth: Bool
    /// Trust roots and the like for STARTTLS; the system's trust store by default.
    public var tls: TLSConfiguration
    /// The envelope sender and `From:` address.
    public var fromAddress: String
    /// The `From:` display name.
    public var fromName: String?
    /// The right-hand side of Message-IDs (`<notification-id@domain>`); also the EHLO
    /// name unless ``clientName`` is set.
    public var messageIDDomain: String
    /// The name given in EHLO.
    public var clientName: String?
    /// The directory of Mustache templates.
    public var templatesDirectory: String
    /// The locale per channel (`data["channel"]`) for notifications without `data["locale"]`.
    public var defaultLocales: [String: String]
    /// Opt-outs and quiet hours.
    public var policy: NotificationPolicy
    /// How long to wait for the TCP connection.
    public var connectTimeout: Duration
    /// How long to wait for each reply before the end of data.
    public var replyTimeout: Duration
    /// How long to wait for the reply to the end of data; giving up there leaves the
    /// outcome unknown, so it is generous.
    public var endOfDataTimeout: Duration

    /// Settings with conservative defaults for everything but the server and the sender.
    public init(
        host: String, port: Int = 587, security: SMTPSecurity = .startTLS,
        username: String? = nil, password: String? = nil, allowInsecureAuth: Bool = false,
        tls: TLSConfiguration = .makeClientConfiguration(),
        fromAddress: String, fromName: String? = nil, messageIDDomain: String, clientName: String? = nil,
        templatesDirectory: String = NotificationTemplates.defaultDirectory, defaultLocales: [String: String] = [:],
        policy: NotificationPolicy = NotificationPolicy(),
        connectTimeout: Duration = .seconds(10), replyTimeout: Duration = .seconds(60), endOfDataTimeout: Duration = .seconds(300)
    ) {
        self.host = host
        self.port = port
        self.security = security
        self.username = username
        self.password = password
        self.allowInsecureAuth = allowInsecureAuth
        self.tls = tls
        self.fromAddress = fromAddress
        self.fromName = fromName
        self.messageIDDomain = messageIDDomain
        self.clientName = clientName
        self.templatesDirectory = templatesDirectory
        self.defaultLocales = defaultLocales
        self.policy = policy
        self.connectTimeout = connectTimeout
        self.replyTimeout = replyTimeout
        self.endOfDataTimeout = endOfDataTimeout
    }

    /// The settings without the password.
    public var description: String {
        "EmailSettings(\(host):\(port), security: \(security.rawValue), user: \(username ?? "none"), "
            + "password: \(password == nil ? "none" : "***"), from: \(SMTPClient.mask(fromAddress)), "
            + "templates: \(templatesDirectory))"
    }
}

/// Sends customer notifications (``Contracts/Notification`` commands) by SMTP.
///
/// SMTP has no idempotency key: the Message-ID, derived from the notification id, is what
/// lets a mailbox or an operator recognise a resend, and the point of no return is the
/// end-of-data mark, so only a reply lost after it leaves the outcome unknown.
public struct EmailEndpoint: OutboundEndpoint {
    /// `email/smtp`.
    public let name = "email/smtp"

    private let settings: EmailSettings
    private let templates: NotificationTemplates
    private let composer: EmailComposer
    private let client: SMTPClient
    private let now: @Sendable () -> Date
    private let logger: Logger

    /// Loads the templates and prepares TLS; throws ``NotificationTemplateError`` for a
    /// bad template and ``EmailSettingsError`` for unusable settings, so both surface at
    /// start-up. `now` is the clock for quiet hours.
    public init(
        settings: EmailSettings, now: @escaping @Sendable () -> Date = Date.init,
        logger: Logger = Logger(label: "orderfleet.outbound.email"),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) throws {
        guard SMTPClient.isDeliverable(settings.fromAddress) else {
            throw EmailSettingsError(reason: "the from address is not a plain ASCII address")
        }
        guard !settings.messageIDDomain.isEmpty, SMTPClient.isDeliverable("x@\(settings.messageIDDomain)") else {
            throw EmailSettingsError(reason: "the Message-ID domain is not a domain name")
        }
        guard (1...65535).contains(settings.port) else { throw EmailSettingsError(reason: "the port is out of range") }
        if (settings.username == nil) != (settings.password == nil) {
            throw EmailSettingsError(reason: "a user name needs a password and a password a user name")
        }
        let tls: NIOSSLContext?
        do {
            tls = settings.security == .none ? nil : try NIOSSLContext(configuration: settings.tls)
        } catch {
            throw EmailSettingsError(reason: "the TLS configuration is unusable: \(error)")
        }
        self.settings = settings
        self.templates = try NotificationTemplates(directory: settings.templatesDirectory)
        self.composer = EmailComposer(fromAddress: settings.fromAddress, fromName: settings.fromName, messageIDDomain: settings.messageIDDomain)
        let credentials = settings.username.flatMap { user in settings.password.map { SMTPClient.Credentials(username: user, password: $0) } }
        self.client = SMTPClient(
            configuration: SMTPClient.Configuration(
                host: settings.host, port: settings.port, security: settings.security, credentials: credentials,
                allowInsecureAuth: settings.allowInsecureAuth, clientName: settings.clientName ?? settings.messageIDDomain,
                connectTimeout: settings.connectTimeout, replyTimeout: settings.replyTimeout,
                endOfDataTimeout: settings.endOfDataTimeout),
            tls: tls, group: eventLoopGroup)
        self.now = now
        self.logger = logger
    }

    /// Applies the policy, renders, and hands the message to the SMTP server.
    public func perform(_ call: OutboundCall) async -> CallResult {
        guard case .notification(let notification) = call.command.event else {
            return .rejected(status: nil, reason: "not a notification: \(call.command.type)")
        }
        let recipient: String
        switch settings.policy.decide(notification: notification, now: now()) {
        case .skip(let reason):
            return .skipped(reason: reason)
        case .wait(let after, let reason):
            return .retry(after: after, reason: reason)
        case .send(let address):
            recipient = address
        }
        guard SMTPClient.isDeliverable(recipient) else {
            // Not echoed: it may carry line breaks into the ledger and the logs.
            return .rejected(status: nil, reason: "not a deliverable address")
        }
        let locale = templates.locale(for: notification, defaults: settings.defaultLocales)
        let rendered = templates.render(notification, locale: locale)
        let email = composer.compose(notificationID: call.command.id, notification: notification, recipient: recipient, rendered: rendered)
        var metadata: Logger.Metadata = [
            "notification": "\(call.command.id)", "kind": "\(notification.kind.rawValue)", "locale": "\(rendered.locale)",
            "recipient": "\(SMTPClient.mask(recipient))", "message_id": "\(email.messageID)", "attempt": "\(call.attempt)",
        ]
        let outcome = await client.send(
            message: email.text, from: settings.fromAddress, to: recipient, beforeEndOfData: call.pointOfNoReturn)
        let result = Self.result(of: outcome)
        switch result {
        case .delivered(let reference): metadata["result"] = "delivered \(reference ?? "")"
        default: metadata["result"] = "\(result)"
        }
        switch result {
        case .delivered: logger.info("email delivered", metadata: metadata)
        case .unknown: logger.error("email outcome unknown", metadata: metadata)
        default: logger.warning("email not delivered", metadata: metadata)
        }
        return result
    }

    /// The `Message-ID` of the email for notification `id` under `domain`.
    public static func messageID(notificationID id: String, domain: String) -> String {
        "<\(EmailComposer.messageIDLocalPart(id))@\(domain)>"
    }

    /// SMTP has no way to ask whether a message arrived.
    public func reconcile(_ call: OutboundCall) async -> Reconciliation {
        let messageID = Self.messageID(notificationID: call.command.id, domain: settings.messageIDDomain)
        return .cannotTell(reason: "SMTP has no lookup; check the mailbox for Message-ID \(messageID)")
    }

    /// What an SMTP outcome means for the connector: a failure before the end of data is
    /// safe to retry, one after it is unknown; a reply says what it says (RFC 5321 §4.2.1).
    static func result(of outcome: SMTPOutcome) -> CallResult {
        switch outcome {
        case .accepted(let reply):
            return .delivered(reference: SMTPClient.queueReference(reply))
        case .refused(let reply, let command, let stage):
            let reason = "\(reply) (\(command))"
            if reply.isTransientFailure { return .retry(after: nil, reason: reason) }
            // A session that will not start (greeting 554, AUTH 535) is this server's
            // setup, not this message's fault: it must not dead-letter every message.
            if reply.isPermanentFailure, stage != .session { return .rejected(status: reply.code, reason: reason) }
            return stage == .endOfData ? .unknown(reason: "unexpected \(reason)") : .retry(after: nil, reason: reason)
        case .failed(let reason, let stage):
            return stage == .endOfData ? .unknown(reason: reason) : .retry(after: nil, reason: reason)
        case .abandoned(let reason):
            return .retry(after: nil, reason: reason)
        }
    }
}

/// Settings the email endpoint cannot work with.
public struct EmailSettingsError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What is wrong.
    public var reason: String
    /// The reason.
    public var description: String { reason }
}

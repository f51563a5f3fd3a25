import Contracts
import Foundation
import NIOSSL
import Testing

@testable import Outbound

/// Against a real SMTP server (aiosmtpd from `.venv`, installed by scripts/setup).
@Suite("Email over SMTP (aiosmtpd)", .serialized)
struct EmailSMTPTests {
    @Test("a notification is delivered: Message-ID, To, subject and both parts arrive; the point of no return comes once, before the end of data")
    func delivers() async throws {
        let server = try await SMTPTestServer()
        defer { server.stop() }
        let endpoint = try EmailEndpoint(settings: EmailFixtures.settings(port: server.port))
        let checkpoint = Checkpoint()
        let notification = EmailFixtures.notification(.shipped, to: "jane.doe@example.com", data: EmailFixtures.sampleData.merging(["locale": "de"]) { $1 })
        let maildir = server.maildir
        let result = await endpoint.perform(EmailFixtures.call(notification, id: "ntf-42") {
            await checkpoint.record(messagesStored: SMTPTestServer.messages(in: maildir).count)
        })
        #expect(result == .delivered(reference: "Q1"))
        #expect(await checkpoint.calls == 1)
        #expect(await checkpoint.messagesAtCall == [0], "the point of no return comes before the server has the message")

        let stored = server.messages()
        try #require(stored.count == 1)
        let email = ParsedEmail(stored[0])
        #expect(email.headers["message-id"] == "<ntf-42@mail.shop.example>")
        #expect(email.headers["to"] == "jane.doe@example.com")
        #expect(email.headers["x-rcptto"] == "jane.doe@example.com")
        #expect(email.headers["x-mailfrom"] == "orders@shop.example")
        #expect(email.headers["x-orderfleet-notification"] == "ntf-42")
        #expect(email.subject == "Ihre Bestellung SHOP-1042 ist unterwegs")
        #expect(ParsedEmail.decodeEncodedWords(email.headers["from"]?.components(separatedBy: " <").first ?? "") == "Shop Ünïcode Team")
        let plain = try #require(email.parts["text/plain"])
        #expect(plain.contains("Sendungsnummer: JD0146000012345"))
        let html = try #require(email.parts["text/html"])
        #expect(html.contains("Hallo Jane &lt;Doe&gt; &amp; Co,"))
    }

    @Test("a Chinese notification chosen by channel default arrives decodable")
    func deliversChinese() async throws {
        let server = try await SMTPTestServer()
        defer { server.stop() }
        let endpoint = try EmailEndpoint(settings: EmailFixtures.settings(port: server.port))
        var data = EmailFixtures.sampleData
        data["channel"] = "tmall"
        let result = await endpoint.perform(EmailFixtures.call(EmailFixtures.notification(.delivered, data: data), id: "ntf-zh"))
        #expect(result == .delivered(reference: "Q1"))
        let email = ParsedEmail(try #require(server.messages().first))
        #expect(email.subject == "您的订单 SHOP-1042 已送达")
        #expect(email.parts["text/plain"]?.contains("2026年12月4日") == true)
    }

    @Test("550 at RCPT is a rejection with the server's text; the point of no return is not reached")
    func rejectsRecipient() async throws {
        let server = try await SMTPTestServer()
        defer { server.stop() }
        let endpoint = try EmailEndpoint(settings: EmailFixtures.settings(port: server.port))
        let checkpoint = Checkpoint()
        let result = await endpoint.perform(EmailFixtures.call(EmailFixtures.notification(to: "nobody@example.com")) {
            await checkpoint.record(messagesStored: 0)
        })
        #expect(result == .rejected(status: 550, reason: "550 5.1.1 mailbox unavailable (RCPT TO)"))
        #expect(await checkpoint.calls == 0)
        #expect(server.messages().isEmpty)
    }

    @Test("451 at RCPT is a retry; the point of no return is not reached")
    func retriesRecipient() async throws {
        let server = try await SMTPTestServer()
        defer { server.stop() }
        let endpoint = try EmailEndpoint(settings: EmailFixtures.settings(port: server.port))
        let checkpoint = Checkpoint()
        let result = await endpoint.perform(EmailFixtures.call(EmailFixtures.notification(to: "later@example.com")) {
            await checkpoint.record(messagesStored: 0)
        })
        #expect(result == .retry(after: nil, reason: "451 4.3.0 try later (RCPT TO)"))
        #expect(await checkpoint.calls == 0)
    }

    @Test("after the end of data: 452 is a retry, 554 a rejection, silence unknown")
    func afterEndOfData() async throws {
        let server = try await SMTPTestServer()
        defer { server.stop() }
        var settings = EmailFixtures.settings(port: server.port)
        settings.endOfDataTimeout = .seconds(1)
        let endpoint = try EmailEndpoint(settings: settings)
        let checkpoint = Checkpoint()
        func send(_ recipient: String) async -> CallResult {
            await endpoint.perform(EmailFixtures.call(EmailFixtures.notification(to: recipient)) {
                await checkpoint.record(messagesStored: 0)
            })
        }
        #expect(await send("busy@example.com") == .retry(after: nil, reason: "452 4.3.1 insufficient system storage (end of data)"))
        #expect(await send("spam@example.com") == .rejected(status: 554, reason: "554 5.7.1 message looks like spam (end of data)"))
        let silent = await send("silent@example.com")
        #expect(silent == .unknown(reason: "timed out waiting for the reply to the end of data"))
        #expect(await checkpoint.calls == 3)
        #expect(server.messages().isEmpty)
    }

    @Test("when the point of no return throws, the end of data is never sent and nothing is delivered")
    func pointOfNoReturnFails() async throws {
        struct LedgerDown: Error {}
        let server = try await SMTPTestServer()
        defer { server.stop() }
        let endpoint = try EmailEndpoint(settings: EmailFixtures.settings(port: server.port))
        let checkpoint = Checkpoint()
        let result = await endpoint.perform(EmailFixtures.call(EmailFixtures.notification()) {
            await checkpoint.record(messagesStored: 0)
            throw LedgerDown()
        })
        guard case .retry(nil, let reason) = result else {
            Issue.record("expected a retry, got \(result)")
            return
        }
        #expect(reason.hasPrefix("not sent: "))
        #expect(await checkpoint.calls == 1)
        // The server saw a connection drop in the middle of DATA: it must have stored nothing.
        try await Task.sleep(for: .milliseconds(300))
        #expect(server.messages().isEmpty)
        // And the next attempt goes through.
        #expect(await endpoint.perform(EmailFixtures.call(EmailFixtures.notification())) == .delivered(reference: "Q1"))
    }

    @Test("a server that does not listen is a retry, not a rejection")
    func connectionRefused() async throws {
        let endpoint = try EmailEndpoint(settings: EmailFixtures.settings(port: try await SMTPTestServer.freePort()))
        let result = await endpoint.perform(EmailFixtures.call(EmailFixtures.notification()))
        guard case .retry(nil, let reason) = result else {
            Issue.record("expected a retry, got \(result)")
            return
        }
        #expect(reason.hasPrefix("connect to 127.0.0.1:"))
    }

    @Test("a command that is not a notification is rejected; reconcile cannot tell and names the Message-ID")
    func otherCommands() async throws {
        let endpoint = try EmailEndpoint(settings: EmailFixtures.settings(port: 2525))
        let envelope = EmailFixtures.envelope(EmailFixtures.notification(), id: "ntf-77")
        let reconciliation = await endpoint.reconcile(OutboundCall(command: envelope, idempotencyKey: "k", attempt: 2) {})
        #expect(reconciliation == .cannotTell(reason: "SMTP has no lookup; check the mailbox for Message-ID <ntf-77@mail.shop.example>"))
        #expect(endpoint.name == "email/smtp")
    }

    @Test("STARTTLS against a server that requires it, trusting its self-signed certificate")
    func startTLS() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("orderfleet-tls-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let certificate = try TestCertificate(in: directory)
        let server = try await SMTPTestServer(tls: (certificate.certificate, certificate.key))
        defer { server.stop() }

        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(certificate.certificate))
        var settings = EmailFixtures.settings(port: server.port, security: .startTLS)
        settings.tls = tls
        let deliveredEndpoint = try EmailEndpoint(settings: settings)
        let delivered = await deliveredEndpoint.perform(EmailFixtures.call(EmailFixtures.notification(), id: "ntf-tls"))
        #expect(delivered == .delivered(reference: "Q1"))
        #expect(ParsedEmail(try #require(server.messages().first)).headers["message-id"] == "<ntf-tls@mail.shop.example>")

        settings.security = .startTLSIfOffered
        let opportunisticEndpoint = try EmailEndpoint(settings: settings)
        let opportunistic = await opportunisticEndpoint.perform(EmailFixtures.call(EmailFixtures.notification(), id: "ntf-tls2"))
        #expect(opportunistic == .delivered(reference: "Q2"))

        // Not trusting the certificate: the handshake fails before anything is sent.
        settings.tls = .makeClientConfiguration()
        let untrustedEndpoint = try EmailEndpoint(settings: settings)
        let untrusted = await untrustedEndpoint.perform(EmailFixtures.call(EmailFixtures.notification(), id: "ntf-tls3"))
        guard case .retry(nil, _) = untrusted else {
            Issue.record("expected a retry, got \(untrusted)")
            return
        }
        #expect(server.messages().count == 2)
    }

    @Test("STARTTLS required but not offered: a retry, and nothing is sent in the clear")
    func startTLSRequired() async throws {
        let server = try await SMTPTestServer()
        defer { server.stop() }
        let endpoint = try EmailEndpoint(settings: EmailFixtures.settings(port: server.port, security: .startTLS))
        let result = await endpoint.perform(EmailFixtures.call(EmailFixtures.notification()))
        #expect(result == .retry(after: nil, reason: "the server does not offer STARTTLS, which is required"))
        #expect(server.messages().isEmpty)

        let opportunistic = try EmailEndpoint(settings: EmailFixtures.settings(port: server.port, security: .startTLSIfOffered))
        #expect(await opportunistic.perform(EmailFixtures.call(EmailFixtures.notification())) == .delivered(reference: "Q1"))
    }

    @Test("credentials are never sent over plain text unless allowed")
    func noPlainTextAuth() async throws {
        let server = try await SMTPTestServer()
        defer { server.stop() }
        var settings = EmailFixtures.settings(port: server.port)
        settings.username = "shop"
        settings.password = "s3cret"
        let endpoint = try EmailEndpoint(settings: settings)
        #expect(await endpoint.perform(EmailFixtures.call(EmailFixtures.notification())) == .retry(after: nil, reason: "refusing to send credentials without TLS"))
        #expect(!settings.description.contains("s3cret"))
    }

    @Test("AUTH PLAIN and AUTH LOGIN with the right password deliver; a wrong one is a retry, not a rejection",
          arguments: [[], ["PLAIN"]])
    func authenticates(excluded: [String]) async throws {
        let server = try await SMTPTestServer(authExcluding: excluded)
        defer { server.stop() }
        var settings = EmailFixtures.settings(port: server.port)
        settings.username = "shop"
        settings.password = "s3cret"
        settings.allowInsecureAuth = true
        let endpoint = try EmailEndpoint(settings: settings)
        #expect(await endpoint.perform(EmailFixtures.call(EmailFixtures.notification())) == .delivered(reference: "Q1"))

        settings.password = "wrong"
        let wrongEndpoint = try EmailEndpoint(settings: settings)
        let wrong = await wrongEndpoint.perform(EmailFixtures.call(EmailFixtures.notification()))
        guard case .retry(nil, let reason) = wrong else {
            Issue.record("expected a retry, got \(wrong)")
            return
        }
        #expect(reason.hasPrefix("535 "))
        #expect(!reason.contains("wrong"))
        #expect(server.messages().count == 1)
    }
}

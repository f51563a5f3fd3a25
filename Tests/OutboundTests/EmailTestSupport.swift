import Contracts
import Foundation
import NIOCore
import NIOPosix

@testable import Outbound

/// Shared fixtures for the email tests.
enum EmailFixtures {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let templatesDirectory = repository.appendingPathComponent("config/notifications").path
    static let created = Date(timeIntervalSince1970: 1_796_112_000)  // Tue, 01 Dec 2026 08:00:00 UTC

    /// Sample data with every value some template uses.
    static let sampleData: [String: String] = [
        "externalOrderId": "SHOP-1042", "channel": "shopify", "carrier": "DHL", "trackingNumber": "JD0146000012345",
        "trackingUrl": "https://track.example/?id=JD0146000012345&lang=x", "estimatedDelivery": "2026-12-05T12:00:00Z",
        "deliveredAt": "2026-12-04T15:30:00Z", "amount": "24.90 EUR", "customerName": "Jane <Doe> & Co",
        "reviewUrl": "https://shop.example/review/SHOP-1042",
    ]

    static func notification(
        _ kind: NotificationKind = .shipped, to recipient: String? = "jane.doe@example.com", data: [String: String] = sampleData
    ) -> Contracts.Notification {
        Contracts.Notification(orderId: "ord-7", kind: kind, recipientEmail: recipient, data: data, createdAt: created)
    }

    static func envelope(_ notification: Contracts.Notification, id: String = "ntf-0001") -> Envelope {
        Envelope(id: id, source: "oms/tests", time: created, event: .notification(notification))
    }

    static func call(
        _ notification: Contracts.Notification, id: String = "ntf-0001",
        pointOfNoReturn: @escaping @Sendable () async throws -> Void = {}
    ) -> OutboundCall {
        OutboundCall(command: envelope(notification, id: id), idempotencyKey: "email/\(id)", attempt: 1, pointOfNoReturn: pointOfNoReturn)
    }

    static func settings(port: Int, security: SMTPSecurity = .none) -> EmailSettings {
        EmailSettings(
            host: "127.0.0.1", port: port, security: security, fromAddress: "orders@shop.example", fromName: "Shop Ünïcode Team",
            messageIDDomain: "mail.shop.example", templatesDirectory: templatesDirectory,
            defaultLocales: ["tmall": "zh", "otto": "de"], connectTimeout: .seconds(5), replyTimeout: .seconds(10),
            endOfDataTimeout: .seconds(10))
    }
}

/// Counts calls of the point of no return and what the server held at each.
actor Checkpoint {
    private(set) var calls = 0
    private(set) var messagesAtCall: [Int] = []

    func record(messagesStored: Int) {
        calls += 1
        messagesAtCall.append(messagesStored)
    }
}

/// A message as a reader sees it: unfolded headers, decoded subject, decoded parts.
struct ParsedEmail {
    var headers: [String: String] = [:]
    var parts: [String: String] = [:]

    var subject: String { Self.decodeEncodedWords(headers["subject"] ?? "") }

    init(_ raw: String) {
        let text = raw.replacingOccurrences(of: "\r\n", with: "\n")
        let split = text.components(separatedBy: "\n\n")
        let head = split.first ?? ""
        let body = split.dropFirst().joined(separator: "\n\n")
        for line in head.replacingOccurrences(of: "\n ", with: " ").replacingOccurrences(of: "\n\t", with: " ").split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].lowercased()
            if headers[name] == nil { headers[name] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces) }
        }
        guard let type = headers["content-type"], let range = type.range(of: "boundary=\"") else { return }
        let boundary = String(type[range.upperBound...].prefix(while: { $0 != "\"" }))
        for chunk in body.components(separatedBy: "--\(boundary)").dropFirst() where !chunk.hasPrefix("--") {
            let pieces = chunk.components(separatedBy: "\n\n")
            guard pieces.count >= 2 else { continue }
            let partHead = pieces[0].lowercased()
            let encoded = pieces.dropFirst().joined().replacingOccurrences(of: "\n", with: "")
            let partType = partHead.contains("text/html") ? "text/html" : "text/plain"
            if let data = Data(base64Encoded: encoded), let decoded = String(data: data, encoding: .utf8) { parts[partType] = decoded }
        }
    }

    static func decodeEncodedWords(_ value: String) -> String {
        let words = value.split(separator: " ")
        guard !words.isEmpty, words.allSatisfy({ $0.hasPrefix("=?UTF-8?B?") && $0.hasSuffix("?=") }) else { return value }
        var bytes = Data()
        for word in words { bytes.append(Data(base64Encoded: String(word.dropFirst(10).dropLast(2))) ?? Data()) }
        return String(data: bytes, encoding: .utf8) ?? value
    }
}

/// An aiosmtpd server from `.venv`, storing into a maildir, with a fixture handler that
/// refuses some recipients (see `handler`).
struct SMTPTestServer {
    let port: Int
    let directory: URL
    private let process: Process

    var maildir: URL { directory.appendingPathComponent("maildir") }

    /// The handler: a Mailbox that refuses `nobody@` (550) and `later@` (451) at RCPT,
    /// answers the end of data with 452 for `busy@`, 554 for `spam@`, and never (within
    /// the tests' timeouts) for `silent@`.
    static let handler = """
        import asyncio
        from aiosmtpd.handlers import Mailbox
        from aiosmtpd.smtp import AuthResult

        class FixtureMailbox(Mailbox):
            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
                if address.startswith("nobody@"):
                    return "550 5.1.1 mailbox unavailable"
                if address.startswith("later@"):
                    return "451 4.3.0 try later"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):
                recipient = envelope.rcpt_tos[0]
                if recipient.startswith("silent@"):
                    await asyncio.sleep(60)
                    return "250 OK"
                if recipient.startswith("busy@"):
                    return "452 4.3.1 insufficient system storage"
                if recipient.startswith("spam@"):
                    return "554 5.7.1 message looks like spam"
                message = self.prepare_message(session, envelope)
                self.handle_message(message)
                return "250 2.0.0 Ok: queued as Q" + str(len(self.mailbox))

        def authenticator(server, session, envelope, mechanism, auth_data):
            return AuthResult(success=auth_data.login == b"shop" and auth_data.password == b"s3cret", handled=False)

        # Run as a script: the same handler behind AUTH (the aiosmtpd CLI cannot enable it).
        # Arguments: port, maildir, mechanisms to leave out.
        if __name__ == "__main__":
            import sys, time
            from aiosmtpd.controller import Controller
            controller = Controller(
                FixtureMailbox(sys.argv[2]), hostname="127.0.0.1", port=int(sys.argv[1]), authenticator=authenticator,
                auth_require_tls=False, auth_required=True, auth_exclude_mechanism=sys.argv[3:])
            controller.start()
            while True:
                time.sleep(3600)
        """

    enum StartError: Error, CustomStringConvertible {
        case aiosmtpdMissing(String)
        case notListening(String)

        var description: String {
            switch self {
            case .aiosmtpdMissing(let python): "aiosmtpd is not installed in \(python): run scripts/setup (it installs aiosmtpd==1.4.6 into .venv)"
            case .notListening(let log): "aiosmtpd did not start listening within 120 s (a loaded machine starts Python slowly): \(log)"
            }
        }
    }

    static var python: String { EmailFixtures.repository.appendingPathComponent(".venv/bin/python").path }

    /// Starts a server; `tls` (certificate and key files) enables STARTTLS, which the
    /// server then requires; `authExcluding` makes it require AUTH (user `shop`, password
    /// `s3cret`) over plain text, without the mechanisms named.
    init(tls: (certificate: String, key: String)? = nil, authExcluding: [String]? = nil) async throws {
        let python = Self.python
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: python)
        probe.arguments = ["-c", "import aiosmtpd"]
        probe.standardError = FileHandle.nullDevice
        do {
            try probe.run()
            probe.waitUntilExit()
        } catch {
            throw StartError.aiosmtpdMissing(python)
        }
        guard probe.terminationStatus == 0 else { throw StartError.aiosmtpdMissing(python) }

        directory = FileManager.default.temporaryDirectory.appendingPathComponent("orderfleet-smtp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Self.handler.write(to: directory.appendingPathComponent("orderfleet_smtp_fixture.py"), atomically: true, encoding: .utf8)
        port = try await Self.freePort()

        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        let maildir = directory.appendingPathComponent("maildir").path
        if let excluded = authExcluding {
            process.arguments = [directory.appendingPathComponent("orderfleet_smtp_fixture.py").path, "\(port)", maildir] + excluded
        } else {
            var arguments = ["-m", "aiosmtpd", "-n", "-l", "127.0.0.1:\(port)", "-c", "orderfleet_smtp_fixture.FixtureMailbox"]
            if let tls { arguments += ["--tlscert", tls.certificate, "--tlskey", tls.key] }
            process.arguments = arguments + [maildir]
        }
        var environment = ProcessInfo.processInfo.environment
        environment["PYTHONPATH"] = directory.path
        process.environment = environment
        let log = directory.appendingPathComponent("server.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        self.process = process

        // Python's start-up takes seconds when the fast tier's simulation holds both cores.
        let deadline = ContinuousClock.now + .seconds(120)
        while !(await Self.accepts(port: port)) {
            guard process.isRunning, ContinuousClock.now < deadline else {
                stop()
                throw StartError.notListening((try? String(contentsOf: log, encoding: .utf8)) ?? "")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Kills the server and removes its files.
    func stop() {
        if process.isRunning {
            // SIGKILL, not terminate(): the child inherits the test runner's blocked
            // signal mask, SIGTERM included, and would outlive the test.
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: directory)
    }

    /// The stored messages, oldest first.
    func messages() -> [String] { Self.messages(in: maildir) }

    /// The messages stored in `maildir`, oldest first.
    static func messages(in maildir: URL) -> [String] {
        let new = maildir.appendingPathComponent("new")
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: new.path)) ?? []).sorted()
        return names.compactMap { try? String(contentsOf: new.appendingPathComponent($0), encoding: .utf8) }
    }

    /// A port nobody listens on: bind port 0, read it, let it go.
    static func freePort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress?.port ?? 0
        try await channel.close()
        return port
    }

    private static func accepts(port: Int) async -> Bool {
        do {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.milliseconds(500)).connect(host: "127.0.0.1", port: port).get()
            try? await channel.close()
            return true
        } catch {
            return false
        }
    }
}

/// A self-signed certificate for `localhost` and `127.0.0.1`, made with the openssl CLI.
struct TestCertificate {
    let certificate: String
    let key: String

    init(in directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        certificate = directory.appendingPathComponent("cert.pem").path
        key = directory.appendingPathComponent("key.pem").path
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        openssl.arguments = [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", certificate, "-days", "2",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ]
        openssl.standardOutput = FileHandle.nullDevice
        openssl.standardError = FileHandle.nullDevice
        try openssl.run()
        openssl.waitUntilExit()
        guard openssl.terminationStatus == 0 else { throw CertificateError() }
    }

    struct CertificateError: Error, CustomStringConvertible {
        var description: String { "openssl req failed to make a self-signed certificate" }
    }
}

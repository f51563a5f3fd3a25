import Foundation
import NIOCore
import NIOPosix
import NIOSSL

/// How an SMTP session is protected.
public enum SMTPSecurity: String, Sendable, Hashable, CaseIterable {
    /// Plain text throughout: a relay on the same host, tests.
    case none
    /// STARTTLS is required: a server that does not offer it gets no message (the
    /// attempt is retried), so a downgrade cannot expose the message or the password.
    case startTLS
    /// STARTTLS when the server offers it, plain text otherwise.
    case startTLSIfOffered
}

/// One SMTP reply: its code and its text, one entry per line of a multi-line reply.
struct SMTPReply: Sendable, Hashable, CustomStringConvertible {
    var code: Int
    var lines: [String]

    var text: String { lines.joined(separator: " ") }
    var description: String { text.isEmpty ? "\(code)" : "\(code) \(text)" }
    var isPositiveCompletion: Bool { (200..<300).contains(code) }
    var isTransientFailure: Bool { (400..<500).contains(code) }
    var isPermanentFailure: Bool { (500..<600).contains(code) }
}

/// Where in the session something happened: what a failure means depends on it.
enum SMTPStage: Sendable, Hashable {
    /// Greeting, EHLO, STARTTLS, AUTH: about the connection, not about the message.
    case session
    /// MAIL, RCPT, DATA and the content up to the end-of-data mark: the server has not
    /// taken the message.
    case transaction
    /// The end-of-data mark is (being) sent: the server may have taken the message.
    case endOfData
}

/// What one attempt to hand a message to the server came to.
enum SMTPOutcome: Sendable, Hashable {
    /// The server answered the end of data with 2xx: it took responsibility.
    case accepted(SMTPReply)
    /// The server answered `command` with a reply that ends the transaction.
    case refused(SMTPReply, command: String, stage: SMTPStage)
    /// No usable answer: connection refused, TLS failure, timeout, dropped connection.
    case failed(reason: String, stage: SMTPStage)
    /// The caller's check right before the end of data threw; the connection was
    /// dropped without the end-of-data mark, so the server discards the message.
    case abandoned(reason: String)
}

/// Why the transport failed.
enum SMTPFailure: Error, Sendable, Hashable, CustomStringConvertible {
    case timeout(String)
    case closed
    case malformed(String)
    case transport(String)
    case policy(String)

    var description: String {
        switch self {
        case .timeout(let what): "timed out waiting for \(what)"
        case .closed: "connection closed by the server"
        case .malformed(let what): "malformed reply: \(what)"
        case .transport(let what): what
        case .policy(let what): what
        }
    }
}

/// A minimal SMTP submission client: one message, one recipient, one connection.
///
/// Connections are not pooled: notifications are rare enough, and a fresh session per
/// message keeps a failure from leaking into the next message's outcome.
struct SMTPClient: Sendable {
    /// Credentials for AUTH PLAIN or AUTH LOGIN.
    struct Credentials: Sendable, Hashable {
        var username: String
        var password: String
    }

    /// Where and how to connect.
    struct Configuration: Sendable {
        var host: String
        var port: Int
        var security: SMTPSecurity
        var credentials: Credentials?
        /// Lets AUTH go over plain text, which only a test server on localhost deserves.
        var allowInsecureAuth: Bool
        /// The name this client gives in EHLO.
        var clientName: String
        var connectTimeout: Duration
        var replyTimeout: Duration
        /// RFC 5321 §4.5.3.2.6 asks for 10 minutes: the server may scan the message
        /// before it answers, and giving up early turns a delivery into an unknown outcome.
        var endOfDataTimeout: Duration
    }

    let configuration: Configuration
    let tls: NIOSSLContext?
    let group: any EventLoopGroup

    /// Sends `message` (RFC 5322 text) from `sender` to `recipient`; `beforeEndOfData`
    /// runs right before the end-of-data mark, the only step after which the server may
    /// have taken the message without this client knowing.
    func send(
        message: String, from sender: String, to recipient: String,
        beforeEndOfData: @Sendable () async throws -> Void
    ) async -> SMTPOutcome {
        let channel: any Channel
        do {
            channel = try await connect()
        } catch {
            return .failed(reason: "connect to \(configuration.host):\(configuration.port): \(Self.describe(error))", stage: .session)
        }
        let connection = SMTPConnection(channel: channel, replyTimeout: configuration.replyTimeout)
        var session = Session.greeting
        do {
            let outcome = try await transact(
                connection, session: &session, message: message, sender: sender, recipient: recipient,
                beforeEndOfData: beforeEndOfData)
            await connection.quit()
            return outcome
        } catch let refusal as Refusal {
            await connection.quit()
            return .refused(refusal.reply, command: refusal.command, stage: session.stage)
        } catch let abandoned as Abandoned {
            // In DATA mode an RSET would become message text: dropping the connection
            // before the end-of-data mark is what makes the server discard the message.
            await connection.close()
            return .abandoned(reason: abandoned.reason)
        } catch {
            await connection.close()
            return .failed(reason: Self.describe(error), stage: session.stage)
        }
    }

    /// How far the session got; a failure's meaning depends on it.
    private enum Session {
        case greeting
        case hello(tls: Bool)
        case mail
        case data
        case endOfData

        var stage: SMTPStage {
            switch self {
            case .greeting, .hello: .session
            case .mail, .data: .transaction
            case .endOfData: .endOfData
            }
        }
    }

    private struct Refusal: Error {
        var command: String
        var reply: SMTPReply
    }

    private struct Abandoned: Error {
        var reason: String
    }

    private func transact(
        _ connection: SMTPConnection, session: inout Session, message: String, sender: String, recipient: String,
        beforeEndOfData: @Sendable () async throws -> Void
    ) async throws -> SMTPOutcome {
        try expect(await connection.reply(), from: "greeting", codes: 220)

        var extensions = try await hello(connection)
        session = .hello(tls: false)
        var tlsActive = false
        if configuration.security != .none {
            if extensions["STARTTLS"] != nil {
                try expect(await connection.command("STARTTLS"), from: "STARTTLS", codes: 220)
                try await startTLS(on: connection.channel)
                tlsActive = true
                session = .hello(tls: true)
                // RFC 3207 §4.2: everything learnt before TLS is forgotten, AUTH included.
                extensions = try await hello(connection)
            } else if configuration.security == .startTLS {
                throw SMTPFailure.policy("the server does not offer STARTTLS, which is required")
            }
        }
        if let credentials = configuration.credentials {
            guard tlsActive || configuration.allowInsecureAuth else {
                throw SMTPFailure.policy("refusing to send credentials without TLS")
            }
            try await authenticate(connection, credentials: credentials, offered: extensions["AUTH"] ?? [])
        }

        session = .mail
        try expect(await connection.command("MAIL FROM:<\(sender)>"), from: "MAIL FROM", codes: 250)
        try expect(await connection.command("RCPT TO:<\(recipient)>"), from: "RCPT TO", codes: 250, 251)
        session = .data
        try expect(await connection.command("DATA"), from: "DATA", codes: 354)
        try await connection.write(Self.dataPayload(message))
        do {
            try await beforeEndOfData()
        } catch {
            throw Abandoned(reason: "not sent: \(Self.describe(error))")
        }
        session = .endOfData
        let reply = try await connection.exchange(
            raw: "\r\n.\r\n", waitingFor: "the reply to the end of data", timeout: configuration.endOfDataTimeout)
        guard reply.isPositiveCompletion else { throw Refusal(command: "end of data", reply: reply) }
        return .accepted(reply)
    }

    /// EHLO, or HELO for a server that predates extensions; the extensions offered,
    /// keyed by upper-cased keyword.
    private func hello(_ connection: SMTPConnection) async throws -> [String: [String]] {
        let reply = try await connection.command("EHLO \(configuration.clientName)")
        if reply.code == 250 { return Self.extensions(of: reply) }
        if reply.code == 500 || reply.code == 502 {
            try expect(await connection.command("HELO \(configuration.clientName)"), from: "HELO", codes: 250)
            return [:]
        }
        throw Refusal(command: "EHLO", reply: reply)
    }

    private func startTLS(on channel: any Channel) async throws {
        guard let context = tls else { throw SMTPFailure.policy("STARTTLS without a TLS context") }
        // SNI takes names only; for an IP literal NIOSSL checks the peer's address instead.
        let isAddress = (try? SocketAddress(ipAddress: configuration.host, port: 0)) != nil
        let serverName: String? = isAddress ? nil : configuration.host
        try await channel.eventLoop.submit {
            let handler = try NIOSSLClientHandler(context: context, serverHostname: serverName)
            try channel.pipeline.syncOperations.addHandler(handler, position: .first)
        }.get()
    }

    private func authenticate(
        _ connection: SMTPConnection, credentials: Credentials, offered: [String]
    ) async throws {
        let mechanisms = Set(offered.map { $0.uppercased() })
        if mechanisms.contains("PLAIN") {
            let token = Self.base64("\u{0}\(credentials.username)\u{0}\(credentials.password)")
            try expect(await connection.command("AUTH PLAIN \(token)", logAs: "AUTH PLAIN ***"), from: "AUTH PLAIN", codes: 235)
        } else if mechanisms.contains("LOGIN") {
            try expect(await connection.command("AUTH LOGIN"), from: "AUTH LOGIN", codes: 334)
            try expect(await connection.command(Self.base64(credentials.username), logAs: "***"), from: "AUTH LOGIN", codes: 334)
            try expect(await connection.command(Self.base64(credentials.password), logAs: "***"), from: "AUTH LOGIN", codes: 235)
        } else {
            throw SMTPFailure.policy("the server offers no AUTH mechanism this client knows (PLAIN, LOGIN)")
        }
    }

    private func expect(_ reply: SMTPReply, from command: String, codes: Int...) throws {
        guard codes.contains(reply.code) else { throw Refusal(command: command, reply: reply) }
    }

    private func connect() async throws -> any Channel {
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(Self.timeAmount(configuration.connectTimeout))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(SMTPLineDecoder()))
                    try channel.pipeline.syncOperations.addHandler(SMTPClientHandler())
                }
            }
        return try await bootstrap.connect(host: configuration.host, port: configuration.port).get()
    }

    // MARK: - Pure helpers

    /// The DATA content for `message`: CRLF line ends (bare CR and LF normalised),
    /// dot-stuffed (RFC 5321 §4.5.2), without the final line end, which belongs to the
    /// end-of-data mark `CRLF . CRLF`.
    static func dataPayload(_ message: String) -> String {
        let normalised = message.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
        var lines = normalised.split(separator: "\n", omittingEmptySubsequences: false)
        if lines.count > 1, lines.last?.isEmpty == true { lines.removeLast() }
        return lines.map { $0.hasPrefix(".") ? "." + $0 : String($0) }.joined(separator: "\r\n")
    }

    /// The extensions an EHLO reply offers: keyword (upper-cased) to parameters.
    static func extensions(of reply: SMTPReply) -> [String: [String]] {
        var result: [String: [String]] = [:]
        for line in reply.lines.dropFirst() {
            // Some old servers write `AUTH=LOGIN PLAIN`.
            let words = line.split(whereSeparator: { $0 == " " || $0 == "=" }).map(String.init)
            guard let keyword = words.first else { continue }
            result[keyword.uppercased(), default: []].append(contentsOf: words.dropFirst())
        }
        return result
    }

    /// The queue id in a reply such as `250 2.0.0 Ok: queued as 4F3A2B1C`, or the reply
    /// text when it says more than `OK`.
    static func queueReference(_ reply: SMTPReply) -> String? {
        let text = reply.text
        if let range = text.range(of: "queued as ", options: .caseInsensitive) {
            let id = text[range.upperBound...].prefix(while: { !$0.isWhitespace })
            if !id.isEmpty { return String(id) }
        }
        var words = text.split(separator: " ")
        if let first = words.first, first.split(separator: ".").count == 3, first.allSatisfy({ $0.isNumber || $0 == "." }) {
            words.removeFirst()  // the enhanced status code
        }
        let rest = words.joined(separator: " ")
        let lowered = rest.lowercased().trimmingCharacters(in: .punctuationCharacters)
        return rest.isEmpty || lowered == "ok" ? nil : rest
    }

    /// An address fit for MAIL FROM / RCPT TO and a header: ASCII without spaces,
    /// brackets or line breaks, one `@` with text on both sides.
    static func isDeliverable(_ address: String) -> Bool {
        guard address.utf8.count <= 254, address.unicodeScalars.allSatisfy({ $0.value > 32 && $0.value < 127 }) else { return false }
        guard !address.contains(where: { "<>()[]\\,;:\"".contains($0) }) else { return false }
        let parts = address.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return false }
        return parts[1].contains(".") || parts[1] == "localhost"
    }

    /// `jane.doe@example.com` as `j***@example.com`: enough to tell messages apart in a
    /// log, not enough to be personal data.
    static func mask(_ address: String) -> String {
        guard let at = address.lastIndex(of: "@") else { return "***" }
        let local = address[..<at]
        let domain = address[at...].unicodeScalars.filter { $0.value >= 32 && $0.value != 127 }
        return "\(local.first.map(String.init) ?? "")***\(String(String.UnicodeScalarView(domain)))"
    }

    static func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }

    static func timeAmount(_ duration: Duration) -> TimeAmount {
        let (seconds, attoseconds) = duration.components
        return .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    static func describe(_ error: any Error) -> String {
        if let failure = error as? SMTPFailure { return failure.description }
        if let error = error as? ChannelError, case .connectTimeout = error { return "connect timed out" }
        return String(describing: error)
    }
}

/// The async face of one connection.
private struct SMTPConnection: Sendable {
    let channel: any Channel
    let replyTimeout: Duration

    /// Waits for a reply without sending anything: the greeting.
    func reply() async throws -> SMTPReply {
        try await exchange(raw: nil, waitingFor: "the greeting", timeout: replyTimeout)
    }

    /// Sends `line` and waits for the reply. A timeout names `logAs` (or the line's
    /// verb), so a password never reaches an error message.
    func command(_ line: String, logAs: String? = nil) async throws -> SMTPReply {
        let verb = logAs ?? String(line.prefix(while: { $0 != " " && $0 != ":" }))
        return try await exchange(raw: line + "\r\n", waitingFor: "the reply to \(verb)", timeout: replyTimeout)
    }

    func exchange(raw: String?, waitingFor: String, timeout: Duration) async throws -> SMTPReply {
        let promise = channel.eventLoop.makePromise(of: SMTPReply.self)
        let request = SMTPRequest(
            bytes: raw.map { ByteBuffer(string: $0) } ?? ByteBuffer(), reply: promise,
            timeout: SMTPClient.timeAmount(timeout), waitingFor: waitingFor)
        // A closed channel fails the write before the handler sees it: the reply would
        // otherwise never come.
        channel.writeAndFlush(request).whenFailure { promise.fail($0) }
        return try await promise.futureResult.get()
    }

    func write(_ text: String) async throws {
        try await channel.writeAndFlush(SMTPRequest(bytes: ByteBuffer(string: text), reply: nil, timeout: .zero, waitingFor: "")).get()
    }

    /// Says goodbye without waiting long: the outcome is known already.
    func quit() async {
        let promise = channel.eventLoop.makePromise(of: SMTPReply.self)
        let request = SMTPRequest(bytes: ByteBuffer(string: "QUIT\r\n"), reply: promise, timeout: .seconds(2), waitingFor: "the reply to QUIT")
        channel.writeAndFlush(request).whenFailure { promise.fail($0) }
        _ = try? await promise.futureResult.get()
        await close()
    }

    func close() async {
        try? await channel.close()
    }
}

/// Bytes to send and, when an answer is expected, where the reply goes.
private struct SMTPRequest: Sendable {
    var bytes: ByteBuffer
    var reply: EventLoopPromise<SMTPReply>?
    var timeout: TimeAmount
    var waitingFor: String
}

/// Splits the stream into lines; SMTP lines end in CRLF, a bare LF is tolerated.
private struct SMTPLineDecoder: ByteToMessageDecoder {
    typealias InboundOut = String

    /// RFC 5321 §4.5.3.1.5 allows 512 octets per reply line; a server sending far more
    /// is not an SMTP server.
    static let maximumLineLength = 8192

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
            if buffer.readableBytes > Self.maximumLineLength { throw SMTPFailure.malformed("reply line too long") }
            return .needMoreData
        }
        let length = newline - buffer.readerIndex
        var line = buffer.readString(length: length) ?? ""
        buffer.moveReaderIndex(forwardBy: 1)
        if line.hasSuffix("\r") { line.removeLast() }
        context.fireChannelRead(wrapInboundOut(line))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}

/// Assembles reply lines into replies and hands each to the request waiting for it.
private final class SMTPClientHandler: ChannelDuplexHandler {
    typealias InboundIn = String
    typealias OutboundIn = SMTPRequest
    typealias OutboundOut = ByteBuffer

    private enum State {
        case open
        case failed(SMTPFailure)
    }

    private struct Waiter {
        var promise: EventLoopPromise<SMTPReply>
        var timer: Scheduled<Void>?
    }

    private var state = State.open
    private var waiters = CircularBuffer<Waiter>()
    /// Replies that came before anyone asked: the greeting, or a 421 before shutdown.
    private var unclaimed = CircularBuffer<SMTPReply>()
    private var partial: SMTPReply?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let line = unwrapInboundIn(data)
        let bytes = Array(line.utf8)
        guard bytes.count >= 3, bytes[0..<3].allSatisfy({ $0 >= 48 && $0 <= 57 }), let code = Int(String(line.prefix(3))) else {
            fail(context: context, with: .malformed(String(line.prefix(80))))
            return
        }
        let continues = bytes.count > 3 && bytes[3] == UInt8(ascii: "-")
        let text = bytes.count > 4 ? String(line.dropFirst(4)) : ""
        var reply = partial ?? SMTPReply(code: code, lines: [])
        guard reply.code == code else {
            fail(context: context, with: .malformed("reply code changed within a multi-line reply"))
            return
        }
        reply.lines.append(text)
        if continues {
            partial = reply
            return
        }
        partial = nil
        if waiters.isEmpty {
            unclaimed.append(reply)
        } else {
            let waiter = waiters.removeFirst()
            waiter.timer?.cancel()
            waiter.promise.succeed(reply)
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        if case .failed(let failure) = state {
            request.reply?.fail(failure)
            promise?.fail(failure)
            return
        }
        if let reply = request.reply {
            if unclaimed.isEmpty {
                let failure = SMTPFailure.timeout(request.waitingFor)
                let timer = context.eventLoop.assumeIsolated().scheduleTask(in: request.timeout) { [self] in
                    self.fail(context: context, with: failure)
                }
                waiters.append(Waiter(promise: reply, timer: timer))
            } else {
                reply.succeed(unclaimed.removeFirst())
            }
        }
        if request.bytes.readableBytes > 0 {
            context.write(wrapOutboundOut(request.bytes), promise: promise)
        } else {
            promise?.succeed()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(context: context, with: .closed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(context: context, with: error as? SMTPFailure ?? .transport(String(describing: error)))
    }

    private func fail(context: ChannelHandlerContext, with failure: SMTPFailure) {
        if case .open = state { state = .failed(failure) }
        let pending = waiters
        waiters.removeAll()
        for waiter in pending {
            waiter.timer?.cancel()
            waiter.promise.fail(failure)
        }
        context.close(promise: nil)
    }
}

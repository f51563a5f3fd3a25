import Foundation
import NIOCore
import NIOExtras
import NIOPosix
import Synchronization

/// A small SMTP receiver for the demo (RFC 5321's minimum: EHLO/HELO, MAIL, RCPT, DATA
/// with dot-unstuffing, RSET, NOOP, QUIT), keeping every message it accepts and counting
/// them per Message-ID. The tests deliver to a real server (aiosmtpd); this one lets
/// `oms demo` run anywhere.
final class LocalMailbox: Sendable {
    /// A message as received.
    struct Message: Sendable {
        var from: String
        var recipients: [String]
        var text: String

        /// The value of the first header `name` (case-insensitive), unfolded.
        func header(_ name: String) -> String? {
            let head = text.components(separatedBy: "\r\n\r\n").first ?? ""
            for line in head.components(separatedBy: "\r\n") {
                guard let colon = line.firstIndex(of: ":"), line[..<colon].lowercased() == name.lowercased() else { continue }
                return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            return nil
        }
    }

    private let received = Mutex<[Message]>([])
    private let channel = Mutex<(any Channel)?>(nil)

    /// Every message accepted so far.
    var messages: [Message] { received.withLock { $0 } }

    /// Messages per Message-ID.
    var byMessageID: [String: Int] {
        messages.reduce(into: [:]) { counts, message in counts[message.header("Message-ID") ?? "(none)", default: 0] += 1 }
    }

    /// Listens on 127.0.0.1 (a free port) and returns the port.
    func start() async throws -> Int {
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineBasedFrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(SMTPSessionHandler(mailbox: self))
                }
            }
        let server = try await bootstrap.bind(host: "127.0.0.1", port: 0).get()
        channel.withLock { $0 = server }
        return server.localAddress?.port ?? 0
    }

    /// Stops listening.
    func stop() async {
        try? await channel.withLock { $0 }?.close()
    }

    fileprivate func accept(_ message: Message) {
        received.withLock { $0.append(message) }
    }
}

/// One SMTP session: commands line by line, then the data lines until ".".
private final class SMTPSessionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let mailbox: LocalMailbox
    private var from = ""
    private var recipients: [String] = []
    private var data: [String]?

    init(mailbox: LocalMailbox) { self.mailbox = mailbox }

    func channelActive(context: ChannelHandlerContext) {
        reply(context, "220 localhost OrderFleet demo mailbox ESMTP")
    }

    func channelRead(context: ChannelHandlerContext, data incoming: NIOAny) {
        var buffer = unwrapInboundIn(incoming)
        var line = buffer.readString(length: buffer.readableBytes) ?? ""
        if line.hasSuffix("\r") { line.removeLast() }
        if var lines = data {
            if line == "." {
                mailbox.accept(LocalMailbox.Message(from: from, recipients: recipients, text: lines.joined(separator: "\r\n")))
                data = nil
                recipients = []
                reply(context, "250 2.0.0 Ok: queued as D\(mailbox.messages.count)")
            } else {
                lines.append(line.hasPrefix("..") ? String(line.dropFirst()) : line)
                data = lines
            }
            return
        }
        let verb = line.prefix(4).uppercased()
        switch verb {
        case "EHLO": reply(context, "250-localhost\r\n250-8BITMIME\r\n250 SIZE 10485760")
        case "HELO": reply(context, "250 localhost")
        case "MAIL":
            from = Self.address(in: line)
            recipients = []
            reply(context, "250 2.1.0 Ok")
        case "RCPT":
            recipients.append(Self.address(in: line))
            reply(context, "250 2.1.5 Ok")
        case "DATA":
            guard !recipients.isEmpty else { return reply(context, "503 5.5.1 RCPT first") }
            data = []
            reply(context, "354 End data with <CR><LF>.<CR><LF>")
        case "RSET":
            recipients = []
            reply(context, "250 2.0.0 Ok")
        case "NOOP": reply(context, "250 2.0.0 Ok")
        case "QUIT":
            reply(context, "221 2.0.0 Bye")
            context.close(promise: nil)
        default: reply(context, "502 5.5.2 command not recognized")
        }
    }

    private func reply(_ context: ChannelHandlerContext, _ text: String) {
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: text + "\r\n")), promise: nil)
    }

    private static func address(in line: String) -> String {
        guard let open = line.firstIndex(of: "<"), let close = line.lastIndex(of: ">"), open < close else { return "" }
        return String(line[line.index(after: open)..<close])
    }
}

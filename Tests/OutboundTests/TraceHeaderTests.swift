import AsyncHTTPClient
import Contracts
import Foundation
import Hummingbird
import OrderFleetTesting
import Outbound
import Testing
import Tracing

/// Outbound HTTP calls join the order's trace: the receiving system sees one `traceparent`.
@Suite("outbound trace header", .serialized)
struct TraceHeaderTests {
    static let command = try! TraceParent(parsing: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    static let own = try! TraceParent(parsing: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")

    /// Runs `body` with the URL of a server that answers with the request's `traceparent`
    /// headers, joined by a space (`none` for none).
    func withEcho(_ body: (String) async throws -> Void) async throws {
        let router = Router()
        router.post("echo") { request, _ -> String in
            let values = request.headers.filter { $0.name.canonicalName == "traceparent" }.map(\.value)
            return values.isEmpty ? "none" : values.joined(separator: " ")
        }
        try await withLocalServer({ onPort in
            Application(
                router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                onServerRunning: { channel in onPort(channel.localAddress?.port ?? 0) })
        }) { port in try await body("http://127.0.0.1:\(port)/echo") }
    }

    static func echoed(_ outcome: HTTPExchange.Outcome) -> String {
        if case .answered(let response) = outcome { String(decoding: response.body, as: UTF8.self) } else { "\(outcome)" }
    }

    @Test("a client that does not trace: the command's traceparent is sent, or the one the endpoint set, or none")
    func untracedClient() async throws {
        var configuration = HTTPClient.Configuration()
        configuration.tracing.tracer = nil
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let http = HTTPExchange(client: client, timeout: .seconds(5))
        try await withEcho { url in
            #expect(Self.echoed(await http.send(.POST, url, body: Data())) == "none")
            let sent = await OutboundTrace.$command.withValue(Self.command) { await http.send(.POST, url, body: Data()) }
            #expect(Self.echoed(sent) == Self.command.description)
            let kept = await OutboundTrace.$command.withValue(Self.command) {
                await http.send(.POST, url, headers: [("traceparent", Self.own.description)], body: Data())
            }
            #expect(Self.echoed(kept) == Self.own.description)
        }
        try await client.shutdown()
    }

    @Test("a client that traces: its request span is the child of the command's traceparent (or the endpoint's), and only its traceparent is sent")
    func tracedClient() async throws {
        let tracer = TestTracer.shared
        var configuration = HTTPClient.Configuration()
        configuration.tracing.tracer = tracer
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let http = HTTPExchange(client: client, timeout: .seconds(5))
        try await withEcho { url in
            for (trace, headers) in [(Self.command, [(String, String)]()), (Self.own, [("traceparent", Self.own.description)])] {
                let outcome = await OutboundTrace.$command.withValue(Self.command) { await http.send(.POST, url, headers: headers, body: Data()) }
                let sent = try TraceParent(parsing: Self.echoed(outcome))
                #expect(sent.traceID == trace.traceID, "one header, in the call's trace")
                let span = try #require(tracer.spans(inTrace: trace.traceID).first { $0.spanID == sent.parentID }, "the client's span was sent")
                #expect(span.parentID == trace.parentID && span.kind == .client)
            }
        }
        try await client.shutdown()
    }
}

import AsyncHTTPClient
import Contracts
import Fleet
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Tracing

/// One HTTP request to an external system, told apart by what its failure means for
/// the effect: a request that never left (refused, DNS) cannot have taken effect; one
/// that timed out or lost its connection after leaving may have.
public struct HTTPExchange: Sendable {
    /// A response that came back.
    public struct Response: Sendable {
        /// Status code.
        public var status: Int
        /// Headers, looked up case-insensitively with ``header(_:)``.
        public var headers: HTTPHeaders
        /// The body, up to ``HTTPExchange/bodyLimit``.
        public var body: Data

        /// The first value of a header.
        public func header(_ name: String) -> String? { headers.first(name: name) }
        /// The body as JSON, if it is.
        public var json: Any? { try? JSONSerialization.jsonObject(with: body) }
    }

    /// How an exchange ended.
    public enum Outcome: Sendable {
        /// The system answered.
        case answered(Response)
        /// The request did not leave this process: no effect is possible.
        case notSent(String)
        /// The request may have reached the system; its answer was lost.
        case lost(String)
    }

    /// The shared client (its own event loops, connection pools per host).
    public let client: HTTPClient
    /// How long one request may take, answer included.
    public var timeout: Duration
    /// Largest body read from an answer; error bodies are short, success bodies too.
    public static let bodyLimit = 1 << 20

    /// An exchange over `client`.
    public init(client: HTTPClient, timeout: Duration = .seconds(10)) {
        self.client = client
        self.timeout = timeout
    }

    /// Sends a request with a body of `contentType` (JSON unless said otherwise);
    /// `pointOfNoReturn`, if given, is awaited right before it leaves (a throw there is
    /// reported as ``Outcome/notSent(_:)``).
    public func send(
        _ method: HTTPMethod, _ url: String, headers: [(String, String)] = [], body: Data? = nil,
        contentType: String = "application/json", pointOfNoReturn: (@Sendable () async throws -> Void)? = nil
    ) async -> Outcome {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        let traceContext = Self.placeInTrace(&request, client: client)
        if let body {
            request.headers.replaceOrAdd(name: "Content-Type", value: contentType)
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        request.headers.replaceOrAdd(name: "Accept", value: "application/json")
        if let pointOfNoReturn {
            do { try await pointOfNoReturn() } catch { return .notSent("not sent: \(error)") }
        }
        do {
            let response = try await InstrumentationContext.$current.withValue(traceContext ?? InstrumentationContext.current) {
                try await client.execute(request, timeout: .milliseconds(Int64(timeout / .milliseconds(1))))
            }
            var buffer = try await response.body.collect(upTo: Self.bodyLimit)
            let data = buffer.readData(length: buffer.readableBytes) ?? Data()
            return .answered(Response(status: Int(response.status.code), headers: response.headers, body: data))
        } catch {
            return Self.neverLeft(error) ? .notSent(Self.describe(error)) : .lost(Self.describe(error))
        }
    }

    /// Puts the call in its trace: a `traceparent` the caller set, else the current span,
    /// else the command's (``OutboundTrace``). A client made after a tracer was
    /// bootstrapped (async-http-client keeps the tracer of that moment) starts a span per
    /// request, child of the current context, and sends that span's `traceparent`
    /// itself: then the header here goes, lest the request carry two, and the context to
    /// run the call in is returned instead. Otherwise the header is written here.
    static func placeInTrace(_ request: inout HTTPClientRequest, client: HTTPClient) -> InstrumentationContext? {
        let name = EnvelopeHeader.traceparent
        let explicit = request.headers.first(name: name).flatMap { try? TraceParent(parsing: $0) }
        guard let tracer = client.tracer, !(tracer is NoOpTracer) else {
            if !request.headers.contains(name: name), let trace = OutboundTrace.current {
                request.headers.add(name: name, value: trace.description)
            }
            return nil
        }
        request.headers.remove(name: name)
        if let explicit { return RecordTracing.context(continuing: explicit) }
        if InstrumentationContext.current != nil { return nil }
        return OutboundTrace.command.map(RecordTracing.context(continuing:))
    }

    /// `application/x-www-form-urlencoded` (`+` for spaces is not used: `%20` is valid too).
    public static func formEncoded(_ fields: [(String, String)]) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return fields.map { name, value in
            "\(name.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")=\(value.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")"
        }.joined(separator: "&")
    }

    /// Errors that happen before a byte of the request is written.
    static func neverLeft(_ error: any Error) -> Bool {
        if let error = error as? HTTPClientError {
            return error == .connectTimeout || error == .invalidURL || error == .emptyHost
        }
        if error is NIOConnectionError { return true }
        if let error = error as? ChannelError, case .connectTimeout = error { return true }
        if let error = error as? IOError {
            return [ECONNREFUSED, EHOSTUNREACH, ENETUNREACH, EADDRNOTAVAIL].contains(error.errnoCode)
        }
        return false
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? NIOConnectionError {
            return "connection failed: \(error.connectionErrors.first.map { "\($0.error)" } ?? "\(error)")"
        }
        return "\(error)"
    }
}

/// The trace an outbound call belongs to, sent as its `traceparent` header so that the
/// external system's spans join the order's trace.
public enum OutboundTrace {
    /// The command's `traceparent`, set by the connector for the calls it makes for it.
    @TaskLocal public static var command: TraceParent?

    /// The call's `traceparent`: the current span's where a tracer made one, else the
    /// command's.
    public static var current: TraceParent? {
        if let context = InstrumentationContext.current, let span = RecordTracing.traceparent(of: context) { return span }
        return command
    }
}

/// Turning an HTTP answer into a ``CallResult``, the same way for every HTTP endpoint.
public enum HTTPVerdict {
    /// 2xx: `delivered`; 408, 409 (a request with the same key still in flight), 425,
    /// 429 and 5xx: `retry`, no sooner than `Retry-After` or the rate-limit headers say;
    /// any other status: `rejected` with the system's own message.
    public static func result(of response: HTTPExchange.Response, now: Date, reference: (HTTPExchange.Response) -> String?) -> CallResult {
        switch response.status {
        case 200..<300:
            return .delivered(reference: reference(response))
        case 408, 409, 425, 429, 500...599:
            let hint = RetryHints.retryAfter(response.header("Retry-After"), now: now)
                ?? RetryHints.rateLimitPause(header: { response.header($0) }, now: now)
            return .retry(after: hint, reason: "HTTP \(response.status): \(message(in: response))")
        default:
            return .rejected(status: response.status, reason: message(in: response))
        }
    }

    /// A request that did not leave or lost its answer.
    public static func result(of outcome: HTTPExchange.Outcome, now: Date, reference: (HTTPExchange.Response) -> String? = { _ in nil }) -> CallResult {
        switch outcome {
        case .answered(let response): result(of: response, now: now, reference: reference)
        case .notSent(let reason): .retry(after: nil, reason: reason)
        case .lost(let reason): .unknown(reason: reason)
        }
    }

    /// The system's explanation in an error body: Shopify's `errors` (a string, a list
    /// or fields with lists) or `error`, SP-API's `errors[].message`, a generic
    /// `message`; else the body's first 300 characters.
    public static func message(in response: HTTPExchange.Response) -> String {
        if let object = response.json as? [String: Any] {
            if let text = describe(object["errors"]) ?? describe(object["error"]) ?? describe(object["message"]) {
                return String(text.prefix(500))
            }
        }
        let text = String(decoding: response.body.prefix(300), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? "HTTP \(response.status) with an empty body" : text
    }

    private static func describe(_ value: Any?) -> String? {
        switch value {
        case let text as String:
            return text
        case let list as [Any]:
            let parts = list.compactMap { item -> String? in
                if let item = item as? [String: Any] {
                    let code = item["code"] as? String
                    let message = item["message"] as? String
                    return [code, message].compactMap { $0 }.joined(separator: ": ")
                }
                return describe(item)
            }
            return parts.isEmpty ? nil : parts.joined(separator: "; ")
        case let fields as [String: Any]:
            let parts = fields.keys.sorted().compactMap { key in describe(fields[key]).map { "\(key): \($0)" } }
            return parts.isEmpty ? nil : parts.joined(separator: "; ")
        default:
            return nil
        }
    }
}

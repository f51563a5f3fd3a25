import Foundation

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// An HTTP answer as a test reads it.
public struct HTTPAnswer: Sendable {
    /// The status code.
    public var status: Int
    /// The body, as UTF-8.
    public var text: String
    /// The headers, by the name the server sent.
    public var headers: [String: String]

    /// Creates an answer.
    public init(status: Int, text: String, headers: [String: String] = [:]) {
        self.status = status
        self.text = text
        self.headers = headers
    }

    /// The body as a JSON object (empty when it is not one).
    public var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:] }

    /// A header, whatever the case of its name.
    public func header(_ name: String) -> String? { headers.first { $0.key.lowercased() == name.lowercased() }?.value }
}

/// Plain HTTP to the servers a test starts: the gateway, a worker's health endpoints,
/// local receivers. Transport failures (refused, timed out) throw.
public enum LocalHTTP {
    /// GETs `http://127.0.0.1:port/path`.
    public static func get(port: Int, path: String, headers: [String: String] = [:]) async throws -> HTTPAnswer {
        try await get("http://127.0.0.1:\(port)\(path)", headers: headers)
    }

    /// The status of `/readyz` on `port`, nil when nothing answers: what a readiness
    /// probe sees.
    public static func readiness(port: Int) async -> Int? {
        try? await get(port: port, path: "/readyz").status
    }

    /// GETs `url`.
    public static func get(_ url: String, headers: [String: String] = [:]) async throws -> HTTPAnswer {
        try await send(request(url, method: "GET", body: nil, headers: headers))
    }

    /// POSTs `body` to `url`.
    public static func post(_ url: String, body: [UInt8], headers: [String: String] = [:]) async throws -> HTTPAnswer {
        try await send(request(url, method: "POST", body: body, headers: headers))
    }

    private static func request(_ url: String, method: String, body: [UInt8]?, headers: [String: String]) throws -> URLRequest {
        guard let address = URL(string: url) else { throw URLError(.badURL) }
        var request = URLRequest(url: address)
        request.httpMethod = method
        request.httpBody = body.map { Data($0) }
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        return request
    }

    private static func send(_ request: URLRequest) async throws -> HTTPAnswer {
        let (data, response) = try await URLSession.shared.data(for: request)
        guard let http = response as? HTTPURLResponse else { throw URLError(.badServerResponse) }
        var headers: [String: String] = [:]
        for (name, value) in http.allHeaderFields { headers["\(name)"] = "\(value)" }
        return HTTPAnswer(status: http.statusCode, text: String(decoding: data, as: UTF8.self), headers: headers)
    }
}

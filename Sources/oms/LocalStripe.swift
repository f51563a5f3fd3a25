import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization

/// A stand-in for Stripe's PaymentIntents API (https://docs.stripe.com/api), for the demo
/// and the tests: capture (several partial captures up to the authorized amount, as
/// with multicapture), refunds (create, list by PaymentIntent), cancel, and reading a
/// PaymentIntent, form-encoded, with Stripe's error bodies (`{"error": {type, code,
/// decline_code, message}}`) and its idempotency rule: a request with a key seen before
/// gets the first answer again (`Idempotent-Replayed: true`) without a second effect, or
/// a 400 `idempotency_error` if its parameters differ.
///
/// It counts what an auditor would: requests and effects per idempotency key, money
/// captured and refunded per PaymentIntent. Faults: declines for chosen intents, lost
/// answers (the effect happens, the answer is held past the client's timeout), an outage.
public final class LocalStripe: Sendable {
    /// What the API was asked and what it did.
    public struct Ledger: Sendable {
        /// Requests per idempotency key (a retry or a replay counts again).
        public var requests: [String: Int] = [:]
        /// Effects per idempotency key: captures, refunds and cancels that moved money
        /// or released it. An auditor expects 1 for every key.
        public var effects: [String: Int] = [:]
        /// Minor units captured per PaymentIntent.
        public var captured: [String: Int64] = [:]
        /// Minor units refunded per PaymentIntent.
        public var refunded: [String: Int64] = [:]
        /// PaymentIntents cancelled.
        public var cancelled: Set<String> = []
        /// PaymentIntents created off-session to re-authorize an expired one: new → expired.
        public var reauthorizations: [String: String] = [:]
        /// Captures declined.
        public var declines = 0
        /// Answers held back until the client gave up.
        public var lostAnswers = 0
    }

    /// Faults to inject.
    public struct Faults: Sendable {
        /// Captures against these PaymentIntents are declined (402 `card_declined`).
        public var declined: Set<String> = []
        /// These PaymentIntents' authorizations have lapsed: Stripe cancelled them.
        public var expired: Set<String> = []
        /// Every n-th effect's answer is held back for ``holdAnswer`` (0: never).
        public var loseAnswerEvery = 0
        /// How long a lost answer is held.
        public var holdAnswer: Duration = .seconds(3)
        /// Every request is answered 500 `api_error` while this is set.
        public var down = false
        /// A PaymentIntent not authorized with ``LocalStripe/authorize(_:amount:currency:)``
        /// is authorized on first use for this many minor units (0: 404 `resource_missing`).
        public var authorizeUnknown: Int64 = 0

        /// No faults.
        public init() {}
    }

    /// The secret key it accepts.
    public let secretKey: String
    private let state = Mutex(State())

    private struct Intent {
        var id: String
        var amount: Int64
        var currency: String
        var received: Int64 = 0
        var status = "requires_capture"
        var metadata: [String: String] = [:]
        var latestCharge: String?
        var paymentMethod: String?
        var customer: String?
        var captureMethod = "manual"
        var created = 0

        var json: [String: Any] {
            var json: [String: Any] = [
                "id": id, "object": "payment_intent", "amount": amount, "amount_received": received,
                "amount_capturable": status == "requires_capture" ? amount - received : 0, "currency": currency, "status": status,
                "metadata": metadata, "capture_method": captureMethod, "created": created,
            ]
            json["latest_charge"] = latestCharge
            json["payment_method"] = paymentMethod
            json["customer"] = customer
            return json
        }
    }

    private struct Stored {
        var fingerprint: String
        var status: Int
        var body: [String: Any]
    }

    private struct State {
        var ledger = Ledger()
        var faults = Faults()
        var intents: [String: Intent] = [:]
        var refunds: [[String: Any]] = []
        var stored: [String: Stored] = [:]
        var effects = 0
        var nextID = 1
    }

    /// An API accepting `secretKey`.
    public init(secretKey: String = "sk_test_local") {
        self.secretKey = secretKey
    }

    /// What happened so far.
    public var ledger: Ledger { state.withLock { $0.ledger } }

    /// The PaymentIntents whose captures are declined.
    public var declinedIntents: Set<String> { state.withLock { $0.faults.declined } }

    /// The PaymentIntents whose authorizations have lapsed, and whether each has a
    /// saved card to re-authorize with.
    public var expiredIntents: [String: Bool] {
        state.withLock { state in
            Dictionary(uniqueKeysWithValues: state.faults.expired.map { ($0, state.intents[$0]?.paymentMethod != nil) })
        }
    }

    /// Changes the faults.
    public func setFaults(_ change: (inout Faults) -> Void) { state.withLock { change(&$0.faults) } }

    /// Creates an uncaptured PaymentIntent, as the shop's checkout did; with
    /// `savedCard` the card was saved to a customer for later off-session payments.
    public func authorize(_ id: String, amount: Int64, currency: String, savedCard: Bool = true) {
        state.withLock { state in
            var intent = Intent(id: id, amount: amount, currency: currency.lowercased())
            if savedCard { (intent.paymentMethod, intent.customer) = ("pm_\(id)", "cus_\(id)") }
            intent.created = state.nextID
            state.intents[id] = intent
        }
    }

    /// Adds the API's routes under `/v1`.
    public func addRoutes(to router: Router<BasicRequestContext>) {
        router.post("v1/payment_intents/{id}/capture") { request, context in
            try await self.mutate(request, path: "capture", id: context.parameters.get("id") ?? "") { state, id, form in Self.capture(&state, id, form) }
        }
        router.post("v1/payment_intents/{id}/cancel") { request, context in
            try await self.mutate(request, path: "cancel", id: context.parameters.get("id") ?? "") { state, id, _ in Self.cancel(&state, id) }
        }
        router.post("v1/payment_intents") { request, _ in
            try await self.mutate(request, path: "payment_intents", id: nil) { state, _, form in Self.create(&state, form) }
        }
        router.get("v1/payment_intents/search") { request, _ in
            if let refusal = self.refusal(request) { return refusal }
            guard let (key, value) = Self.metadataQuery(request.uri.queryParameters.get("query") ?? "") else {
                return Self.json(400, Self.error("invalid_request_error", "parameter_invalid", "This local search knows `metadata['key']:'value'` only."))
            }
            let found = self.state.withLock { state in state.intents.values.filter { $0.metadata[key] == value }.sorted { $0.created < $1.created }.map(\.json) }
            return Self.json(200, ["object": "search_result", "data": found, "has_more": false, "url": "/v1/payment_intents/search"])
        }
        router.post("v1/refunds") { request, _ in
            try await self.mutate(request, path: "refunds", id: nil) { state, _, form in Self.refund(&state, form) }
        }
        router.get("v1/payment_intents/{id}") { request, context in
            if let refusal = self.refusal(request) { return refusal }
            let id = context.parameters.get("id") ?? ""
            let found = self.state.withLock { state in Self.intent(&state, id).map(\.json) }
            return found.map { Self.json(200, $0) } ?? Self.json(404, Self.error("invalid_request_error", "resource_missing", "No such payment_intent: '\(id)'"))
        }
        router.get("v1/refunds") { request, _ in
            if let refusal = self.refusal(request) { return refusal }
            let intent = request.uri.queryParameters.get("payment_intent")
            let limit = request.uri.queryParameters.get("limit").flatMap { Int($0) } ?? 10
            let found = self.state.withLock { state in
                Array(state.refunds.filter { intent == nil || $0["payment_intent"] as? String == intent }.reversed().prefix(limit))
            }
            return Self.json(200, ["object": "list", "data": found, "has_more": false, "url": "/v1/refunds"])
        }
    }

    // MARK: Requests

    /// Authenticates, applies Stripe's idempotency rule, performs the effect once and
    /// maybe loses its answer.
    private func mutate(
        _ request: Request, path: String, id: String?, effect: @escaping @Sendable (inout State, String, [String: String]) -> (Int, [String: Any])
    ) async throws -> Response {
        if let refusal = refusal(request) { return refusal }
        let form = Self.form(String(decoding: Data(buffer: try await request.body.collect(upTo: 1 << 16)), as: UTF8.self))
        let key = request.headers[HTTPField.Name("Idempotency-Key")!]
        let fingerprint = "\(path)/\(id ?? "")?" + form.keys.sorted().map { "\($0)=\(form[$0]!)" }.joined(separator: "&")
        enum Answer { case replay(Int, [String: Any]), fresh(Int, [String: Any], lose: Bool) }
        let answer = state.withLock { state -> Answer in
            if let key {
                state.ledger.requests[key, default: 0] += 1
                if let stored = state.stored[key] {
                    guard stored.fingerprint == fingerprint else {
                        return .replay(400, Self.error(
                            "idempotency_error", nil,
                            "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '\(key)' if you meant to execute a different request."))
                    }
                    return .replay(stored.status, stored.body)
                }
            }
            let (status, body) = effect(&state, id ?? "", form)
            if let key {
                state.stored[key] = Stored(fingerprint: fingerprint, status: status, body: body)
                if (200..<300).contains(status) { state.ledger.effects[key, default: 0] += 1 }
            }
            guard (200..<300).contains(status) else { return .fresh(status, body, lose: false) }
            state.effects += 1
            let lose = state.faults.loseAnswerEvery > 0 && state.effects % state.faults.loseAnswerEvery == 0
            if lose { state.ledger.lostAnswers += 1 }
            return .fresh(status, body, lose: lose)
        }
        switch answer {
        case .replay(let status, let body):
            var headers = HTTPFields()
            headers[HTTPField.Name("Idempotent-Replayed")!] = "true"
            return Self.json(status, body, headers: headers)
        case .fresh(let status, let body, let lose):
            if lose { try await Task.sleep(for: state.withLock { $0.faults.holdAnswer }) }
            return Self.json(status, body)
        }
    }

    private static func capture(_ state: inout State, _ id: String, _ form: [String: String]) -> (Int, [String: Any]) {
        guard var intent = intent(&state, id) else {
            return (404, error("invalid_request_error", "resource_missing", "No such payment_intent: '\(id)'"))
        }
        if state.faults.expired.contains(id) { intent.status = "canceled" }
        guard intent.status == "requires_capture" else {
            state.intents[id] = intent
            return (400, error(
                "invalid_request_error", "payment_intent_unexpected_state",
                "This PaymentIntent could not be captured because it has a status of \(intent.status). Only a PaymentIntent with one of the following statuses may be captured: requires_capture.",
                extra: ["payment_intent": intent.json]))
        }
        if state.faults.declined.contains(id) {
            state.ledger.declines += 1
            return (402, error("card_error", "card_declined", "Your card was declined.", extra: ["decline_code": "insufficient_funds"]))
        }
        let amount = form["amount_to_capture"].flatMap { Int64($0) } ?? (intent.amount - intent.received)
        guard amount > 0, amount <= intent.amount - intent.received else {
            return (400, error(
                "invalid_request_error", "amount_too_large",
                "The amount to capture (\(amount)) is greater than the amount capturable on this PaymentIntent (\(intent.amount - intent.received))."))
        }
        state.nextID += 1
        intent.received += amount
        intent.latestCharge = String(format: "ch_local%016d", state.nextID)
        if intent.received == intent.amount { intent.status = "succeeded" }
        if let command = form["metadata[oms_command]"] { intent.metadata["oms_command"] = command }
        state.intents[id] = intent
        state.ledger.captured[id, default: 0] += amount
        return (200, intent.json)
    }

    /// A PaymentIntent confirmed at once (`confirm=true`) off-session with a saved card:
    /// captured automatically unless `capture_method=manual`; a card declined before is
    /// declined again.
    private static func create(_ state: inout State, _ form: [String: String]) -> (Int, [String: Any]) {
        guard let amount = form["amount"].flatMap({ Int64($0) }), amount > 0, let currency = form["currency"] else {
            return (400, error("invalid_request_error", "parameter_missing", "Missing required param: amount or currency."))
        }
        guard form["confirm"] == "true", form["off_session"] == "true", let method = form["payment_method"], let customer = form["customer"] else {
            return (400, error("invalid_request_error", "parameter_missing", "This local API creates confirmed off-session PaymentIntents only: confirm, off_session, payment_method, customer."))
        }
        guard let source = state.intents.values.first(where: { $0.paymentMethod == method }), source.customer == customer else {
            return (400, error("invalid_request_error", "resource_missing", "No such PaymentMethod: '\(method)' for customer '\(customer)'"))
        }
        state.nextID += 1
        let id = String(format: "pi_local%016d", state.nextID)
        if state.faults.declined.contains(source.id) {
            state.ledger.declines += 1
            return (402, error("card_error", "card_declined", "Your card was declined.", extra: ["decline_code": "insufficient_funds"]))
        }
        var intent = Intent(id: id, amount: amount, currency: currency, paymentMethod: method, customer: customer, created: state.nextID)
        for (key, value) in form where key.hasPrefix("metadata[") && key.hasSuffix("]") {
            intent.metadata[String(key.dropFirst("metadata[".count).dropLast())] = value
        }
        if form["capture_method"] != "manual" {
            intent.captureMethod = "automatic"
            intent.received = amount
            intent.status = "succeeded"
            intent.latestCharge = String(format: "ch_local%016d", state.nextID)
            state.ledger.captured[id, default: 0] += amount
        }
        state.intents[id] = intent
        if let original = intent.metadata["oms_reauthorization_of"] { state.ledger.reauthorizations[id] = original }
        return (200, intent.json)
    }

    /// `metadata['key']:'value'`, the one search query this stand-in answers.
    private static func metadataQuery(_ query: String) -> (String, String)? {
        guard query.hasPrefix("metadata['"), let close = query.range(of: "']:'"), query.hasSuffix("'") else { return nil }
        let key = String(query[query.index(query.startIndex, offsetBy: "metadata['".count)..<close.lowerBound])
        let value = String(query[close.upperBound..<query.index(before: query.endIndex)])
        return (key, value)
    }

    private static func cancel(_ state: inout State, _ id: String) -> (Int, [String: Any]) {
        guard var intent = intent(&state, id) else {
            return (404, error("invalid_request_error", "resource_missing", "No such payment_intent: '\(id)'"))
        }
        guard intent.status == "requires_capture", intent.received == 0 else {
            return (400, error(
                "invalid_request_error", "payment_intent_unexpected_state",
                "You cannot cancel this PaymentIntent because it has a status of \(intent.status).", extra: ["payment_intent": intent.json]))
        }
        intent.status = "canceled"
        state.intents[id] = intent
        state.ledger.cancelled.insert(id)
        var json = intent.json
        json["cancellation_reason"] = "requested_by_customer"
        return (200, json)
    }

    private static func refund(_ state: inout State, _ form: [String: String]) -> (Int, [String: Any]) {
        let id = form["payment_intent"] ?? ""
        guard let intent = intent(&state, id) else {
            return (404, error("invalid_request_error", "resource_missing", "No such payment_intent: '\(id)'"))
        }
        let refundable = intent.received - state.ledger.refunded[id, default: 0]
        let amount = form["amount"].flatMap { Int64($0) } ?? refundable
        guard amount > 0, amount <= refundable else {
            return (400, error(
                "invalid_request_error", "amount_too_large",
                "Refund amount (\(amount)) is greater than unrefunded amount on charge (\(refundable))"))
        }
        state.nextID += 1
        var metadata: [String: String] = [:]
        if let command = form["metadata[oms_command]"] { metadata["oms_command"] = command }
        let refund: [String: Any] = [
            "id": String(format: "re_local%016d", state.nextID), "object": "refund", "amount": amount, "currency": intent.currency,
            "payment_intent": id, "charge": intent.latestCharge ?? "", "status": "succeeded", "reason": form["reason"] ?? "requested_by_customer",
            "metadata": metadata,
        ]
        state.refunds.append(refund)
        state.ledger.refunded[id, default: 0] += amount
        return (200, refund)
    }

    private static func intent(_ state: inout State, _ id: String) -> Intent? {
        if let intent = state.intents[id] { return intent }
        guard state.faults.authorizeUnknown > 0, !id.isEmpty else { return nil }
        let intent = Intent(id: id, amount: state.faults.authorizeUnknown, currency: "usd")
        state.intents[id] = intent
        return intent
    }

    // MARK: Plumbing

    private func refusal(_ request: Request) -> Response? {
        guard request.headers[.authorization] == "Bearer \(secretKey)" else {
            let shown = request.headers[.authorization].map { String($0.dropFirst("Bearer ".count).prefix(7)) + "…" } ?? "none"
            return Self.json(401, Self.error("invalid_request_error", nil, "Invalid API Key provided: \(shown)"))
        }
        if state.withLock({ $0.faults.down }) {
            return Self.json(500, Self.error("api_error", nil, "An unknown error occurred"))
        }
        return nil
    }

    /// Stripe's error body; `extra` adds fields to the error (`decline_code`, the `payment_intent`).
    private static func error(_ type: String, _ code: String?, _ message: String, extra: [String: Any] = [:]) -> [String: Any] {
        var error: [String: Any] = extra.merging(["type": type, "message": message]) { $1 }
        if let code {
            error["code"] = code
            error["doc_url"] = "https://stripe.com/docs/error-codes/\(code.replacingOccurrences(of: "_", with: "-"))"
        }
        return ["error": error]
    }

    private static func form(_ body: String) -> [String: String] { LocalAnswer.form(body) }

    private static func json(_ status: Int, _ object: [String: Any], headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers[HTTPField.Name("Request-Id")!] = "req_local\(UUID().uuidString.prefix(8))"
        return LocalAnswer.json(status, object, headers: headers)
    }
}

import Contracts
import Foundation
import Logging

/// Stripe's PaymentIntents API (https://docs.stripe.com/api): capture
/// (`POST /v1/payment_intents/{id}/capture`), refund (`POST /v1/refunds`) and void
/// (`POST /v1/payment_intents/{id}/cancel`), form-encoded, with the secret key as a
/// bearer token and the command's idempotency key as `Idempotency-Key`, which Stripe
/// keeps for 24 hours: a repeat with the same key returns the first answer instead of
/// moving money again.
///
/// Every call also writes the command id into `metadata[oms_command]`, which is how a
/// lost answer is reconciled: the PaymentIntent (capture, void) or the refunds of the
/// PaymentIntent are read back and looked at, not called again blindly.
public struct StripePayments: PaymentProvider {
    /// The name in configuration, e.g. `stripe`.
    public let name: String
    /// `https://api.stripe.com`, or a stand-in.
    public var baseURL: String
    /// The secret key (`sk_…` or a restricted `rk_…`); never logged.
    public var secretKey: String
    /// The HTTP client.
    public var http: HTTPExchange
    /// The clock of `Retry-After`.
    public var now: @Sendable () -> Date
    let logger: Logger

    /// An adapter.
    public init(
        name: String = "stripe", baseURL: String = "https://api.stripe.com", secretKey: String, http: HTTPExchange,
        now: @escaping @Sendable () -> Date = { Date() }, logger: Logger = Logger(label: "oms.payments.stripe")
    ) {
        self.name = name
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.secretKey = secretKey
        self.http = http
        self.now = now
        self.logger = logger
    }

    private var authorization: (String, String) { ("Authorization", "Bearer \(secretKey)") }

    /// Performs the request once: a capture whose authorization has expired is
    /// re-authorized when the request allows it; a refund of an order whose payment was
    /// re-authorized is spread over its payments.
    public func execute(_ request: PaymentRequest, call: OutboundCall) async -> CallResult {
        let result: CallResult
        if request.operation == .refund {
            switch await reauthorizations(of: request) {
            case .failure(let failure): return .retry(after: nil, reason: failure.description)
            case .success(let payments) where !payments.isEmpty: result = await refund(request, reauthorizations: payments, call: call)
            case .success: result = await executeOnce(request, call: call)
            }
        } else {
            result = await executeOnce(request, call: call)
        }
        if request.operation == .capture, request.reauthorize, case .rejected(_, let reason) = result,
            PaymentProviderAnswer.failure(in: reason).0 == .authorizationExpired {
            return await reauthorize(request, call: call)
        }
        return result
    }

    private func executeOnce(_ request: PaymentRequest, call: OutboundCall) async -> CallResult {
        let reference = request.reference ?? ""
        let (path, form) = Self.call(for: request, reference: reference)
        let outcome = await http.send(
            .POST, baseURL + path, headers: [authorization, ("Idempotency-Key", call.idempotencyKey), ("Stripe-Version", Self.apiVersion)],
            body: Data(HTTPExchange.formEncoded(form).utf8), contentType: "application/x-www-form-urlencoded",
            pointOfNoReturn: call.pointOfNoReturn)
        let result: CallResult
        switch outcome {
        case .answered(let response) where !(200..<300).contains(response.status):
            result = Self.refusal(response, operation: request.operation, now: now())
        case .answered(let response) where request.operation == .refund && Self.object(response)?["status"] as? String == "failed":
            let refund = Self.object(response)
            result = PaymentProviderAnswer.refused(
                .declined, status: response.status, message: "refund \(refund?["id"] as? String ?? "?") failed: \(refund?["failure_reason"] as? String ?? "no reason given")")
        default:
            result = HTTPVerdict.result(of: outcome, now: now()) { Self.reference(in: $0, operation: request.operation) }
        }
        logger.info("payment call", metadata: [
            "command": "\(request.commandId)", "operation": "\(request.operation.rawValue)", "attempt": "\(call.attempt)", "result": "\(result)",
        ])
        return result
    }

    /// Reads back what a lost call may have done: the PaymentIntent for a capture (its
    /// `metadata[oms_command]` names the last capture; a re-authorization is found by
    /// its `metadata[oms_command]`) or a void (its status), the PaymentIntent's refunds
    /// (and its re-authorizations') for a refund.
    public func lookUp(_ request: PaymentRequest, call: OutboundCall) async -> Reconciliation {
        let direct = await lookUpOnce(request)
        switch request.operation {
        case .capture where request.reauthorize && direct == .didNotHappen:
            switch await search("metadata['oms_command']:'\(request.commandId)'") {
            case .success(let found):
                return found.first { $0["status"] as? String == "succeeded" }.flatMap { $0["id"] as? String }
                    .map { .happened(reference: PaymentProviderAnswer.reference(reauthorizedAs: $0)) } ?? .didNotHappen
            case .failure(let failure): return .askAgain(reason: failure.description)
            }
        case .refund where direct == .didNotHappen:
            switch await reauthorizations(of: request) {
            case .success(let payments) where !payments.isEmpty:
                switch await refunds(of: request, over: [request.reference ?? ""] + payments.map(\.id)) {
                case .success(let made): return made.total >= (request.amount?.minorUnits ?? 0) ? .happened(reference: made.ids.last) : .didNotHappen
                case .failure(let failure): return .askAgain(reason: failure.description)
                }
            case .success: return direct
            case .failure(let failure): return .askAgain(reason: failure.description)
            }
        default:
            return direct
        }
    }

    private func lookUpOnce(_ request: PaymentRequest) async -> Reconciliation {
        let reference = request.reference ?? ""
        let path = request.operation == .refund
            ? "/v1/refunds?payment_intent=\(Self.pathSafe(reference))&limit=100"
            : "/v1/payment_intents/\(Self.pathSafe(reference))"
        switch await http.send(.GET, baseURL + path, headers: [authorization, ("Stripe-Version", Self.apiVersion)]) {
        case .answered(let response) where (200..<300).contains(response.status):
            return Self.reconciliation(of: request, in: Self.object(response) ?? [:])
        case .answered(let response) where response.status == 404:
            // The payment does not exist: nothing can have moved; the call answers why.
            return .didNotHappen
        case .answered(let response):
            return .askAgain(reason: "reading \(path): HTTP \(response.status): \(Self.message(response))")
        case .notSent(let reason), .lost(let reason):
            return .askAgain(reason: "reading \(path): \(reason)")
        }
    }

    // MARK: Re-authorization

    /// A new PaymentIntent for the capture's amount, confirmed off-session with the
    /// expired one's saved card and customer and captured at once, under the key
    /// `<key>/reauthorization`; its metadata names the command, the order and the
    /// payment it replaces, which is how refunds and reconciliation find it.
    private func reauthorize(_ request: PaymentRequest, call: OutboundCall) async -> CallResult {
        let expired = request.reference ?? ""
        let original: [String: Any]
        switch await http.send(.GET, baseURL + "/v1/payment_intents/\(Self.pathSafe(expired))", headers: [authorization, ("Stripe-Version", Self.apiVersion)]) {
        case .answered(let response) where (200..<300).contains(response.status): original = Self.object(response) ?? [:]
        case let outcome: return HTTPVerdict.result(of: outcome, now: now())
        }
        guard let method = Self.id(original["payment_method"]), let customer = Self.id(original["customer"]), let amount = request.amount else {
            return PaymentProviderAnswer.refused(
                .authorizationExpired, status: nil,
                message: "the authorization of \(expired) expired and it has no saved card and customer to re-authorize with: the order waits for an operator")
        }
        let form = [
            ("amount", String(amount.minorUnits)), ("currency", amount.currency.code.lowercased()), ("customer", customer), ("payment_method", method),
            ("confirm", "true"), ("off_session", "true"), ("metadata[oms_command]", request.commandId), ("metadata[oms_order]", request.orderId),
            ("metadata[oms_reauthorization_of]", expired),
        ]
        let outcome = await http.send(
            .POST, baseURL + "/v1/payment_intents",
            headers: [authorization, ("Idempotency-Key", call.idempotencyKey + "/reauthorization"), ("Stripe-Version", Self.apiVersion)],
            body: Data(HTTPExchange.formEncoded(form).utf8), contentType: "application/x-www-form-urlencoded", pointOfNoReturn: call.pointOfNoReturn)
        guard case .answered(let response) = outcome else { return HTTPVerdict.result(of: outcome, now: now()) }
        guard (200..<300).contains(response.status) else {
            if case .rejected(let status, let reason) = Self.refusal(response, operation: .capture, now: now()) {
                let (failure, message) = PaymentProviderAnswer.failure(in: reason)
                return PaymentProviderAnswer.refused(failure, status: status, message: "re-authorizing \(expired): \(message)")
            }
            return Self.refusal(response, operation: .capture, now: now())
        }
        let intent = Self.object(response) ?? [:]
        guard intent["status"] as? String == "succeeded", let id = intent["id"] as? String else {
            // requires_action: the bank wants the customer present; nothing was taken.
            return PaymentProviderAnswer.refused(
                .declined, status: response.status, message: "re-authorizing \(expired): the new payment is \(intent["status"] as? String ?? "?"), not succeeded")
        }
        return PaymentProviderAnswer.reauthorized(payment: id)
    }

    /// The PaymentIntents that re-authorized the request's payment, oldest first, with
    /// what each took (the search answers whole PaymentIntents).
    private func reauthorizations(of request: PaymentRequest) async -> Result<[(id: String, received: Int64)], ReadFailure> {
        guard let reference = request.reference, !reference.isEmpty else { return .success([]) }
        return await search("metadata['oms_reauthorization_of']:'\(reference)'").map { found in
            found.filter { $0["status"] as? String == "succeeded" }
                .sorted { ($0["created"] as? Int ?? 0, $0["id"] as? String ?? "") < ($1["created"] as? Int ?? 0, $1["id"] as? String ?? "") }
                .compactMap { intent in (intent["id"] as? String).map { ($0, Self.minorUnits(intent["amount_received"])) } }
        }
    }

    /// An amount in minor units as Stripe's JSON gives it.
    static func minorUnits(_ value: Any?) -> Int64 {
        (value as? Int64) ?? Int64(value as? Int ?? 0)
    }

    struct ReadFailure: Error, CustomStringConvertible {
        var description: String
    }

    /// `GET /v1/payment_intents/search` (Stripe's search query language).
    private func search(_ query: String) async -> Result<[[String: Any]], ReadFailure> {
        let escaped = query.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? query
        let path = "/v1/payment_intents/search?query=\(escaped)&limit=100"
        switch await http.send(.GET, baseURL + path, headers: [authorization, ("Stripe-Version", Self.apiVersion)]) {
        case .answered(let response) where (200..<300).contains(response.status):
            return .success(Self.object(response)?["data"] as? [[String: Any]] ?? [])
        case .answered(let response):
            return .failure(ReadFailure(description: "searching payments: HTTP \(response.status): \(Self.message(response))"))
        case .notSent(let reason), .lost(let reason):
            return .failure(ReadFailure(description: "searching payments: \(reason)"))
        }
    }

    /// What was refunded for the request across `payments` (found by
    /// `metadata[oms_command]`: its total and refund ids), and what each payment has
    /// refunded in all.
    private func refunds(of request: PaymentRequest, over payments: [String]) async -> Result<(total: Int64, ids: [String], refundedByPayment: [String: Int64]), ReadFailure> {
        var total: Int64 = 0
        var ids: [String] = []
        var refunded: [String: Int64] = [:]
        for payment in payments {
            let path = "/v1/refunds?payment_intent=\(Self.pathSafe(payment))&limit=100"
            guard case .answered(let response) = await http.send(.GET, baseURL + path, headers: [authorization, ("Stripe-Version", Self.apiVersion)]),
                (200..<300).contains(response.status)
            else { return .failure(ReadFailure(description: "reading the refunds of \(payment)")) }
            for refund in Self.object(response)?["data"] as? [[String: Any]] ?? [] where refund["status"] as? String != "failed" {
                let amount = Self.minorUnits(refund["amount"])
                refunded[payment, default: 0] += amount
                guard (refund["metadata"] as? [String: Any])?["oms_command"] as? String == request.commandId else { continue }
                total += amount
                if let id = refund["id"] as? String { ids.append(id) }
            }
        }
        return .success((total, ids, refunded))
    }

    /// A refund spread over the original payment and its re-authorizations, newest
    /// first, each part under the key `<key>/<payment>`; parts already made (found by the
    /// command id in their metadata) are not made again.
    private func refund(_ request: PaymentRequest, reauthorizations: [(id: String, received: Int64)], call: OutboundCall) async -> CallResult {
        guard let amount = request.amount else { return PaymentProviderAnswer.refused(.invalidRequest, status: nil, message: "refund without an amount") }
        let original = request.reference ?? ""
        guard case .answered(let response) = await http.send(.GET, baseURL + "/v1/payment_intents/\(Self.pathSafe(original))", headers: [authorization, ("Stripe-Version", Self.apiVersion)]),
            (200..<300).contains(response.status)
        else { return .retry(after: nil, reason: "cannot read payment \(original)") }
        var captured = Dictionary(reauthorizations.map { ($0.id, $0.received) }, uniquingKeysWith: { $1 })
        captured[original] = Self.minorUnits(Self.object(response)?["amount_received"])
        let payments = [original] + reauthorizations.map(\.id)
        let made: (total: Int64, ids: [String], refundedByPayment: [String: Int64])
        switch await refunds(of: request, over: payments) {
        case .success(let found): made = found
        case .failure(let failure): return .retry(after: nil, reason: failure.description)
        }
        var left = amount.minorUnits - made.total
        var last = made.ids.last
        for payment in payments.reversed() where left > 0 {
            let room = captured[payment, default: 0] - made.refundedByPayment[payment, default: 0]
            let part = min(left, room)
            guard part > 0 else { continue }
            var piece = request
            piece.reference = payment
            piece.amount = Money(minorUnits: part, currency: amount.currency)
            var each = call
            each.idempotencyKey = call.idempotencyKey + "/" + payment
            let result = await executeOnce(piece, call: each)
            guard case .delivered(let reference) = result else { return result }
            last = reference
            left -= part
        }
        guard left <= 0 else {
            return PaymentProviderAnswer.refused(
                .invalidRequest, status: nil, message: "the order's payments (\(payments.joined(separator: ", "))) have \(amount.minorUnits - left) of \(amount) left to refund")
        }
        return .delivered(reference: last)
    }

    /// An expanded object's id, or the id itself.
    static func id(_ value: Any?) -> String? {
        (value as? String) ?? ((value as? [String: Any])?["id"] as? String)
    }

    /// The API version the request and answer shapes are written against.
    static let apiVersion = "2024-06-20"

    static func call(for request: PaymentRequest, reference: String) -> (path: String, form: [(String, String)]) {
        let command = ("metadata[oms_command]", request.commandId)
        switch request.operation {
        case .capture:
            return ("/v1/payment_intents/\(pathSafe(reference))/capture", [("amount_to_capture", String(request.amount?.minorUnits ?? 0)), command])
        case .refund:
            return ("/v1/refunds", [
                ("payment_intent", reference), ("amount", String(request.amount?.minorUnits ?? 0)), ("reason", "requested_by_customer"), command,
            ])
        case .void:
            return ("/v1/payment_intents/\(pathSafe(reference))/cancel", [("cancellation_reason", "requested_by_customer")])
        }
    }

    /// The id of what the call did: the charge of a capture, the refund, the PaymentIntent.
    static func reference(in response: HTTPExchange.Response, operation: PaymentRequest.Operation) -> String? {
        let object = object(response)
        if operation == .capture, let charge = object?["latest_charge"] as? String { return charge }
        return object?["id"] as? String
    }

    /// A Stripe error (https://docs.stripe.com/error-codes) as a call result: card errors
    /// are declines; an authorization that lapsed or was cancelled cannot be captured;
    /// 409 (the same key still in flight), 429 and 5xx are tried again; the rest are
    /// refused requests.
    static func refusal(_ response: HTTPExchange.Response, operation: PaymentRequest.Operation, now: Date) -> CallResult {
        let error = object(response)?["error"] as? [String: Any]
        let type = error?["type"] as? String
        let code = error?["code"] as? String ?? ""
        let message = Self.message(response)
        switch response.status {
        case 409, 429, 500...599, 408:
            return HTTPVerdict.result(of: response, now: now) { _ in nil }
        case 402:
            return PaymentProviderAnswer.refused(.declined, status: 402, message: message)
        default:
            if type == "card_error" { return PaymentProviderAnswer.refused(.declined, status: response.status, message: message) }
            if ["payment_intent_unexpected_state", "charge_expired_for_capture"].contains(code) {
                let status = (error?["payment_intent"] as? [String: Any])?["status"] as? String
                if operation == .void, status == "canceled" { return .delivered(reference: (error?["payment_intent"] as? [String: Any])?["id"] as? String) }
                if operation == .capture { return PaymentProviderAnswer.refused(.authorizationExpired, status: response.status, message: message) }
            }
            return PaymentProviderAnswer.refused(.invalidRequest, status: response.status, message: message)
        }
    }

    static func reconciliation(of request: PaymentRequest, in object: [String: Any]) -> Reconciliation {
        switch request.operation {
        case .refund:
            let refunds = object["data"] as? [[String: Any]] ?? []
            let ours = refunds.first { ($0["metadata"] as? [String: Any])?["oms_command"] as? String == request.commandId }
            return ours.map { .happened(reference: $0["id"] as? String) } ?? .didNotHappen
        case .capture:
            // Captures of one order come one at a time (its commands are settled in
            // order), so the intent's last capture is this one or an earlier one.
            let last = (object["metadata"] as? [String: Any])?["oms_command"] as? String
            return last == request.commandId ? .happened(reference: object["latest_charge"] as? String ?? object["id"] as? String) : .didNotHappen
        case .void:
            return object["status"] as? String == "canceled" ? .happened(reference: object["id"] as? String) : .didNotHappen
        }
    }

    /// Stripe's `error.message`, with its code and decline code when it has them.
    static func message(_ response: HTTPExchange.Response) -> String {
        guard let error = object(response)?["error"] as? [String: Any], let text = error["message"] as? String else {
            return HTTPVerdict.message(in: response)
        }
        let codes = [error["code"] as? String, error["decline_code"] as? String].compactMap { $0 }
        return codes.isEmpty ? text : "\(text) (\(codes.joined(separator: ", ")))"
    }

    static func object(_ response: HTTPExchange.Response) -> [String: Any]? { response.json as? [String: Any] }

    /// A payment id as one path segment (ids are `pi_…`; anything else is escaped).
    static func pathSafe(_ id: String) -> String {
        id.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "_-"))) ?? id
    }
}

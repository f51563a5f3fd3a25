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

    /// Performs the request once.
    public func execute(_ request: PaymentRequest, call: OutboundCall) async -> CallResult {
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
    /// `metadata[oms_command]` names the last capture) or a void (its status), the
    /// PaymentIntent's refunds for a refund.
    public func lookUp(_ request: PaymentRequest, call: OutboundCall) async -> Reconciliation {
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

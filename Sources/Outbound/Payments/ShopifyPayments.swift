import Contracts
import Foundation
import Logging

/// Payments of Shopify orders, through the shop's Admin REST API (version
/// ``ShopifyChannel/apiVersion``): the order's money is Shopify's, so a capture is a
/// `capture` transaction and a void a `void` transaction on the order's authorization
/// (`POST /orders/{id}/transactions.json` with its `parent_id`, as Shopify asks of apps
/// that capture), and a refund is `POST /orders/{id}/refunds.json` with `refund`
/// transactions against the captures. The payment reference is the Shopify order id
/// (the Shopify order adapter sets it).
///
/// Shopify's REST Admin API takes no idempotency key, so a lost answer is reconciled by
/// reading the order back:
/// - a refund carries `OrderFleet <idempotency key>` in its note, and one already there
///   is not made again;
/// - a capture notes, at its point of no return, the order's captures that existed
///   before it (``OutboundCall/pointOfNoReturn(noting:)``, kept in the ledger); a
///   successful capture of the command's amount that is not among them is the
///   command's (one order's commands are settled one at a time, in order). Without
///   that note the connector cannot tell, and says so: an operator decides;
/// - a void is done when the authorization carries a successful void.
public struct ShopifyPayments: PaymentProvider {
    /// The name in configuration, e.g. `shopify`.
    public let name: String
    /// The shop, e.g. `brand.myshopify.com` (for messages).
    public var shop: String
    /// `https://<shop>`, or a stand-in.
    public var baseURL: String
    /// The Admin API access token (`X-Shopify-Access-Token`); never logged.
    public var accessToken: String
    /// The HTTP client.
    public var http: HTTPExchange
    /// The clock an authorization's `authorization_expires_at` is compared with.
    public var now: @Sendable () -> Date
    let logger: Logger

    /// An adapter.
    public init(
        name: String = "shopify", shop: String, baseURL: String, accessToken: String, http: HTTPExchange,
        now: @escaping @Sendable () -> Date = { Date() }, logger: Logger = Logger(label: "oms.payments.shopify")
    ) {
        self.name = name
        self.shop = shop
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.accessToken = accessToken
        self.http = http
        self.now = now
        self.logger = logger
    }

    private var headers: [(String, String)] { [("X-Shopify-Access-Token", accessToken)] }
    private func url(_ path: String) -> String { "\(baseURL)/admin/api/\(ShopifyChannel.apiVersion)/\(path)" }

    /// Performs the request once, after making sure its effect is not there already.
    public func execute(_ request: PaymentRequest, call: OutboundCall) async -> CallResult {
        let order = StripePayments.pathSafe(request.reference ?? "")
        let result: CallResult
        switch request.operation {
        case .refund:
            result = await refund(request, order: order, call: call)
        case .capture, .void:
            result = await transact(request, order: order, call: call)
        }
        logger.info("payment call", metadata: [
            "command": "\(request.commandId)", "operation": "\(request.operation.rawValue)", "attempt": "\(call.attempt)", "result": "\(result)",
        ])
        return result
    }

    /// Reads the order's refunds (refund) or transactions (capture, void) back.
    public func lookUp(_ request: PaymentRequest, call: OutboundCall) async -> Reconciliation {
        let order = StripePayments.pathSafe(request.reference ?? "")
        switch request.operation {
        case .refund:
            switch await read("orders/\(order)/refunds.json", list: "refunds") {
            case .success(let refunds):
                return ShopifyChannel.refund(notedWith: call.idempotencyKey, in: refunds).map { .happened(reference: $0) } ?? .didNotHappen
            case .failure(let failure):
                return failure.reconciliation
            }
        case .capture, .void:
            switch await read("orders/\(order)/transactions.json", list: "transactions") {
            case .success(let transactions):
                if request.operation == .capture, Self.capturesBefore(call.checkpoint) == nil {
                    return .cannotTell(reason: "the attempt noted no checkpoint of the order's captures, so a capture of \(request.amount?.description ?? "?") cannot be told from an earlier one")
                }
                return Self.effect(of: request, before: Self.capturesBefore(call.checkpoint) ?? [], in: transactions).map { .happened(reference: $0) } ?? .didNotHappen
            case .failure(let failure):
                return failure.reconciliation
            }
        }
    }

    /// A capture or a void on the order's authorization.
    private func transact(_ request: PaymentRequest, order: String, call: OutboundCall) async -> CallResult {
        let transactions: [[String: Any]]
        switch await read("orders/\(order)/transactions.json", list: "transactions") {
        case .success(let found): transactions = found
        case .failure(let failure): return failure.result
        }
        // A void is a state: an authorization already voided is what was asked.
        if request.operation == .void, let done = Self.effect(of: request, before: [], in: transactions) { return .delivered(reference: done) }
        let parent: [String: Any]
        switch Self.authorization(for: request, in: transactions, now: now()) {
        case .success(let found): parent = found
        case .failure(let refusal): return refusal.result
        }
        var transaction: [String: Any] = ["kind": request.operation == .capture ? "capture" : "void", "parent_id": parent["id"] ?? NSNull()]
        if request.operation == .capture, let amount = request.amount {
            transaction["amount"] = amount.decimalString
            transaction["currency"] = amount.currency.code
        }
        let body = try? JSONSerialization.data(withJSONObject: ["transaction": transaction])
        let checkpoint = Self.checkpoint(of: transactions)
        let outcome = await http.send(
            .POST, url("orders/\(order)/transactions.json"), headers: headers, body: body, pointOfNoReturn: { try await call.pointOfNoReturn(noting: checkpoint) })
        guard case .answered(let response) = outcome, (200..<300).contains(response.status) || response.status == 422 || response.status == 402 else {
            return HTTPVerdict.result(of: outcome, now: now())
        }
        return Self.answer(response, operation: request.operation)
    }

    /// A refund against the order's captures, newest first, noted with the key.
    private func refund(_ request: PaymentRequest, order: String, call: OutboundCall) async -> CallResult {
        switch await lookUp(request, call: call) {
        case .happened(let reference): return .delivered(reference: reference)
        case .askAgain(let reason): return .retry(after: nil, reason: "cannot read the order's refunds: \(reason)")
        case .didNotHappen, .cannotTell: break
        }
        guard let amount = request.amount else { return PaymentProviderAnswer.refused(.invalidRequest, status: nil, message: "refund without an amount") }
        let transactions: [[String: Any]]
        switch await read("orders/\(order)/transactions.json", list: "transactions") {
        case .success(let found): transactions = found
        case .failure(let failure): return failure.result
        }
        let parts = Self.refundParts(amount, transactions: transactions)
        guard parts.reduce(0, { $0 + $1.minorUnits }) == amount.minorUnits else {
            return PaymentProviderAnswer.refused(
                .invalidRequest, status: nil, message: "order \(order) on \(shop) has less captured and not yet refunded than the refund of \(amount)")
        }
        let refund: [String: Any] = [
            "refund": [
                "currency": amount.currency.code, "notify": false, "note": "OrderFleet \(call.idempotencyKey)",
                "transactions": parts.map { part in
                    ["kind": "refund", "parent_id": part.parent, "amount": Money(minorUnits: part.minorUnits, currency: amount.currency).decimalString] as [String: Any]
                },
            ] as [String: Any],
        ]
        let body = try? JSONSerialization.data(withJSONObject: refund)
        let outcome = await http.send(.POST, url("orders/\(order)/refunds.json"), headers: headers, body: body, pointOfNoReturn: call.pointOfNoReturn)
        if case .answered(let response) = outcome, response.status == 422 {
            return PaymentProviderAnswer.refused(.invalidRequest, status: 422, message: Self.message(response))
        }
        return HTTPVerdict.result(of: outcome, now: now()) { ShopifyChannel.id(in: $0, object: "refund") }
    }

    private struct ReadFailure: Error {
        var outcome: HTTPExchange.Outcome
        var result: CallResult { HTTPVerdict.result(of: outcome, now: Date()) }
        var reconciliation: Reconciliation {
            switch outcome {
            case .answered(let response): .askAgain(reason: "HTTP \(response.status): \(HTTPVerdict.message(in: response))")
            case .notSent(let reason), .lost(let reason): .askAgain(reason: reason)
            }
        }
    }

    private func read(_ path: String, list: String) async -> Result<[[String: Any]], ReadFailure> {
        let outcome = await http.send(.GET, url(path), headers: headers)
        guard case .answered(let response) = outcome, (200..<300).contains(response.status) else { return .failure(ReadFailure(outcome: outcome)) }
        return .success(((response.json as? [String: Any])?[list] as? [[String: Any]]) ?? [])
    }

    // MARK: The rules, as pure functions

    /// The order's successful captures, as an attempt notes them before capturing.
    static func checkpoint(of transactions: [[String: Any]]) -> String {
        "captures:" + transactions.filter { $0["kind"] as? String == "capture" && $0["status"] as? String == "success" }.map { "\($0["id"] ?? "")" }.joined(separator: ",")
    }

    /// The capture ids a ``checkpoint(of:)`` noted; nil when there is no such note.
    static func capturesBefore(_ checkpoint: String?) -> Set<String>? {
        guard let checkpoint, checkpoint.hasPrefix("captures:") else { return nil }
        return Set(checkpoint.dropFirst("captures:".count).split(separator: ",").map(String.init))
    }

    /// The transaction that did what the request asks, if any: for a void, a successful
    /// void; for a capture, the newest successful capture of its amount that is not
    /// among the captures `before` the attempt.
    static func effect(of request: PaymentRequest, before: Set<String>, in transactions: [[String: Any]]) -> String? {
        let successful = transactions.filter { $0["status"] as? String == "success" }
        switch request.operation {
        case .void:
            return successful.last { $0["kind"] as? String == "void" }.map { "\($0["id"] ?? "")" }
        case .capture:
            guard let amount = request.amount else { return nil }
            return successful.last { transaction in
                guard transaction["kind"] as? String == "capture", !before.contains("\(transaction["id"] ?? "")"),
                    let text = transaction["amount"] as? String
                else { return false }
                return (try? Money.parse(text, currency: amount.currency)) == amount
            }.map { "\($0["id"] ?? "")" }
        case .refund:
            return nil
        }
    }

    /// The authorization to capture against or void: a successful one that is not voided,
    /// with room left for the amount (what earlier captures on it did not take).
    static func authorization(for request: PaymentRequest, in transactions: [[String: Any]], now: Date) -> Result<[String: Any], Refusal> {
        let successful = transactions.filter { $0["status"] as? String == "success" }
        let authorizations = successful.filter { $0["kind"] as? String == "authorization" }
        guard !authorizations.isEmpty else {
            return .failure(Refusal(failure: .invalidRequest, message: "the order has no successful authorization to \(request.operation.rawValue)"))
        }
        func children(_ kind: String, of parent: [String: Any]) -> [[String: Any]] {
            successful.filter { $0["kind"] as? String == kind && "\($0["parent_id"] ?? "")" == "\(parent["id"] ?? "")" }
        }
        let open = authorizations.filter { children("void", of: $0).isEmpty }
        guard !open.isEmpty else { return .failure(Refusal(failure: .authorizationExpired, message: "the order's authorization was voided")) }
        let live = open.filter { authorization in
            guard let text = authorization["authorization_expires_at"] as? String, let expires = RFC3339.parse(text) else { return true }
            return expires > now
        }
        guard let first = live.first else {
            let expired = open.compactMap { $0["authorization_expires_at"] as? String }.joined(separator: ", ")
            return .failure(Refusal(failure: .authorizationExpired, message: "the order's authorization expired at \(expired)"))
        }
        guard request.operation == .capture, let amount = request.amount else { return .success(first) }
        func minor(_ transaction: [String: Any]) -> Int64 {
            ((transaction["amount"] as? String).flatMap { try? Money.parse($0, currency: amount.currency) })?.minorUnits ?? 0
        }
        let roomy = live.first { minor($0) - children("capture", of: $0).reduce(0) { $0 + minor($1) } >= amount.minorUnits }
        guard let roomy else {
            return .failure(Refusal(failure: .invalidRequest, message: "no authorization of the order has \(amount) left to capture"))
        }
        return .success(roomy)
    }

    /// What a refund of `amount` takes from each capture (newest first): what the
    /// capture took less what earlier refunds gave back of it. Less than asked when the
    /// order has not that much left.
    static func refundParts(_ amount: Money, transactions: [[String: Any]]) -> [(parent: String, minorUnits: Int64)] {
        let successful = transactions.filter { $0["status"] as? String == "success" }
        func minor(_ t: [String: Any]) -> Int64 {
            ((t["amount"] as? String).flatMap { try? Money.parse($0, currency: amount.currency) })?.minorUnits ?? 0
        }
        var left = amount.minorUnits
        var parts: [(String, Int64)] = []
        for capture in successful.filter({ ["capture", "sale"].contains($0["kind"] as? String) }).reversed() where left > 0 {
            let id = "\(capture["id"] ?? "")"
            let refunded = successful.filter { $0["kind"] as? String == "refund" && "\($0["parent_id"] ?? "")" == id }.reduce(0) { $0 + minor($1) }
            let take = min(left, minor(capture) - refunded)
            guard take > 0 else { continue }
            parts.append((id, take))
            left -= take
        }
        return parts
    }

    /// A refusal before anything was sent.
    struct Refusal: Error {
        var failure: PaymentFailure
        var message: String
        var result: CallResult { PaymentProviderAnswer.refused(failure, status: nil, message: message) }
    }

    /// A transaction answer: 201 with `status: success` is done; `failure` or `error` is
    /// the gateway's refusal (its `error_code` says whether the card was declined or the
    /// authorization has expired); 422 is a request Shopify will not take.
    static func answer(_ response: HTTPExchange.Response, operation: PaymentRequest.Operation) -> CallResult {
        let transaction = (response.json as? [String: Any])?["transaction"] as? [String: Any]
        if (200..<300).contains(response.status), transaction?["status"] as? String == "success" {
            return .delivered(reference: transaction?["id"].map { "\($0)" })
        }
        let code = transaction?["error_code"] as? String ?? ""
        let message = Self.message(response)
        if code == "expired_card" || code == "authorization_expired" || message.lowercased().contains("expired") {
            return PaymentProviderAnswer.refused(.authorizationExpired, status: response.status, message: message)
        }
        if response.status == 402 || ["card_declined", "incorrect_number", "invalid_cvc", "call_issuer", "pick_up_card", "processing_error"].contains(code) {
            return PaymentProviderAnswer.refused(.declined, status: response.status, message: message)
        }
        return PaymentProviderAnswer.refused(.invalidRequest, status: response.status, message: message)
    }

    /// Shopify's error body (`{"errors": …}` as a string, a list or fields of lists), or
    /// a failed transaction's `message` and `error_code`.
    static func message(_ response: HTTPExchange.Response) -> String {
        let json = response.json as? [String: Any]
        if let transaction = json?["transaction"] as? [String: Any] {
            let code = transaction["error_code"] as? String
            let text = transaction["message"] as? String ?? "transaction \(transaction["status"] as? String ?? "failed")"
            return code.map { "\(text) (\($0))" } ?? text
        }
        switch json?["errors"] {
        case let text as String: return text
        case let list as [String]: return list.joined(separator: "; ")
        case let fields as [String: Any]:
            return fields.keys.sorted().map { key in
                let value = fields[key]
                let text = (value as? [String])?.joined(separator: ", ") ?? "\(value ?? "")"
                return key == "base" ? text : "\(key) \(text)"
            }.joined(separator: "; ")
        default: return HTTPVerdict.message(in: response)
        }
    }
}

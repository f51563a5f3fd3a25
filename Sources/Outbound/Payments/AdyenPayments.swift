import Contracts
import Foundation
import Logging

/// Adyen's Checkout API modifications (https://docs.adyen.com/online-payments/capture,
/// `/refund`, `/cancel`): `POST /v71/payments/{pspReference}/captures`, `/refunds` and
/// `/cancels` with `X-API-Key`, the command's idempotency key as `Idempotency-Key` (Adyen
/// answers a repeat with the first answer for at least 7 days) and a JSON body.
///
/// Adyen answers `201 {"status": "received"}` at once and says later whether the money
/// moved, in a signed notification webhook to the gateway (`POST
/// /v1/payments/adyen/notifications`, ``AdyenNotifications``). So a received modification
/// is `delivered` in the ledger, with Adyen's modification `pspReference`, and its outcome
/// event comes from the notification: the modification's `reference` is
/// ``AdyenNotifications/reference(commandID:partition:offset:)``, which leads the gateway
/// back to the command record.
public struct AdyenPayments: PaymentProvider {
    /// The name in configuration, e.g. `adyen`.
    public let name: String
    /// `https://checkout-test.adyen.com` (test) or the live prefix URL.
    public var baseURL: String
    /// The API key (`X-API-Key`); never logged.
    public var apiKey: String
    /// The merchant account the payments were made under.
    public var merchantAccount: String
    /// The HTTP client.
    public var http: HTTPExchange
    /// The clock of `Retry-After`.
    public var now: @Sendable () -> Date
    let logger: Logger

    /// An adapter.
    public init(
        name: String = "adyen", baseURL: String, apiKey: String, merchantAccount: String, http: HTTPExchange,
        now: @escaping @Sendable () -> Date = { Date() }, logger: Logger = Logger(label: "oms.payments.adyen")
    ) {
        self.name = name
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.apiKey = apiKey
        self.merchantAccount = merchantAccount
        self.http = http
        self.now = now
        self.logger = logger
    }

    /// The API version the shapes follow.
    static let version = "v71"

    /// Sends the modification once.
    public func execute(_ request: PaymentRequest, call: OutboundCall) async -> CallResult {
        let reference = request.reference ?? ""
        let path: String
        var body: [String: Any] = [
            "merchantAccount": merchantAccount,
            "reference": AdyenNotifications.reference(commandID: request.commandId, partition: call.sourcePartition, offset: call.sourceOffset),
        ]
        switch request.operation {
        case .capture: path = "captures"
        case .refund: path = "refunds"
        case .void: path = "cancels"
        }
        if let amount = request.amount, request.operation != .void {
            body["amount"] = ["value": amount.minorUnits, "currency": amount.currency.code]
        }
        let url = "\(baseURL)/\(Self.version)/payments/\(StripePayments.pathSafe(reference))/\(path)"
        let data = (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])) ?? Data()
        let outcome = await http.send(
            .POST, url, headers: [("X-API-Key", apiKey), ("Idempotency-Key", call.idempotencyKey)], body: data, pointOfNoReturn: call.pointOfNoReturn)
        let result: CallResult
        if case .answered(let response) = outcome, !(200..<300).contains(response.status), ![408, 409, 425, 429].contains(response.status), response.status < 500 {
            result = Self.refusal(response)
        } else {
            result = HTTPVerdict.result(of: outcome, now: now()) { ($0.json as? [String: Any])?["pspReference"] as? String }
        }
        logger.info("payment call", metadata: [
            "command": "\(request.commandId)", "operation": "\(request.operation.rawValue)", "attempt": "\(call.attempt)", "result": "\(result)",
        ])
        return result
    }

    /// Adyen confirms a received modification later, by notification.
    public var confirmsLater: Bool { true }

    /// Adyen keeps no record to look up a modification by; its idempotency key makes a
    /// repeat within 7 days return the first answer instead of modifying again, so calling
    /// again is the way to ask (connectors retry for minutes, not days).
    public func lookUp(_ request: PaymentRequest, call: OutboundCall) async -> Reconciliation {
        .didNotHappen
    }

    /// Adyen's error body (`status`, `errorCode`, `message`, `errorType`): validation errors
    /// (unknown or already captured payments, amounts above the authorization) and
    /// security errors are refused requests.
    static func refusal(_ response: HTTPExchange.Response) -> CallResult {
        let error = response.json as? [String: Any]
        let message = [error?["errorCode"] as? String, error?["message"] as? String].compactMap { $0 }.joined(separator: ": ")
        return PaymentProviderAnswer.refused(.invalidRequest, status: response.status, message: message.isEmpty ? HTTPVerdict.message(in: response) : message)
    }
}

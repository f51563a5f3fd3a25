import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization

/// A stand-in for Adyen's Checkout API modifications (https://docs.adyen.com/online-payments/capture):
/// `POST /v71/payments/{pspReference}/captures`, `/refunds` and `/cancels` with
/// `X-API-Key`, answered `201 {"status": "received"}`, Adyen's error bodies (`status`,
/// `errorCode`, `message`, `errorType`) and its idempotency rule (a repeated key gets the
/// first answer). Like Adyen it decides later: each received modification becomes a
/// notification item, signed with the HMAC key, which the test or the demo posts to the
/// gateway (``notifications``).
public final class LocalAdyen: Sendable {
    /// What the API was asked and did.
    public struct Ledger: Sendable {
        /// Requests per idempotency key.
        public var requests: [String: Int] = [:]
        /// Modifications received per idempotency key (1 each for an auditor).
        public var effects: [String: Int] = [:]
    }

    /// The API key it accepts.
    public let apiKey: String
    /// The HMAC key (hex) its notifications are signed with.
    public let hmacKey: String
    /// The merchant account.
    public let merchantAccount: String
    private let state = Mutex(State())

    private struct State {
        var ledger = Ledger()
        var payments: Set<String> = []
        var refusing: Set<String> = []
        var stored: [String: (status: Int, body: Data)] = [:]
        var notifications: [[String: Any]] = []
        var next = 1
    }

    /// An API with these keys.
    public init(apiKey: String = "AQE_local_api_key", hmacKey: String = String(repeating: "44782DEF547AAA06C910C43932B1EB0C", count: 2), merchantAccount: String = "OrderFleetECOM") {
        self.apiKey = apiKey
        self.hmacKey = hmacKey
        self.merchantAccount = merchantAccount
    }

    /// What happened so far.
    public var ledger: Ledger { state.withLock { $0.ledger } }

    /// Makes a payment (its pspReference) known, as Adyen knows authorised payments; with
    /// `refuse`, its modifications are later reported failed.
    public func authorize(_ pspReference: String, refuse: Bool = false) {
        state.withLock {
            $0.payments.insert(pspReference)
            if refuse { $0.refusing.insert(pspReference) }
        }
    }

    /// The signed notification items not yet taken, as Adyen would post them.
    public func takeNotifications() -> [[String: Any]] {
        state.withLock { state in
            defer { state.notifications = [] }
            return state.notifications
        }
    }

    /// A notification body of `items`, as Adyen posts it.
    public static func body(_ items: [[String: Any]]) -> [UInt8] {
        let root: [String: Any] = ["live": "false", "notificationItems": items.map { ["NotificationRequestItem": $0] }]
        return Array((try? JSONSerialization.data(withJSONObject: root, options: [.sortedKeys])) ?? Data())
    }

    /// Adds the routes under `/v71`.
    public func addRoutes(to router: Router<BasicRequestContext>) {
        for (path, code) in [("captures", "CAPTURE"), ("refunds", "REFUND"), ("cancels", "CANCELLATION")] {
            router.post(RouterPath("v71/payments/{psp}/\(path)")) { request, context in
                try await self.modify(request, psp: context.parameters.get("psp") ?? "", eventCode: code)
            }
        }
    }

    private func modify(_ request: Request, psp: String, eventCode: String) async throws -> Response {
        guard request.headers[HTTPField.Name("X-API-Key")!] == apiKey else {
            return Self.json(401, ["status": 401, "errorCode": "000", "message": "HTTP Status Response - Unauthorized", "errorType": "security"])
        }
        let key = request.headers[HTTPField.Name("Idempotency-Key")!]
        let request = Data(buffer: try await request.body.collect(upTo: 1 << 16))
        let (merchant, hmacKey) = (merchantAccount, self.hmacKey)
        // Bodies are kept as bytes: the answer to a repeated key is the first one, as sent.
        let (status, answer) = state.withLock { state -> (Int, Data) in
            if let key {
                state.ledger.requests[key, default: 0] += 1
                if let stored = state.stored[key] { return stored }
            }
            let body = (try? JSONSerialization.jsonObject(with: request)) as? [String: Any] ?? [:]
            let (status, object) = Self.answer(&state, psp: psp, body: body, eventCode: eventCode, merchant: merchant, hmacKey: hmacKey)
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
            if let key {
                state.stored[key] = (status, data)
                if status == 201 { state.ledger.effects[key, default: 0] += 1 }
            }
            return (status, data)
        }
        return Response(status: .init(code: status), headers: [.contentType: "application/json; charset=utf-8"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: answer)))
    }

    private static func answer(
        _ state: inout State, psp: String, body: [String: Any], eventCode: String, merchant: String, hmacKey: String
    ) -> (status: Int, body: [String: Any]) {
        guard body["merchantAccount"] as? String == merchant else {
            return (403, ["status": 403, "errorCode": "901", "message": "Invalid Merchant Account", "errorType": "security"])
        }
        guard state.payments.contains(psp) else {
            return (422, ["status": 422, "errorCode": "167", "message": "Original pspReference required for this operation", "errorType": "validation"])
        }
        guard let reference = body["reference"] as? String, reference.count <= 80 else {
            return (422, ["status": 422, "errorCode": "130", "message": "Reference Missing", "errorType": "validation"])
        }
        state.next += 1
        let modification = String(format: "LOCAL%011d", state.next)
        var answer: [String: Any] = ["merchantAccount": merchant, "paymentPspReference": psp, "pspReference": modification, "reference": reference, "status": "received"]
        answer["amount"] = body["amount"]
        var item: [String: Any] = [
            "eventCode": eventCode, "success": state.refusing.contains(psp) ? "false" : "true", "pspReference": modification, "originalReference": psp,
            "merchantAccountCode": merchant, "merchantReference": reference, "eventDate": RFC3339.format(Date()),
            "reason": state.refusing.contains(psp) ? "Insufficient balance on payment" : "",
            "amount": body["amount"] ?? ["value": 0, "currency": "EUR"],
        ]
        item["additionalData"] = ["hmacSignature": AdyenNotifications.signature(item, hexKey: hmacKey) ?? ""]
        state.notifications.append(item)
        return (201, answer)
    }

    private static func json(_ status: Int, _ object: [String: Any]) -> Response { LocalAnswer.json(status, object) }
}

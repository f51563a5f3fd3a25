import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Outbound
import ServiceLifecycle
import Synchronization

/// Stand-ins for the systems OrderFleet talks back to, for the demo and the tests: a
/// Shopify shop (Admin REST: fulfillment orders, fulfillments, cancel, refunds, variants,
/// inventory levels), an Amazon SP-API marketplace (shipment confirmation, order items,
/// listings), OrderFleet webhook receivers, Twilio's Messages API (create, list) and
/// Stripe's PaymentIntents (``LocalStripe``) and Adyen's modifications (``LocalAdyen``),
/// each in the provider's documented shapes,
/// error bodies included.
///
/// It counts what an auditor would: calls and effects per idempotency key, fulfillments
/// per tracking number. Faults can be switched on: a rate limit (429 with `Retry-After`
/// and a full `X-Shopify-Shop-Api-Call-Limit`), an outage (503), and answers that are
/// lost after the effect (the answer is held past the client's timeout).
public final class LocalChannels: Sendable {
    /// What the receivers were asked and what they did.
    public struct Ledger: Sendable {
        /// Shopify fulfillments created per tracking number.
        public var fulfillments: [String: Int] = [:]
        /// Shopify orders cancelled (times the cancel took effect).
        public var cancellations: [String: Int] = [:]
        /// Shopify refunds created per idempotency key found in the note.
        public var refunds: [String: Int] = [:]
        /// Shopify money captured per order, in minor units.
        public var shopifyCaptured: [String: Int64] = [:]
        /// Shopify money refunded per order, in minor units.
        public var shopifyRefunded: [String: Int64] = [:]
        /// Shopify authorizations voided, per order.
        public var shopifyVoided: [String: Int] = [:]
        /// Amazon shipment confirmations per package reference.
        public var confirmations: [String: Int] = [:]
        /// Twilio text messages created, per `<to>|<body>`.
        public var texts: [String: Int] = [:]
        /// Webhook POSTs per idempotency key, and the ones applied (once per key).
        public var webhookCalls: [String: Int] = [:]
        /// Webhook keys applied.
        public var webhookEffects: [String: Int] = [:]
        /// Channel facts applied through the webhook, by `<externalOrderId>/<fact id>`
        /// (other events, e.g. a subscription's, count only in ``webhookEffects``).
        public var webhookFacts: [String: Int] = [:]
        /// Stock values set, in order, by `<shopify|amazon|webhook>/<sku>`.
        public var stock: [String: [Int]] = [:]
        /// Webhook stock updates that showed more than the available-to-sell they carried.
        public var stockAboveAvailable = 0
        /// Requests answered 429 or 503.
        public var refused = 0
        /// Effects whose answer was held back until the client gave up.
        public var lostAnswers = 0
        /// Signatures that did not verify.
        public var badSignatures = 0
    }

    /// Faults to inject.
    public struct Faults: Sendable {
        /// Every n-th request is answered 429 (0: never).
        public var rateLimitEvery = 0
        /// Every request is answered 503 while this is set.
        public var down = false
        /// Every n-th effect's answer is held back for `holdAnswer` (0: never).
        public var loseAnswerEvery = 0
        /// How long a lost answer is held (longer than the client's timeout).
        public var holdAnswer: Duration = .seconds(3)
        /// Webhook receivers (`/hooks/<name>`) answering 503 to everything.
        public var downHooks: Set<String> = []
        /// Shopify orders whose card is declined at capture (a `failure` transaction).
        public var declinedShopifyOrders: Set<String> = []

        /// No faults.
        public init() {}
    }

    /// The Shopify access token and webhook secret the receivers accept.
    public let token: String
    /// The webhook secret.
    public let secret: String
    /// The payment provider, under `/v1`.
    public let stripe = LocalStripe()
    /// The other payment provider, under `/v71`.
    public let adyen = LocalAdyen()
    private let state = Mutex(State())

    private struct State {
        var ledger = Ledger()
        var faults = Faults()
        /// Secrets of webhook receivers that do not use ``LocalChannels/secret``.
        var hookSecrets: [String: String] = [:]
        var requests = 0
        var effects = 0
        /// Shopify orders: line item id → quantity still open.
        var open: [String: [String: Int]] = [:]
        var fulfillmentsByOrder: [String: [Fulfillment]] = [:]
        var cancelledAt: [String: String] = [:]
        var refundsByOrder: [String: [[String: String]]] = [:]
        /// Shopify order transactions, oldest first, as the API lists them.
        var transactions: [String: [ShopifyTransaction]] = [:]
        var amazonShipped: [String: [String: Int]] = [:]
        /// Listed SKUs and their Shopify inventory item ids.
        var listed: [String: Int] = [:]
        /// Twilio messages, newest first, as the API lists them.
        var texts: [[String: Any]] = []
        var nextID = 1_000_000
    }

    /// One Shopify order transaction (REST `Transaction`).
    private struct ShopifyTransaction: Sendable {
        var id: Int
        var orderID: String
        var kind: String
        var status: String
        var parentID: Int?
        var minorUnits: Int64
        var currency: CurrencyCode
        var createdAt: Date
        var expiresAt: Date?
        var errorCode: String?

        var json: [String: Any] {
            var json: [String: Any] = [
                "id": id, "order_id": Int(orderID) ?? 0, "kind": kind, "status": status, "gateway": "shopify_payments",
                "amount": Money(minorUnits: minorUnits, currency: currency).decimalString, "currency": currency.code, "created_at": RFC3339.format(createdAt),
            ]
            json["parent_id"] = parentID
            json["authorization_expires_at"] = expiresAt.map(RFC3339.format)
            if let errorCode { json["error_code"] = errorCode; json["message"] = "The card was declined." }
            return json
        }
    }

    /// A Shopify 4xx: `{"errors": {"<field>": ["<message>"]}}`, `base` for the order.
    private struct ShopifyRefusal: Error {
        var status = 422
        var field: String? = "base"
        var message: String
        var answer: (Int, [String: Any]) { field.map { (status, ["errors": [$0: [message]]]) } ?? (status, ["errors": message]) }
    }

    private struct Fulfillment {
        var id: Int
        var orderID: String
        var tracking: String
        var json: [String: Any] {
            ["id": id, "order_id": orderID, "status": "success", "tracking_number": tracking, "tracking_numbers": [tracking]]
        }
    }

    /// Receivers accepting `token` and `secret`.
    public init(token: String = "shpat_local", secret: String = "whsec_local") {
        self.token = token
        self.secret = secret
    }

    /// What happened so far.
    public var ledger: Ledger { state.withLock { $0.ledger } }

    /// Makes the receiver `/hooks/<name>` verify signatures with `secret` (a webhook
    /// subscription's own secret).
    public func setSecret(_ secret: String, forHook name: String) { state.withLock { $0.hookSecrets[name] = secret } }

    /// The Shopify orders whose card is declined at capture.
    public var declinedShopifyOrders: Set<String> { state.withLock { $0.faults.declinedShopifyOrders } }

    /// Changes the faults.
    public func setFaults(_ change: (inout Faults) -> Void) { state.withLock { change(&$0.faults) } }

    /// Makes SKUs known to the Shopify shop (variants with inventory items) and to the
    /// SP-API marketplace (listings).
    public func listSKUs(_ skus: [String]) {
        state.withLock { state in for sku in skus where state.listed[sku] == nil { state.listed[sku] = 40_000 + state.listed.count } }
    }

    /// Makes a Shopify order known: its line item ids and quantities, and the payment
    /// authorized at checkout (an `authorization` transaction), if any, which expires at
    /// `expiresAt`.
    public func addShopifyOrder(_ id: String, lines: [String: Int], authorized: Money? = nil, expiresAt: Date? = nil) {
        state.withLock { state in
            state.open[id] = lines
            guard let authorized, state.transactions[id] == nil else { return }
            state.nextID += 1
            state.transactions[id] = [ShopifyTransaction(
                id: state.nextID, orderID: id, kind: "authorization", status: "success", parentID: nil, minorUnits: authorized.minorUnits,
                currency: authorized.currency, createdAt: Date(), expiresAt: expiresAt)]
        }
    }

    /// The server as a service; `onListening` gets the bound port.
    public func service(port: Int = 0, onListening: @escaping @Sendable (Int) async -> Void) -> some Service {
        let router = Router()
        addShopify(router)
        addAmazon(router)
        addTwilio(router)
        stripe.addRoutes(to: router)
        adyen.addRoutes(to: router)
        router.post("hooks/{name}") { request, context in try await self.webhook(request, context) }
        var logger = Logger(label: "oms.local-channels")
        logger.logLevel = .warning
        return Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: "local-channels"),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? port) }, logger: logger)
    }

    // MARK: Shopify

    private func addShopify(_ router: Router<BasicRequestContext>) {
        let base = "admin/api/\(ShopifyChannel.apiVersion)"
        addShopifyFulfilments(router, base: base)
        addShopifyOrders(router, base: base)
        addShopifyStock(router, base: base)
        addShopifyTransactions(router, base: base)
    }

    /// Fulfillment orders and fulfillments: what shipping tells Shopify.
    private func addShopifyFulfilments(_ router: Router<BasicRequestContext>, base: String) {
        router.get("\(base)/orders/{id}/fulfillment_orders.json") { request, context in
            try await self.shopify(request, context, effect: false) { id, _ in
                guard let open = self.state.withLock({ $0.open[id] }) else { return Self.notFound }
                let items = open.keys.sorted().map { line in
                    ["id": "fol-\(line)", "line_item_id": line, "quantity": open[line]!, "fulfillable_quantity": open[line]!] as [String: Any]
                }
                return (200, ["fulfillment_orders": [["id": "fo-\(id)", "order_id": id, "status": items.contains { ($0["fulfillable_quantity"] as! Int) > 0 } ? "open" : "closed", "line_items": items]]])
            }
        }
        router.post("\(base)/fulfillments.json") { request, context in
            try await self.shopify(request, context, effect: true) { _, body in self.fulfil(body) }
        }
        router.get("\(base)/orders/{id}/fulfillments.json") { request, context in
            try await self.shopify(request, context, effect: false) { id, _ in
                (200, ["fulfillments": self.state.withLock { ($0.fulfillmentsByOrder[id] ?? []).map(\.json) }])
            }
        }
    }

    /// An order, its cancellation and its refunds.
    private func addShopifyOrders(_ router: Router<BasicRequestContext>, base: String) {
        router.post("\(base)/orders/{id}/cancel.json") { request, context in
            try await self.shopify(request, context, effect: true) { id, _ in
                self.state.withLock { state -> (Int, [String: Any]) in
                    guard state.open[id] != nil else { return Self.notFound }
                    if state.cancelledAt[id] != nil { return (422, ["error": "Order has already been cancelled"]) }
                    if state.fulfillmentsByOrder[id] != nil { return (422, ["error": "Cannot cancel an order that has fulfillments"]) }
                    state.cancelledAt[id] = "2026-12-04T10:00:00Z"
                    state.ledger.cancellations[id, default: 0] += 1
                    return (200, ["order": ["id": id, "cancelled_at": "2026-12-04T10:00:00Z"]])
                }
            }
        }
        router.get("\(base)/orders/{id}.json") { request, context in
            try await self.shopify(request, context, effect: false) { id, _ in
                self.state.withLock { state -> (Int, [String: Any]) in
                    guard state.open[id] != nil else { return Self.notFound }
                    return (200, ["order": ["id": id, "cancelled_at": state.cancelledAt[id] as Any? ?? NSNull()]])
                }
            }
        }
        router.post("\(base)/orders/{id}/refunds.json") { request, context in
            try await self.shopify(request, context, effect: true) { id, body in
                let refund = (body["refund"] as? [String: Any]) ?? [:]
                guard let transactions = refund["transactions"] as? [[String: Any]], !transactions.isEmpty else {
                    return (422, ["errors": ["transactions": ["can't be blank"]]])
                }
                let parts = transactions.map { (parent: Int("\($0["parent_id"] ?? "")"), amount: $0["amount"] as? String ?? "") }
                let note = (refund["note"] as? String) ?? ""
                return self.state.withLock { state -> (Int, [String: Any]) in
                    guard state.open[id] != nil else { return Self.notFound }
                    if let refusal = Self.refundTransactions(parts, order: id, state: &state) { return refusal.answer }
                    state.nextID += 1
                    state.refundsByOrder[id, default: []].append(["id": "\(state.nextID)", "note": note])
                    let key = note.split(separator: " ").last.map(String.init) ?? note
                    state.ledger.refunds[key, default: 0] += 1
                    return (201, ["refund": ["id": state.nextID, "order_id": id, "note": note]])
                }
            }
        }
        router.get("\(base)/orders/{id}/refunds.json") { request, context in
            try await self.shopify(request, context, effect: false) { id, _ in
                (200, ["refunds": self.state.withLock { $0.refundsByOrder[id] ?? [] }])
            }
        }
    }

    /// Variants and inventory levels: the stock feed.
    private func addShopifyStock(_ router: Router<BasicRequestContext>, base: String) {
        router.get("\(base)/variants.json") { request, context in
            try await self.shopify(request, context, effect: false) { _, _ in
                let variants = self.state.withLock { $0.listed }.sorted { $0.key < $1.key }.map { sku, item in
                    ["id": item + 1_000_000, "sku": sku, "inventory_item_id": item] as [String: Any]
                }
                return (200, ["variants": variants])
            }
        }
        router.post("\(base)/inventory_levels/set.json") { request, context in
            try await self.shopify(request, context, effect: true) { _, body in
                guard let item = body["inventory_item_id"] as? Int, let available = body["available"] as? Int, let location = body["location_id"] as? Int
                else { return (422, ["errors": ["location_id, inventory_item_id and available are required"]]) }
                let known = self.state.withLock { state -> Bool in
                    guard let sku = state.listed.first(where: { $0.value == item })?.key else { return false }
                    state.ledger.stock["shopify/\(sku)", default: []].append(available)
                    return true
                }
                guard known else { return (422, ["errors": ["Inventory item does not exist"]]) }
                return (200, ["inventory_level": ["inventory_item_id": item, "location_id": location, "available": available]])
            }
        }
    }

    /// Payment transactions: captures and voids of an authorization.
    private func addShopifyTransactions(_ router: Router<BasicRequestContext>, base: String) {
        router.get("\(base)/orders/{id}/transactions.json") { request, context in
            try await self.shopify(request, context, effect: false) { id, _ in
                (200, ["transactions": self.state.withLock { $0.transactions[id] ?? [] }.map(\.json)])
            }
        }
        router.post("\(base)/orders/{id}/transactions.json") { request, context in
            try await self.shopify(request, context, effect: true) { id, body in self.transact(id, body) }
        }
    }

    private static var notFound: (Int, [String: Any]) { (404, ["errors": "Not Found"]) }

    /// A `capture` or `void` transaction on an authorization of the order, as Shopify
    /// takes them: the parent must be a successful authorization of the order, not
    /// voided nor expired, with the amount left; a declined card gives a `failure`.
    private func transact(_ id: String, _ body: [String: Any]) -> (Int, [String: Any]) {
        let transaction = (body["transaction"] as? [String: Any]) ?? [:]
        let kind = transaction["kind"] as? String ?? ""
        guard ["capture", "void"].contains(kind) else { return (422, ["errors": ["kind": ["is not included in the list"]]]) }
        let parentID = Int("\(transaction["parent_id"] ?? "")")
        let amountText = transaction["amount"] as? String
        let result = state.withLock { state -> Result<ShopifyTransaction, ShopifyRefusal> in
            guard let transactions = state.transactions[id] else { return .failure(ShopifyRefusal(status: 404, field: nil, message: "Not Found")) }
            let successful = transactions.filter { $0.status == "success" }
            guard let parent = successful.first(where: { $0.id == parentID && $0.kind == "authorization" }) else {
                return .failure(ShopifyRefusal(field: "parent_id", message: "must reference a successful authorization of the order"))
            }
            let children = successful.filter { $0.parentID == parent.id }
            if children.contains(where: { $0.kind == "void" }) { return .failure(ShopifyRefusal(message: "The authorization has been voided.")) }
            if let expires = parent.expiresAt, expires <= Date() {
                return .failure(ShopifyRefusal(message: "The authorization has expired and can no longer be captured."))
            }
            var record = ShopifyTransaction(id: 0, orderID: id, kind: kind, status: "success", parentID: parent.id, minorUnits: 0, currency: parent.currency, createdAt: Date())
            if kind == "capture" {
                guard let text = amountText, let amount = try? Money.parse(text, currency: parent.currency), amount.minorUnits > 0 else {
                    return .failure(ShopifyRefusal(field: "amount", message: "must be greater than 0"))
                }
                let left = parent.minorUnits - children.filter { $0.kind == "capture" }.reduce(0) { $0 + $1.minorUnits }
                guard amount.minorUnits <= left else { return .failure(ShopifyRefusal(field: "amount", message: "exceeds the amount left on the authorization")) }
                record.minorUnits = amount.minorUnits
            }
            state.nextID += 1
            record.id = state.nextID
            if kind == "capture", state.faults.declinedShopifyOrders.contains(id) {
                record.status = "failure"
                record.errorCode = "card_declined"
            } else if kind == "capture" {
                state.ledger.shopifyCaptured[id, default: 0] += record.minorUnits
            } else {
                state.ledger.shopifyVoided[id, default: 0] += 1
            }
            state.transactions[id, default: []].append(record)
            return .success(record)
        }
        switch result {
        case .success(let record): return (201, ["transaction": record.json])
        case .failure(let refusal): return refusal.answer
        }
    }

    /// Records a refund's `refund` transactions against the order's captures; a refusal
    /// when one asks more than its capture has left (a refund without parents, as the
    /// channel connector sends it, is taken as Shopify takes it).
    private static func refundTransactions(_ requested: [(parent: Int?, amount: String)], order: String, state: inout State) -> ShopifyRefusal? {
        guard let transactions = state.transactions[order] else { return nil }
        let currency = transactions.first?.currency ?? .usd
        var records: [ShopifyTransaction] = []
        for refund in requested {
            guard let parentID = refund.parent else { continue }
            let all = transactions + records
            guard let capture = all.first(where: { $0.id == parentID && $0.kind == "capture" && $0.status == "success" }) else {
                return ShopifyRefusal(field: "transactions.parent_id", message: "must reference a successful capture")
            }
            let refunded = all.filter { $0.kind == "refund" && $0.parentID == parentID }.reduce(0) { $0 + $1.minorUnits }
            let minor = (try? Money.parse(refund.amount, currency: currency))?.minorUnits ?? 0
            guard minor > 0, minor <= capture.minorUnits - refunded else {
                return ShopifyRefusal(field: "transactions.amount", message: "exceeds the captured amount left to refund")
            }
            state.nextID += 1
            records.append(ShopifyTransaction(
                id: state.nextID, orderID: order, kind: "refund", status: "success", parentID: parentID, minorUnits: minor, currency: currency, createdAt: Date()))
        }
        state.transactions[order, default: []] += records
        state.ledger.shopifyRefunded[order, default: 0] += records.reduce(0) { $0 + $1.minorUnits }
        return nil
    }

    private func fulfil(_ body: [String: Any]) -> (Int, [String: Any]) {
        let fulfillment = (body["fulfillment"] as? [String: Any]) ?? [:]
        guard let groups = fulfillment["line_items_by_fulfillment_order"] as? [[String: Any]], !groups.isEmpty else {
            return (422, ["errors": ["line_items_by_fulfillment_order": ["can't be blank"]]])
        }
        let tracking = (fulfillment["tracking_info"] as? [String: Any])?["number"] as? String ?? ""
        return state.withLock { state -> (Int, [String: Any]) in
            var orderID = ""
            var taken: [(String, Int)] = []
            for group in groups {
                orderID = String(((group["fulfillment_order_id"] as? String) ?? "").dropFirst(3))
                guard let open = state.open[orderID] else { return (404, ["errors": "Not Found"]) }
                for item in (group["fulfillment_order_line_items"] as? [[String: Any]]) ?? [] {
                    let line = String(((item["id"] as? String) ?? "").dropFirst(4))
                    let quantity = (item["quantity"] as? Int) ?? 0
                    guard let left = open[line], quantity > 0, quantity <= left else {
                        return (422, ["errors": ["base": ["Invalid fulfillment order line item quantity requested."]]])
                    }
                    taken.append((line, quantity))
                }
            }
            if state.cancelledAt[orderID] != nil { return (422, ["errors": ["base": ["Fulfillment order is closed."]]]) }
            for (line, quantity) in taken { state.open[orderID]![line]! -= quantity }
            state.nextID += 1
            let record = Fulfillment(id: state.nextID, orderID: orderID, tracking: tracking)
            state.fulfillmentsByOrder[orderID, default: []].append(record)
            state.ledger.fulfillments[tracking, default: 0] += 1
            return (201, ["fulfillment": record.json])
        }
    }

    /// Checks the token, applies faults, runs `handle` with the path's id and the JSON
    /// body, and answers JSON (an effect's answer may be held back to lose it).
    private func shopify(
        _ request: Request, _ context: BasicRequestContext, effect: Bool, _ handle: (String, [String: Any]) -> (Int, [String: Any])
    ) async throws -> Response {
        if let refusal = refusal(.shopify) { return refusal }
        guard request.headers[HTTPField.Name("X-Shopify-Access-Token")!] == token else {
            return Self.json(401, ["errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"])
        }
        let body = try await request.body.collect(upTo: 1 << 20)
        let object = (try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: Any] ?? [:]
        let (status, answer) = handle(context.parameters.get("id") ?? "", object)
        if effect, (200..<300).contains(status) { try await maybeLoseAnswer() }
        return Self.json(status, answer, headers: [HTTPField.Name("X-Shopify-Shop-Api-Call-Limit")!: "1/40"])
    }

    // MARK: Amazon

    private func addAmazon(_ router: Router<BasicRequestContext>) {
        router.post("orders/v0/orders/{id}/shipmentConfirmation") { request, context in
            if let refusal = self.refusal(.amazon) { return refusal }
            guard request.headers[HTTPField.Name("x-amz-access-token")!] == self.token else {
                return Self.json(403, ["errors": [["code": "Unauthorized", "message": "Access to requested resource is denied.", "details": ""]]])
            }
            let id = context.parameters.get("id") ?? ""
            let body = try await request.body.collect(upTo: 1 << 20)
            let object = (try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: Any] ?? [:]
            guard let detail = object["packageDetail"] as? [String: Any], let reference = detail["packageReferenceId"] as? String,
                let items = detail["orderItems"] as? [[String: Any]], object["marketplaceId"] is String
            else {
                return Self.json(400, ["errors": [["code": "InvalidInput", "message": "packageDetail and marketplaceId are required", "details": ""]]])
            }
            self.state.withLock { state in
                state.ledger.confirmations[reference, default: 0] += 1
                for item in items {
                    state.amazonShipped[id, default: [:]]["\(item["orderItemId"] ?? "")", default: 0] += (item["quantity"] as? Int) ?? 0
                }
            }
            try await self.maybeLoseAnswer()
            return Response(status: .noContent)
        }
        router.patch("listings/2021-08-01/items/{seller}/{sku}") { request, context in
            if let refusal = self.refusal(.amazon) { return refusal }
            guard request.headers[HTTPField.Name("x-amz-access-token")!] == self.token else {
                return Self.json(403, ["errors": [["code": "Unauthorized", "message": "Access to requested resource is denied.", "details": ""]]])
            }
            let sku = context.parameters.get("sku") ?? ""
            let body = try await request.body.collect(upTo: 1 << 20)
            let object = (try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: Any] ?? [:]
            let value = ((object["patches"] as? [[String: Any]])?.first?["value"] as? [[String: Any]])?.first
            guard let quantity = value?["quantity"] as? Int else {
                return Self.json(200, ["sku": sku, "status": "INVALID", "submissionId": "", "issues": [["code": "90220", "message": "'fulfillment_availability' is required but not supplied.", "severity": "ERROR"]]])
            }
            let listed = self.state.withLock { state -> Bool in
                guard state.listed[sku] != nil else { return false }
                state.ledger.stock["amazon/\(sku)", default: []].append(quantity)
                return true
            }
            guard listed else { return Self.json(404, ["errors": [["code": "NOT_FOUND", "message": "SKU '\(sku)' not found in marketplace", "details": ""]]]) }
            try await self.maybeLoseAnswer()
            return Self.json(200, ["sku": sku, "status": "ACCEPTED", "submissionId": UUID().uuidString, "issues": []])
        }
        router.get("orders/v0/orders/{id}/orderItems") { _, context in
            if let refusal = self.refusal(.amazon) { return refusal }
            let shipped = self.state.withLock { $0.amazonShipped[context.parameters.get("id") ?? ""] ?? [:] }
            let items = shipped.map { ["OrderItemId": $0.key, "QuantityShipped": $0.value] as [String: Any] }
            return Self.json(200, ["payload": ["OrderItems": items]])
        }
    }

    // MARK: Webhook

    private func webhook(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let name = context.parameters.get("name") ?? ""
        if let refusal = refusal(.amazon) { return refusal }
        let (down, hookSecret) = state.withLock { state in
            if state.faults.downHooks.contains(name) { state.ledger.refused += 1 }
            return (state.faults.downHooks.contains(name), state.hookSecrets[name] ?? secret)
        }
        if down { return Self.json(503, ["error": "receiver \(name) is down"]) }
        let body = Data(buffer: try await request.body.collect(upTo: 1 << 20))
        let signature = request.headers[HTTPField.Name(OutboundSignature.header)!] ?? ""
        guard OutboundSignature.verify(signature, body: body, secret: hookSecret, now: Date()) else {
            state.withLock { $0.ledger.badSignatures += 1 }
            return Self.json(401, ["error": "signature does not verify"])
        }
        guard let key = request.headers[HTTPField.Name("Idempotency-Key")!] else {
            return Self.json(400, ["error": "Idempotency-Key header is required"])
        }
        let data = ((try? JSONSerialization.jsonObject(with: body)) as? [String: Any])?["data"] as? [String: Any]
        let fact = "\(data?["externalOrderId"] ?? "?")/\((data?["fact"] as? [String: Any])?["id"] ?? "?")"
        state.withLock { state in
            state.ledger.webhookCalls[key, default: 0] += 1
            guard state.ledger.webhookEffects[key] == nil else { return }
            state.ledger.webhookEffects[key] = 1
            if let sku = data?["sku"] as? String, let quantity = data?["quantity"] as? Int {
                state.ledger.stock["webhook/\(sku)", default: []].append(quantity)
                if quantity > (data?["availableToSell"] as? Int ?? 0) { state.ledger.stockAboveAvailable += 1 }
            } else if data?["fact"] != nil {
                state.ledger.webhookFacts[fact, default: 0] += 1
            }
        }
        try await maybeLoseAnswer()
        return Self.json(200, ["received": key])
    }

    // MARK: Twilio

    private func addTwilio(_ router: Router<BasicRequestContext>) {
        let messages = "2010-04-01/Accounts/{account}/Messages.json"
        router.post(RouterPath(messages)) { request, context in
            if let refusal = self.twilioAuthentication(request, context) ?? self.refusal(.twilio) { return refusal }
            let form = LocalAnswer.form(String(decoding: Data(buffer: try await request.body.collect(upTo: 1 << 16)), as: UTF8.self))
            guard let to = form["To"], PhoneNumber.e164(to) == to else {
                return Self.json(400, Self.twilioError(21211, "The 'To' number \(form["To"] ?? "") is not a valid phone number.", status: 400))
            }
            guard form["From"] != nil || form["MessagingServiceSid"] != nil else {
                return Self.json(400, Self.twilioError(21603, "The 'From' phone number is required.", status: 400))
            }
            guard let text = form["Body"], !text.isEmpty else {
                return Self.json(400, Self.twilioError(21602, "Message body is required.", status: 400))
            }
            let message = self.state.withLock { state -> [String: Any] in
                state.nextID += 1
                let message: [String: Any] = [
                    "sid": String(format: "SM%032x", state.nextID), "to": to, "from": form["From"] ?? form["MessagingServiceSid"]!, "body": text,
                    "status": "queued", "direction": "outbound-api", "date_created": Self.rfc2822.string(from: Date()),
                ]
                state.texts.insert(message, at: 0)
                state.ledger.texts["\(to)|\(text)", default: 0] += 1
                return message
            }
            try await self.maybeLoseAnswer()
            return Self.json(201, message)
        }
        router.get(RouterPath(messages)) { request, context in
            if let refusal = self.twilioAuthentication(request, context) ?? self.refusal(.twilio) { return refusal }
            let to = request.uri.queryParameters.get("To")
            let size = request.uri.queryParameters.get("PageSize").flatMap { Int($0) } ?? 50
            let found = self.state.withLock { state in Array(state.texts.filter { to == nil || $0["to"] as? String == to }.prefix(size)) }
            return Self.json(200, ["messages": found, "page": 0, "page_size": size])
        }
    }

    private func twilioAuthentication(_ request: Request, _ context: BasicRequestContext) -> Response? {
        let expected = "Basic " + Data("\(context.parameters.get("account") ?? ""):\(token)".utf8).base64EncodedString()
        guard request.headers[.authorization] == expected else {
            return Self.json(401, Self.twilioError(20003, "Authenticate", status: 401))
        }
        return nil
    }

    /// Twilio's error body.
    private static func twilioError(_ code: Int, _ message: String, status: Int) -> [String: Any] {
        ["code": code, "message": message, "more_info": "https://www.twilio.com/docs/errors/\(code)", "status": status]
    }

    private static let rfc2822: DateFormatter = {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss Z"
        return formatter
    }()

    // MARK: Faults

    /// Whose error bodies a refusal is written in.
    private enum Dialect {
        case shopify
        /// SP-API's, also used by the OrderFleet webhook receivers.
        case amazon
        case twilio
    }

    private func refusal(_ dialect: Dialect) -> Response? {
        state.withLock { state -> Response? in
            state.requests += 1
            if state.faults.down {
                state.ledger.refused += 1
                switch dialect {
                case .shopify: return Self.json(503, ["errors": "Service Unavailable"])
                case .amazon: return Self.json(503, ["errors": [["code": "ServiceUnavailable", "message": "Service temporarily unavailable", "details": ""]]])
                case .twilio: return Self.json(503, Self.twilioError(20503, "Service Unavailable", status: 503))
                }
            }
            if state.faults.rateLimitEvery > 0, state.requests % state.faults.rateLimitEvery == 0 {
                state.ledger.refused += 1
                var headers = HTTPFields()
                headers[HTTPField.Name("Retry-After")!] = "1.0"
                switch dialect {
                case .shopify:
                    headers[HTTPField.Name("X-Shopify-Shop-Api-Call-Limit")!] = "40/40"
                    return Self.json(429, ["errors": "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."], headers: headers)
                case .amazon:
                    return Self.json(429, ["errors": [["code": "QuotaExceeded", "message": "You exceeded your quota for the requested resource.", "details": ""]]], headers: headers)
                case .twilio:
                    return Self.json(429, Self.twilioError(20429, "Too Many Requests", status: 429), headers: headers)
                }
            }
            return nil
        }
    }

    private func maybeLoseAnswer() async throws {
        let hold = state.withLock { state -> Duration? in
            state.effects += 1
            guard state.faults.loseAnswerEvery > 0, state.effects % state.faults.loseAnswerEvery == 0 else { return nil }
            state.ledger.lostAnswers += 1
            return state.faults.holdAnswer
        }
        if let hold { try await Task.sleep(for: hold) }
    }

    static func json(_ status: Int, _ object: [String: Any], headers: HTTPFields = [:]) -> Response {
        LocalAnswer.json(status, object, headers: headers)
    }
}

/// The stand-ins' answers and request bodies.
enum LocalAnswer {
    /// A JSON answer, keys sorted.
    static func json(_ status: Int, _ object: [String: Any], headers: HTTPFields = [:]) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        var headers = headers
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: .init(code: status), headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// An `application/x-www-form-urlencoded` body as fields (Twilio's, Stripe's).
    static func form(_ body: String) -> [String: String] {
        var form: [String: String] = [:]
        for pair in body.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map { String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "" }
            if parts.count == 2 { form[parts[0]] = parts[1] }
        }
        return form
    }
}

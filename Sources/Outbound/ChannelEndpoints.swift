import Contracts
import Digests
import Foundation

/// The channel connectors' endpoint: sends each `ChannelUpdate` (the `channels`
/// connector) or `StockUpdate` (the `stock` connector) to its channel, in that channel's
/// own API; a channel without a sync configured is recorded as skipped.
public struct ChannelRouter: OutboundEndpoint {
    /// `channels`.
    public let name = "channels"
    /// The endpoint per channel name (`OrderPlaced.channel`).
    public let channels: [String: any OutboundEndpoint]

    /// A router over `channels`.
    public init(channels: [String: any OutboundEndpoint]) {
        self.channels = channels
    }

    /// One gate per channel: a slow marketplace does not hold back a shop.
    public func gateKey(for command: Envelope) -> String {
        Self.channel(of: command).map { "\(name)/\($0)" } ?? name
    }

    /// The channel a command is for: a `ChannelUpdate`'s or a `StockUpdate`'s.
    static func channel(of command: Envelope) -> String? {
        switch command.event {
        case .channelUpdate(let update): update.channel
        case .stockUpdate(let update): update.channel
        default: nil
        }
    }

    /// Hands the update to its channel's endpoint.
    public func perform(_ call: OutboundCall) async -> CallResult {
        switch route(call.command) {
        case .success(let endpoint): await endpoint.perform(call)
        case .failure(let result): result.result
        }
    }

    /// Asks the channel's endpoint.
    public func reconcile(_ call: OutboundCall) async -> Reconciliation {
        switch route(call.command) {
        case .success(let endpoint): await endpoint.reconcile(call)
        // Nothing was ever called for it.
        case .failure: .didNotHappen
        }
    }

    private struct NotRouted: Error { var result: CallResult }

    private func route(_ command: Envelope) -> Result<any OutboundEndpoint, NotRouted> {
        guard let channel = Self.channel(of: command) else {
            return .failure(NotRouted(result: .rejected(status: nil, reason: "a channel connector takes ChannelUpdate and StockUpdate commands, not \(command.type)")))
        }
        guard let endpoint = channels[channel] else {
            return .failure(NotRouted(result: .skipped(reason: "channel \(channel) has no sync configured")))
        }
        return .success(endpoint)
    }
}

/// Shopify's Admin REST API (version ``apiVersion``) for one shop: a shipment becomes a
/// fulfillment of the order's open fulfillment orders with its tracking, a cancel
/// `orders/{id}/cancel`, a refund `orders/{id}/refunds` noting the idempotency key.
///
/// Shopify's REST Admin API has no idempotency keys, so a lost answer is reconciled by
/// reading the order back: a fulfillment with our tracking number, `cancelled_at`, a
/// refund whose note carries our key.
public struct ShopifyChannel: OutboundEndpoint {
    /// `shopify/<shop>`.
    public var name: String { "shopify/\(shop)" }
    /// The shop, e.g. `brand-eu.myshopify.com`.
    public var shop: String
    /// `https://<shop>` (a local server in tests).
    public var baseURL: String
    /// The Admin API access token (`X-Shopify-Access-Token`); never logged.
    public var accessToken: String
    /// Whether Shopify emails the customer about the fulfillment.
    public var notifyCustomer: Bool
    /// The shop location whose `available` stock updates set; nil: no stock feed.
    public var inventoryLocation: String?
    /// Whether the payments connector refunds the shop's orders (a `shopify` payment
    /// provider, `channels.<name>.refunds=payments`): then a refund is not told here
    /// too, which would pay the customer twice.
    public var refundsByPayments: Bool
    /// The HTTP client.
    public var http: HTTPExchange
    private let inventoryItems = InventoryItems()
    /// The Admin API version in every path.
    public static let apiVersion = "2025-01"

    /// A shop's endpoint.
    public init(
        shop: String, baseURL: String, accessToken: String, notifyCustomer: Bool = false, inventoryLocation: String? = nil, refundsByPayments: Bool = false,
        http: HTTPExchange
    ) {
        self.shop = shop
        self.refundsByPayments = refundsByPayments
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.accessToken = accessToken
        self.notifyCustomer = notifyCustomer
        self.inventoryLocation = inventoryLocation
        self.http = http
    }

    private var headers: [(String, String)] { [("X-Shopify-Access-Token", accessToken)] }
    private func url(_ path: String) -> String { "\(baseURL)/admin/api/\(Self.apiVersion)/\(path)" }

    /// Performs the update.
    public func perform(_ call: OutboundCall) async -> CallResult {
        if case .stockUpdate(let stock) = call.command.event { return await setAvailable(stock, call: call) }
        guard case .channelUpdate(let update) = call.command.event else {
            return .rejected(status: nil, reason: "not a ChannelUpdate or StockUpdate")
        }
        let order = update.externalOrderId
        switch update.fact.action {
        case .ship:
            return await fulfil(update, call: call)
        case .cancel:
            let body = try? JSONSerialization.data(withJSONObject: ["reason": "other", "email": false])
            let outcome = await http.send(.POST, url("orders/\(order)/cancel.json"), headers: headers, body: body, pointOfNoReturn: call.pointOfNoReturn)
            let result = HTTPVerdict.result(of: outcome, now: Date()) { _ in order }
            // A cancel is a state, not a count: an order already cancelled is what we asked for.
            if case .rejected(422, _) = result, case .happened(let reference) = await reconcile(call) { return .delivered(reference: reference) }
            return result
        case .refund:
            if refundsByPayments { return .skipped(reason: "the payments connector refunds \(shop)'s orders (channels.<name>.refunds=payments)") }
            guard let amount = update.fact.amount else { return .rejected(status: nil, reason: "refund without an amount") }
            // Money: look for our key among the order's refunds before refunding, so a
            // predecessor's refund that no ledger entry tells of is not made twice.
            switch await reconcile(call) {
            case .happened(let reference): return .delivered(reference: reference)
            case .askAgain(let reason): return .retry(after: nil, reason: "cannot read the order's refunds: \(reason)")
            case .didNotHappen, .cannotTell: break
            }
            let refund: [String: Any] = [
                "refund": [
                    "currency": amount.currency.code, "notify": notifyCustomer,
                    "note": "OrderFleet \(call.idempotencyKey)",
                    "transactions": [["kind": "refund", "amount": amount.decimalString]],
                ] as [String: Any],
            ]
            let body = try? JSONSerialization.data(withJSONObject: refund)
            let outcome = await http.send(.POST, url("orders/\(order)/refunds.json"), headers: headers, body: body, pointOfNoReturn: call.pointOfNoReturn)
            return HTTPVerdict.result(of: outcome, now: Date()) { Self.id(in: $0, object: "refund") }
        }
    }

    /// Reads the order back to see whether the lost call took effect. A stock level is
    /// absolute and a SKU's updates go in order, so setting it again is harmless.
    public func reconcile(_ call: OutboundCall) async -> Reconciliation {
        guard case .channelUpdate(let update) = call.command.event else { return .didNotHappen }
        let order = update.externalOrderId
        switch update.fact.action {
        case .ship:
            return await look(url("orders/\(order)/fulfillments.json")) { json in
                let fulfillments = (json["fulfillments"] as? [[String: Any]]) ?? []
                return fulfillments.first { item in
                    let numbers = ((item["tracking_numbers"] as? [String]) ?? []) + [item["tracking_number"] as? String].compactMap { $0 }
                    return update.fact.trackingNumber.map(numbers.contains) ?? false
                }.map { "\($0["id"] ?? "")" }
            }
        case .cancel:
            return await look(url("orders/\(order).json?fields=id,cancelled_at")) { json in
                let cancelled = (json["order"] as? [String: Any])?["cancelled_at"]
                return cancelled is String ? order : nil
            }
        case .refund:
            return await look(url("orders/\(order)/refunds.json")) { json in
                Self.refund(notedWith: call.idempotencyKey, in: (json["refunds"] as? [[String: Any]]) ?? [])
            }
        }
    }

    /// A shipment: its lines matched to the open fulfillment orders' line items (our line
    /// id is Shopify's `line_item_id`), then one fulfillment with the tracking.
    private func fulfil(_ update: ChannelUpdate, call: OutboundCall) async -> CallResult {
        let order = update.externalOrderId
        let listing = await http.send(.GET, url("orders/\(order)/fulfillment_orders.json"), headers: headers)
        guard case .answered(let response) = listing, (200..<300).contains(response.status) else {
            return HTTPVerdict.result(of: listing, now: Date())
        }
        let fulfillmentOrders = ((response.json as? [String: Any])?["fulfillment_orders"] as? [[String: Any]]) ?? []
        var wanted = Dictionary(update.fact.lines.map { ($0.lineId, $0.quantity) }, uniquingKeysWith: +)
        var byOrder: [[String: Any]] = []
        for fulfillmentOrder in fulfillmentOrders where ["open", "in_progress"].contains(fulfillmentOrder["status"] as? String) {
            var items: [[String: Any]] = []
            for item in (fulfillmentOrder["line_items"] as? [[String: Any]]) ?? [] {
                let lineItem = "\(item["line_item_id"] ?? "")"
                let open = (item["fulfillable_quantity"] as? Int) ?? 0
                guard let needed = wanted[lineItem], needed > 0, open > 0, let id = item["id"] else { continue }
                let quantity = min(needed, open)
                wanted[lineItem] = needed - quantity
                items.append(["id": id, "quantity": quantity])
            }
            if !items.isEmpty, let id = fulfillmentOrder["id"] {
                byOrder.append(["fulfillment_order_id": id, "fulfillment_order_line_items": items])
            }
        }
        guard !byOrder.isEmpty else {
            // Nothing left open: perhaps because this very shipment was fulfilled by a
            // call whose ledger entry this process never saw (a predecessor the group
            // had not yet let go of). Our tracking number on the order settles it.
            if case .happened(let reference) = await reconcile(call) { return .delivered(reference: reference) }
            return .rejected(status: nil, reason: "order \(order) has no open fulfillment order for lines \(update.fact.lines.map(\.lineId).joined(separator: ", "))")
        }
        var tracking: [String: Any] = [:]
        if let number = update.fact.trackingNumber { tracking["number"] = number }
        if let carrier = update.fact.carrier { tracking["company"] = carrier }
        let fulfillment: [String: Any] = [
            "fulfillment": [
                "line_items_by_fulfillment_order": byOrder, "tracking_info": tracking, "notify_customer": notifyCustomer,
            ] as [String: Any],
        ]
        let body = try? JSONSerialization.data(withJSONObject: fulfillment)
        let outcome = await http.send(.POST, url("fulfillments.json"), headers: headers, body: body, pointOfNoReturn: call.pointOfNoReturn)
        return HTTPVerdict.result(of: outcome, now: Date()) { Self.id(in: $0, object: "fulfillment") }
    }

    /// `inventory_levels/set` at the configured location, for the SKU's inventory item
    /// (looked up once in the shop's variants); a SKU the shop does not list is skipped.
    private func setAvailable(_ stock: StockUpdate, call: OutboundCall) async -> CallResult {
        guard let location = inventoryLocation else {
            return .skipped(reason: "shop \(shop) has no inventory location configured (channels.<name>.location)")
        }
        let item: String
        switch await inventoryItems.item(for: stock.sku, lookup: { await self.variants() }) {
        case .success(let found?): item = found
        case .success(nil): return .skipped(reason: "SKU \(stock.sku) is not listed on \(shop)")
        case .failure(let failure): return failure.result
        }
        // Shopify's ids are integers; JSON numbers as it documents them.
        let ids: [String: Any] = ["location_id": Int(location).map { $0 as Any } ?? location, "inventory_item_id": Int(item).map { $0 as Any } ?? item]
        let body = try? JSONSerialization.data(withJSONObject: ids.merging(["available": stock.quantity]) { $1 })
        let outcome = await http.send(.POST, url("inventory_levels/set.json"), headers: headers, body: body, pointOfNoReturn: call.pointOfNoReturn)
        return HTTPVerdict.result(of: outcome, now: Date()) { _ in "\(item)@\(location)" }
    }

    /// Every variant's SKU and inventory item, following `Link: <…>; rel="next"` pages.
    private func variants() async -> Result<[String: String], LookupFailure> {
        var items: [String: String] = [:]
        var next: String? = url("variants.json?limit=250&fields=id,sku,inventory_item_id")
        while let page = next {
            let outcome = await http.send(.GET, page, headers: headers)
            guard case .answered(let response) = outcome, (200..<300).contains(response.status) else {
                return .failure(LookupFailure(result: HTTPVerdict.result(of: outcome, now: Date())))
            }
            for variant in ((response.json as? [String: Any])?["variants"] as? [[String: Any]]) ?? [] {
                if let sku = variant["sku"] as? String, let item = variant["inventory_item_id"] { items[sku] = "\(item)" }
            }
            next = response.header("Link").flatMap(Self.nextPage)
        }
        return .success(items)
    }

    static func nextPage(_ link: String) -> String? {
        for part in link.split(separator: ",") where part.contains("rel=\"next\"") {
            guard let start = part.firstIndex(of: "<"), let end = part.firstIndex(of: ">") else { continue }
            return String(part[part.index(after: start)..<end])
        }
        return nil
    }

    private func look(_ url: String, found: ([String: Any]) -> String?) async -> Reconciliation {
        switch await http.send(.GET, url, headers: headers) {
        case .answered(let response) where (200..<300).contains(response.status):
            guard let json = response.json as? [String: Any] else { return .askAgain(reason: "unreadable answer from \(shop)") }
            return found(json).map { .happened(reference: $0) } ?? .didNotHappen
        case .answered(let response):
            return .askAgain(reason: "HTTP \(response.status): \(HTTPVerdict.message(in: response))")
        case .notSent(let reason), .lost(let reason):
            return .askAgain(reason: reason)
        }
    }

    /// The id of the refund whose note carries `key` (OrderFleet notes each refund it
    /// makes with its idempotency key), if there is one.
    static func refund(notedWith key: String, in refunds: [[String: Any]]) -> String? {
        refunds.first { ($0["note"] as? String)?.contains(key) == true }.map { "\($0["id"] ?? "")" }
    }

    static func id(in response: HTTPExchange.Response, object: String) -> String? {
        ((response.json as? [String: Any])?[object] as? [String: Any])?["id"].map { "\($0)" }
    }
}

/// Amazon Selling Partner API: a shipment becomes an Orders v0 `shipmentConfirmation`
/// for the marketplace, a stock update a Listings Items `fulfillment_availability` patch.
/// SP-API takes cancellations and refunds through feeds, which this endpoint does not
/// send: those updates are recorded as skipped, saying so.
///
/// A lost answer is reconciled with `getOrderItems`: the confirmation took effect when
/// every shipped line's `QuantityShipped` covers it.
public struct AmazonChannel: OutboundEndpoint {
    /// `amazon/<marketplace>`.
    public var name: String { "amazon/\(marketplaceID)" }
    /// The SP-API regional endpoint, e.g. `https://sellingpartnerapi-eu.amazon.com`.
    public var baseURL: String
    /// The marketplace, e.g. `A1PA6795UKMFR9`.
    public var marketplaceID: String
    /// A Login-with-Amazon access token (`x-amz-access-token`); never logged.
    public var accessToken: String
    /// The selling partner id, for the Listings Items API (stock); nil: no stock feed.
    public var sellerID: String?
    /// The HTTP client.
    public var http: HTTPExchange

    /// A marketplace's endpoint.
    public init(baseURL: String, marketplaceID: String, accessToken: String, sellerID: String? = nil, http: HTTPExchange) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.marketplaceID = marketplaceID
        self.accessToken = accessToken
        self.sellerID = sellerID
        self.http = http
    }

    private var headers: [(String, String)] { [("x-amz-access-token", accessToken)] }

    /// Confirms a shipment, or sets a listing's quantity.
    public func perform(_ call: OutboundCall) async -> CallResult {
        if case .stockUpdate(let stock) = call.command.event { return await setQuantity(stock, call: call) }
        guard case .channelUpdate(let update) = call.command.event else { return .rejected(status: nil, reason: "not a ChannelUpdate or StockUpdate") }
        guard update.fact.action == .ship else {
            return .skipped(reason: "SP-API takes \(update.fact.action.rawValue) through feeds, which OrderFleet does not send yet")
        }
        let detail: [String: Any] = [
            "marketplaceId": marketplaceID,
            "packageDetail": [
                "packageReferenceId": update.fact.shipmentId ?? call.command.id,
                "carrierCode": update.fact.carrier ?? "Other",
                "trackingNumber": update.fact.trackingNumber ?? "",
                "shipDate": RFC3339.format(update.fact.at),
                "orderItems": update.fact.lines.map { ["orderItemId": $0.lineId, "quantity": $0.quantity] as [String: Any] },
            ] as [String: Any],
        ]
        let body = try? JSONSerialization.data(withJSONObject: detail)
        let outcome = await http.send(
            .POST, "\(baseURL)/orders/v0/orders/\(update.externalOrderId)/shipmentConfirmation", headers: headers, body: body,
            pointOfNoReturn: call.pointOfNoReturn)
        return HTTPVerdict.result(of: outcome, now: Date()) { _ in update.fact.shipmentId }
    }

    /// Listings Items API `patchListingsItem`: replaces `fulfillment_availability` with
    /// the quantity. A SKU without a listing (404) is skipped; an `INVALID` submission is
    /// rejected with its issues.
    private func setQuantity(_ stock: StockUpdate, call: OutboundCall) async -> CallResult {
        guard let sellerID else { return .skipped(reason: "marketplace \(marketplaceID) has no seller id configured (channels.<name>.seller)") }
        let patch: [String: Any] = [
            "productType": "PRODUCT",
            "patches": [[
                "op": "replace", "path": "/attributes/fulfillment_availability",
                "value": [["fulfillment_channel_code": "DEFAULT", "quantity": stock.quantity, "marketplace_id": marketplaceID]],
            ] as [String: Any]],
        ]
        let sku = stock.sku.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? stock.sku
        let outcome = await http.send(
            .PATCH, "\(baseURL)/listings/2021-08-01/items/\(sellerID)/\(sku)?marketplaceIds=\(marketplaceID)", headers: headers,
            body: try? JSONSerialization.data(withJSONObject: patch), pointOfNoReturn: call.pointOfNoReturn)
        if case .answered(let response) = outcome {
            if response.status == 404 { return .skipped(reason: "SKU \(stock.sku) has no listing on \(marketplaceID)") }
            if (200..<300).contains(response.status), let json = response.json as? [String: Any], json["status"] as? String == "INVALID" {
                let issues = (json["issues"] as? [[String: Any]] ?? []).compactMap { $0["message"] as? String }
                return .rejected(status: response.status, reason: issues.isEmpty ? "INVALID" : issues.joined(separator: "; "))
            }
        }
        return HTTPVerdict.result(of: outcome, now: Date()) { ($0.json as? [String: Any])?["submissionId"] as? String }
    }

    /// Reads the order's items back; a listing quantity is absolute and may be set again.
    public func reconcile(_ call: OutboundCall) async -> Reconciliation {
        guard case .channelUpdate(let update) = call.command.event, update.fact.action == .ship else { return .didNotHappen }
        switch await http.send(.GET, "\(baseURL)/orders/v0/orders/\(update.externalOrderId)/orderItems", headers: headers) {
        case .answered(let response) where (200..<300).contains(response.status):
            let items = (((response.json as? [String: Any])?["payload"] as? [String: Any])?["OrderItems"] as? [[String: Any]]) ?? []
            let shipped = Dictionary(items.map { ("\($0["OrderItemId"] ?? "")", ($0["QuantityShipped"] as? Int) ?? 0) }, uniquingKeysWith: max)
            let covered = update.fact.lines.allSatisfy { (shipped[$0.lineId] ?? 0) >= $0.quantity }
            return covered ? .happened(reference: update.fact.shipmentId) : .didNotHappen
        case .answered(let response):
            return .askAgain(reason: "HTTP \(response.status): \(HTTPVerdict.message(in: response))")
        case .notSent(let reason), .lost(let reason):
            return .askAgain(reason: reason)
        }
    }
}

/// A channel (or any receiver) that takes OrderFleet's own webhook: a JSON POST of the
/// command, signed, with an `Idempotency-Key` the receiver must dedupe on (the contract
/// in docs/OPERATIONS.md). So a call whose answer was lost is simply made again with the
/// same key: the receiver applies it once.
public struct WebhookChannel: OutboundEndpoint {
    /// `webhook/<host>`.
    public var name: String { "webhook/\(URL(string: url)?.host ?? url)" }
    /// Where to POST.
    public var url: String
    /// The HMAC-SHA256 key of ``WebhookSignature``; never logged.
    public var secret: String
    /// The HTTP client.
    public var http: HTTPExchange
    /// The time stamped into the signature.
    public var now: @Sendable () -> Date

    /// A receiver's endpoint.
    public init(url: String, secret: String, http: HTTPExchange, now: @escaping @Sendable () -> Date = { Date() }) {
        self.url = url
        self.secret = secret
        self.http = http
        self.now = now
    }

    /// POSTs the command.
    public func perform(_ call: OutboundCall) async -> CallResult {
        let body: Data
        do {
            body = try OutboundSignature.body(of: call.command)
        } catch {
            return .rejected(status: nil, reason: "cannot encode \(call.command.id): \(error)")
        }
        let timestamp = Int(now().timeIntervalSince1970)
        let headers = [
            ("Idempotency-Key", call.idempotencyKey),
            ("X-OrderFleet-Event-Type", call.command.type.name),
            (OutboundSignature.header, OutboundSignature.sign(body: body, timestamp: timestamp, secret: secret)),
        ]
        let outcome = await http.send(.POST, url, headers: headers, body: body, pointOfNoReturn: call.pointOfNoReturn)
        return HTTPVerdict.result(of: outcome, now: now())
    }

    /// The receiver dedupes on the key, so calling again cannot make a second effect.
    public func reconcile(_ call: OutboundCall) async -> Reconciliation { .didNotHappen }
}

/// How OrderFleet signs what it sends: `X-OrderFleet-Signature: t=<unix seconds>,v1=<hex>`,
/// the hex being HMAC-SHA256 over `<t>.<body>` with the shared secret (the scheme
/// Stripe uses). A receiver recomputes it, compares in constant time, and refuses a
/// `t` older than its tolerance (5 minutes suggested), so a captured request cannot be
/// replayed later.
public enum OutboundSignature {
    /// The header's name.
    public static let header = "X-OrderFleet-Signature"

    /// The header's value.
    public static func sign(body: Data, timestamp: Int, secret: String) -> String {
        "t=\(timestamp),v1=\(mac(body: body, timestamp: timestamp, secret: secret))"
    }

    /// Whether `value` signs `body` with `secret`, within `tolerance` seconds of `now`;
    /// the MACs are compared in constant time.
    public static func verify(_ value: String, body: Data, secret: String, now: Date, tolerance: TimeInterval = 300) -> Bool {
        var timestamp: Int?
        var signatures: [Data] = []
        for part in value.split(separator: ",") {
            let pair = part.split(separator: "=", maxSplits: 1).map(String.init)
            guard pair.count == 2 else { continue }
            if pair[0] == "t" { timestamp = Int(pair[1]) } else if pair[0] == "v1", let mac = Hex.decode(pair[1]) { signatures.append(mac) }
        }
        guard let timestamp, abs(now.timeIntervalSince1970 - TimeInterval(timestamp)) <= tolerance else { return false }
        let expected = code(body: body, timestamp: timestamp, secret: secret)
        return signatures.contains { Digests.constantTimeEquals(expected, $0) }
    }

    /// The JSON body OrderFleet POSTs for an event: CloudEvents 1.0 in structured mode,
    /// the event's payload under `data`.
    public static func body(of envelope: Envelope) throws -> Data {
        let record = try envelope.record()
        var object: [String: Any] = ["specversion": "1.0", "datacontenttype": "application/json"]
        for header in record.headers where header.name.hasPrefix("ce_") {
            object[String(header.name.dropFirst(3))] = String(decoding: header.value, as: UTF8.self)
        }
        object["data"] = try JSONSerialization.jsonObject(with: Data(record.value))
        return try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    }

    /// HMAC-SHA256 over `<t>.<body>`, fed in two parts: the body is not copied.
    private static func code(body: Data, timestamp: Int, secret: String) -> [UInt8] {
        Digests.hmacSHA256(key: Array(secret.utf8), Array("\(timestamp).".utf8), body)
    }

    private static func mac(body: Data, timestamp: Int, secret: String) -> String {
        Hex.encode(code(body: body, timestamp: timestamp, secret: secret))
    }
}

/// A Shopify shop's SKU → inventory item ids, read from its variants on first need and
/// again when a SKU is missing (a product added since).
actor InventoryItems {
    private var items: [String: String]?
    private var refreshedAt: ContinuousClock.Instant?

    func item(for sku: String, lookup: @Sendable () async -> Result<[String: String], LookupFailure>) async -> Result<String?, LookupFailure> {
        if let found = items?[sku] { return .success(found) }
        // A missing SKU is looked up again at most once a minute.
        if let refreshedAt, ContinuousClock.now - refreshedAt < .seconds(60), items != nil { return .success(nil) }
        switch await lookup() {
        case .success(let loaded):
            items = loaded
            refreshedAt = .now
            return .success(loaded[sku])
        case .failure(let failure):
            return .failure(failure)
        }
    }
}

/// A lookup that failed, with the call result it amounts to.
struct LookupFailure: Error {
    var result: CallResult
}

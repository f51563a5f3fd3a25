import Contracts
import Fleet
import Foundation
import HTTPTypes
import Hummingbird
import Kafka
import Workers

extension Gateway {
    /// Namespace of the event ids the gateway derives from webhook ids and idempotency
    /// keys, so a retried delivery carries the same event id.
    static let eventNamespace = UUID(uuidString: "0e7a9f5c-41d2-5b8e-8c3a-6d2f0b9e7a14")!

    /// The id of the event a request produces: derived from the sender's delivery id
    /// or idempotency key when there is one, else random.
    static func eventID(_ call: Call, _ route: GatewayRoutes.Route, deliveryHeader: HTTPField.Name = .idempotencyKey) -> String {
        guard let delivery = call.header(deliveryHeader) ?? call.header(.idempotencyKey) else { return UUID().uuidString.lowercased() }
        return DeterministicID.uuidV5(namespace: eventNamespace, name: "\(route.path)|\(call.parameters.map { "\($0)=\($1)" })|\(delivery)")
    }

    /// Every route, grouped by concern (a route collection each): who calls it and how it
    /// is protected.
    func router() -> Router<BasicRequestContext> {
        let router = Router()
        // Before every route: a span per request, child of the caller's traceparent, and
        // the request counted under its route, whichever middleware answered.
        router.add(middleware: TracingMiddleware())
        router.add(middleware: IncomingTraceParentMiddleware())
        router.add(middleware: RequestCountMiddleware())
        // Senders that sign each body: channels, carriers, locations, Adyen.
        router.addRoutes(channelRoutes())
        router.addRoutes(carrierRoutes())
        router.addRoutes(fulfilmentRoutes())
        router.addRoutes(adyenRoutes())
        // Operators, customer service and the brand's systems: the bearer token.
        let operators = RouteCollection(context: BasicRequestContext.self)
            .add(middleware: OperatorTokenMiddleware(token: configuration.apiToken))
        for routes in [orderCommandRoutes(), orderChangeRoutes(), queryRoutes(), webhookRoutes(), invoiceRoutes(), paymentRoutes()] {
            operators.addRoutes(routes)
        }
        router.addRoutes(operators)
        router.addRoutes(operationsRoutes())
        return router
    }

    /// Channels' order webhooks, signed with a per-channel secret.
    private func channelRoutes() -> RouteCollection<BasicRequestContext> {
        let routes = RouteCollection(context: BasicRequestContext.self)
        let secrets = configuration
        add(GatewayRoutes.shopifyOrders, to: routes, signature: SignatureCheck(kind: .base64, header: .shopifyHmac) { call throws(GatewayError) in
            try Self.shop(of: call, secrets).secret
        }, dedupe: .header(.shopifyWebhookID)) { call throws(GatewayError) in
            let channel = try Self.shop(of: call, secrets).channel
            switch call.header(.shopifyTopic) ?? "orders/create" {
            case "orders/create":
                return try await self.acceptOrder(
                    call, format: .shopifyOrder, channel: .assigned(channel), route: GatewayRoutes.shopifyOrders, delivery: .shopifyWebhookID)
            case "orders/updated":
                return try await self.acceptChange(call, format: .shopifyOrderUpdated, channel: channel)
            case "orders/cancelled":
                return try await self.acceptChange(call, format: .shopifyOrderCancelled, channel: channel)
            case let topic:
                throw .invalidBody("X-Shopify-Topic '\(topic)' is not served here; subscribe orders/create, orders/updated and orders/cancelled to this address")
            }
        }

        add(GatewayRoutes.channelOrders, to: routes, signature: SignatureCheck(kind: .omsHex, header: .omsSignature) { call throws(GatewayError) in
            let channel = call.parameter("channel")
            guard let secret = secrets.channelSecrets[channel] else {
                throw GatewayError(status: 404, code: "not_found", message: "channel '\(channel)' is not configured (gateway.channel.secrets)")
            }
            return secret
        }, dedupe: .idempotencyKey) { call throws(GatewayError) in
            let name = call.request.uri.queryParameters.get("format") ?? ChannelFormat.canonical.rawValue
            // Shopify has its own route; Amazon change notifications come by SQS, not webhook.
            guard let format = ChannelFormat(rawValue: name), [.canonical, .posSale, .amazonOrder].contains(format) else {
                throw .invalidBody("format '\(name)' is not one of canonical, pos_sale, amazon_order")
            }
            return try await self.acceptOrder(
                call, format: format, channel: .checked(call.parameter("channel")), route: GatewayRoutes.channelOrders, delivery: .idempotencyKey)
        }
        return routes
    }

    /// Carriers' tracking webhooks, signed with a per-carrier secret.
    private func carrierRoutes() -> RouteCollection<BasicRequestContext> {
        let routes = RouteCollection(context: BasicRequestContext.self)
        let secrets = configuration
        add(GatewayRoutes.easyPostEvents, to: routes, signature: SignatureCheck(kind: .easyPostHex, header: .easyPostSignature) { _ throws(GatewayError) in
            try Self.required(secrets.easyPostSecret, "gateway.easypost.secret")
        }) { call throws(GatewayError) in
            try await self.acceptTracking(call, route: GatewayRoutes.easyPostEvents) { body throws(ContractError) in try EasyPostTrackerAdapter.decode(body) }
        }

        add(GatewayRoutes.afterShipWebhooks, to: routes, signature: SignatureCheck(kind: .base64, header: .afterShipSignature) { _ throws(GatewayError) in
            try Self.required(secrets.afterShipSecret, "gateway.aftership.secret")
        }) { call throws(GatewayError) in
            try await self.acceptTracking(call, route: GatewayRoutes.afterShipWebhooks) { body throws(ContractError) in try AfterShipTrackingAdapter.decode(body) }
        }

        add(GatewayRoutes.carrierTracking, to: routes, signature: SignatureCheck(kind: .omsHex, header: .omsSignature) { call throws(GatewayError) in
            let carrier = call.parameter("carrier")
            guard let secret = secrets.carrierSecrets[carrier] else {
                throw GatewayError(status: 404, code: "not_found", message: "carrier '\(carrier)' is not configured (gateway.carrier.secrets)")
            }
            return secret
        }, dedupe: .idempotencyKey) { call throws(GatewayError) in
            try await self.acceptTracking(call, route: GatewayRoutes.carrierTracking) { body throws(ContractError) in
                let update = try GenericTrackingAdapter.decode(body)
                guard update.carrier == call.parameter("carrier") else {
                    throw .invalidField(path: "$.carrier", reason: "'\(update.carrier)' is not the carrier of this address ('\(call.parameter("carrier"))')")
                }
                return update
            }
        }
        return routes
    }

    /// Operators' and customers' commands on an order: bearer token, `Idempotency-Key`.
    private func orderCommandRoutes() -> RouteCollection<BasicRequestContext> {
        let routes = RouteCollection(context: BasicRequestContext.self)
        add(GatewayRoutes.cancelOrder, to: routes, dedupe: .idempotencyKey) { call throws(GatewayError) in try await self.cancelOrder(call) }
        add(GatewayRoutes.returnOrder, to: routes, dedupe: .idempotencyKey) { call throws(GatewayError) in try await self.returnOrder(call) }
        add(GatewayRoutes.releaseOrder, to: routes, dedupe: .idempotencyKey) { call throws(GatewayError) in try await self.releaseOrder(call) }
        return routes
    }

    /// `POST /v1/orders/{orderId}/cancel`.
    private func cancelOrder(_ call: Call) async throws(GatewayError) -> (status: Int, body: [UInt8]) {
        struct Body: Decodable {
            var requestedBy: String
            var reason: String?
            var message: String?
        }
        let body = try call.decode(Body.self)
        let view = try self.view(call.parameter("orderId"))
        try Self.nonEmpty(body.requestedBy, "requestedBy")
        let reason = Reason(code: body.reason ?? "customer_request", message: body.message ?? "cancelled through the gateway")
        let command = CancelOrder(orderId: view.orderId, requestedBy: body.requestedBy, reason: reason, requestedAt: Date())
        return try await accept(command.event, id: Self.eventID(call, GatewayRoutes.cancelOrder), orderId: view.orderId)
    }

    /// `POST /v1/orders/{orderId}/returns`: a return (or an exchange) requested.
    private func returnOrder(_ call: Call) async throws(GatewayError) -> (status: Int, body: [UInt8]) {
        struct Body: Decodable {
            struct Line: Decodable {
                var lineId: String
                var quantity: Int
                var reason: String
                var exchangeSku: String?
            }
            var lines: [Line]
            var returnId: String?
            var differencePayment: PaymentAuthorization?
        }
        let body = try call.decode(Body.self)
        let view = try self.view(call.parameter("orderId"))
        guard !body.lines.isEmpty else { throw .invalidBody("$.lines is empty: name at least one line to return") }
        var lines: [ReturnLine] = []
        for (index, line) in body.lines.enumerated() {
            guard let ordered = view.lines.first(where: { $0.lineId == line.lineId }) else {
                throw Self.unknownLine(line.lineId, in: view, at: "lines.\(index).lineId")
            }
            guard line.quantity >= 1 else { throw .invalidBody("$.lines.\(index).quantity must be at least 1") }
            try Self.nonEmpty(line.reason, "lines.\(index).reason")
            if let sku = line.exchangeSku { try Self.nonEmpty(sku, "lines.\(index).exchangeSku") }
            lines.append(ReturnLine(lineId: line.lineId, sku: ordered.sku, quantity: line.quantity, reason: line.reason, exchangeSku: line.exchangeSku))
        }
        if body.differencePayment != nil, !lines.contains(where: { $0.exchangeSku != nil }) {
            throw .invalidBody("$.differencePayment is for an exchange: no line names an exchangeSku")
        }
        let id = Self.eventID(call, GatewayRoutes.returnOrder)
        let returnId = body.returnId ?? "rma-" + id.prefix(13)
        let request = ReturnRequested(orderId: view.orderId, returnId: returnId, lines: lines, requestedAt: Date(), differencePayment: body.differencePayment)
        return try await accept(request.event, id: id, orderId: view.orderId) { $0.returnId = returnId }
    }

    /// `POST /v1/orders/{orderId}/release`: a held order released after review.
    private func releaseOrder(_ call: Call) async throws(GatewayError) -> (status: Int, body: [UInt8]) {
        struct Body: Decodable {
            var releasedBy: String
            var note: String?
        }
        let body = try call.decode(Body.self)
        let view = try self.view(call.parameter("orderId"))
        try Self.nonEmpty(body.releasedBy, "releasedBy")
        guard view.status == .held else {
            throw GatewayError(status: 409, code: "not_held", message: "order \(view.orderId) is \(view.status.rawValue), not held for review")
        }
        let command = ReleaseHold(orderId: view.orderId, releasedBy: body.releasedBy, note: body.note, requestedAt: Date())
        return try await accept(command.event, id: Self.eventID(call, GatewayRoutes.releaseOrder), orderId: view.orderId)
    }


    /// Queries answered from the compacted topics: bearer token.
    private func queryRoutes() -> RouteCollection<BasicRequestContext> {
        let routes = RouteCollection(context: BasicRequestContext.self)
        add(GatewayRoutes.order, to: routes) { call throws(GatewayError) in
            (200, try Self.encode(try self.view(call.parameter("orderId"))))
        }

        add(GatewayRoutes.customer, to: routes) { call throws(GatewayError) in
            let id = call.parameter("customerId")
            return (200, try Self.encode(try self.customer(id.removingPercentEncoding ?? id)))
        }

        add(GatewayRoutes.inventory, to: routes) { call throws(GatewayError) in
            (200, try Self.encode(StockAnswer(try self.level(call.parameter("sku")))))
        }

        add(GatewayRoutes.report, to: routes) { call throws(GatewayError) in
            let name = call.parameter("name")
            let query = call.request.uri.queryParameters
            let filter = ReportQuery.Filter(from: query.get("from"), to: query.get("to"), channel: query.get("channel"), hourly: query.get("by") == "hour")
            let stock: (onHand: [String: Int], reserved: [String: Int]) = name == "inventory" ? try self.stockTotals() : ([:], [:])
            guard let tables = try self.reportQuery().report(name, filter: filter, onHand: stock.onHand, reserved: stock.reserved, rates: self.configuration.fxRates) else {
                throw GatewayError(status: 404, code: "not_found", message: "no report '\(name)'; reports: \(ReportQuery.names.joined(separator: ", "))")
            }
            return (200, try Self.encode(tables))
        }
        return routes
    }

    /// The dashboard, metrics and health: no token (no personal data on them).
    private func operationsRoutes() -> RouteCollection<BasicRequestContext> {
        let routes = RouteCollection(context: BasicRequestContext.self)
        routes.get(RouterPath(GatewayRoutes.dashboard.routerPath)) { _, _ in
            // Order ids and counts only, no personal data: the page is not behind the token.
            let loads = await self.dashboard.stageLoads(kafka: self.kafka.with(clientID: "oms-gateway-dashboard"))
            let html: String
            do {
                let stock = try self.stockTotals()
                html = Dashboard.render(
                    statuses: try self.statusCounts(), loads: loads, query: try self.reportQuery(), onHand: stock.onHand, reserved: stock.reserved, now: Date())
            } catch {
                html = "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"2\"><title>OrderFleet operations</title></head><body><p>The gateway is still reading its tables.</p></body></html>"
            }
            return Response(
                status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: ResponseBody(byteBuffer: ByteBuffer(string: html)))
        }

        HealthServer.addRoutes(to: routes, registry: registry, statuses: statuses, checks: [
            HealthServer.Check(name: "gateway", isReady: { self.tablesLoaded && self.kafkaReachable }) {
                "tables=\(self.tablesLoaded ? "loaded" : "loading") kafka=\(self.kafkaReachable ? "reachable" : "unreachable")"
            },
        ])
        return routes
    }

    // MARK: Handlers

    /// Which channel an order webhook's order belongs to.
    enum OrderChannel {
        /// The address names it; the body must name the same.
        case checked(String)
        /// The sender's identity decides it (a Shopify shop's channel); the body's is replaced.
        case assigned(String)
    }

    private func acceptOrder(
        _ call: Call, format: ChannelFormat, channel: OrderChannel, route: GatewayRoutes.Route, delivery: HTTPField.Name
    ) async throws(GatewayError) -> (status: Int, body: [UInt8]) {
        guard case .order(var order) = try Self.decode(format: format, body: call.body) else {
            throw .invalidBody("a \(format.rawValue) body is a change, not an order")
        }
        // Only the returns stage makes replacement orders (they ship without payment).
        guard order.exchangeOf == nil else { throw .invalidBody("$.exchangeOf: an exchange's replacement order is placed by the OMS, not sent to it") }
        switch channel {
        case .checked(let name) where order.channel != name:
            throw .invalidBody("$.channel: '\(order.channel)' is not the channel of this address ('\(name)')")
        case .checked: break
        case .assigned(let name): order.channel = name
        }
        let inbound = InboundChannelOrder(
            channel: order.channel, format: format, externalOrderId: order.externalOrderId, payload: Data(call.body), receivedAt: Date())
        let orderId = DeterministicID.orderID(channel: order.channel, externalOrderID: order.externalOrderId)
        return try await accept(inbound.event, id: Self.eventID(call, route, deliveryHeader: delivery), orderId: orderId) {
            $0.channel = order.channel
            $0.externalOrderId = order.externalOrderId
        }
    }

    /// A channel's edit of an order it sent (Shopify `orders/updated`, `orders/cancelled`):
    /// checked, recorded for intake under the order's key, so it follows the order.
    private func acceptChange(_ call: Call, format: ChannelFormat, channel: String) async throws(GatewayError) -> (status: Int, body: [UInt8]) {
        guard case .change(.edited(let edit)) = try Self.decode(format: format, body: call.body) else {
            throw .invalidBody("a \(format.rawValue) body is not an order edit")
        }
        let inbound = InboundChannelOrder(channel: channel, format: format, externalOrderId: edit.externalOrderId, payload: Data(call.body), receivedAt: Date())
        let orderId = DeterministicID.orderID(channel: channel, externalOrderID: edit.externalOrderId)
        return try await accept(inbound.event, id: Self.eventID(call, GatewayRoutes.shopifyOrders, deliveryHeader: .shopifyWebhookID), orderId: orderId) {
            $0.channel = channel
            $0.externalOrderId = edit.externalOrderId
        }
    }

    /// A channel body through its adapter, a 400 naming the field when it does not fit.
    private static func decode(format: ChannelFormat, body: [UInt8]) throws(GatewayError) -> ChannelInput {
        do {
            return try ChannelAdapters.decode(format: format, body: body)
        } catch {
            throw .invalidBody(error.description)
        }
    }

    private func acceptTracking(
        _ call: Call, route: GatewayRoutes.Route, decode: (ArraySlice<UInt8>) throws(ContractError) -> CarrierTrackingUpdate
    ) async throws(GatewayError) -> (status: Int, body: [UInt8]) {
        let update: CarrierTrackingUpdate
        do {
            update = try decode(call.body[...])
        } catch {
            throw .invalidBody(error.description)
        }
        let id = update.externalEventId.map { DeterministicID.uuidV5(namespace: Self.eventNamespace, name: "\(update.source.rawValue)|\($0)") }
            ?? Self.eventID(call, route)
        return try await accept(update.event, id: id) {
            $0.carrier = update.carrier
            $0.trackingNumber = update.trackingNumber
        }
    }

    /// The Shopify shop a webhook comes from (its `X-Shopify-Shop-Domain`); 401 naming
    /// the keys when no secret can check it.
    static func shop(of call: Call, _ configuration: GatewayConfiguration) throws(GatewayError) -> ShopifyShop {
        let domain = call.header(.shopifyShopDomain)
        guard let shop = configuration.shopifyShop(domain: domain) else {
            // Without a secret nothing can be verified: refuse rather than accept unsigned data.
            let named = domain.map { "shop '\($0)' is not configured" } ?? "the webhook names no shop (X-Shopify-Shop-Domain)"
            throw GatewayError(status: 401, code: "bad_signature", message: "\(named) and no single-shop secret is set (gateway.shopify.secrets, gateway.shopify.secret)")
        }
        return shop
    }

    static func required(_ secret: String?, _ key: String) throws(GatewayError) -> String {
        guard let secret else {
            // Without a secret nothing can be verified: refuse rather than accept unsigned data.
            throw GatewayError(status: 401, code: "bad_signature", message: "no secret is configured for this webhook (\(key))")
        }
        return secret
    }

    static func nonEmpty(_ value: String, _ field: String) throws(GatewayError) {
        if value.trimmingCharacters(in: .whitespaces).isEmpty { throw .invalidBody("$.\(field) is empty") }
    }

    /// A 400 for a line id the order does not have, naming the ones it has.
    static func unknownLine(_ lineId: String, in view: OrderView, at path: String) -> GatewayError {
        .invalidBody("$.\(path): order \(view.orderId) has no line '\(lineId)' (lines: \(view.lines.map(\.lineId).joined(separator: ", ")))")
    }
}

/// `GET /v1/inventory/{sku}`: stock per location and what can still be promised.
struct StockAnswer: Encodable {
    struct Location: Encodable {
        var location: String
        var onHand: Int
        var reserved: Int
        var safetyStock: Int
        var available: Int
    }

    var sku: String
    var updatedAt: Date
    var available: Int
    var locations: [Location]

    init(_ level: InventoryLevel) {
        sku = level.sku
        updatedAt = level.updatedAt
        locations = level.locations.map {
            Location(location: $0.location, onHand: $0.onHand, reserved: $0.reserved, safetyStock: $0.safetyStock,
                     available: max(0, $0.onHand - $0.reserved - $0.safetyStock))
        }
        available = locations.reduce(0) { $0 + $1.available }
    }
}

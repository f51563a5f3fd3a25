import Contracts
import Foundation
import Hummingbird

extension GatewayRoutes {
    static let webhooks = Route(method: "GET", path: "/v1/ops/webhooks")
    static let addWebhook = Route(method: "POST", path: "/v1/ops/webhooks")
    static let disableWebhook = Route(method: "POST", path: "/v1/ops/webhooks/{subscriptionId}/disable")
    static let enableWebhook = Route(method: "POST", path: "/v1/ops/webhooks/{subscriptionId}/enable")
    static let webhookDeliveries = Route(method: "GET", path: "/v1/ops/webhooks/{subscriptionId}/deliveries")
}

/// A subscription as the operator endpoints answer it: its own JSON fields, plus its
/// signing secret when it was just created and the gateway holds the signing key.
struct SubscriptionAnswer: Encodable {
    var subscription: WebhookSubscription
    var secret: String?

    private enum Key: String, CodingKey { case secret }

    func encode(to encoder: any Encoder) throws {
        // Flat, so a client reads a created subscription like a listed one; the secret is
        // one more field next to the record's.
        try subscription.encode(to: encoder)
        var container = encoder.container(keyedBy: Key.self)
        try container.encodeIfPresent(secret, forKey: .secret)
    }
}

/// One delivery of the delivery log: the last ledger entry of a delivery, named for
/// the subscriber's side (its id is the `webhook-id` the receiver saw).
struct DeliveryAnswer: Encodable {
    var deliveryId: String
    var eventType: String
    var orderId: String
    var state: DeliveryState
    var attempts: Int
    var status: Int?
    var reason: String?
    var updatedAt: Date
    var firstAttemptAt: Date?
    var nextAttemptAt: Date?

    init(_ entry: OutboundDelivery) {
        deliveryId = entry.commandId
        eventType = entry.commandType
        orderId = entry.orderId
        state = entry.state
        attempts = entry.attempts
        status = entry.status
        reason = entry.reason
        updatedAt = entry.updatedAt
        firstAttemptAt = entry.firstAttemptAt
        nextAttemptAt = entry.nextAttemptAt
    }
}

extension Gateway {
    /// The connector whose ledger entries make the delivery log.
    static let webhooksConnector = "webhooks"

    /// Whether a ledger entry is the webhooks connector's: the delivery log table keeps
    /// only those, so the other connectors' entries cost no memory.
    static func isWebhookDelivery(_ event: Event) -> Bool {
        if case .outboundDelivery(let entry) = event { return entry.connector == webhooksConnector }
        return false
    }

    /// Webhook subscriptions of the brand's systems (docs/OPERATIONS.md, "Webhooks"):
    /// bearer token. Answers after a write come from what was written, not from the
    /// table, which catches up a moment later.
    func webhookRoutes() -> RouteCollection<BasicRequestContext> {
        let routes = RouteCollection(context: BasicRequestContext.self)
        add(GatewayRoutes.webhooks, to: routes) { _ throws(GatewayError) in
            let all = try self.currentTables().webhooks.values.values.compactMap { event -> SubscriptionAnswer? in
                if case .webhookSubscription(let subscription) = event { return SubscriptionAnswer(subscription: subscription) }
                return nil
            }.sorted { ($0.subscription.createdAt, $0.subscription.subscriptionId) < ($1.subscription.createdAt, $1.subscription.subscriptionId) }
            return (200, try Self.encode(["subscriptions": all]))
        }

        add(GatewayRoutes.addWebhook, to: routes, dedupe: .idempotencyKey) { call throws(GatewayError) in
            struct Body: Decodable {
                var url: String
                var eventTypes: [String]
                var description: String?
            }
            let body = try call.decode(Body.self)
            do throws(ContractError) {
                try WebhookEvents.validate(url: body.url, eventTypes: body.eventTypes)
            } catch {
                throw .invalidBody(Self.describe(error))
            }
            let now = Date()
            let subscription = WebhookSubscription(
                subscriptionId: call.header(.idempotencyKey).map { WebhookEvents.subscriptionID(idempotencyKey: $0) } ?? WebhookEvents.newSubscriptionID(),
                url: body.url, eventTypes: body.eventTypes, description: body.description,
                status: .active, createdAt: now, updatedAt: now)
            _ = try await self.produce(subscription.event, id: Self.eventID(call, GatewayRoutes.addWebhook))
            // Derived, never stored: only this answer (and whoever holds the key) shows it.
            let secret = self.configuration.webhookSigningKey.map {
                WebhookEvents.signingSecret(subscriptionID: subscription.subscriptionId, signingKey: $0)
            }
            return (201, try Self.encode(SubscriptionAnswer(subscription: subscription, secret: secret)))
        }

        for (route, status) in [(GatewayRoutes.disableWebhook, WebhookStatus.disabled), (GatewayRoutes.enableWebhook, .active)] {
            add(route, to: routes, dedupe: .idempotencyKey) { call throws(GatewayError) in
                struct Body: Decodable { var reason: String? }
                // The body is optional: `curl -X POST` without one is the common case.
                let body = call.body.isEmpty ? Body() : try call.decode(Body.self)
                var subscription = try self.webhookSubscription(call.parameter("subscriptionId"))
                subscription.status = status
                // A reason explains a disabled subscription; an enabled one has none to show.
                subscription.reason = status == .disabled ? body.reason ?? "disabled by an operator" : nil
                subscription.updatedAt = Date()
                _ = try await self.produce(subscription.event, id: Self.eventID(call, route))
                return (200, try Self.encode(SubscriptionAnswer(subscription: subscription)))
            }
        }

        add(GatewayRoutes.webhookDeliveries, to: routes) { call throws(GatewayError) in
            let subscription = try self.webhookSubscription(call.parameter("subscriptionId"))
            let limitText = call.request.uri.queryParameters.get("limit") ?? "100"
            guard let limit = Int(limitText), (1...1_000).contains(limit) else {
                throw .invalidBody("limit must be a number from 1 to 1000, not '\(limitText)'")
            }
            // Delivery ids are `<subscription id>/<event id>`: the prefix selects this subscription's.
            let prefix = "\(subscription.subscriptionId)/"
            let deliveries = try self.currentTables().webhookDeliveries.values.values.compactMap { event -> OutboundDelivery? in
                guard case .outboundDelivery(let entry) = event, entry.connector == Self.webhooksConnector, entry.commandId.hasPrefix(prefix) else {
                    return nil
                }
                return entry
            }.sorted { ($0.updatedAt, $0.commandId) > ($1.updatedAt, $1.commandId) }
            return (200, try Self.encode(["deliveries": deliveries.prefix(limit).map(DeliveryAnswer.init)]))
        }
        return routes
    }

    /// A validation error as a 400's message, `$.<field>: <what is wrong>` like the
    /// body decoding errors, without repeating the field.
    private static func describe(_ error: ContractError) -> String {
        if case .invalidField(let path, let reason) = error { return "$.\(path): \(reason)" }
        return error.description
    }
}

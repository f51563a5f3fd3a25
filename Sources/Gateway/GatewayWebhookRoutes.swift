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

extension Gateway {
    /// A subscription as the operator endpoints answer it: with its signing secret when
    /// just created and the gateway holds the signing key.
    struct SubscriptionAnswer: Encodable {
        var subscription: WebhookSubscription
        var secret: String?
    }

    /// Webhook subscriptions of the brand's systems (docs/OPERATIONS.md §10): bearer token.
    /// Answers after a write come from what was written, not from the table, which
    /// catches up a moment later.
    func addWebhookRoutes(to router: Router<BasicRequestContext>) {
        add(GatewayRoutes.webhooks, to: router, guard: .apiToken) { _ throws(GatewayError) in
            let all = try self.currentTables().webhooks.values.values.compactMap { event -> WebhookSubscription? in
                if case .webhookSubscription(let subscription) = event { return subscription }
                return nil
            }.sorted { ($0.createdAt, $0.subscriptionId) < ($1.createdAt, $1.subscriptionId) }
            return (200, try Self.encode(["subscriptions": all]))
        }

        add(GatewayRoutes.addWebhook, to: router, guard: .apiToken, dedupe: .idempotencyKey) { call throws(GatewayError) in
            struct Body: Decodable {
                var url: String
                var eventTypes: [String]
                var description: String?
            }
            let body = try call.decode(Body.self)
            do throws(ContractError) {
                try WebhookEvents.validate(url: body.url, eventTypes: body.eventTypes)
            } catch {
                throw .invalidBody("$.\(Self.field(of: error)): \(error)")
            }
            let now = Date()
            let subscription = WebhookSubscription(
                subscriptionId: WebhookEvents.newSubscriptionID(), url: body.url, eventTypes: body.eventTypes, description: body.description,
                status: .active, createdAt: now, updatedAt: now)
            _ = try await self.produce(subscription.event, id: Self.eventID(call, GatewayRoutes.addWebhook))
            let secret = self.configuration.webhookSigningKey.map {
                WebhookEvents.signingSecret(subscriptionID: subscription.subscriptionId, signingKey: $0)
            }
            return (201, try Self.encode(SubscriptionAnswer(subscription: subscription, secret: secret)))
        }

        for (route, status) in [(GatewayRoutes.disableWebhook, WebhookStatus.disabled), (GatewayRoutes.enableWebhook, .active)] {
            add(route, to: router, guard: .apiToken, dedupe: .idempotencyKey) { call throws(GatewayError) in
                struct Body: Decodable { var reason: String? }
                let body = call.body.isEmpty ? Body() : try call.decode(Body.self)
                var subscription = try self.webhookSubscription(call.parameter("subscriptionId"))
                subscription.status = status
                subscription.reason = status == .disabled ? body.reason ?? "disabled by an operator" : nil
                subscription.updatedAt = Date()
                _ = try await self.produce(subscription.event, id: Self.eventID(call, route))
                return (200, try Self.encode(SubscriptionAnswer(subscription: subscription)))
            }
        }

        add(GatewayRoutes.webhookDeliveries, to: router, guard: .apiToken) { call throws(GatewayError) in
            let subscription = try self.webhookSubscription(call.parameter("subscriptionId"))
            let limitText = call.request.uri.queryParameters.get("limit") ?? "100"
            guard let limit = Int(limitText), (1...1_000).contains(limit) else {
                throw .invalidBody("limit must be a number from 1 to 1000, not '\(limitText)'")
            }
            let prefix = "\(subscription.subscriptionId)/"
            let deliveries = try self.currentTables().webhookDeliveries.values.values.compactMap { event -> OutboundDelivery? in
                guard case .outboundDelivery(let entry) = event, entry.commandId.hasPrefix(prefix) else { return nil }
                return entry
            }.sorted { ($0.updatedAt, $0.commandId) > ($1.updatedAt, $1.commandId) }
            return (200, try Self.encode(["deliveries": Array(deliveries.prefix(limit))]))
        }
    }

    /// The field a subscription's validation error is about.
    private static func field(of error: ContractError) -> String {
        if case .invalidField(let path, _) = error { return path }
        return "url"
    }
}

/// Every route the gateway serves, in the form docs/openapi.yaml writes paths, so a
/// test can hold the document and the server to the same list.
public enum GatewayRoutes {
    /// An HTTP method and an OpenAPI path template (`{name}` for a parameter).
    public struct Route: Sendable, Hashable, CustomStringConvertible {
        /// `GET` or `POST`.
        public var method: String
        /// E.g. `/v1/orders/{orderId}`.
        public var path: String

        /// `POST /v1/orders/{orderId}/cancel`.
        public var description: String { "\(method) \(path)" }

        /// The path as hummingbird's router writes it (`:name` for a parameter).
        var routerPath: String {
            path.split(separator: "/").map { $0.hasPrefix("{") ? ":" + $0.dropFirst().dropLast() : $0 }.joined(separator: "/")
        }
    }

    static let shopifyOrders = Route(method: "POST", path: "/v1/channels/shopify/orders")
    static let channelOrders = Route(method: "POST", path: "/v1/channels/{channel}/orders")
    static let easyPostEvents = Route(method: "POST", path: "/v1/carriers/easypost/events")
    static let afterShipWebhooks = Route(method: "POST", path: "/v1/carriers/aftership/webhooks")
    static let carrierTracking = Route(method: "POST", path: "/v1/carriers/{carrier}/tracking")
    static let fulfilmentUpdates = Route(method: "POST", path: "/v1/locations/{location}/fulfilment")
    static let cancelOrder = Route(method: "POST", path: "/v1/orders/{orderId}/cancel")
    static let returnOrder = Route(method: "POST", path: "/v1/orders/{orderId}/returns")
    static let releaseOrder = Route(method: "POST", path: "/v1/orders/{orderId}/release")
    static let order = Route(method: "GET", path: "/v1/orders/{orderId}")
    static let customer = Route(method: "GET", path: "/v1/customers/{customerId}")
    static let inventory = Route(method: "GET", path: "/v1/inventory/{sku}")
    static let report = Route(method: "GET", path: "/v1/reports/{name}")
    static let dashboard = Route(method: "GET", path: "/")
    static let health = Route(method: "GET", path: "/healthz")
    static let ready = Route(method: "GET", path: "/readyz")
    static let metrics = Route(method: "GET", path: "/metrics")

    /// All of them.
    public static let all: [Route] = [
        shopifyOrders, channelOrders, easyPostEvents, afterShipWebhooks, carrierTracking, fulfilmentUpdates, cancelOrder, returnOrder, releaseOrder, appeaseOrder, approveReturn,
        changeAddress, cancelLines,
        order, orderInvoices, invoice, customer, inventory, report, webhooks, addWebhook, disableWebhook, enableWebhook, webhookDeliveries, paymentIssues, retryPayment, reauthorizePayment, adyenNotifications, dashboard, health, ready, metrics,
    ]
}

import AsyncHTTPClient
import Configuration
import Contracts
import Fleet
import Foundation
import Logging
import ServiceLifecycle

/// The connectors `oms connector` runs, by name, built from configuration
/// (docs/OPERATIONS.md, "Connectors", lists every key).
public enum ConnectorCatalog {
    /// Every connector: `channels` (ChannelUpdate → the order's channel), `stock`
    /// (StockUpdate → the channel's listing), `email` (Notification → the customer,
    /// over SMTP), `sms` (Notification → the customer's phone, through Twilio) and
    /// `webhooks` (subscribed events → the brand's systems) and `payments` (capture,
    /// refund and void → the payment provider, with outcome events).
    public static let names = ["channels", "stock", "email", "sms", WebhookConnector.name, "payments"]

    /// The topics each connector consumes.
    public static let inputTopics = [
        "channels": [ChannelUpdate.topic], "stock": [StockUpdate.topic], "email": [Contracts.Notification.topic], "sms": [Contracts.Notification.topic],
        WebhookConnector.name: WebhookEvents.topics, "payments": [CapturePayment.topic],
    ]

    /// The connector called `name` as a service with its status, ready to run; a missing
    /// or wrong setting stops start-up with an error naming its key.
    public static func service(
        _ name: String, reader: ConfigReader, configuration: WorkerConfiguration, logger: Logger, http: HTTPClient = .shared
    ) throws(ConfigurationError) -> (service: any Service, status: RunnerStatus) {
        if name == WebhookConnector.name {
            let connector = WebhookConnector(settings: try WebhookSettings(keys: KeyReader(reader: reader)), configuration: configuration, http: http, logger: logger)
            return (connector, connector.status)
        }
        let connector = OutboundConnector(definition: try make(name, reader: reader, http: http), configuration: configuration, logger: logger)
        return (connector, connector.status)
    }

    /// Builds the command connector called `name` (any but `webhooks`); a missing or
    /// wrong setting stops start-up with an error naming its key.
    public static func make(_ name: String, reader: ConfigReader, http: HTTPClient = .shared) throws(ConfigurationError) -> ConnectorDefinition {
        let keys = KeyReader(reader: reader)
        let common = try CommonSettings(keys: keys, connector: name)
        switch name {
        case "channels", "stock":
            let exchange = HTTPExchange(client: http, timeout: common.httpTimeout)
            let router = ChannelRouter(channels: try channels(keys: keys, http: exchange))
            return ConnectorDefinition(
                name: name, inputTopic: inputTopics[name]![0], endpoint: router,
                concurrency: common.concurrency, breaker: common.breaker, policy: common.policy)
        case "email":
            return ConnectorDefinition(
                name: name, inputTopic: inputTopics[name]![0], endpoint: try NotificationConnectorSettings.email(keys: keys),
                concurrency: common.concurrency, breaker: common.breaker, policy: common.policy)
        case "sms":
            return ConnectorDefinition(
                name: name, inputTopic: inputTopics[name]![0],
                endpoint: try NotificationConnectorSettings.sms(keys: keys, http: HTTPExchange(client: http, timeout: common.httpTimeout)),
                concurrency: common.concurrency, breaker: common.breaker, policy: common.policy)
        case "payments":
            let router = try payments(keys: keys, http: HTTPExchange(client: http, timeout: common.httpTimeout))
            return ConnectorDefinition(
                name: name, inputTopic: inputTopics[name]![0], endpoint: router,
                concurrency: common.concurrency, breaker: common.breaker, policy: common.policy,
                outcomes: CommandOutcomes(topics: [PaymentCaptured.topic]) { command, entry in router.outcomes(of: command, entry: entry) })
        default:
            throw ConfigurationError(key: "connector", reason: "unknown connector '\(name)'; connectors: \(names.joined(separator: ", "))")
        }
    }

    /// `channels.names` lists the channels (as in `OrderPlaced.channel`) that have a
    /// sync; each has `channels.<name>.kind` (`shopify`, `amazon` or `webhook`) and the
    /// keys of its kind.
    static func channels(keys: KeyReader, http: HTTPExchange) throws(ConfigurationError) -> [String: any OutboundEndpoint] {
        var channels: [String: any OutboundEndpoint] = [:]
        for channel in try keys.list("channels.names") {
            let prefix = "channels.\(channel)"
            func required(_ key: String, secret: Bool = false) throws(ConfigurationError) -> String {
                guard let value = try keys.string("\(prefix).\(key)", secret: secret), !value.isEmpty else {
                    throw ConfigurationError(key: "\(prefix).\(key)", reason: "required for channel \(channel)")
                }
                return value
            }
            func refunds() throws(ConfigurationError) -> Bool {
                switch try keys.string("\(prefix).refunds") ?? "channel" {
                case "channel": return false
                case "payments": return true
                case let other: throw ConfigurationError(key: "\(prefix).refunds", reason: "'\(other)' is neither `channel` nor `payments`")
                }
            }
            switch try required("kind") {
            case "shopify":
                let shop = try required("shop")
                channels[channel] = ShopifyChannel(
                    shop: shop, baseURL: try keys.string("\(prefix).url") ?? "https://\(shop)", accessToken: try required("token", secret: true),
                    notifyCustomer: try keys.bool("\(prefix).notify.customer", default: false),
                    inventoryLocation: try keys.string("\(prefix).location"), refundsByPayments: try refunds(), http: http)
            case "amazon":
                channels[channel] = AmazonChannel(
                    baseURL: try required("url"), marketplaceID: try required("marketplace"), accessToken: try required("token", secret: true),
                    sellerID: try keys.string("\(prefix).seller"), http: http)
            case "webhook":
                channels[channel] = WebhookChannel(url: try required("url"), secret: try required("secret", secret: true), http: http)
            case let other:
                throw ConfigurationError(key: "\(prefix).kind", reason: "'\(other)' is not one of shopify, amazon, webhook")
            }
        }
        return channels
    }

    /// `payments.providers` lists the payment providers; each has `payments.<name>.kind`
    /// (`stripe`, `adyen` or `shopify`), `.key` (secret) and `.url`, Adyen `.merchant`
    /// and Shopify `.shop`. `payments.routes` maps channels to a
    /// provider or to `channel` (the marketplace moves the money), as `channel=route`
    /// entries; `payments.default` is the route of every other channel;
    /// `payments.reauthorize` lists the channels whose expired authorizations are
    /// re-authorized.
    static func payments(keys: KeyReader, http: HTTPExchange) throws(ConfigurationError) -> PaymentRouter {
        var providers: [String: any PaymentProvider] = [:]
        for provider in try keys.list("payments.providers") {
            let prefix = "payments.\(provider)"
            guard let key = try keys.string("\(prefix).key", secret: true), !key.isEmpty else {
                throw ConfigurationError(key: "\(prefix).key", reason: "required for payment provider \(provider)")
            }
            switch try keys.string("\(prefix).kind") ?? "" {
            case "stripe":
                providers[provider] = StripePayments(name: provider, baseURL: try keys.string("\(prefix).url") ?? "https://api.stripe.com", secretKey: key, http: http)
            case "adyen":
                guard let url = try keys.string("\(prefix).url"), !url.isEmpty else {
                    throw ConfigurationError(key: "\(prefix).url", reason: "required for Adyen: https://checkout-test.adyen.com, or your live URL prefix")
                }
                guard let merchant = try keys.string("\(prefix).merchant"), !merchant.isEmpty else {
                    throw ConfigurationError(key: "\(prefix).merchant", reason: "required for Adyen: the merchant account")
                }
                providers[provider] = AdyenPayments(name: provider, baseURL: url, apiKey: key, merchantAccount: merchant, http: http)
            case "shopify":
                guard let shop = try keys.string("\(prefix).shop"), !shop.isEmpty else {
                    throw ConfigurationError(key: "\(prefix).shop", reason: "required for Shopify: the shop, e.g. brand.myshopify.com")
                }
                providers[provider] = ShopifyPayments(name: provider, shop: shop, baseURL: try keys.string("\(prefix).url") ?? "https://\(shop)", accessToken: key, http: http)
            case let other:
                throw ConfigurationError(key: "\(prefix).kind", reason: "'\(other)' is not a supported payment provider (stripe, adyen, shopify)")
            }
        }
        func route(_ value: String, key: String) throws(ConfigurationError) -> PaymentRouter.Route {
            if value == "channel" { return .channel }
            guard providers[value] != nil else {
                throw ConfigurationError(key: key, reason: "'\(value)' is neither a provider in payments.providers nor `channel`")
            }
            return .provider(value)
        }
        var channels: [String: PaymentRouter.Route] = [:]
        for entry in try keys.list("payments.routes") {
            let parts = entry.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, !parts[0].isEmpty else {
                throw ConfigurationError(key: "payments.routes", reason: "'\(entry)' is not channel=provider")
            }
            channels[parts[0]] = try route(parts[1], key: "payments.routes")
        }
        let fallback = try keys.string("payments.default").map { value throws(ConfigurationError) in try route(value, key: "payments.default") }
        guard !providers.isEmpty || fallback == .channel else {
            throw ConfigurationError(key: "payments.providers", reason: "list at least one payment provider")
        }
        return PaymentRouter(providers: providers, channels: channels, fallback: fallback, reauthorizing: Set(try keys.list("payments.reauthorize")))
    }

    /// The settings every connector has, under `connector.*`.
    struct CommonSettings {
        var concurrency: Int
        var breaker: CircuitBreaker
        var policy: RetryPolicy
        var httpTimeout: Duration

        init(keys: KeyReader, connector: String) throws(ConfigurationError) {
            concurrency = try keys.int("connector.concurrency", default: 4, in: 1...256)
            breaker = CircuitBreaker(
                threshold: try keys.int("connector.breaker.failures", default: 5, in: 1...1_000),
                openFor: .milliseconds(try keys.int("connector.breaker.open.ms", default: 10_000, in: 10...3_600_000)))
            policy = RetryPolicy(
                baseDelay: .milliseconds(try keys.int("connector.retry.base.ms", default: 200, in: 1...60_000)),
                maxDelay: .milliseconds(try keys.int("connector.retry.max.delay.ms", default: 30_000, in: 1...3_600_000)),
                maxAttempts: try keys.int("connector.retry.max.attempts", default: 50, in: 1...100_000),
                maxElapsed: .seconds(try keys.int("connector.retry.max.elapsed.s", default: 600, in: 1...86_400)))
            httpTimeout = .milliseconds(try keys.int("connector.http.timeout.ms", default: 10_000, in: 100...300_000))
        }
    }
}

import Configuration
import Contracts
import Fleet
import Foundation
import Invoicing
import Workers

/// The gateway's settings: webhook secrets, limits and its Kafka timeout. Kafka itself
/// (brokers, SASL/TLS) and `http.host`/`http.port` are read as for workers
/// (``WorkerConfiguration``); the gateway's default port is 8080.
public struct GatewayConfiguration: Sendable {
    /// Shopify app secret (`gateway.shopify.secret`) of a brand with one shop: orders
    /// from any shop not listed in ``shopifyShops`` are checked with it and written under
    /// channel `shopify`. Shopify webhooks of such a shop are refused (401) without it.
    public var shopifySecret: String?
    /// The brand's Shopify shops by `*.myshopify.com` domain (`gateway.shopify.secrets`,
    /// `domain=secret` entries, and `gateway.shopify.shops`, `domain=channel` entries):
    /// a webhook's `X-Shopify-Shop-Domain` chooses the secret its signature is checked
    /// with and the channel its order is written under, so that the channels connector
    /// answers the shop the order came from (`channels.<channel>.shop`).
    public var shopifyShops: [String: ShopifyShop] = [:]
    /// EasyPost webhook secret (`gateway.easypost.secret`).
    public var easyPostSecret: String?
    /// AfterShip webhook secret (`gateway.aftership.secret`).
    public var afterShipSecret: String?
    /// Per-channel secrets of the generic order endpoint (`gateway.channel.secrets`,
    /// `channel=secret` entries); a channel without one is not served (404).
    public var channelSecrets: [String: String] = [:]
    /// Per-carrier secrets of the generic tracking endpoint (`gateway.carrier.secrets`).
    public var carrierSecrets: [String: String] = [:]
    /// Per-location secrets of the fulfilment answers endpoint (`gateway.location.secrets`).
    public var locationSecrets: [String: String] = [:]
    /// Bearer token of the operator endpoints (`gateway.api.token`); none means open,
    /// for local use only.
    public var apiToken: String?
    /// The key webhook subscriptions' signing secrets derive from (`webhooks.signing.key`,
    /// shared with the webhooks connector, at least 16 characters): a subscription added
    /// through the gateway is answered with its secret when it is set.
    public var webhookSigningKey: String?
    /// Largest request body accepted (`gateway.body.limit.bytes`); larger gets 413. The
    /// gateway lowers it to what fits the Kafka topics it writes (``Gateway/bodyLimit``).
    public var bodyLimit = 1 << 20
    /// How long a record may wait for Kafka's acknowledgement before the request gets
    /// 503 (`gateway.kafka.timeout.ms`): well under the 5 s after which Shopify and other
    /// senders count a webhook as failed.
    public var kafkaTimeout: Duration = .milliseconds(2_500)
    /// The `Retry-After` of a 503, in seconds (`gateway.retry.after.s`).
    public var retryAfterSeconds = 5
    /// How many idempotency keys and webhook ids are remembered (`gateway.idempotency.entries`).
    public var idempotencyEntries = 100_000
    /// Dated FX rates from the CSV file at `gateway.fx.rates` (format in ``FXRates``):
    /// with them `/v1/reports/orders` and `/v1/reports/returns` also show money in the
    /// file's base currency. None by default, so a gateway never converts with a table
    /// nobody chose for it.
    public var fxRates: FXRates?
    /// The Mustache template of printable invoices (`gateway.invoice.template`, default
    /// config/invoices/invoice.mustache), read at start-up; without it the HTML form of
    /// an invoice answers 503 (the UBL form needs none).
    public var invoiceTemplate: String? = try? String(contentsOfFile: InvoiceHTML.defaultTemplatePath, encoding: .utf8)

    /// The HMAC key (hex) Adyen signs its notifications with (`gateway.adyen.hmac.key`):
    /// without it `POST /v1/payments/adyen/notifications` refuses every notification.
    public var adyenHMACKey: String?

    /// Defaults: no secrets, so only the operator and query endpoints work.
    public init() {}

    /// The keys this type reads, with the environment variables they map to.
    public static let keys = [
        "gateway.shopify.secret", "gateway.shopify.secrets", "gateway.shopify.shops", "gateway.easypost.secret", "gateway.aftership.secret", "gateway.channel.secrets",
        "gateway.carrier.secrets", "gateway.location.secrets", "gateway.api.token", "gateway.body.limit.bytes", "gateway.kafka.timeout.ms",
        "gateway.retry.after.s", "gateway.idempotency.entries", "gateway.fx.rates", "gateway.invoice.template", "gateway.adyen.hmac.key", "webhooks.signing.key",
    ]

    /// The environment variables the gateway reads beyond the worker's
    /// (``WorkerConfiguration``), e.g. `GATEWAY_SHOPIFY_SECRET`.
    public static let knownEnvironmentVariables = Set(keys.map(WorkerConfiguration.environmentName(of:)))

    /// Reads the settings; a value of the wrong type or out of range stops start-up
    /// with an error naming its key. Secrets are read as secrets (never logged).
    public init(reader: ConfigReader) throws(ConfigurationError) {
        let keys = KeyReader(reader: reader)
        shopifySecret = try keys.string("gateway.shopify.secret", secret: true)
        shopifyShops = try Self.shops(
            secrets: Self.pairs(keys.list("gateway.shopify.secrets", secret: true), key: "gateway.shopify.secrets"),
            channels: Self.pairs(keys.list("gateway.shopify.shops"), key: "gateway.shopify.shops"),
            fallback: shopifySecret != nil)
        easyPostSecret = try keys.string("gateway.easypost.secret", secret: true)
        afterShipSecret = try keys.string("gateway.aftership.secret", secret: true)
        channelSecrets = try Self.pairs(keys.list("gateway.channel.secrets", secret: true), key: "gateway.channel.secrets")
        carrierSecrets = try Self.pairs(keys.list("gateway.carrier.secrets", secret: true), key: "gateway.carrier.secrets")
        locationSecrets = try Self.pairs(keys.list("gateway.location.secrets", secret: true), key: "gateway.location.secrets")
        apiToken = try keys.string("gateway.api.token", secret: true)
        adyenHMACKey = try keys.string("gateway.adyen.hmac.key", secret: true)
        if let key = adyenHMACKey, Hex.decode(key).map({ $0.count < 16 }) ?? true {
            throw ConfigurationError(key: "gateway.adyen.hmac.key", reason: "the HMAC key from Adyen's Customer Area, in hex (at least 32 digits)")
        }
        webhookSigningKey = try keys.string("webhooks.signing.key", secret: true)
        // The webhooks connector refuses a shorter key; a gateway that took one would hand
        // out secrets no delivery is ever signed with.
        if let key = webhookSigningKey, key.count < 16 {
            throw ConfigurationError(key: "webhooks.signing.key", reason: "at least 16 characters (the webhooks connector's key)")
        }
        bodyLimit = try keys.int("gateway.body.limit.bytes", default: bodyLimit, in: 1_024...(64 << 20))
        kafkaTimeout = .milliseconds(try keys.int("gateway.kafka.timeout.ms", default: 2_500, in: 100...300_000))
        retryAfterSeconds = try keys.int("gateway.retry.after.s", default: retryAfterSeconds, in: 1...3_600)
        idempotencyEntries = try keys.int("gateway.idempotency.entries", default: idempotencyEntries, in: 0...10_000_000)
        if let path = try keys.string("gateway.fx.rates") {
            do {
                fxRates = try FXRates.load(path: path)
            } catch {
                throw ConfigurationError(key: "gateway.fx.rates", reason: error.description)
            }
        }
        if let template = try keys.string("gateway.invoice.template") {
            do {
                invoiceTemplate = try String(contentsOfFile: template, encoding: .utf8)
            } catch {
                throw ConfigurationError(key: "gateway.invoice.template", reason: "cannot read \(template): \(error.localizedDescription)")
            }
        }
    }

    /// The shop a Shopify webhook comes from, by its `X-Shopify-Shop-Domain`: a listed
    /// shop, else (with `gateway.shopify.secret`) the single shop under channel
    /// `shopify`; nil when neither.
    public func shopifyShop(domain: String?) -> ShopifyShop? {
        if let domain, let shop = shopifyShops[domain.lowercased()] { return shop }
        return shopifySecret.map { ShopifyShop(channel: ShopifyOrderAdapter.channel, secret: $0) }
    }

    /// Joins the per-shop secrets and channels; a shop without a channel is `shopify`,
    /// which only one shop may be (two shops under one channel could not be told apart
    /// when the channel is answered).
    static func shops(secrets: [String: String], channels: [String: String], fallback: Bool) throws(ConfigurationError) -> [String: ShopifyShop] {
        if let orphan = channels.keys.sorted().first(where: { secrets[$0] == nil }) {
            throw ConfigurationError(key: "gateway.shopify.secrets", reason: "shop '\(orphan)' has a channel in gateway.shopify.shops but no secret")
        }
        var shops: [String: ShopifyShop] = [:]
        var owners: [String: String] = fallback ? [ShopifyOrderAdapter.channel: "gateway.shopify.secret"] : [:]
        for (domain, secret) in secrets.sorted(by: { $0.key < $1.key }) {
            let channel = channels[domain] ?? ShopifyOrderAdapter.channel
            guard ShopifyShop.isChannelName(channel) else {
                throw ConfigurationError(key: "gateway.shopify.shops", reason: "'\(channel)' (shop \(domain)) is not a channel name: letters, digits, '-', '_' and '.' only")
            }
            if let owner = owners[channel] {
                throw ConfigurationError(
                    key: "gateway.shopify.shops",
                    reason: "shop \(domain) and \(owner) would both be channel '\(channel)'; name a channel for each shop")
            }
            owners[channel] = "shop \(domain)"
            shops[domain.lowercased()] = ShopifyShop(channel: channel, secret: secret)
        }
        return shops
    }

    /// `name=secret` entries (comma-separated in one environment variable) as a map.
    static func pairs(_ entries: [String], key: String) throws(ConfigurationError) -> [String: String] {
        var result: [String: String] = [:]
        for entry in entries.flatMap({ $0.split(separator: ",").map(String.init) }) {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                // The entry holds a secret: name only its position, never its value.
                throw ConfigurationError(key: key, reason: "an entry is not name=secret")
            }
            guard result[parts[0]] == nil else {
                throw ConfigurationError(key: key, reason: "'\(parts[0])' is given twice")
            }
            result[parts[0]] = parts[1]
        }
        return result
    }
}

/// One Shopify shop of the brand: the channel its orders are written under and the app
/// secret its webhooks are signed with.
public struct ShopifyShop: Sendable, Equatable {
    /// The channel of its orders (`OrderPlaced.channel`), e.g. `shopify-eu`.
    public var channel: String
    /// The secret its webhooks' `X-Shopify-Hmac-Sha256` is computed with.
    public var secret: String

    /// A shop writing orders under `channel`, signed with `secret`.
    public init(channel: String, secret: String) {
        self.channel = channel
        self.secret = secret
    }

    /// Whether `name` can be a channel: it is part of the `channel/externalOrderId`
    /// partition key, so no '/' or spaces.
    static func isChannelName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || "-_.".utf8.contains(byte)
        }
    }
}

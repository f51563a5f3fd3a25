import Fleet
import Foundation
import Logging
import Testing

@testable import Outbound

/// A connector with a missing or wrong setting does not start, and says which key.
@Suite("Connector configuration")
struct ConnectorConfigurationTests {
    static func error(_ connector: String, _ environment: [String: String]) async throws -> String? {
        let reader = try await WorkerConfiguration.reader(environment: environment)
        do {
            _ = try ConnectorCatalog.service(connector, reader: reader, configuration: WorkerConfiguration(brokers: "localhost:9092"), logger: Logger(label: "test"))
            return nil
        } catch {
            return error.description
        }
    }

    @Test("bad channel, retry and email settings name their key")
    func namesTheKey() async throws {
        #expect(try await Self.error("channels", ["CHANNELS_NAMES": "shop"])?.contains("channels.shop.kind (CHANNELS_SHOP_KIND): required") == true)
        #expect(try await Self.error("channels", ["CHANNELS_NAMES": "shop", "CHANNELS_SHOP_KIND": "ebay"])?.contains("'ebay' is not one of shopify, amazon, webhook") == true)
        #expect(try await Self.error("stock", ["CHANNELS_NAMES": "m", "CHANNELS_M_KIND": "amazon", "CHANNELS_M_URL": "http://x"])?.contains("channels.m.marketplace") == true)
        #expect(try await Self.error("channels", ["CONNECTOR_RETRY_MAX_ATTEMPTS": "0"])?.contains("connector.retry.max.attempts") == true)
        #expect(try await Self.error("email", [:])?.contains("email.smtp.host (EMAIL_SMTP_HOST): required") == true)
        let base = ["EMAIL_SMTP_HOST": "mail", "EMAIL_FROM": "a@b.example", "EMAIL_MESSAGE_ID_DOMAIN": "b.example"]
        #expect(try await Self.error("email", base.merging(["EMAIL_SMTP_SECURITY": "tls"]) { $1 })?.contains("email.smtp.security") == true)
        #expect(try await Self.error("email", base.merging(["EMAIL_QUIET_HOURS": "late"]) { $1 })?.contains("email.quiet.hours") == true)
        #expect(try await Self.error("email", base.merging(["EMAIL_TEMPLATES": "/nonexistent"]) { $1 })?.contains("email.templates") == true)
        #expect(try await Self.error("fax", [:])?.contains("unknown connector 'fax'") == true)
        #expect(try await Self.error("sms", [:])?.contains("sms.from (SMS_FROM): required") == true)
        let sms = ["SMS_FROM": "+15005550006", "SMS_ACCOUNT_SID": "AC1", "SMS_AUTH_TOKEN": "t"]
        #expect(try await Self.error("sms", sms.merging(["SMS_FROM": "0151 2345"]) { $1 })?.contains("is neither an E.164 number") == true)
        #expect(try await Self.error("sms", sms.merging(["SMS_TEMPLATES": "/nonexistent"]) { $1 })?.contains("sms.templates") == true)
        #expect(try await Self.error("sms", sms.merging(["SMS_QUIET_KINDS": "loud"]) { $1 })?.contains("sms.quiet.kinds") == true)
        #expect(try await Self.error("webhooks", [:])?.contains("webhooks.signing.key (WEBHOOKS_SIGNING_KEY): required") == true)
        #expect(try await Self.error("webhooks", ["WEBHOOKS_SIGNING_KEY": "short"])?.contains("at least 16 characters") == true)
        #expect(try await Self.error("webhooks", ["WEBHOOKS_SIGNING_KEY": String(repeating: "k", count: 32), "WEBHOOKS_RETRY_WINDOW_S": "0"])?.contains("webhooks.retry.window.s") == true)
    }

    @Test("good settings build every connector")
    func builds() async throws {
        let environment = [
            "CHANNELS_NAMES": "shopify,amazon,brand", "CHANNELS_SHOPIFY_KIND": "shopify", "CHANNELS_SHOPIFY_SHOP": "s.myshopify.com",
            "CHANNELS_SHOPIFY_TOKEN": "t", "CHANNELS_AMAZON_KIND": "amazon", "CHANNELS_AMAZON_URL": "https://sellingpartnerapi-eu.amazon.com",
            "CHANNELS_AMAZON_MARKETPLACE": "A1PA6795UKMFR9", "CHANNELS_AMAZON_TOKEN": "t", "CHANNELS_BRAND_KIND": "webhook",
            "CHANNELS_BRAND_URL": "https://brand.example/hook", "CHANNELS_BRAND_SECRET": "s",
            "EMAIL_SMTP_HOST": "mail", "EMAIL_FROM": "a@b.example", "EMAIL_MESSAGE_ID_DOMAIN": "b.example", "EMAIL_QUIET_HOURS": "21:00-08:00",
            "EMAIL_QUIET_TIME_ZONE": "Europe/Berlin", "WEBHOOKS_SIGNING_KEY": "a-signing-key-of-32-characters!!",
            "SMS_FROM": "MG0123456789abcdef0123456789abcdef", "SMS_ACCOUNT_SID": "AC1", "SMS_AUTH_TOKEN": "t", "SMS_QUIET_HOURS": "21:00-08:00",
            "PAYMENTS_PROVIDERS": "stripe", "PAYMENTS_STRIPE_KIND": "stripe", "PAYMENTS_STRIPE_KEY": "sk_test_x", "PAYMENTS_DEFAULT": "stripe",
        ]
        for name in ConnectorCatalog.names {
            #expect(try await Self.error(name, environment) == nil, "\(name)")
        }
        let reader = try await WorkerConfiguration.reader(environment: environment)
        let channels = try ConnectorCatalog.make("channels", reader: reader)
        #expect((channels.endpoint as? ChannelRouter)?.channels.keys.sorted() == ["amazon", "brand", "shopify"])
    }
}

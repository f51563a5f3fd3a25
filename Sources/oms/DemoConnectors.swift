import Contracts
import Kafka
import Fleet
import Foundation
import Logging
import Outbound
import Workers

/// The demo's outbound side: the channel connector, and the local receivers it talks to
/// (``LocalChannels``), whose counts the invariants read.
struct DemoConnectors: Sendable {
    /// The receivers.
    let channels: LocalChannels
    /// Their address.
    let base: String
    /// The `channels` connector: Shopify orders to the local shop, web orders to the
    /// webhook receiver, marketplace orders to the local SP-API.
    let channelConnector: OutboundConnector
    /// The `stock` connector: the stock feeds to the same three.
    let stockConnector: OutboundConnector
    /// The stock feed rules, to recompute what each channel should show.
    let feeds: StockFeedRules
    /// The local SMTP receiver the customers' emails go to.
    let mailbox: LocalMailbox
    /// The `email` connector: notifications to the local mailbox over SMTP.
    let emailConnector: OutboundConnector

    init(
        channels: LocalChannels, base: String, feeds: StockFeedRules, mailbox: LocalMailbox, smtpPort: Int, settings: WorkerConfiguration, logger: Logger
    ) throws {
        self.channels = channels
        self.base = base
        self.feeds = feeds
        self.mailbox = mailbox
        // Now and then an answer is lost after the effect, as on a real network: the
        // connector reconciles it by reading the order back.
        channels.setFaults { $0.loseAnswerEvery = 97; $0.holdAnswer = .seconds(3) }
        // The catalog is listed on the shop and the marketplace before any stock moves.
        channels.listSKUs(DemoScenario.regularSKUs + DemoScenario.scarceSKUs)
        let http = HTTPExchange(client: .shared, timeout: .seconds(2))
        let router = ChannelRouter(channels: [
            ShopifyOrderAdapter.channel: ShopifyChannel(
                shop: "demo.myshopify.com", baseURL: base, accessToken: channels.token, inventoryLocation: "655441491", http: http),
            DemoScenario.Route.web.rawValue: WebhookChannel(url: "\(base)/hooks/web", secret: channels.secret, http: http),
            DemoScenario.Route.marketplace.rawValue: AmazonChannel(
                baseURL: base, marketplaceID: "A1PA6795UKMFR9", accessToken: channels.token, sellerID: "A2DEMOSELLER", http: http),
        ])
        func connector(_ name: String, _ topic: String) -> OutboundConnector {
            let definition = ConnectorDefinition(
                name: name, inputTopic: topic, endpoint: router, concurrency: 8, breaker: CircuitBreaker(), policy: RetryPolicy(maxElapsed: .seconds(120)))
            return OutboundConnector(definition: definition, configuration: settings, logger: logger)
        }
        channelConnector = connector("channels", ChannelUpdate.topic)
        stockConnector = connector("stock", StockUpdate.topic)
        let email = try EmailEndpoint(settings: EmailSettings(
            host: "127.0.0.1", port: smtpPort, security: .none, fromAddress: "orders@demo.orderfleet.example", fromName: "OrderFleet demo shop",
            messageIDDomain: "demo.orderfleet.example", defaultLocales: [DemoScenario.Route.marketplace.rawValue: "de"]))
        emailConnector = OutboundConnector(
            definition: ConnectorDefinition(
                name: "email", inputTopic: Contracts.Notification.topic, endpoint: email, concurrency: 4, breaker: CircuitBreaker(),
                policy: RetryPolicy(maxElapsed: .seconds(120))),
            configuration: settings, logger: logger)
    }

    /// The connectors, to run with the stages.
    var services: [OutboundConnector] { [channelConnector, stockConnector, emailConnector] }

    /// Tells the local shop about the scenario's Shopify orders, as the real shop would
    /// know them: line item ids and quantities.
    func register(_ scenario: DemoScenario) {
        for planned in scenario.orders where planned.route == .shopify {
            channels.addShopifyOrder(
                planned.order.externalOrderId, lines: Dictionary(planned.order.lines.map { ($0.lineId, $0.quantity) }, uniquingKeysWith: +))
        }
    }

    /// What each channel must have been told, from the order views: every shipment
    /// confirmed (a Shopify fulfillment per tracking number, an SP-API confirmation per
    /// shipment, a webhook per shipment).
    struct Expected {
        var fulfillments: [String] = []
        var confirmations: [String] = []
        var webhooks: [String] = []
        var total: Int { fulfillments.count + confirmations.count + webhooks.count }
    }

    func expected(views: GlobalTable, scenario: DemoScenario) -> Expected {
        var expected = Expected()
        for planned in scenario.orders where planned.expectsView {
            guard case .orderView(let view) = views.value(planned.orderId) else { continue }
            for shipment in view.shipments {
                switch planned.route {
                case .shopify: expected.fulfillments.append(shipment.trackingNumber)
                case .marketplace: expected.confirmations.append(shipment.shipmentId)
                case .web: expected.webhooks.append("\(view.externalOrderId)/ship/\(shipment.shipmentId)")
                }
            }
        }
        return expected
    }

    /// Waits up to `timeout` for the channels to have been told everything expected;
    /// then the invariant: each shipment confirmed to its channel exactly once.
    func invariant(views: GlobalTable, scenario: DemoScenario, timeout: Duration) async -> DemoSummary.Invariant {
        let expected = expected(views: views, scenario: scenario)
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline, missing(expected, channels.ledger) > 0 {
            try? await Task.sleep(for: .milliseconds(250))
        }
        let ledger = channels.ledger
        let counts = expected.fulfillments.map { ledger.fulfillments[$0, default: 0] } + expected.confirmations.map { ledger.confirmations[$0, default: 0] }
            + expected.webhooks.map { ledger.webhookFacts[$0, default: 0] }
        let missed = counts.filter { $0 == 0 }.count
        let twice = counts.filter { $0 > 1 }.count
        let shipFacts = ledger.webhookFacts.keys.filter { $0.contains("/ship/") }.count
        let extra = ledger.fulfillments.count + ledger.confirmations.count + shipFacts - expected.total
        let otherFacts = ledger.webhookFacts.count - shipFacts + ledger.cancellations.count + ledger.refunds.count
        return DemoSummary.Invariant(
            name: "every shipped channel order confirmed to its channel once", holds: missed == 0 && twice == 0 && extra <= 0,
            detail: "\(expected.fulfillments.count) Shopify fulfillments, \(expected.confirmations.count) SP-API confirmations, \(expected.webhooks.count) webhooks expected; "
                + "\(missed) missing, \(twice) more than once, \(max(extra, 0)) unexpected; \(otherFacts) cancels and refunds told too; "
                + "\(ledger.lostAnswers) answers lost on the way and reconciled")
    }

    private func missing(_ expected: Expected, _ ledger: LocalChannels.Ledger) -> Int {
        expected.fulfillments.filter { ledger.fulfillments[$0] == nil }.count + expected.confirmations.filter { ledger.confirmations[$0] == nil }.count
            + expected.webhooks.filter { ledger.webhookFacts[$0] == nil }.count
    }
}

extension DemoConnectors {
    /// Waits up to `timeout` for every feed to show what the final levels allow; then the
    /// invariant: no channel was ever shown more than available-to-sell (the webhook feed
    /// carries it with each update), and each now shows exactly what its rule gives.
    func stockInvariant(levels: GlobalTable, timeout: Duration) async -> DemoSummary.Invariant {
        let receivers = ["shopify": "shopify", DemoScenario.Route.marketplace.rawValue: "amazon", DemoScenario.Route.web.rawValue: "webhook"]
        func mismatches() -> [String] {
            let ledger = channels.ledger
            var wrong: [String] = []
            for feed in feeds.channels {
                guard let receiver = receivers[feed.channel] else { continue }
                for sku in DemoScenario.regularSKUs + DemoScenario.scarceSKUs {
                    guard case .inventoryLevel(let level) = levels.value(sku) else { continue }
                    let expected = StockFeed.quantity(of: level, for: feed)
                    let shown = ledger.stock["\(receiver)/\(sku)"]?.last
                    if shown != expected { wrong.append("\(feed.channel)/\(sku): shows \(shown.map(String.init) ?? "nothing"), should \(expected)") }
                }
            }
            return wrong
        }
        let deadline = ContinuousClock.now + timeout
        var wrong = mismatches()
        while !wrong.isEmpty, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(500))
            wrong = mismatches()
        }
        let ledger = channels.ledger
        let updates = ledger.stock.values.map(\.count).reduce(0, +)
        return DemoSummary.Invariant(
            name: "no feed ever advertised more than available-to-sell", holds: wrong.isEmpty && ledger.stockAboveAvailable == 0,
            detail: wrong.isEmpty && ledger.stockAboveAvailable == 0
                ? "\(updates) stock updates to \(feeds.channels.map(\.channel).joined(separator: ", ")); none above available-to-sell, every feed now at its rule's value"
                : "\(ledger.stockAboveAvailable) updates above available-to-sell; " + wrong.prefix(8).joined(separator: "; "))
    }
}

extension DemoConnectors {
    /// Waits up to `timeout` for the email connector to settle every notification; then
    /// the invariant: each one with a recipient delivered exactly once (one message per
    /// Message-ID in the mailbox), the others skipped, none unknown or failed.
    func emailInvariant(kafka: KafkaConfiguration, logger: Logger, timeout: Duration) async -> DemoSummary.Invariant {
        let deadline = ContinuousClock.now + timeout
        var notifications = Set<String>()
        var states: [String: DeliveryState] = [:]
        repeat {
            guard let records = try? await TopicScan.records(of: [Contracts.Notification.topic, OutboundDelivery.topic], kafka: kafka, logger: logger) else { break }
            notifications = []
            states = [:]
            for record in records {
                guard let envelope = try? Envelope.decode(record.eventRecord) else { continue }
                switch envelope.event {
                case .notification: notifications.insert(envelope.id)
                case .outboundDelivery(let entry) where entry.connector == "email": states[entry.commandId] = entry.state
                default: break
                }
            }
            if notifications.allSatisfy({ states[$0].map { $0 != .attempting } ?? false }) { break }
            try? await Task.sleep(for: .milliseconds(500))
        } while ContinuousClock.now < deadline
        let counts = mailbox.byMessageID
        let delivered = notifications.filter { states[$0] == .delivered }.count
        let skipped = notifications.filter { states[$0] == .skipped }.count
        let unsettled = notifications.count - delivered - skipped
        let twice = counts.values.filter { $0 > 1 }.count
        return DemoSummary.Invariant(
            name: "every notification delivered once", holds: unsettled == 0 && twice == 0 && counts.count == delivered,
            detail: "\(notifications.count) notifications: \(delivered) emails delivered (\(counts.count) Message-IDs in the mailbox, \(twice) more than once), "
                + "\(skipped) skipped (no address or opted out), \(unsettled) not delivered")
    }
}

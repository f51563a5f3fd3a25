import Contracts
import Kafka
import Fleet
import Foundation
import Logging
import Outbound
import ServiceLifecycle
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
    /// The `sms` connector: the same notifications as texts, to the local Twilio stand-in.
    let smsConnector: OutboundConnector
    /// Its templates, to work out which texts the notifications call for.
    let smsTemplates: SMSTemplates
    /// The right-hand side of the emails' Message-IDs.
    static let messageIDDomain = "demo.orderfleet.example"
    /// The default locales per channel of emails and texts.
    static let smsLocales = [DemoScenario.Route.marketplace.rawValue: "de"]
    /// The `webhooks` connector: the brand ERP's subscription (``subscribe(kafka:)``) to
    /// the local receiver `/hooks/brand-erp`.
    let webhookConnector: WebhookConnector
    /// The key the subscription's secret derives from.
    static let signingKey = "orderfleet-demo-webhook-signing-key"
    /// The `payments` connector: captures, refunds and voids of Shopify orders through
    /// the local shop's transactions API (so the channel connector does not refund them
    /// too), of marketplace orders skipped (the marketplace moves the money), of the
    /// others at the local Stripe.
    let paymentConnector: OutboundConnector
    /// What the brand ERP subscribes to.
    static let subscribedTypes = [OrderPlaced.eventType, ShipmentCreated.eventType, OrderCancelled.eventType]

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
                shop: "demo.myshopify.com", baseURL: base, accessToken: channels.token, inventoryLocation: "655441491", refundsByPayments: true, http: http),
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
            messageIDDomain: Self.messageIDDomain, defaultLocales: Self.smsLocales))
        emailConnector = OutboundConnector(
            definition: ConnectorDefinition(
                name: "email", inputTopic: Contracts.Notification.topic, endpoint: email, concurrency: 4, breaker: CircuitBreaker(),
                policy: RetryPolicy(maxElapsed: .seconds(120))),
            configuration: settings, logger: logger)
        smsTemplates = try SMSTemplates()
        let sms = TwilioSMS(
            baseURL: base, accountSID: "AC0000000000000000000000000000demo", authToken: channels.token, from: "+15005550006",
            templates: smsTemplates, defaultLocales: Self.smsLocales, http: http)
        smsConnector = OutboundConnector(
            definition: ConnectorDefinition(
                name: "sms", inputTopic: Contracts.Notification.topic, endpoint: sms, concurrency: 4, breaker: CircuitBreaker(),
                policy: RetryPolicy(maxElapsed: .seconds(120))),
            configuration: settings, logger: logger)
        // Now and then a payment answer is lost too: reconciled by reading the
        // PaymentIntent or its refunds back.
        channels.stripe.setFaults { $0.loseAnswerEvery = 41; $0.holdAnswer = .seconds(3) }
        let payments = PaymentRouter(
            providers: [
                "stripe": StripePayments(baseURL: base, secretKey: channels.stripe.secretKey, http: http),
                "shopify": ShopifyPayments(shop: "demo.myshopify.com", baseURL: base, accessToken: channels.token, http: http),
            ],
            channels: [DemoScenario.Route.marketplace.rawValue: .channel, ShopifyOrderAdapter.channel: .provider("shopify")], fallback: .provider("stripe"),
            reauthorizing: [DemoScenario.Route.web.rawValue])
        paymentConnector = OutboundConnector(
            definition: ConnectorDefinition(
                name: "payments", inputTopic: CapturePayment.topic, endpoint: payments, concurrency: 8, breaker: CircuitBreaker(),
                policy: RetryPolicy(maxElapsed: .seconds(120)),
                outcomes: CommandOutcomes(topics: [PaymentCaptured.topic]) { command, entry in payments.outcomes(of: command, entry: entry) }),
            configuration: settings, logger: logger)
        webhookConnector = WebhookConnector(
            settings: WebhookSettings(signingKey: Self.signingKey, policy: RetryPolicy(baseDelay: .milliseconds(200), maxDelay: .seconds(2), maxElapsed: .seconds(120)), concurrency: 16, httpTimeout: .seconds(2)),
            configuration: settings, logger: logger)
    }

    /// The connectors, to run with the stages.
    var services: [any Service] { [channelConnector, stockConnector, emailConnector, smsConnector, webhookConnector, paymentConnector] }

    /// Subscribes the brand's ERP (the local receiver `/hooks/brand-erp`) to placed,
    /// shipped and cancelled orders, as `oms webhooks add` would; before the webhooks
    /// connector starts, so it knows the subscription from its first event.
    func subscribe(kafka: KafkaConfiguration) async throws -> WebhookSubscription {
        let now = Date()
        let subscription = WebhookSubscription(
            subscriptionId: WebhookEvents.newSubscriptionID(), url: "\(base)/hooks/brand-erp", eventTypes: Self.subscribedTypes.map(\.name),
            description: "the brand's ERP (demo)", status: .active, createdAt: now, updatedAt: now)
        channels.setSecret(WebhookEvents.signingSecret(subscriptionID: subscription.subscriptionId, signingKey: Self.signingKey), forHook: "brand-erp")
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(kafka: kafka))
        _ = try await producer.send(try KafkaProducerMessage(Envelope(id: UUID().uuidString, source: "oms/demo", time: now, event: subscription.event), topic: WebhookSubscription.topic))
        try await producer.close()
        return subscription
    }

    /// Tells the local shop about the scenario's Shopify orders, as the real shop would
    /// know them (line item ids and quantities, the checkout's authorization), and the
    /// local Stripe about every other checkout's authorization; one card in
    /// ``declinedEvery`` is declined at capture.
    func register(_ scenario: DemoScenario) {
        for planned in scenario.orders where planned.route == .shopify {
            let id = planned.order.externalOrderId
            channels.addShopifyOrder(id, lines: Dictionary(planned.order.lines.map { ($0.lineId, $0.quantity) }, uniquingKeysWith: +), authorized: planned.order.payment.amount)
            if planned.index % Self.declinedEvery == Self.declinedEvery / 2 { channels.setFaults { $0.declinedShopifyOrders.insert(id) } }
        }
        for (count, planned) in scenario.orders.filter({ $0.route != .shopify }).enumerated() {
            guard let intent = planned.order.payment.reference else { continue }
            let expired = count % Self.expiredEvery == 5
            let savedCard = !expired || count % (2 * Self.expiredEvery) != Self.expiredEvery + 5
            channels.stripe.authorize(intent, amount: planned.order.payment.amount.minorUnits, currency: planned.order.payment.amount.currency.code, savedCard: savedCard)
            if planned.index % Self.declinedEvery == Self.declinedEvery / 2 { channels.stripe.setFaults { $0.declined.insert(intent) } }
            if expired { channels.stripe.setFaults { $0.expired.insert(intent) } }
        }
    }

    /// One order paid at Stripe in this many has an authorization that lapsed before
    /// capture: it is re-authorized with the saved card, or, one in two, held for an
    /// operator (no card was saved at checkout).
    static let expiredEvery = 12

    /// One order in this many has a card that is declined at capture.
    static let declinedEvery = 40

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
    /// What the customers must have received for the notifications written: an email per
    /// notification with an address (by Message-ID, which derives from the notification
    /// id) and a text per notification with a phone and a kind that is texted (by number
    /// and text, which is what Twilio keeps).
    struct ExpectedMessages {
        var notifications = 0
        var emails: [String] = []
        var texts: [String: Int] = [:]
    }

    private func expectedMessages(kafka: KafkaConfiguration, logger: Logger) async throws -> ExpectedMessages {
        var expected = ExpectedMessages()
        for record in try await TopicScan.records(of: [Contracts.Notification.topic], kafka: kafka, logger: logger) {
            guard let envelope = try? Envelope.decode(record.eventRecord), case .notification(let note) = envelope.event else { continue }
            expected.notifications += 1
            if let email = note.recipientEmail, !email.isEmpty {
                expected.emails.append(EmailEndpoint.messageID(notificationID: envelope.id, domain: Self.messageIDDomain))
            }
            if let phone = note.recipientPhone.flatMap(PhoneNumber.e164), let text = smsTemplates.render(note, defaults: Self.smsLocales) {
                expected.texts["\(phone)|\(text)", default: 0] += 1
            }
        }
        return expected
    }

    /// Waits up to `timeout` for the email and SMS connectors to deliver what the
    /// notifications call for; then the invariants: every email with its Message-ID in
    /// the mailbox exactly once, every text at Twilio exactly once, nothing else. (Read
    /// from the receivers, not from the ledger: the embedded broker keeps a bounded log
    /// per partition, dropping the oldest records past its size limit, and a 2,000-order
    /// run's ledger outgrows it.)
    func notificationInvariants(kafka: KafkaConfiguration, logger: Logger, timeout: Duration) async -> [DemoSummary.Invariant] {
        let deadline = ContinuousClock.now + timeout
        var expected = ExpectedMessages()
        repeat {
            do {
                expected = try await expectedMessages(kafka: kafka, logger: logger)
            } catch {
                logger.warning("cannot read the notifications; trying again", metadata: ["error": "\(error)"])
            }
            let mailbox = mailbox.byMessageID
            let texts = channels.ledger.texts
            if expected.notifications > 0, expected.emails.allSatisfy({ mailbox[$0] != nil }), expected.texts.keys.allSatisfy({ texts[$0] != nil }) { break }
            try? await Task.sleep(for: .milliseconds(500))
        } while ContinuousClock.now < deadline
        let mailbox = mailbox.byMessageID
        let emailsMissing = expected.emails.filter { mailbox[$0] == nil }.count
        let emailsTwice = mailbox.values.filter { $0 > 1 }.count
        let emailsUnexpected = Set(mailbox.keys).subtracting(expected.emails).count
        let texts = channels.ledger.texts
        let textsMissing = expected.texts.filter { texts[$0.key] == nil }.count
        let textsTwice = texts.filter { $0.value > (expected.texts[$0.key] ?? 1) }.count
        let textsUnexpected = Set(texts.keys).subtracting(expected.texts.keys).count
        let textCount = expected.texts.values.reduce(0, +)
        return [
            DemoSummary.Invariant(
                name: "every notification delivered once", holds: emailsMissing == 0 && emailsTwice == 0 && emailsUnexpected == 0 && !expected.emails.isEmpty,
                detail: "\(expected.notifications) notifications, \(expected.emails.count) with an address: \(mailbox.count) Message-IDs in the mailbox; "
                    + "\(emailsMissing) missing, \(emailsTwice) more than once, \(emailsUnexpected) unexpected"),
            DemoSummary.Invariant(
                name: "every text message sent once", holds: textsMissing == 0 && textsTwice == 0 && textsUnexpected == 0 && textCount > 0,
                detail: "\(textCount) texts expected (a phone and a kind that is texted), \(texts.values.reduce(0, +)) at the Twilio API; "
                    + "\(textsMissing) missing, \(textsTwice) more than once, \(textsUnexpected) unexpected; \(expected.notifications - textCount) notifications not texted"),
        ]
    }
}

extension DemoConnectors {
    /// Waits up to `timeout` for every subscribed event to reach the brand's receiver;
    /// then the invariant: each one delivered once (one applied `webhook-id` per event),
    /// nothing else, every signature good.
    func webhookInvariant(_ subscription: WebhookSubscription, kafka: KafkaConfiguration, logger: Logger, timeout: Duration) async -> DemoSummary.Invariant {
        let deadline = ContinuousClock.now + timeout
        var expected: [String: String] = [:]
        let prefix = "\(subscription.subscriptionId)/"
        func missing() -> Int {
            let effects = channels.ledger.webhookEffects
            return expected.keys.filter { effects[$0] == nil }.count
        }
        repeat {
            guard let records = try? await TopicScan.records(of: Self.subscribedTypes.map(Self.topic), kafka: kafka, logger: logger) else { break }
            expected = [:]
            for record in records {
                guard let event = try? Envelope.decode(record.eventRecord), subscription.wants(event.type, at: event.time) else { continue }
                expected[subscription.deliveryID(of: event.id)] = event.type.name
            }
            if missing() == 0 { break }
            try? await Task.sleep(for: .milliseconds(500))
        } while ContinuousClock.now < deadline
        let ledger = channels.ledger
        let calls = ledger.webhookCalls.filter { $0.key.hasPrefix(prefix) }
        let effects = ledger.webhookEffects.filter { $0.key.hasPrefix(prefix) }
        let absent = missing()
        let unexpected = effects.keys.filter { expected[$0] == nil }.count
        let repeated = calls.values.filter { $0 > 1 }.count
        let byType = Dictionary(grouping: expected.values, by: { $0 }).mapValues(\.count)
        return DemoSummary.Invariant(
            name: "every subscribed event delivered to the brand's webhook once",
            holds: absent == 0 && unexpected == 0 && effects.values.allSatisfy { $0 == 1 } && ledger.badSignatures == 0,
            detail: "\(expected.count) events (\(byType.keys.sorted().map { "\(byType[$0]!) \($0)" }.joined(separator: ", "))); "
                + "\(absent) missing, \(unexpected) unexpected, \(ledger.badSignatures) bad signatures; \(repeated) sent again under the same webhook-id after a lost answer")
    }

    private static func topic(_ type: EventType) -> String {
        EventRegistry.all.first { $0.eventType == type }!.topic
    }
}

extension DemoConnectors {
    /// The payment commands written, and what the providers must have done for them:
    /// one effect per command routed to Stripe (by idempotency key) and the exact money
    /// per Shopify order (its REST API has no keys; refunds carry theirs in the note);
    /// none for a declined card (its captures are declined, and a refund of the
    /// returned goods is refused: nothing was captured).
    struct ExpectedPayments {
        var keys: [String: (intent: String, amount: Int64, declined: Bool)] = [:]
        var commands: [String: Bool] = [:]
        var refusedRefunds = 0
        var outcomes: [String: Int] = [:]
        var failures: [String: Int] = [:]
        var skipped = 0
        var captures: [String: Int64] = [:]
        var refunds: [String: Int64] = [:]
        var voids: Set<String> = []
        var shopifyCaptures: [String: Int64] = [:]
        var shopifyRefunds: [String: Int64] = [:]
        var shopifyRefundKeys: Set<String> = []
        var shopifyVoids: [String: Int] = [:]
        var shopifyCommands = 0
        var lapsed: [String: Int] = [:]
    }

    private func expectedPayments(kafka: KafkaConfiguration, logger: Logger) async throws -> ExpectedPayments {
        var expected = ExpectedPayments()
        let declined = channels.stripe.declinedIntents
        let expired = channels.stripe.expiredIntents
        let declinedShopify = channels.declinedShopifyOrders
        var seen: Set<String> = []
        for record in try await TopicScan.records(of: [CapturePayment.topic, PaymentCaptured.topic], kafka: kafka, logger: logger) {
            // A replayed settlement writes the same outcome again, under the same id.
            guard let envelope = try? Envelope.decode(record.eventRecord), seen.insert(envelope.id).inserted else { continue }
            guard let request = PaymentRequest(command: envelope) else {
                expected.note(outcome: envelope.event)
                continue
            }
            guard request.channel != DemoScenario.Route.marketplace.rawValue, let reference = request.reference else {
                expected.skipped += 1
                continue
            }
            let amount = request.amount?.minorUnits ?? 0
            if request.channel == ShopifyOrderAdapter.channel {
                let refused = request.operation != .void && declinedShopify.contains(reference)
                expected.commands[envelope.id] = refused
                expected.shopifyCommands += 1
                switch request.operation {
                case .capture where !refused: expected.shopifyCaptures[reference, default: 0] += amount
                case .refund where !refused:
                    expected.shopifyRefunds[reference, default: 0] += amount
                    expected.shopifyRefundKeys.insert("payments/\(envelope.id)")
                case .refund: expected.refusedRefunds += 1
                case .void: expected.shopifyVoids[reference, default: 0] += 1
                case .capture: break
                }
                continue
            }
            // A lapsed authorization without a saved card cannot be re-authorized: nothing is taken.
            let refused = request.operation != .void && (declined.contains(reference) || expired[reference] == false)
            expected.keys["payments/\(envelope.id)"] = (reference, amount, refused)
            if request.operation == .capture, expired[reference] != nil { expected.lapsed[expired[reference]! ? "reauthorized" : "held", default: 0] += 1 }
            expected.commands[envelope.id] = refused
            switch request.operation {
            case .capture where !refused: expected.captures[reference, default: 0] += amount
            case .refund where !refused: expected.refunds[reference, default: 0] += amount
            case .refund: expected.refusedRefunds += 1
            case .void: expected.voids.insert(reference)
            case .capture: break
            }
        }
        return expected
    }

    /// Waits up to `timeout` for every payment command to be settled; then the
    /// invariant: each capture, refund and void done once at its provider (Stripe:
    /// effects per idempotency key and money per PaymentIntent; Shopify: money per
    /// order and refunds per key), declined cards never charged, and one outcome event
    /// per command.
    func paymentInvariant(kafka: KafkaConfiguration, logger: Logger, timeout: Duration) async -> DemoSummary.Invariant {
        let deadline = ContinuousClock.now + timeout
        var expected = ExpectedPayments()
        // A re-authorized capture or a refund spread over re-authorized payments is made
        // under the command's key with a suffix (`/reauthorization`, `/<payment>`).
        func byCommand(_ effects: [String: Int]) -> [String: Int] {
            Dictionary(effects.map { ($0.key.split(separator: "/").prefix(2).joined(separator: "/"), $0.value) }, uniquingKeysWith: +)
        }
        func settled(_ expected: ExpectedPayments) -> Bool {
            let effects = byCommand(channels.stripe.ledger.effects)
            return expected.keys.allSatisfy { key, value in value.declined || effects[key] != nil }
                && expected.commands.keys.allSatisfy { expected.outcomes[$0] != nil }
        }
        repeat {
            if let read = try? await expectedPayments(kafka: kafka, logger: logger) { expected = read }
            if !expected.keys.isEmpty, settled(expected) { break }
            try? await Task.sleep(for: .milliseconds(500))
        } while ContinuousClock.now < deadline
        let ledger = channels.stripe.ledger
        let effects = byCommand(ledger.effects)
        let shop = channels.ledger
        let missing = expected.keys.filter { !$0.value.declined && effects[$0.key] == nil }.count
            + expected.shopifyRefundKeys.filter { shop.refunds[$0] == nil }.count
        let twice = ledger.effects.values.filter { $0 > 1 }.count + shop.refunds.filter { $0.key.hasPrefix("payments/") && $0.value > 1 }.count
        let unexpected = Set(effects.keys).subtracting(expected.keys.keys).count
            + Set(shop.refunds.keys.filter { $0.hasPrefix("payments/") }).subtracting(expected.shopifyRefundKeys).count
        let charged = expected.keys.filter { $0.value.declined && effects[$0.key] != nil }.count
            + channels.declinedShopifyOrders.filter { shop.shopifyCaptured[$0] != nil }.count
        let refused = expected.commands.values.filter { $0 }.count
        let declined = refused - expected.refusedRefunds
        // Money on a re-authorized payment counts for the payment it replaced.
        func original(_ perPayment: [String: Int64]) -> [String: Int64] {
            Dictionary(perPayment.map { (ledger.reauthorizations[$0.key] ?? $0.key, $0.value) }, uniquingKeysWith: +)
        }
        let money = original(ledger.captured) == expected.captures && original(ledger.refunded) == expected.refunds && ledger.cancelled == expected.voids
        let shopifyMoney = shop.shopifyCaptured == expected.shopifyCaptures && shop.shopifyRefunded == expected.shopifyRefunds && shop.shopifyVoided == expected.shopifyVoids
        let outcomesMissing = expected.commands.keys.filter { expected.outcomes[$0] == nil }.count
        let outcomesTwice = expected.outcomes.values.filter { $0 > 1 }.count
        let failuresRight = expected.failures.count == refused
        return DemoSummary.Invariant(
            name: "every capture, refund and void executed once at the payment provider",
            holds: missing == 0 && twice == 0 && unexpected == 0 && charged == 0 && money && shopifyMoney && outcomesMissing == 0 && outcomesTwice == 0
                && failuresRight && !expected.keys.isEmpty && expected.shopifyCommands > 0,
            detail: "\(expected.keys.count) commands to Stripe (\(expected.captures.count) orders captured, \(expected.refunds.count) refunded, "
                + "\(expected.voids.count) voided), \(expected.shopifyCommands) to Shopify's transactions API (\(expected.shopifyCaptures.count) orders captured, "
                + "\(expected.shopifyRefunds.count) refunded, \(expected.shopifyVoids.count) voided); \(declined) captures declined, "
                + "\(expected.refusedRefunds) refunds refused as nothing was captured; \(expected.lapsed["reauthorized", default: 0]) captures of lapsed "
                + "authorizations re-authorized with the saved card (\(ledger.reauthorizations.count) new payments), \(expected.lapsed["held", default: 0]) held for an operator; "
                + "\(expected.skipped) paid through the marketplace; "
                + "\(missing) missing, \(twice) twice, \(unexpected) unexpected, \(charged) declined cards charged or refunded, "
                + "money per PaymentIntent \(money ? "exact" : "WRONG"), per Shopify order \(shopifyMoney ? "exact" : "WRONG"); "
                + "\(outcomesMissing) without an outcome event, \(outcomesTwice) with two; \(ledger.lostAnswers + shop.lostAnswers) answers lost and reconciled")
    }
}

extension DemoConnectors.ExpectedPayments {
    /// Counts an outcome event against its command.
    mutating func note(outcome event: Event) {
        switch event {
        case .paymentCaptured(let e): outcomes[e.commandId, default: 0] += 1
        case .paymentRefunded(let e): outcomes[e.commandId, default: 0] += 1
        case .paymentVoided(let e): outcomes[e.commandId, default: 0] += 1
        case .paymentCaptureFailed(let e):
            outcomes[e.commandId, default: 0] += 1
            failures[e.commandId, default: 0] += 1
        case .paymentRefundFailed(let e):
            outcomes[e.commandId, default: 0] += 1
            failures[e.commandId, default: 0] += 1
        case .paymentVoidFailed(let e): outcomes[e.commandId, default: 0] += 1
        default: break
        }
    }
}

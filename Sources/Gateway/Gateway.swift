import Contracts
import Fleet
import Foundation
import Hummingbird
import Kafka
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import Synchronization
import Workers

/// The HTTP edge of OrderFleet: channel and carrier webhooks in, operator commands in,
/// order views, stock, reports and the operations dashboard out (docs/openapi.yaml).
///
/// A write is answered 202 only once Kafka acknowledged its record (idempotent
/// producer, acks=all). If Kafka does not within `gateway.kafka.timeout.ms` the answer
/// is 503 with `Retry-After`, so the sender retries and nothing is lost; the retry
/// carries the same event id, and the stages dedupe on it and on the order's key. While
/// librdkafka sees no broker at all, writes get that 503 at once and `/readyz` says not
/// ready. A record that can never fit its topic gets 413, never "retry later".
public final class Gateway: Sendable {
    let configuration: GatewayConfiguration
    let kafka: KafkaConfiguration
    let statuses: [RunnerStatus]
    let registry: PrometheusCollectorRegistry
    let logger: Logger
    let idempotency: IdempotencyCache
    private let tables = Mutex<Tables?>(nil)
    let producer: KafkaProducer
    /// The record size limits of the topics the gateway writes.
    let limits: KafkaRecordSizeLimits

    /// The compacted topics the gateway answers queries from, once read to their end.
    struct Tables: Sendable {
        var orders: GlobalTable
        var levels: GlobalTable
        var reports: GlobalTable
        var customers: GlobalTable
        var webhooks: GlobalTable
        /// The webhooks connector's ledger entries only (its delivery log).
        var webhookDeliveries: GlobalTable
        /// Invoices and credit notes, by invoice id.
        var invoices: GlobalTable
        /// The payments connector's commands waiting for an operator.
        var paymentIssues: GlobalTable
    }

    let dashboard = Dashboard()

    /// A gateway producing to and reading from `kafka`.
    ///
    /// - Parameters:
    ///   - statuses: stages running in the same process (the demo); `/readyz` waits for them too.
    ///   - registry: where `/metrics` reads from (the process's Prometheus registry).
    public init(
        configuration: GatewayConfiguration, kafka: KafkaConfiguration, statuses: [RunnerStatus] = [],
        registry: PrometheusCollectorRegistry, logger: Logger
    ) throws(KafkaError) {
        self.configuration = configuration
        self.kafka = kafka
        self.statuses = statuses
        self.registry = registry
        self.logger = logger
        idempotency = IdempotencyCache(capacity: configuration.idempotencyEntries)
        var producerKafka = kafka
        // Statistics tell when a broker is reachable again after all were down.
        producerKafka.statisticsInterval = .milliseconds(500)
        var settings = KafkaProducerConfiguration(kafka: producerKafka)
        settings.messageTimeout = configuration.kafkaTimeout
        settings.linger = .milliseconds(1)
        producer = try KafkaProducer(configuration: settings, logger: logger)
        limits = KafkaRecordSizeLimits(kafka: kafka)
    }

    /// The topics the gateway writes.
    static let writtenTopics = [
        InboundChannelOrder.topic, CarrierTrackingUpdate.topic, CancelOrder.topic, ReceiveReturn.topic, WebhookSubscription.topic,
        FulfilmentUpdate.topic,
    ]

    /// The largest body a webhook or command may have: `gateway.body.limit.bytes`, or
    /// less where the smallest written topic's record limit says so. A channel order keeps
    /// its body base64-encoded in the record (4 bytes for 3), next to an envelope of
    /// at most ``envelopeAllowance`` bytes.
    public var bodyLimit: Int {
        let record = Self.writtenTopics.map(limits.limit(for:)).min() ?? KafkaRecordSizeLimits.brokerDefault
        return max(1_024, min(configuration.bodyLimit, (record - Self.envelopeAllowance) / 4 * 3))
    }

    /// Where ``bodyLimit`` comes from, for a 413's message.
    var bodyLimitSource: String {
        bodyLimit < configuration.bodyLimit
            ? "the largest body whose record fits the Kafka topics' record limit, max.message.bytes"
            : "gateway.body.limit.bytes"
    }

    /// Room for the envelope and headers around a channel order's body.
    static let envelopeAllowance = 4_096

    /// Whether Kafka can take writes, as far as librdkafka knows.
    public var kafkaReachable: Bool { producer.brokersReachable }

    /// Whether the order, stock and report tables have been read to their end and the
    /// stages running in the same process are ready.
    public var isReady: Bool { tablesLoaded && kafkaReachable && statuses.allSatisfy(\.isReady) }

    var tablesLoaded: Bool { tables.withLock { $0 != nil } }

    /// The HTTP server and the table readers, as one service of a service group; it
    /// ends on graceful shutdown.
    ///
    /// - Parameter onListening: called with the bound port (useful with port 0).
    public func service(host: String, port: Int, onListening: @escaping @Sendable (Int) async -> Void = { _ in }) -> some Service {
        GatewayService(gateway: self, host: host, port: port, onListening: onListening)
    }

    // MARK: Tables

    /// Opens and reads the tables, retrying while Kafka or the topics are missing, then
    /// follows them until cancelled.
    func loadTables() async {
        await loadLimits()
        var attempt = 0
        while !Task.isCancelled {
            var opened: [GlobalTable] = []
            do {
                let orders = try await GlobalTable.open(topic: OrderView.topic, kafka: kafka.with(clientID: "oms-gateway"), logger: logger)
                opened.append(orders)
                let levels = try await GlobalTable.open(topic: InventoryLevel.topic, kafka: kafka.with(clientID: "oms-gateway"), logger: logger)
                opened.append(levels)
                let reports = try await GlobalTable.open(topic: ReportBucket.topic, kafka: kafka.with(clientID: "oms-gateway"), logger: logger)
                opened.append(reports)
                let customers = try await GlobalTable.open(topic: CustomerTimeline.topic, kafka: kafka.with(clientID: "oms-gateway"), logger: logger)
                opened.append(customers)
                let webhooks = try await GlobalTable.open(topic: WebhookSubscription.topic, kafka: kafka.with(clientID: "oms-gateway"), logger: logger)
                opened.append(webhooks)
                // The ledger holds every connector's deliveries; the log needs the webhooks connector's only.
                let deliveries = try await GlobalTable.open(
                    topic: OutboundDelivery.topic, kafka: kafka.with(clientID: "oms-gateway"), logger: logger, keep: Self.isWebhookDelivery)
                opened.append(deliveries)
                let invoices = try await GlobalTable.open(topic: InvoiceIssued.topic, kafka: kafka.with(clientID: "oms-gateway"), logger: logger)
                opened.append(invoices)
                let paymentIssues = try await GlobalTable.open(
                    topic: OutboundDelivery.topic, kafka: kafka.with(clientID: "oms-gateway"), logger: logger, keep: Self.isPaymentIssue)
                opened.append(paymentIssues)
                for table in opened { try await table.catchUp(timeout: .seconds(300)) }
                tables.withLock {
                    $0 = Tables(
                        orders: orders, levels: levels, reports: reports, customers: customers, webhooks: webhooks, webhookDeliveries: deliveries,
                        invoices: invoices, paymentIssues: paymentIssues)
                }
                attempt = 0
                logger.info("gateway tables loaded", metadata: ["orders": "\(orders.count)", "skus": "\(levels.count)"])
                // Both follow until cancelled; if one fails, the tables are read afresh.
                try await withThrowingDiscardingTaskGroup { group in
                    for table in opened { group.addTask { try await table.follow() } }
                }
            } catch {
                attempt += 1
                logger.warning("gateway cannot read its tables; retrying", metadata: ["error": "\(error)", "attempt": "\(attempt)"])
            }
            if !Task.isCancelled { tables.withLock { $0 = nil } }
            for table in opened { await table.close() }
            if !Task.isCancelled, attempt > 0 { try? await Task.sleep(for: .seconds(min(attempt, 5))) }
        }
    }

    func currentTables() throws(GatewayError) -> Tables {
        guard let tables = tables.withLock({ $0 }) else {
            throw GatewayError(status: 503, code: "unavailable", message: "the gateway is still reading its tables", retryAfter: configuration.retryAfterSeconds)
        }
        return tables
    }

    /// The view of `orderId`, or 404.
    func view(_ orderId: String) throws(GatewayError) -> OrderView {
        guard case .orderView(let view) = try currentTables().orders.value(orderId) else {
            throw GatewayError(status: 404, code: "not_found", message: "order \(orderId) is not known (\(OrderView.topic))")
        }
        return view
    }

    /// The timeline of a customer, by customer id or e-mail address, or 404.
    func customer(_ idOrEmail: String) throws(GatewayError) -> CustomerTimeline {
        let id = idOrEmail.contains("@") ? CustomerTimelines.customerId(email: idOrEmail) : idOrEmail
        guard case .customerTimeline(let timeline) = try currentTables().customers.value(id) else {
            // The address is not echoed: answers end up in logs.
            throw GatewayError(status: 404, code: "not_found", message: "no customer \(idOrEmail.contains("@") ? "with that e-mail address" : id) is known (\(CustomerTimeline.topic))")
        }
        return timeline
    }

    /// The webhook subscription `id`, or 404.
    func webhookSubscription(_ id: String) throws(GatewayError) -> WebhookSubscription {
        guard case .webhookSubscription(let subscription) = try currentTables().webhooks.value(id) else {
            throw GatewayError(status: 404, code: "not_found", message: "no webhook subscription \(id) (\(WebhookSubscription.topic))")
        }
        return subscription
    }

    /// Stock of `sku`, or 404.
    func level(_ sku: String) throws(GatewayError) -> InventoryLevel {
        guard case .inventoryLevel(let level) = try currentTables().levels.value(sku) else {
            throw GatewayError(status: 404, code: "not_found", message: "SKU \(sku) has no stock record (\(InventoryLevel.topic))")
        }
        return level
    }

    /// The report buckets as they are now, partitions added up.
    func reportQuery() throws(GatewayError) -> ReportQuery {
        ReportQuery(buckets: try currentTables().reports.values.values.compactMap { event -> ReportBucket? in
            if case .reportBucket(let bucket) = event { return bucket } else { return nil }
        })
    }

    /// Orders per status, from the views.
    func statusCounts() throws(GatewayError) -> [String: Int] {
        var counts: [String: Int] = [:]
        for case .orderView(let view) in try currentTables().orders.values.values { counts[view.status.rawValue, default: 0] += 1 }
        return counts
    }

    /// On hand and reserved per SKU, from the levels.
    func stockTotals() throws(GatewayError) -> (onHand: [String: Int], reserved: [String: Int]) {
        var onHand: [String: Int] = [:]
        var reserved: [String: Int] = [:]
        for case .inventoryLevel(let level) in try currentTables().levels.values.values {
            onHand[level.sku] = level.locations.reduce(0) { $0 + $1.onHand }
            reserved[level.sku] = level.locations.reduce(0) { $0 + $1.reserved }
        }
        return (onHand, reserved)
    }

    // MARK: Producing

    /// Reads the written topics' `max.message.bytes` (the defaults stand where the
    /// broker does not say).
    private func loadLimits() async {
        guard let admin = try? KafkaAdmin(configuration: kafka.with(clientID: "oms-gateway-limits"), logger: logger) else { return }
        await limits.load(topics: Self.writtenTopics, admin: admin, timeout: .seconds(3), logger: logger)
        logger.info("gateway body limit", metadata: ["bytes": "\(bodyLimit)"])
    }

    /// Writes `event` and waits for Kafka's acknowledgement: 503 if it does not come (at
    /// once while no broker is reachable), 413 if the record can never fit its topic.
    func produce(_ event: Event, id: String) async throws(GatewayError) -> KafkaDeliveryReport {
        let envelope = Envelope(id: id, source: "oms/gateway", time: Date(), traceparent: GatewayTrace.traceparent(forEventID: id), event: event)
        let message: KafkaProducerMessage
        do {
            message = try KafkaProducerMessage(envelope, topic: envelope.topic)
        } catch {
            throw GatewayError(status: 400, code: "invalid_body", message: "\(error)")
        }
        guard limits.fits(message) else {
            throw tooLarge(recordBytes: KafkaRecordSizeLimits.size(of: message), topic: envelope.topic)
        }
        guard producer.brokersReachable else {
            throw GatewayError(
                status: 503, code: "unavailable", message: "no Kafka broker is reachable; retry later", retryAfter: configuration.retryAfterSeconds)
        }
        let start = ContinuousClock.now
        do {
            let report = try await producer.send(message)
            Timer(label: "oms_gateway_kafka_ack_seconds").recordInterval(since: start)
            return report
        } catch where error.errorClass == .recordRejected {
            throw tooLarge(recordBytes: KafkaRecordSizeLimits.size(of: message), topic: envelope.topic, kafka: error)
        } catch {
            logger.warning("Kafka did not acknowledge a record; answering 503", metadata: ["topic": "\(envelope.topic)", "error": "\(error)"])
            throw GatewayError(
                status: 503, code: "unavailable", message: "Kafka did not acknowledge the record (\(error.code)); retry later",
                retryAfter: configuration.retryAfterSeconds)
        }
    }

    /// The 413 for a record that can never be written: retrying cannot help.
    private func tooLarge(recordBytes: Int, topic: String, kafka error: KafkaError? = nil) -> GatewayError {
        GatewayError(
            status: 413, code: "too_large",
            message: "as a Kafka record this request is \(recordBytes) bytes; \(topic) takes at most \(limits.limit(for: topic))"
                + (error.map { " (\($0.code))" } ?? "") + "; bodies up to \(bodyLimit) bytes always fit",
            closeConnection: false)
    }

    func close() async {
        try? await producer.close(timeout: .seconds(5))
    }
}

/// Runs the HTTP server and the table readers together.
private struct GatewayService: Service {
    let gateway: Gateway
    let host: String
    let port: Int
    let onListening: @Sendable (Int) async -> Void

    func run() async throws {
        let gateway = gateway
        let application = Application(
            router: gateway.router(),
            server: .http1(configuration: .init(additionalChannelHandlers: [OversizedBodyHandler { (gateway.bodyLimit, gateway.bodyLimitSource) }])),
            configuration: .init(address: .hostname(host, port: port), serverName: "oms-gateway"),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? port) },
            logger: gateway.logger
        )
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await gateway.loadTables() }
            // The application returns on graceful shutdown; the table readers then stop.
            try await application.run()
            group.cancelAll()
            try await group.waitForAll()
        }
        await gateway.close()
    }
}


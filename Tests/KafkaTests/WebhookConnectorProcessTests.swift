import Contracts
import Fleet
import Foundation
import Kafka
import OrderFleetTesting
import Testing

@testable import oms

/// `oms connector webhooks` as processes, subscriptions made with `oms webhooks`, against
/// local receivers that verify each subscription's signature and count deliveries per
/// webhook-id.
@Suite("webhook connector processes")
struct WebhookConnectorProcessTests {
    static let signingKey = "test-signing-key-0123456789abcdef"

    @Test("kill -9: every subscribed event delivered once to each subscription that wants it, through lost answers and 429s; none to a disabled one")
    func deliveriesUnderKills() async throws {
        try await Self.withReceiversAndBroker { channels, base, broker, fixture in
            let erp = try await Self.subscribe(channels, base: base, hook: "erp", events: ["*"], broker: broker.bootstrap)
            let crm = try await Self.subscribe(channels, base: base, hook: "crm", events: ["oms.shipment.created"], broker: broker.bootstrap)
            let off = try await Self.subscribe(channels, base: base, hook: "off", events: ["*"], broker: broker.bootstrap)
            let disabled = try await Self.oms(["webhooks", "disable", off, "--reason", "test"], broker: broker.bootstrap)
            #expect(disabled.status == 0 && disabled.output.contains("disabled"))
            let listed = try await Self.oms(["webhooks", "list"], broker: broker.bootstrap)
            #expect([erp, crm, off].allSatisfy { listed.output.contains($0) })

            channels.setFaults { $0.loseAnswerEvery = 7; $0.holdAnswer = .seconds(3); $0.rateLimitEvery = 11 }
            let fleet = Self.fleet(fixture: fixture)
            defer { fleet.stopAll() }
            for instance in 0..<2 { try fleet.start(instance) }
            try await Task.sleep(for: .seconds(2))

            let orders = 100
            let events = (0..<orders).flatMap { Self.shipped(order: "K\($0)") }
            let producing = Task { try await Self.produce(events, cluster: fixture.cluster) }
            let kills = try await fleet.killRandomly(for: .seconds(15), every: .seconds(3))
            try await producing.value
            #expect(kills >= 2)

            let done = try await waitUntil(timeout: .seconds(180)) {
                let effects = channels.ledger.webhookEffects
                return effects.keys.filter { $0.hasPrefix("\(erp)/") }.count == 2 * orders && effects.keys.filter { $0.hasPrefix("\(crm)/") }.count == orders
            }
            #expect(done, "connector logs in \(fleet.directory.path)")
            let final = try await Self.finalStates(fixture, count: 3 * orders)
            fleet.stopAll()

            let ledger = channels.ledger
            #expect(ledger.webhookEffects.values.allSatisfy { $0 == 1 })
            #expect(ledger.webhookEffects.count == 3 * orders, "deliveries for keys no subscription should get: \(ledger.webhookEffects.keys.filter { !$0.hasPrefix(erp) && !$0.hasPrefix(crm) }.prefix(3))")
            #expect(!ledger.webhookCalls.keys.contains { $0.hasPrefix(off) })
            #expect(ledger.badSignatures == 0)
            // The faults did happen: answers were lost (and retried under the same id), calls refused.
            #expect(ledger.lostAnswers > 0 && ledger.refused > 0)
            #expect(ledger.webhookCalls.values.contains { $0 > 1 })
            #expect(final.count == 3 * orders && final.values.allSatisfy { $0.state == .delivered }, "\(final.values.filter { $0.state != .delivered }.prefix(3))")

            let log = try await Self.oms(["webhooks", "log", crm, "--limit", "3"], broker: broker.bootstrap)
            #expect(log.status == 0 && log.output.components(separatedBy: "  delivered  ").count == 4, "\(log.output)")
        }
    }

    @Test("a receiver down past the retry window: its delivery fails with an alert, the subscription is disabled, the others are not held up; redeliver sends it once it is back")
    func persistentFailure() async throws {
        try await Self.withReceiversAndBroker { channels, base, broker, fixture in
            let healthy = try await Self.subscribe(channels, base: base, hook: "ok", events: ["*"], broker: broker.bootstrap)
            let gone = try await Self.subscribe(channels, base: base, hook: "gone", events: ["oms.shipment.created"], broker: broker.bootstrap)
            channels.setFaults { $0.downHooks = ["gone"] }
            let fleet = Self.fleet(fixture: fixture, overrides: ["WEBHOOKS_RETRY_WINDOW_S": "4", "WEBHOOKS_DISABLE_AFTER_S": "1", "WEBHOOKS_RETRY_MAX_DELAY_MS": "500"])
            defer { fleet.stopAll() }
            try fleet.start(0)
            try await Task.sleep(for: .seconds(2))
            try await Self.produce((0..<10).flatMap { Self.shipped(order: "G\($0)") }, cluster: fixture.cluster)

            // The healthy subscription gets everything while the other one fails.
            let healthyDone = try await waitUntil(timeout: .seconds(60)) { channels.ledger.webhookEffects.keys.filter { $0.hasPrefix(healthy) }.count == 20 }
            #expect(healthyDone)
            var subscription: WebhookSubscription?
            let disabled = try await waitUntil(timeout: .seconds(60)) {
                let table = try await GlobalTable.snapshot(topic: WebhookSubscription.topic, kafka: fixture.cluster.configuration)
                if case .webhookSubscription(let found) = table[gone] { subscription = found }
                return subscription?.status == .disabled
            }
            #expect(disabled, "connector log in \(fleet.directory.path)")
            #expect(subscription?.reason?.contains("disabled automatically") == true)
            let final = try await Self.finalStates(fixture, count: 30)
            let failed = final.values.filter { $0.commandId.hasPrefix(gone) && $0.state == .failed }
            #expect(!failed.isEmpty)
            #expect(final.values.filter { $0.commandId.hasPrefix(gone) }.allSatisfy { $0.state == .failed || $0.state == .skipped })
            let alerts = try await fixture.readAll(ConnectorAlert.topic).compactMap { message -> ConnectorAlert? in
                guard case .connectorAlert(let alert) = try Envelope.decode(message.eventRecord).event else { return nil }
                return alert
            }
            #expect(alerts.contains { $0.connector == "webhooks" && $0.state == .failed })
            fleet.stopAll()

            // Back up: an operator re-sends one failed delivery, twice; the receiver applies it once.
            channels.setFaults { $0.downHooks = [] }
            let delivery = try #require(failed.first).commandId
            let first = try await Self.oms(["webhooks", "redeliver", delivery], broker: broker.bootstrap)
            #expect(first.status == 0 && first.output.contains("\(delivery)  delivered"), "\(first.output)")
            let second = try await Self.oms(["webhooks", "redeliver", delivery], broker: broker.bootstrap)
            #expect(second.status == 0)
            #expect(channels.ledger.webhookEffects[delivery] == 1 && channels.ledger.webhookCalls[delivery] == 2)
            let unknown = try await Self.oms(["webhooks", "redeliver", "\(gone)/nope"], broker: broker.bootstrap)
            #expect(unknown.status != 0 && unknown.output.contains("no delivery"))
            let log = try await Self.oms(["webhooks", "log", gone, "--failed"], broker: broker.bootstrap)
            // The redelivered one is no longer listed; the rest failed, or were skipped once the subscription was off.
            #expect(log.status == 0 && !log.output.contains(delivery), "\(log.output)")
            #expect(log.output.split(separator: "\n").filter { $0.hasPrefix("20") }.count == 9, "\(log.output)")
        }
    }

    // MARK: Support

    /// Runs `body` with the local receivers and an embedded broker process (every catalog topic).
    static func withReceiversAndBroker(_ body: (LocalChannels, String, EmbeddedBrokerProcess, FleetFixture) async throws -> Void) async throws {
        try await withServedChannels { channels, base in
            let broker = try await EmbeddedBrokerProcess.start(topics: [])
            defer { broker.stop() }
            let fixture = FleetFixture(
                cluster: broker.cluster, input: ShipmentCreated.topic, output: OutboundDelivery.topic,
                partitions: 6)
            try await body(channels, base, broker, fixture)
        }
    }

    static func fleet(fixture: FleetFixture, overrides: [String: String] = [:]) -> WorkerFleet {
        WorkerFleet(
            fixture: fixture, stage: TestCluster.uniqueName("webhooks"), mode: .atLeastOnce, staticMembership: false,
            arguments: ["connector", "webhooks"],
            overrides: [
                "WEBHOOKS_SIGNING_KEY": signingKey, "CONNECTOR_HTTP_TIMEOUT_MS": "1000", "WEBHOOKS_RETRY_BASE_MS": "100",
                "WEBHOOKS_RETRY_MAX_DELAY_MS": "2000", "WORKER_BATCH_SIZE": "50", "WORKER_SESSION_TIMEOUT_MS": "10000",
            ].merging(overrides) { $1 })
    }

    /// `oms webhooks add` for the receiver `/hooks/<hook>`, which then verifies with the subscription's secret.
    static func subscribe(_ channels: LocalChannels, base: String, hook: String, events: [String], broker: String) async throws -> String {
        let added = try await oms(["webhooks", "add", "\(base)/hooks/\(hook)", "--events"] + events + ["--description", hook], broker: broker)
        let lines = added.output.split(separator: "\n").map(String.init)
        guard added.status == 0, let id = lines.first, id.hasPrefix("wh_"), let secret = lines.dropFirst().first?.replacingOccurrences(of: "secret: ", with: "") else {
            throw SubscribeError(description: "oms webhooks add: \(added.status) \(added.output)")
        }
        #expect(secret == WebhookEvents.signingSecret(subscriptionID: id, signingKey: signingKey))
        channels.setSecret(secret, forHook: hook)
        return id
    }

    struct SubscribeError: Error, CustomStringConvertible { var description: String }

    /// Runs `oms` with the brokers and the signing key; standard output and error together.
    /// (`oms webhooks redeliver` calls the receivers in this process: they answer on
    /// Swift's pool while the run waits off it.)
    static func oms(_ arguments: [String], broker: String) async throws -> (status: Int32, output: String) {
        try await OMSCommandTests.run(
            OMSCommandTests.omsBinary, arguments, printed: .both, environment: ["KAFKA_BROKERS": broker, "WEBHOOKS_SIGNING_KEY": signingKey])
    }

    /// A shipment created and delivered for `order`.
    static func shipped(order: String) -> [Envelope] {
        let now = Date()
        let created = ShipmentCreated(
            shipmentId: "S-\(order)", orderId: order, location: "WH1", carrier: "ups", service: "ground", trackingNumber: "1Z\(order)",
            labelRef: "L-\(order)", lines: [ShipmentLine(lineId: "1", sku: "A", quantity: 1)], promisedDate: now, estimatedDelivery: now,
            atRisk: false, createdAt: now)
        let delivered = ShipmentDelivered(orderId: order, shipmentId: "S-\(order)", carrier: "ups", trackingNumber: "1Z\(order)", rawStatus: "D", deliveredAt: now)
        return [
            Envelope(id: "created-\(order)", source: "test", time: now, event: created.event),
            Envelope(id: "delivered-\(order)", source: "test", time: now, event: delivered.event),
        ]
    }

    static func produce(_ events: [Envelope], cluster: TestCluster) async throws {
        let producer = try cluster.producer()
        for event in events {
            try await producer.enqueue(try KafkaProducerMessage(event, topic: type(of: event.event.payload).topic))
        }
        try await producer.close()
    }

    /// The last ledger state of each webhook delivery, once `count` are there and none is in progress.
    static func finalStates(_ fixture: FleetFixture, count: Int) async throws -> [String: OutboundDelivery] {
        var states: [String: OutboundDelivery] = [:]
        _ = try await waitUntil(timeout: .seconds(60)) {
            states = [:]
            for message in try await fixture.readAll(OutboundDelivery.topic) {
                guard case .outboundDelivery(let entry) = try Envelope.decode(message.eventRecord).event, entry.connector == "webhooks" else { continue }
                states[entry.commandId] = entry
            }
            return states.count == count && states.values.allSatisfy { $0.state != .attempting && $0.state != .retrying }
        }
        return states
    }
}

import Contracts
import Fleet
import Foundation
import Kafka
import OrderFleetTesting
import Testing

@testable import oms

/// `oms connector channels` as processes killed with -9 and restarted, against local
/// Shopify and webhook receivers that count calls per idempotency key.
@Suite("connector processes")
struct ConnectorProcessTests {
    @Test("kill -9: each shipment fulfilled once on Shopify, each webhook applied once, despite lost answers and 429s")
    func channelsUnderKills() async throws {
        try await withServedChannels { channels, base in
            let broker = try await EmbeddedBrokerProcess.start(topics: [])
            defer { broker.stop() }
            let fixture = FleetFixture(
                cluster: broker.cluster, input: ChannelUpdate.topic, output: OutboundDelivery.topic,
                partitions: 6)
            channels.setFaults { $0.loseAnswerEvery = 9; $0.holdAnswer = .seconds(3); $0.rateLimitEvery = 13 }
            let fleet = ConnectorFleet.channels(fixture: fixture, base: base, channels: channels)
            defer { fleet.stopAll() }
            for instance in 0..<2 { try fleet.start(instance) }

            let orders = 200
            let commands = (0..<orders).flatMap { index -> [Envelope] in
                channels.addShopifyOrder("S\(index)", lines: ["1": 1, "2": 2])
                return [
                    ConnectorFleet.ship(order: "S\(index)", channel: "shopify", tracking: "T\(index)"),
                    ConnectorFleet.ship(order: "W\(index)", channel: "brand", tracking: "W\(index)"),
                ]
            }
            let producing = Task { try await ConnectorFleet.produce(commands, cluster: fixture.cluster) }
            let kills = try await fleet.killRandomly(for: .seconds(15), every: .seconds(3))
            try await producing.value
            #expect(kills >= 2)

            let done = try await waitUntil(timeout: .seconds(180)) {
                let ledger = channels.ledger
                return ledger.fulfillments.count == orders && ledger.webhookEffects.count == orders
            }
            #expect(done, "connector logs in \(fleet.directory.path)")
            let final = try await ConnectorFleet.finalStates(fixture, connector: "channels", count: commands.count)
            fleet.stopAll()

            let ledger = channels.ledger
            #expect(ledger.fulfillments.values.allSatisfy { $0 == 1 }, "a Shopify fulfillment POSTed twice: \(ledger.fulfillments.filter { $0.value > 1 })")
            #expect(ledger.webhookEffects.values.allSatisfy { $0 == 1 })
            #expect(ledger.badSignatures == 0)
            // The faults did happen: answers were lost (and reconciled), calls refused.
            #expect(ledger.lostAnswers > 0 && ledger.refused > 0)
            #expect(final.count == commands.count && final.values.allSatisfy { $0.state == .delivered }, "\(final.filter { $0.value.state != .delivered })")
            // Lost Shopify answers were settled by reading the order back, not by a second POST.
            #expect(final.values.contains { $0.reason == "reconciled: the endpoint has it" })
        }
    }

    @Test("kill -9: each notification texted once through Twilio's API, despite lost answers (reconciled by listing) and 429s")
    func textsUnderKills() async throws {
        try await withServedChannels { channels, base in
            let broker = try await EmbeddedBrokerProcess.start(topics: [])
            defer { broker.stop() }
            let fixture = FleetFixture(
                cluster: broker.cluster, input: Contracts.Notification.topic, output: OutboundDelivery.topic,
                partitions: 6)
            channels.setFaults { $0.loseAnswerEvery = 7; $0.holdAnswer = .seconds(3); $0.rateLimitEvery = 11 }
            let fleet = WorkerFleet(
                fixture: fixture, stage: TestCluster.uniqueName("sms"), mode: .atLeastOnce, staticMembership: false, arguments: ["connector", "sms"],
                overrides: [
                    "SMS_URL": base, "SMS_ACCOUNT_SID": "AC0123456789abcdef0123456789abcdef", "SMS_AUTH_TOKEN": channels.token, "SMS_FROM": "+15005550006",
                    "CONNECTOR_HTTP_TIMEOUT_MS": "1000", "CONNECTOR_RETRY_BASE_MS": "100", "CONNECTOR_RETRY_MAX_DELAY_MS": "2000",
                    "CONNECTOR_BREAKER_OPEN_MS": "2000", "WORKER_BATCH_SIZE": "20", "WORKER_SESSION_TIMEOUT_MS": "10000",
                ])
            defer { fleet.stopAll() }
            for instance in 0..<2 { try fleet.start(instance) }
            let count = 150
            let notes = (0..<count).map { index in
                let note = Contracts.Notification(
                    orderId: "oms-T\(index)", kind: .shipped, recipientEmail: nil,
                    data: ["externalOrderId": "T\(index)", "carrier": "ups", "trackingNumber": "1ZT\(index)"], recipientPhone: "+4915100\(1000 + index)",
                    createdAt: Date())
                return Envelope(id: "note-T\(index)", source: "test", time: Date(), event: note.event)
            }
            let producing = Task {
                let producer = try fixture.cluster.producer()
                for note in notes { try await producer.enqueue(try KafkaProducerMessage(note, topic: Contracts.Notification.topic)) }
                try await producer.close()
            }
            let kills = try await fleet.killRandomly(for: .seconds(15), every: .seconds(3))
            try await producing.value
            #expect(kills >= 2)
            let done = try await waitUntil(timeout: .seconds(180)) { channels.ledger.texts.count == count }
            #expect(done, "connector logs in \(fleet.directory.path)")
            let final = try await ConnectorFleet.finalStates(fixture, connector: "sms", count: count)
            fleet.stopAll()
            let ledger = channels.ledger
            #expect(ledger.texts.values.allSatisfy { $0 == 1 }, "a text sent twice: \(ledger.texts.filter { $0.value > 1 })")
            #expect(ledger.lostAnswers > 0 && ledger.refused > 0)
            #expect(final.count == count && final.values.allSatisfy { $0.state == .delivered }, "\(final.values.filter { $0.state != .delivered }.prefix(3))")
            #expect(final.values.contains { $0.reason == "reconciled: the endpoint has it" })
        }
    }

    @Test("an endpoint down for a minute: the connector waits it out and delivers everything, no dead letter")
    func endpointDownForAMinute() async throws {
        try await withServedChannels { channels, base in
            let broker = try await EmbeddedBrokerProcess.start(topics: [])
            defer { broker.stop() }
            let fixture = FleetFixture(
                cluster: broker.cluster, input: ChannelUpdate.topic, output: OutboundDelivery.topic,
                partitions: 6)
            channels.setFaults { $0.down = true }
            let fleet = ConnectorFleet.channels(fixture: fixture, base: base, channels: channels)
            defer { fleet.stopAll() }
            try fleet.start(0)
            let commands = (0..<30).map { index in
                channels.addShopifyOrder("D\(index)", lines: ["1": 1, "2": 2])
                return ConnectorFleet.ship(order: "D\(index)", channel: "shopify", tracking: "D\(index)")
            }
            try await ConnectorFleet.produce(commands, cluster: fixture.cluster)
            try await Task.sleep(for: .seconds(60))
            #expect(channels.ledger.fulfillments.isEmpty)
            #expect(channels.ledger.refused > 0)
            channels.setFaults { $0.down = false }
            let done = try await waitUntil(timeout: .seconds(120)) { channels.ledger.fulfillments.count == commands.count }
            #expect(done, "connector log in \(fleet.directory.path)")
            #expect(channels.ledger.fulfillments.values.allSatisfy { $0 == 1 })
            let letters = try await fixture.readAll(TopicCatalog.deadLetterTopic, partitions: 1)
            #expect(letters.isEmpty)
        }
    }
}

/// Starting and feeding channel connector processes.
enum ConnectorFleet {
    static func channels(fixture: FleetFixture, base: String, channels: LocalChannels) -> WorkerFleet {
        WorkerFleet(
            fixture: fixture, stage: TestCluster.uniqueName("channels"), mode: .atLeastOnce, staticMembership: false,
            arguments: ["connector", "channels"],
            overrides: [
                "CHANNELS_NAMES": "shopify,brand",
                "CHANNELS_SHOPIFY_KIND": "shopify", "CHANNELS_SHOPIFY_SHOP": "local.myshopify.com", "CHANNELS_SHOPIFY_URL": base,
                "CHANNELS_SHOPIFY_TOKEN": channels.token,
                "CHANNELS_BRAND_KIND": "webhook", "CHANNELS_BRAND_URL": "\(base)/hooks/brand", "CHANNELS_BRAND_SECRET": channels.secret,
                "CONNECTOR_HTTP_TIMEOUT_MS": "1000", "CONNECTOR_RETRY_BASE_MS": "100", "CONNECTOR_RETRY_MAX_DELAY_MS": "2000",
                "CONNECTOR_BREAKER_OPEN_MS": "2000", "WORKER_BATCH_SIZE": "20",
                // The embedded broker drops a member that works longer than its session
                // timeout through a rebalance; a longer one makes that rare on a loaded machine.
                "WORKER_SESSION_TIMEOUT_MS": "10000",
            ])
    }

    static func ship(order: String, channel: String, tracking: String) -> Envelope {
        let fact = ChannelFact(
            id: "ship/S-\(tracking)", action: .ship, shipmentId: "S-\(tracking)", carrier: "ups", trackingNumber: tracking,
            lines: [ShipmentLine(lineId: "1", sku: "A", quantity: 1), ShipmentLine(lineId: "2", sku: "B", quantity: 2)], at: Date())
        let update = ChannelUpdate(orderId: "oms-\(order)", channel: channel, externalOrderId: order, fact: fact)
        return Envelope(id: "cmd-\(channel)-\(order)", source: "test", time: Date(), event: update.event)
    }

    static func produce(_ commands: [Envelope], cluster: TestCluster) async throws {
        let producer = try cluster.producer()
        for command in commands {
            try await producer.enqueue(try KafkaProducerMessage(command, topic: ChannelUpdate.topic))
        }
        try await producer.close()
    }

    /// The last ledger state of each command of `connector`.
    static func finalStates(_ fixture: FleetFixture, connector: String, count: Int, timeout: Duration = .seconds(60)) async throws -> [String: OutboundDelivery] {
        var states: [String: OutboundDelivery] = [:]
        _ = try await waitUntil(timeout: timeout) {
            states = [:]
            for message in try await fixture.readAll(OutboundDelivery.topic) {
                guard case .outboundDelivery(let entry) = try Envelope.decode(message.eventRecord).event, entry.connector == connector else { continue }
                states[entry.commandId] = entry
            }
            return states.count == count && states.values.allSatisfy { $0.state != .attempting }
        }
        return states
    }
}

/// Runs `body` with ``LocalChannels`` listening on a free port.
func withServedChannels(_ body: (LocalChannels, String) async throws -> Void) async throws {
    let channels = LocalChannels()
    try await withLocalServer({ onPort in channels.service { onPort($0) } }) { port in try await body(channels, "http://127.0.0.1:\(port)") }
}

/// `oms connector email` processes killed with -9, delivering to aiosmtpd.
@Suite("email connector processes", .serialized)
struct EmailConnectorProcessTests {
    @Test("kill -9: every notification emailed once (one message per Message-ID), none lost")
    func emailUnderKills() async throws {
        let smtp = try AiosmtpdProcess.start()
        defer { smtp.stop() }
        let broker = try await EmbeddedBrokerProcess.start(topics: [])
        defer { broker.stop() }
        let fixture = FleetFixture(
            cluster: broker.cluster, input: Contracts.Notification.topic, output: OutboundDelivery.topic,
            partitions: 6)
        let root = try DeployFiles.repositoryRoot()
        let fleet = WorkerFleet(
            fixture: fixture, stage: TestCluster.uniqueName("email"), mode: .atLeastOnce, staticMembership: false, arguments: ["connector", "email"],
            overrides: [
                "EMAIL_SMTP_HOST": "127.0.0.1", "EMAIL_SMTP_PORT": String(smtp.port), "EMAIL_SMTP_SECURITY": "none",
                "EMAIL_FROM": "orders@shop.example", "EMAIL_MESSAGE_ID_DOMAIN": "shop.example",
                "EMAIL_TEMPLATES": root.appendingPathComponent("config/notifications").path, "WORKER_BATCH_SIZE": "20",
                "WORKER_SESSION_TIMEOUT_MS": "10000",
            ])
        defer { fleet.stopAll() }
        for instance in 0..<2 { try fleet.start(instance) }

        let notifications = (0..<300).map { index in
            let note = Contracts.Notification(
                orderId: "o-\(index)", kind: index.isMultiple(of: 2) ? .shipped : .confirmed, recipientEmail: index == 7 ? nil : "c\(index)@example.com",
                data: ["externalOrderId": "X\(index)", "channel": "web", "carrier": "ups", "trackingNumber": "1Z\(index)", "trackingUrl": "https://t.example/\(index)"],
                createdAt: Date())
            return Envelope(id: "ntf-\(index)", source: "test", time: Date(), event: note.event)
        }
        let producing = Task {
            let producer = try fixture.cluster.producer()
            for envelope in notifications { try await producer.enqueue(try KafkaProducerMessage(envelope, topic: Contracts.Notification.topic)) }
            try await producer.close()
        }
        let kills = try await fleet.killRandomly(for: .seconds(15), every: .seconds(3))
        try await producing.value
        #expect(kills >= 2)

        let final = try await ConnectorFleet.finalStates(fixture, connector: "email", count: notifications.count, timeout: .seconds(180))
        fleet.stopAll()
        let messageIDs = smtp.messageIDs()
        let counts = Dictionary(messageIDs.map { ($0, 1) }, uniquingKeysWith: +)
        #expect(counts.values.allSatisfy { $0 == 1 }, "a Message-ID twice: \(counts.filter { $0.value > 1 }); logs in \(fleet.directory.path)")
        #expect(final.count == notifications.count, "\(notifications.count - final.count) notifications never settled; logs in \(fleet.directory.path)")
        let delivered = final.values.filter { $0.state == .delivered }.count
        let unknown = final.values.filter { $0.state == .unknown }.count
        #expect(final["ntf-7"]?.state == .skipped)
        // Unknown only if a kill fell between the server's 250 and the ledger entry;
        // such a message is in the mailbox once, never twice.
        #expect(delivered + unknown == notifications.count - 1)
        #expect(counts.count == delivered + unknown || counts.count == delivered)
        #expect(unknown <= 2)
    }
}

/// aiosmtpd from .venv with its stock Mailbox handler (messages as maildir files).
struct AiosmtpdProcess {
    let process: Process
    let port: Int
    let maildir: URL

    static func start() throws -> AiosmtpdProcess {
        let root = try DeployFiles.repositoryRoot()
        let port = Int(try NoidaServer.freePort())
        let maildir = FileManager.default.temporaryDirectory.appendingPathComponent("oms-mail-\(UUID().uuidString)")
        let process = Process()
        process.executableURL = root.appendingPathComponent(".venv/bin/python")
        process.arguments = ["-m", "aiosmtpd", "-n", "-l", "127.0.0.1:\(port)", "-c", "aiosmtpd.handlers.Mailbox", maildir.path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(20)
        while !NoidaServer.canConnect(port: UInt16(port)) {
            guard process.isRunning, Date() < deadline else {
                kill(process.processIdentifier, SIGKILL)
                throw StartError(description: "aiosmtpd did not listen on \(port) (is it in .venv? scripts/setup installs it)")
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
        return AiosmtpdProcess(process: process, port: port, maildir: maildir)
    }

    struct StartError: Error, CustomStringConvertible { var description: String }

    /// The Message-ID of every stored message.
    func messageIDs() -> [String] {
        let new = maildir.appendingPathComponent("new")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: new.path)) ?? []
        return names.compactMap { name in
            guard let text = try? String(contentsOf: new.appendingPathComponent(name), encoding: .utf8) else { return nil }
            return text.components(separatedBy: "\n").first { $0.lowercased().hasPrefix("message-id:") }?.dropFirst(11).trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    /// SIGKILL: a child of the test runner inherits its blocked signals, SIGTERM included.
    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: maildir)
    }
}

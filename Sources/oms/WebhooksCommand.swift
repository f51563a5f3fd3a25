import ArgumentParser
import Contracts
import Fleet
import Foundation
import Kafka
import Logging
import Outbound

/// `oms webhooks`: the brand systems' subscriptions to events, and their deliveries.
struct WebhooksCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "webhooks",
        abstract: "Manage webhook subscriptions of the brand's systems and look at their deliveries.",
        discussion: """
            Subscriptions live in oms.webhooks.subscriptions; the webhooks connector (`oms connector webhooks`) delivers \
            each subscribed event to each active subscription, signed with the subscription's secret, which is derived \
            from webhooks.signing.key ($WEBHOOKS_SIGNING_KEY) and never stored (docs/OPERATIONS.md, "Webhooks").
            """,
        subcommands: [Add.self, List.self, Disable.self, Enable.self, Secret.self, Log.self, Redeliver.self]
    )

    static func signingKey(required: Bool) throws -> String? {
        let key = ProcessInfo.processInfo.environment["WEBHOOKS_SIGNING_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        if required, key == nil { throw ValidationError("webhooks.signing.key: set WEBHOOKS_SIGNING_KEY to the connector's signing key") }
        return key
    }

    static func subscriptions(kafka: KafkaConfiguration) async throws -> [WebhookSubscription] {
        try await GlobalTable.snapshot(topic: WebhookSubscription.topic, kafka: kafka).values.compactMap { event -> WebhookSubscription? in
            if case .webhookSubscription(let subscription) = event { return subscription }
            return nil
        }.sorted { ($0.createdAt, $0.subscriptionId) < ($1.createdAt, $1.subscriptionId) }
    }

    static func subscription(_ id: String, kafka: KafkaConfiguration) async throws -> WebhookSubscription {
        guard let found = try await subscriptions(kafka: kafka).first(where: { $0.subscriptionId == id }) else {
            throw ValidationError("no subscription \(id); `oms webhooks list` shows them")
        }
        return found
    }

    static func write(_ subscription: WebhookSubscription, kafka: KafkaConfiguration) async throws {
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(kafka: kafka))
        let envelope = Envelope(id: UUID().uuidString.lowercased(), source: "oms/webhooks", time: subscription.updatedAt, event: subscription.event)
        do {
            _ = try await producer.send(try KafkaProducerMessage(envelope, topic: WebhookSubscription.topic))
        } catch {
            try? await producer.close()
            throw error
        }
        try await producer.close()
    }

    static func describe(_ subscription: WebhookSubscription) -> String {
        var line = "\(subscription.subscriptionId)  \(subscription.status.rawValue)  \(subscription.url)  \(subscription.eventTypes.joined(separator: ","))"
        if let description = subscription.description { line += "  \"\(description)\"" }
        if let reason = subscription.reason { line += "\n    \(reason)" }
        return line
    }

    /// `oms webhooks add URL --events …`.
    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Subscribe a URL to event types; prints the subscription id and, with WEBHOOKS_SIGNING_KEY set, its signing secret.")

        @Argument(help: "Where deliveries are POSTed (http or https).")
        var url: String

        @Option(name: .long, parsing: .upToNextOption, help: "Event types (e.g. oms.order.placed oms.shipment.created), or * for all.")
        var events: [String]

        @Option(help: "A note for operators.")
        var description: String?

        @OptionGroup var client: ClientOptions

        func run() async throws {
            let types = events.flatMap { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }.filter { !$0.isEmpty }
            do {
                try WebhookEvents.validate(url: url, eventTypes: types)
            } catch {
                throw ValidationError("\(error)")
            }
            let now = Date()
            let subscription = WebhookSubscription(
                subscriptionId: WebhookEvents.newSubscriptionID(), url: url, eventTypes: types, description: description, status: .active,
                createdAt: now, updatedAt: now)
            try await WebhooksCommand.write(subscription, kafka: try client.kafkaConfiguration(clientID: "oms-webhooks"))
            print(subscription.subscriptionId)
            if let key = try WebhooksCommand.signingKey(required: false) {
                print("secret: \(WebhookEvents.signingSecret(subscriptionID: subscription.subscriptionId, signingKey: key))")
            }
        }
    }

    /// `oms webhooks list`.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the subscriptions.")

        @OptionGroup var client: ClientOptions

        func run() async throws {
            let all = try await WebhooksCommand.subscriptions(kafka: try client.kafkaConfiguration(clientID: "oms-webhooks"))
            if all.isEmpty { print("no subscriptions") }
            for subscription in all { print(WebhooksCommand.describe(subscription)) }
        }
    }

    /// `oms webhooks disable ID`.
    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop deliveries to a subscription; deliveries waiting for it are skipped.")

        @Argument var id: String
        @Option(help: "Why, for the log.") var reason: String?
        @OptionGroup var client: ClientOptions

        func run() async throws {
            let kafka = try client.kafkaConfiguration(clientID: "oms-webhooks")
            var subscription = try await WebhooksCommand.subscription(id, kafka: kafka)
            subscription.status = .disabled
            subscription.reason = reason ?? "disabled by an operator"
            subscription.updatedAt = Date()
            try await WebhooksCommand.write(subscription, kafka: kafka)
            print(WebhooksCommand.describe(subscription))
        }
    }

    /// `oms webhooks enable ID`.
    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Resume deliveries to a subscription (events from now on; `redeliver` sends missed ones).")

        @Argument var id: String
        @OptionGroup var client: ClientOptions

        func run() async throws {
            let kafka = try client.kafkaConfiguration(clientID: "oms-webhooks")
            var subscription = try await WebhooksCommand.subscription(id, kafka: kafka)
            subscription.status = .active
            subscription.reason = nil
            subscription.updatedAt = Date()
            try await WebhooksCommand.write(subscription, kafka: kafka)
            print(WebhooksCommand.describe(subscription))
        }
    }

    /// `oms webhooks secret ID`.
    struct Secret: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a subscription's signing secret (needs WEBHOOKS_SIGNING_KEY).")

        @Argument var id: String

        func run() async throws {
            guard id.hasPrefix("wh_") else { throw ValidationError("'\(id)' is not a subscription id (wh_…)") }
            print(WebhookEvents.signingSecret(subscriptionID: id, signingKey: try WebhooksCommand.signingKey(required: true)!))
        }
    }

    /// `oms webhooks log ID`.
    struct Log: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "A subscription's deliveries, newest first: state, attempts, the receiver's last status and message.")

        @Argument var id: String
        @Option(help: "At most this many.") var limit = 50
        @Flag(help: "Only deliveries that need an operator (rejected, failed, skipped).") var failed = false
        @OptionGroup var client: ClientOptions

        func run() async throws {
            let kafka = try client.kafkaConfiguration(clientID: "oms-webhooks")
            _ = try await WebhooksCommand.subscription(id, kafka: kafka)
            var shown = 0
            for logged in try await WebhookOperations.log(kafka: kafka, logger: Logger(label: "oms.webhooks")) where logged.entry.commandId.hasPrefix("\(id)/") {
                let entry = logged.entry
                if failed, ![.rejected, .failed, .skipped, .unknown].contains(entry.state) { continue }
                guard shown < limit else { break }
                shown += 1
                var line = "\(RFC3339.format(entry.updatedAt))  \(entry.commandId)  \(EventTypeName.short(entry.commandType))  \(entry.state.rawValue)  attempts \(entry.attempts)"
                if let status = entry.status { line += "  HTTP \(status)" }
                if let next = entry.nextAttemptAt { line += "  next \(RFC3339.format(next))" }
                if let reason = entry.reason { line += "\n    \(reason)" }
                print(line)
            }
            if shown == 0 { print("no deliveries") }
        }
    }

    /// `oms webhooks redeliver DELIVERY…`.
    struct Redeliver: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send deliveries again now (ids from `oms webhooks log`), with their original webhook-id; prints each outcome.")

        @Argument(help: "Delivery ids, <subscription id>/<event id>.") var deliveries: [String]
        @OptionGroup var client: ClientOptions

        func run() async throws {
            let kafka = try client.kafkaConfiguration(clientID: "oms-webhooks")
            let key = try WebhooksCommand.signingKey(required: true)!
            var failures = 0
            for delivery in deliveries {
                do {
                    let entry = try await WebhookOperations.redeliver(delivery, kafka: kafka, signingKey: key, logger: Logger(label: "oms.webhooks"))
                    print("\(delivery)  \(entry.state.rawValue)\(entry.state == .delivered ? "" : ": \(entry.reason ?? "")")")
                    if entry.state != .delivered { failures += 1 }
                } catch let refused as WebhookOperations.RedeliveryRefused {
                    print("\(delivery)  not sent: \(refused)")
                    failures += 1
                }
            }
            if failures > 0 { throw ExitCode(1) }
        }
    }
}

/// Event type names as operators read them.
enum EventTypeName {
    /// `oms.order.placed` for `oms.order.placed.v1`.
    static func short(_ type: String) -> String {
        (try? EventType(parsing: type).name) ?? type
    }
}

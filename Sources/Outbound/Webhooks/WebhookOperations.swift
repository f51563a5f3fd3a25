import AsyncHTTPClient
import Contracts
import Fleet
import Foundation
import Kafka
import Logging

/// What operators do with webhook deliveries from the command line: read a
/// subscription's delivery log, send one delivery again.
public enum WebhookOperations {
    /// One delivery as the ledger last recorded it, with the ledger partition it is in.
    public struct LoggedDelivery: Sendable {
        /// The ledger entry.
        public var entry: OutboundDelivery
        /// Its ledger partition, which is its event's partition.
        public var partition: Int32
    }

    /// Why a redelivery was not made.
    public struct RedeliveryRefused: Error, CustomStringConvertible {
        /// The explanation.
        public var description: String
    }

    /// Every webhook delivery's last ledger entry, newest first.
    public static func log(kafka: KafkaConfiguration, logger: Logger) async throws -> [LoggedDelivery] {
        var latest: [String: LoggedDelivery] = [:]
        for message in try await TopicScan.records(of: [OutboundDelivery.topic], kafka: kafka, logger: logger) {
            guard let envelope = try? Envelope.decode(message.eventRecord), case .outboundDelivery(let entry) = envelope.event,
                entry.connector == WebhookConnector.name
            else { continue }
            latest[entry.commandId] = LoggedDelivery(entry: entry, partition: message.partition)
        }
        return latest.values.sorted { ($0.entry.updatedAt, $0.entry.commandId) > ($1.entry.updatedAt, $1.entry.commandId) }
    }

    /// Sends one delivery again now, with its original `webhook-id` (a receiver that
    /// processed it ignores it), and records the outcome in the ledger. A delivery the
    /// connector is still retrying is refused: it will be attempted anyway.
    public static func redeliver(
        _ deliveryID: String, kafka: KafkaConfiguration, signingKey: String, http: HTTPClient = .shared, timeout: Duration = .seconds(10),
        logger: Logger
    ) async throws -> OutboundDelivery {
        guard let logged = try await log(kafka: kafka, logger: logger).first(where: { $0.entry.commandId == deliveryID }) else {
            throw RedeliveryRefused(description: "no delivery \(deliveryID) in \(OutboundDelivery.topic); `oms webhooks log` lists them")
        }
        let entry = logged.entry
        if entry.state == .retrying || entry.state == .attempting {
            throw RedeliveryRefused(description: "\(deliveryID) is still being retried by the webhooks connector (next attempt \(entry.nextAttemptAt.map(RFC3339.format) ?? "now"))")
        }
        let subscriptionID = WebhookBook.subscription(of: deliveryID)
        guard case .webhookSubscription(let subscription) = try await GlobalTable.snapshot(topic: WebhookSubscription.topic, kafka: kafka)[subscriptionID]
        else {
            throw RedeliveryRefused(description: "subscription \(subscriptionID) does not exist")
        }
        let type = try EventType(parsing: entry.commandType)
        guard let topic = WebhookEvents.topic(of: type) else {
            throw RedeliveryRefused(description: "\(entry.commandType) is not a subscribable event type")
        }
        let message = try await PartitionReader.record(
            at: KafkaTopicPartitionOffset(topic: topic, partition: logged.partition, offset: entry.sourceOffset), kafka: kafka, timeout: .seconds(30),
            logger: logger)
        guard let message, let event = try? Envelope.decode(message.eventRecord) else {
            throw RedeliveryRefused(description: "the event of \(deliveryID) (\(topic) partition \(logged.partition) offset \(entry.sourceOffset)) is no longer in Kafka")
        }
        let job = WebhookJob(
            deliveryID: deliveryID, subscriptionID: subscriptionID, event: event, source: KafkaTopicPartition(topic: topic, partition: logged.partition),
            offset: entry.sourceOffset, entry: entry)
        var marker = WebhookConnector.attempting(job, now: Date())
        // An operator's attempt has a window of its own.
        marker.firstAttemptAt = Date()
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(kafka: kafka), logger: logger)
        let record = try marker.ledgerRecord(partition: logged.partition)
        let poster = WebhookPoster(http: HTTPExchange(client: http, timeout: timeout), signingKey: signingKey)
        let result = await poster.post(event, to: subscription, attempt: marker.attempts) { _ = try await producer.send(record) }
        var settled = WebhookRetries.settle(marker, after: result, now: Date(), policy: RetryPolicy(maxElapsed: .zero), jitter: 0)
        if settled.state == .retrying { settled.state = .failed }
        settled.reason = settled.state == .delivered ? "redelivered by an operator" : settled.reason
        do {
            _ = try await producer.send(try settled.ledgerRecord(partition: logged.partition))
        } catch {
            try? await producer.close()
            throw error
        }
        try await producer.close()
        return settled
    }
}

extension WebhookEvents {
    /// The topic holding events of a subscribable `type`.
    static func topic(of type: EventType) -> String? {
        EventRegistry.all.first { $0.eventType == type }.flatMap { subscribable.contains(type) ? $0.topic : nil }
    }
}

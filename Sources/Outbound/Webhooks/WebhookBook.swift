import Contracts
import Foundation
import Kafka

/// One delivery of one event to one subscription, waiting or in flight.
struct WebhookJob: Sendable {
    /// ``WebhookSubscription/deliveryID(of:)``: the ledger's command id and `webhook-id`.
    var deliveryID: String
    var subscriptionID: String
    var event: Envelope
    var source: KafkaTopicPartition
    var offset: Int64
    /// Its latest ledger entry, nil before the first attempt.
    var entry: OutboundDelivery?
    var due: Date
}

/// What the webhooks connector knows of the partitions it owns, as a value with pure
/// steps: the ledger, the deliveries not yet final, and for each source partition the
/// offset it may commit — the oldest event with an unfinished delivery, so that after a
/// crash the next owner reads that event again and, from the ledger, knows what was done.
struct WebhookBook: Sendable {
    /// Ledger entries of the webhooks connector, by ledger partition (= source partition).
    private(set) var ledger: [Int32: [String: OutboundDelivery]] = [:]
    private(set) var jobs: [String: WebhookJob] = [:]
    private var inFlight: Set<String> = []
    /// Per source partition: offsets of events with unfinished deliveries, and how many.
    private var open: [KafkaTopicPartition: [Int64: Int]] = [:]
    /// Per source partition: the offset after the last event read.
    private var readUpTo: [KafkaTopicPartition: Int64] = [:]
    private var committed: [KafkaTopicPartition: Int64] = [:]
    /// Per subscription: the last successful delivery, failures in a row, and the time
    /// before which it is not called (its breaker).
    private(set) var lastSuccess: [String: Date] = [:]
    private var failuresInARow: [String: Int] = [:]
    private var pausedUntil: [String: Date] = [:]

    /// Takes the ledger entries of newly owned partitions.
    mutating func load(_ entries: [Int32: [String: OutboundDelivery]], partitions: Set<Int32>) {
        for partition in partitions {
            ledger[partition] = entries[partition] ?? [:]
            for entry in ledger[partition]!.values where entry.state == .delivered {
                let subscription = Self.subscription(of: entry.commandId)
                lastSuccess[subscription] = max(lastSuccess[subscription] ?? entry.updatedAt, entry.updatedAt)
            }
        }
    }

    /// Forgets the source partitions given up, and the deliveries of their events.
    mutating func drop(_ partitions: [KafkaTopicPartition]) {
        let gone = Set(partitions)
        for (id, job) in jobs where gone.contains(job.source) {
            jobs[id] = nil
            inFlight.remove(id)
        }
        for partition in gone {
            open[partition] = nil
            readUpTo[partition] = nil
            committed[partition] = nil
        }
    }

    /// Goes past a record that no subscription can want.
    mutating func pass(_ source: KafkaTopicPartition, offset: Int64) {
        readUpTo[source] = max(readUpTo[source] ?? 0, offset + 1)
    }

    /// Reads one event: a delivery for each subscription that wants it and has none final
    /// in the ledger. Returns how many deliveries it added.
    @discardableResult
    mutating func read(_ event: Envelope, from source: KafkaTopicPartition, offset: Int64, subscriptions: [WebhookSubscription], now: Date) -> Int {
        pass(source, offset: offset)
        var added = 0
        for subscription in subscriptions where subscription.wants(event.type, at: event.time) {
            let id = subscription.deliveryID(of: event.id)
            guard jobs[id] == nil else { continue }
            let entry = ledger[source.partition]?[id]
            if let entry, entry.state != .attempting, entry.state != .retrying { continue }
            let due = entry?.state == .retrying ? (entry?.nextAttemptAt ?? now) : now
            jobs[id] = WebhookJob(
                deliveryID: id, subscriptionID: subscription.subscriptionId, event: event, source: source, offset: offset, entry: entry, due: due)
            open[source, default: [:]][offset, default: 0] += 1
            added += 1
        }
        return added
    }

    /// The deliveries to attempt now, at most `limit`, oldest due first, marked in flight.
    /// A subscription whose last calls failed gets one probe at a time once its pause is over.
    mutating func due(now: Date, limit: Int) -> [WebhookJob] {
        var taken: [WebhookJob] = []
        var probing: Set<String> = Set(inFlight.compactMap { jobs[$0]?.subscriptionID }.filter { (failuresInARow[$0] ?? 0) > 0 })
        let ready = jobs.values.filter { $0.due <= now && !inFlight.contains($0.deliveryID) }.sorted { ($0.due, $0.offset) < ($1.due, $1.offset) }
        for job in ready {
            if inFlight.count >= limit { break }
            if let until = pausedUntil[job.subscriptionID], until > now { continue }
            if (failuresInARow[job.subscriptionID] ?? 0) > 0 {
                guard !probing.contains(job.subscriptionID) else { continue }
                probing.insert(job.subscriptionID)
            }
            inFlight.insert(job.deliveryID)
            taken.append(job)
        }
        return taken
    }

    /// Records where an attempt left a delivery: final entries end the job (and may let
    /// the commit offset advance); a retrying one waits for its next attempt. `pause` is
    /// how long the subscription rests after a failure.
    mutating func settle(_ job: WebhookJob, entry: OutboundDelivery, pause: Duration?, now: Date) {
        inFlight.remove(job.deliveryID)
        ledger[job.source.partition, default: [:]][job.deliveryID] = entry
        switch entry.state {
        case .delivered:
            lastSuccess[job.subscriptionID] = now
            failuresInARow[job.subscriptionID] = nil
            pausedUntil[job.subscriptionID] = nil
        case .retrying, .failed:
            failuresInARow[job.subscriptionID, default: 0] += 1
            if let pause { pausedUntil[job.subscriptionID] = now.addingTimeInterval(pause.seconds) }
        default:
            break
        }
        guard jobs[job.deliveryID] != nil else { return }
        if entry.state == .retrying {
            jobs[job.deliveryID]!.entry = entry
            jobs[job.deliveryID]!.due = entry.nextAttemptAt ?? now
            return
        }
        jobs[job.deliveryID] = nil
        if let count = open[job.source]?[job.offset] {
            open[job.source]![job.offset] = count > 1 ? count - 1 : nil
        }
    }

    /// Failures in a row of a subscription.
    func failures(of subscription: String) -> Int { failuresInARow[subscription] ?? 0 }

    /// The offsets to commit: per source partition read, the oldest event with an
    /// unfinished delivery, or the offset after the last event read; only those that moved.
    mutating func offsetsToCommit() -> [KafkaTopicPartitionOffset] {
        var offsets: [KafkaTopicPartitionOffset] = []
        for (partition, next) in readUpTo {
            let offset = open[partition]?.keys.min() ?? next
            guard committed[partition] != offset else { continue }
            committed[partition] = offset
            offsets.append(KafkaTopicPartitionOffset(topic: partition.topic, partition: partition.partition, offset: offset))
        }
        return offsets.sorted { ($0.topic, $0.partition) < ($1.topic, $1.partition) }
    }

    /// Deliveries not yet final.
    var pending: Int { jobs.count }

    /// The subscription part of a delivery id.
    static func subscription(of deliveryID: String) -> String {
        String(deliveryID.prefix { $0 != "/" })
    }
}

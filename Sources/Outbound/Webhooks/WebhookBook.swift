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
    /// Per subscription, the ids of its deliveries that are due, oldest read first; ids
    /// of jobs gone since (a partition given up) are passed over when met.
    private var queues: [String: DeliveryQueue] = [:]
    /// Deliveries waiting for a retry, with the time it is due.
    private var waiting: [String: Date] = [:]
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
    /// The subscriptions this session has fanned out to; one it meets later was written
    /// while events it wants may already have been read.
    private var knownSubscriptions: Set<String>?
    /// Per source partition, the offset of the first event read in each second (by the
    /// events' time), for the last ``checkpointWindow``: where to read again from for a
    /// subscription that turns up late.
    private var checkpoints: [KafkaTopicPartition: [(second: Int64, offset: Int64)]] = [:]
    /// How far back ``checkpoints`` reach.
    static let checkpointWindow: TimeInterval = 600
    /// How much older than a subscription an event may claim to be and still be read
    /// again for it (clocks of the producers differ).
    static let clockSkew: TimeInterval = 5

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
            waiting[id] = nil
        }
        for partition in gone {
            checkpoints[partition] = nil
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
        checkpoint(source, offset: offset, time: event.time, now: now)
        var added = 0
        for subscription in subscriptions where subscription.wants(event.type, at: event.time) {
            let id = subscription.deliveryID(of: event.id)
            guard jobs[id] == nil else { continue }
            let entry = ledger[source.partition]?[id]
            if let entry, entry.state != .attempting, entry.state != .retrying { continue }
            let due = entry?.state == .retrying ? (entry?.nextAttemptAt ?? now) : now
            jobs[id] = WebhookJob(
                deliveryID: id, subscriptionID: subscription.subscriptionId, event: event, source: source, offset: offset, entry: entry)
            if due > now { waiting[id] = due } else { queues[subscription.subscriptionId, default: DeliveryQueue()].append(id) }
            open[source, default: [:]][offset, default: 0] += 1
            added += 1
        }
        return added
    }

    /// Where to read again, per source partition, because `subscriptions` holds ones this
    /// session has not met before: the first event of the second before each newcomer was
    /// created (less the clock skew). The first call only learns the subscriptions there
    /// are. Events read again make deliveries only for the newcomers: the others'
    /// deliveries are in memory or final in the ledger.
    mutating func rewinds(for subscriptions: [WebhookSubscription]) -> [KafkaTopicPartitionOffset] {
        let ids = Set(subscriptions.map(\.subscriptionId))
        guard let known = knownSubscriptions else {
            knownSubscriptions = ids
            return []
        }
        knownSubscriptions = known.union(ids)
        let newcomers = subscriptions.filter { !known.contains($0.subscriptionId) && $0.status == .active }
        guard let earliest = newcomers.map(\.createdAt).min() else { return [] }
        let from = Int64((earliest.timeIntervalSince1970 - Self.clockSkew).rounded(.down))
        var rewinds: [KafkaTopicPartitionOffset] = []
        for (partition, marks) in checkpoints {
            guard let mark = marks.first(where: { $0.second >= from }), let next = readUpTo[partition], mark.offset < next else { continue }
            rewinds.append(KafkaTopicPartitionOffset(topic: partition.topic, partition: partition.partition, offset: mark.offset))
        }
        return rewinds.sorted { ($0.topic, $0.partition) < ($1.topic, $1.partition) }
    }

    private mutating func checkpoint(_ source: KafkaTopicPartition, offset: Int64, time: Date, now: Date) {
        let second = Int64(time.timeIntervalSince1970.rounded(.down))
        var marks = checkpoints[source] ?? []
        // Times only rise here: a late-stamped event is covered by the skew margin.
        if let last = marks.last, last.second >= second { return }
        marks.append((second, offset))
        let oldest = Int64(now.timeIntervalSince1970 - Self.checkpointWindow)
        if let keep = marks.firstIndex(where: { $0.second >= oldest }), keep > 0 { marks.removeFirst(keep) }
        checkpoints[source] = marks
    }

    /// The deliveries to attempt now, at most `limit`, one per subscription in turn (each
    /// in the order read), marked in flight.
    /// A subscription whose last calls failed gets one probe at a time once its pause is over.
    mutating func due(now: Date, limit: Int) -> [WebhookJob] {
        for (id, at) in waiting where at <= now {
            waiting[id] = nil
            if let job = jobs[id] { queues[job.subscriptionID, default: DeliveryQueue()].append(id) }
        }
        var probing = Set(inFlight.compactMap { jobs[$0]?.subscriptionID }.filter { (failuresInARow[$0] ?? 0) > 0 })
        var open = queues.keys.filter { pausedUntil[$0].map { $0 <= now } ?? true }.sorted()
        var taken: [WebhookJob] = []
        // One from each subscription in turn, so a busy one does not starve the others.
        while inFlight.count < limit, !open.isEmpty {
            var still: [String] = []
            for subscription in open where inFlight.count < limit {
                let failing = (failuresInARow[subscription] ?? 0) > 0
                if failing, probing.contains(subscription) { continue }
                guard let job = nextJob(of: subscription) else { continue }
                inFlight.insert(job.deliveryID)
                taken.append(job)
                if failing { probing.insert(subscription) } else { still.append(subscription) }
            }
            open = still
        }
        return taken
    }

    /// The next due job of `subscription`'s queue, passing over ids whose job is gone.
    private mutating func nextJob(of subscription: String) -> WebhookJob? {
        while let id = queues[subscription]?.popFirst() {
            if let job = jobs[id], !inFlight.contains(id) { return job }
        }
        queues[subscription] = nil
        return nil
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
            waiting[job.deliveryID] = entry.nextAttemptAt ?? now
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

/// A first-in first-out queue of delivery ids whose removals cost nothing.
struct DeliveryQueue: Sendable {
    private var ids: [String] = []
    private var head = 0

    mutating func append(_ id: String) { ids.append(id) }

    mutating func popFirst() -> String? {
        guard head < ids.count else { return nil }
        defer {
            head += 1
            // Drop the consumed front now and then, not on every pop.
            if head > 1_024, head * 2 > ids.count {
                ids.removeFirst(head)
                head = 0
            }
        }
        return ids[head]
    }
}

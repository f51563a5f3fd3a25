/// One step of committing a batch, as a ``DeliveryStrategy`` orders them.
public enum CommitStep: Sendable {
    /// Enqueue these records.
    case produce([OutputRecord])
    /// Wait until everything enqueued is acknowledged.
    case flush
    /// Exactly once: send the consumed offsets into the transaction and commit it.
    case commitTransaction(offsets: [TopicPartition: Int64])
    /// At least once: commit the consumed offsets to the group.
    case commitOffsets([TopicPartition: Int64])
}

/// What a failed commit step means.
public enum CommitFailurePolicy: Sendable {
    /// Retry a retriable error a few times, else abort and rewind (exactly once).
    case retryThenRecover
    /// Records may be out while others are not; memory and the log may disagree, so the
    /// session must end and its successor restore from the log (at least once).
    case restartSession
    /// Harmless: the inputs are read again and skipped by their keys (at least once).
    case tolerate
}

/// How a ``RunnerMachine`` makes a batch's effects durable: the one thing exactly once and
/// at least once do differently. Everything else (processing, bookkeeping, rewinds, the
/// poison-pill rule) is the machine's and shared.
public protocol DeliveryStrategy: Sendable {
    /// For logs.
    var name: String { get }
    /// Whether batches are Kafka transactions (begin, abort).
    var usesTransactions: Bool { get }
    /// The records to enqueue as soon as an input is processed, and those held back
    /// until commit. `intent` wraps `records` (nil for records that need none, such as
    /// the tombstones of expired keys).
    func split(_ records: [OutputRecord], intent: OutputRecord?) -> (now: [OutputRecord], deferred: [OutputRecord])
    /// The steps that commit a batch, in order.
    func commitPlan(offsets: [TopicPartition: Int64], deferred: [OutputRecord]) -> [CommitStep]
    /// What a failure of `step` means.
    func policy(for step: CommitStep) -> CommitFailurePolicy
}

/// Kafka transactions: outputs, changelog records, idempotency keys and the consumed
/// offsets commit atomically (KIP-98, KIP-447); read_committed readers see all or nothing.
public struct ExactlyOnceStrategy: DeliveryStrategy {
    /// A strategy.
    public init() {}
    /// `exactly-once`.
    public var name: String { "exactly-once" }
    /// Yes.
    public var usesTransactions: Bool { true }
    /// Everything goes into the open transaction at once.
    public func split(_ records: [OutputRecord], intent: OutputRecord?) -> (now: [OutputRecord], deferred: [OutputRecord]) { (records, []) }
    /// Offsets into the transaction, then commit.
    public func commitPlan(offsets: [TopicPartition: Int64], deferred: [OutputRecord]) -> [CommitStep] {
        [.commitTransaction(offsets: offsets)]
    }
    /// A commit may be retried, else aborted.
    public func policy(for step: CommitStep) -> CommitFailurePolicy { .retryThenRecover }
}

/// No transactions; a write-ahead intent per input instead. At commit: the intents
/// (each input's outputs, dead letters, changelog records and key, as computed),
/// flushed; then those records, outputs before state before keys, flushed; then the
/// intents marked done, flushed; then the offsets. A crash before the intents are
/// acknowledged leaves no effect out, so a replay may compute anything; after, the
/// restore redoes the intents not marked done exactly as first computed (same ids,
/// same contents), and the keys make later replays skip the inputs. So a replay
/// against older state never sends a different command under a used id, and an
/// effect is repeated at most, never changed. A lost offset commit only replays inputs
/// the keys skip.
public struct AtLeastOnceStrategy: DeliveryStrategy {
    /// Whether the intents are written. Without them a crash between an output and its
    /// key lets the replay compute that output again, differently (the simulation
    /// catches it): `false` exists only to measure what intents cost (`oms bench-stage`).
    public let writesIntents: Bool

    /// A strategy; `writesIntents: false` is unsafe, for benchmarks.
    public init(writesIntents: Bool = true) { self.writesIntents = writesIntents }
    /// `at-least-once`.
    public var name: String { writesIntents ? "at-least-once" : "at-least-once without intents (unsafe)" }
    /// No.
    public var usesTransactions: Bool { false }
    /// Everything waits for the commit, behind its intent; records without an intent go now.
    public func split(_ records: [OutputRecord], intent: OutputRecord?) -> (now: [OutputRecord], deferred: [OutputRecord]) {
        guard let intent else { return (records, []) }
        return ([], (writesIntents ? [intent] : []) + records)
    }
    /// Intents, records, intents done, offsets, each step acknowledged before the next.
    public func commitPlan(offsets: [TopicPartition: Int64], deferred: [OutputRecord]) -> [CommitStep] {
        var intents: [OutputRecord] = []
        var done: [OutputRecord] = []
        var outputs: [OutputRecord] = []
        var state: [OutputRecord] = []
        var keys: [OutputRecord] = []
        for record in deferred {
            switch record {
            case .intent(let partition, let key, _):
                intents.append(record)
                done.append(.intent(partition: partition, key: key, records: nil))
            case .state: state.append(record)
            case .idempotency: keys.append(record)
            case .output, .deadLetter, .encoded: outputs.append(record)
            }
        }
        var steps: [CommitStep] = [.flush]
        if !intents.isEmpty { steps += [.produce(intents), .flush] }
        let records = outputs + state + keys
        if !records.isEmpty { steps += [.produce(records), .flush] }
        if !done.isEmpty { steps += [.produce(done), .flush] }
        if !offsets.isEmpty { steps.append(.commitOffsets(offsets)) }
        return steps
    }
    /// Offsets may fail; a failed delivery ends the session.
    public func policy(for step: CommitStep) -> CommitFailurePolicy {
        if case .commitOffsets = step { return .tolerate }
        return .restartSession
    }
}

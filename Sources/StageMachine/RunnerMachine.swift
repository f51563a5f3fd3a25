import Contracts
import Foundation
import Workers

/// The stage runtime's semantics as a pure state machine: events in, actions out.
///
/// A driver (the Kafka runner, or the deterministic simulation) feeds it ``Event``s and
/// performs the ``Action``s it asks for, one at a time, reporting each one's outcome
/// with ``Event/succeeded`` or ``Event/failed(_:)``. Other events are given only when
/// ``nextAction()`` returns nil. The machine owns the partitions' state and idempotency
/// keys and runs the stage itself (``StageStep``); how a batch becomes durable is its
/// ``DeliveryStrategy``.
public struct RunnerMachine<S: Stage> {
    /// What the driver tells the machine.
    public enum Event: Sendable {
        /// The group gave these partitions.
        case assigned([TopicPartition])
        /// The group took these partitions away (revoked or lost).
        case revoked([TopicPartition])
        /// Records read back while the ``Action/restore(partitions:)`` in flight runs.
        case restored([RestoredRecord])
        /// Fetched records, processed at `now` (fixed per batch).
        case fetched([InputRecord], now: Date)
        /// The open batch is older than the commit interval, or the session ends.
        case commitDue
        /// The stage's timers are due at `now`.
        case tick(now: Date)
        /// The action in flight succeeded.
        case succeeded
        /// The action in flight failed.
        case failed(RuntimeFailure)
        /// The session went longer than half the group's poll interval without polling:
        /// the group may have given its partitions to another member already, which
        /// restores and writes under the same ids. Given between actions only.
        case pollIntervalExceeded
    }

    /// What the machine asks the driver to do.
    public enum Action: Sendable {
        /// Read these partitions of the changelog and idempotency topic from the
        /// beginning, reporting with ``Event/restored(_:)``.
        case restore(partitions: [Int32])
        /// Begin a transaction.
        case beginTransaction
        /// Enqueue records; `input` is the input they are for, if any.
        case produce([OutputRecord], input: RecordPosition?)
        /// Wait until every enqueued record is acknowledged.
        case flush
        /// Send offsets into the transaction and commit it.
        case commitTransaction(offsets: [TopicPartition: Int64])
        /// Commit offsets to the group.
        case commitOffsets([TopicPartition: Int64])
        /// Abort the open transaction.
        case abortTransaction
        /// Seek these partitions back to their committed offsets.
        case seekToCommitted([TopicPartition])
        /// Wait before going on.
        case wait(Wait)
        /// End the session.
        case stop(StopReason)
    }

    /// Why the machine waits.
    public enum Wait: Sendable {
        /// No progress possible: the runner reports a stall and backs off.
        case stall(operation: String, failure: RuntimeFailure)
        /// Before retrying a commit or an abort: backoff for `attempt`.
        case backoff(attempt: Int)
        /// Before retrying an input the stage failed as retryable.
        case retryInput(attempt: Int)
    }

    /// What happened, for metrics and logs; drained with ``takeNotes()``.
    public enum Note: Sendable {
        /// An input's key was known.
        case duplicate(Envelope)
        /// An input was processed into `outputs` outputs.
        case processed(Envelope, outputs: Int)
        /// The stage failed retryably; it runs again.
        case retrying(Envelope, attempt: Int, reason: String)
        /// An input became a dead letter.
        case deadLettered(RecordPosition, reason: String)
        /// An input failed too often and is dead-lettered.
        case poisonPill(RecordPosition)
        /// One input done.
        case recordIn
        /// Outputs written.
        case recordsOut(Int)
        /// Timers fired.
        case timerFirings(Int)
        /// A batch committed these offsets.
        case committed([TopicPartition: Int64])
        /// A commit failed and is retried.
        case commitRetry(RuntimeFailure, attempt: Int)
        /// At least once: the offset commit failed (replays follow, skipped by key).
        case offsetCommitFailed(RuntimeFailure)
        /// The batch is aborted and the partitions rewound.
        case aborting(operation: String, RuntimeFailure)
        /// The open batch was dropped and the partitions are being rewound.
        case rewound
        /// The idempotency keys remembered after a sweep.
        case idempotencyKeys(Int)
        /// Partitions restored, with their key counts.
        case restoredPartitions([Int32], stateKeys: Int, idempotencyKeys: Int, records: Int)
        /// The failure bookkeeping changed (it outlives the session).
        case failuresChanged(RecordFailures)
    }

    /// Settings that change what the machine decides.
    public struct Settings: Sendable {
        /// Inputs per batch.
        public var batchSize: Int
        /// Attempts of a retryable input, and failures before a poison pill.
        public var retryAttempts: Int
        /// How long idempotency keys are kept.
        public var retention: Duration

        /// Settings.
        public init(batchSize: Int, retryAttempts: Int, retention: Duration) {
            self.batchSize = batchSize
            self.retryAttempts = retryAttempts
            self.retention = retention
        }
    }

    /// The stage run.
    public let stage: S
    /// How batches become durable.
    public let strategy: any DeliveryStrategy
    /// Its settings.
    public let settings: Settings
    private let tables: (String, String) -> Contracts.Event?
    private let oversize: (OutputRecord) -> String?

    /// Input partitions owned.
    public private(set) var owned = Set<TopicPartition>()
    private var states: [Int32: KeyedState] = [:]
    private var keys: [Int32: IdempotencyKeys] = [:]
    /// The poison-pill bookkeeping (given at start, reported with notes).
    public private(set) var failures: RecordFailures
    private var transaction = Transaction()
    private var plan: [Planned] = []
    private var inFlight: Planned?
    private var inbox: [InputRecord] = []
    private var cursor = 0
    private var batchNow = Date(timeIntervalSince1970: 0)
    private var inputAttempt = 1
    private var commitRequested = false
    /// At least once: offsets whose commit failed (tolerated), committed with the next
    /// batch or at the next commit time. Left alone, an idle partition would keep its
    /// lag, and a new owner would replay inputs that only the keys skip.
    private var uncommittedOffsets: [TopicPartition: Int64] = [:]
    private var tickDue: Date?
    private var lastSweep: Date?
    private var fatalDelivery = false
    private var restoredRecords = 0
    /// Intents read during the restore in flight, in log order, by partition.
    private var restoredIntents: [Int32: [(key: String, records: [OutputRecord]?)]] = [:]
    private var intentSequence = 0
    private var notes: [Note] = []
    /// Set once the machine asked to stop.
    public private(set) var stopped: StopReason?

    private struct Transaction {
        var isOpen = false
        var records = 0
        var offsets: [TopicPartition: Int64] = [:]
        var touched = Set<Int32>()
        var inputs: [RecordPosition] = []
        var current: RecordPosition?
        var deferred: [OutputRecord] = []
    }

    private enum Context {
        case begin
        case write(operation: String)
        case commit(CommitStep, attempt: Int)
        case finishCommit
        case abort(attempt: Int)
        case seek
        case wait
        case restore([Int32])
        case stop
    }

    private struct Planned {
        var action: Action?
        var context: Context
    }

    /// A machine with no partitions.
    ///
    /// - Parameters:
    ///   - tables: the global tables' lookup.
    ///   - oversize: why a record can never be written (too large for its topic), or nil.
    public init(
        stage: S, strategy: any DeliveryStrategy, settings: Settings, failures: RecordFailures = RecordFailures(),
        tables: @escaping (String, String) -> Contracts.Event? = { _, _ in nil }, oversize: @escaping (OutputRecord) -> String? = { _ in nil }
    ) {
        self.stage = stage
        self.strategy = strategy
        self.settings = settings
        self.failures = failures
        self.tables = tables
        self.oversize = oversize
    }

    /// Whether a batch is open.
    public var transactionOpen: Bool { transaction.isOpen }

    /// Whether a commit is waiting: a batch is open, or offsets whose commit failed are
    /// to be committed again. The driver times the commit interval from when it became
    /// true and then gives ``Event/commitDue``.
    public var commitPending: Bool { transaction.isOpen || !uncommittedOffsets.isEmpty }

    /// Whether fetched records are still being worked through.
    public var busy: Bool { inFlight != nil || !plan.isEmpty || cursor < inbox.count }

    /// The committed state of `partition` (for tests and metrics).
    public func state(_ partition: Int32) -> KeyedState? { states[partition] }

    /// Number of state keys and idempotency keys held.
    public var counts: (state: Int, keys: Int) {
        (states.values.reduce(0) { $0 + $1.count }, keys.values.reduce(0) { $0 + $1.count })
    }

    /// Notes since the last call.
    public mutating func takeNotes() -> [Note] {
        defer { notes.removeAll(keepingCapacity: true) }
        return notes
    }

    // MARK: Events

    /// Feeds one event.
    public mutating func handle(_ event: Event) {
        guard stopped == nil else { return }
        switch event {
        case .succeeded:
            guard let done = inFlight else { return }
            inFlight = nil
            succeeded(done)
        case .failed(let failure):
            guard let done = inFlight else { return }
            inFlight = nil
            failed(done, failure)
        case .restored(let records):
            restoredRecords += records.count
            for record in records {
                switch record {
                case .state(let partition, let key, let value): states[partition]?.restore(key: key, value: value)
                case .key(let partition, let key, let expiresAt): keys[partition]?.restore(key, expiresAt: expiresAt)
                case .intent(let partition, let key, let records): restoredIntents[partition, default: []].append((key, records))
                }
            }
        case .assigned(let parts):
            let before = Set(owned.map(\.partition))
            owned.formUnion(parts)
            let new = Set(parts.map(\.partition)).subtracting(before).sorted()
            guard !new.isEmpty else { return }
            for partition in new {
                states[partition] = KeyedState()
                keys[partition] = IdempotencyKeys()
            }
            restoredRecords = 0
            plan.append(Planned(action: .restore(partitions: new), context: .restore(new)))
        case .revoked(let parts):
            owned.subtract(parts)
            // The open batch holds records of the partitions that are gone; committing it
            // could duplicate work their new owner starts from the committed offsets.
            if transaction.isOpen { rewind() }
            let kept = Set(owned.map(\.partition))
            for partition in Set(parts.map(\.partition)).subtracting(kept) {
                states[partition] = nil
                keys[partition] = nil
            }
        case .fetched(let records, let now):
            inbox = records
            cursor = 0
            inputAttempt = 1
            batchNow = now
        case .commitDue:
            commitRequested = true
        case .tick(let now):
            tickDue = now
        case .pollIntervalExceeded:
            // Exactly once the broker fences a zombie (KIP-447: its transaction cannot
            // commit under an old generation), so it learns at commit and aborts.
            guard !strategy.usesTransactions else { return }
            // A zombie: at least once nothing fences its writes, and a write computed
            // against state the new owner has moved past (an output, an intent, a state
            // record) would give an id a second content. It writes nothing more; a new
            // session restores from what the group committed.
            stop(StopReason(
                message: "no poll for more than half the group's poll interval (max.poll.interval.ms): the partitions may belong to another member; a new session restores",
                restartable: true))
        }
    }

    /// The next action to perform, or nil when the machine waits for an event.
    public mutating func nextAction() -> Action? {
        guard inFlight == nil else { return nil }
        while true {
            if stopped != nil, plan.isEmpty { return nil }
            if !plan.isEmpty {
                let step = plan.removeFirst()
                guard let action = step.action else {
                    succeeded(step)
                    continue
                }
                inFlight = step
                return action
            }
            if cursor < inbox.count {
                processNext()
                continue
            }
            if !inbox.isEmpty {
                inbox = []
                cursor = 0
            }
            if let now = tickDue {
                fireTimers(now: now)
                continue
            }
            if commitRequested {
                commitRequested = false
                planCommit()
                continue
            }
            return nil
        }
    }

    // MARK: Outcomes

    private mutating func succeeded(_ step: Planned) {
        switch step.context {
        case .write:
            transaction.current = nil
        case .finishCommit:
            let offsets = transaction.offsets
            for partition in transaction.touched {
                states[partition]?.commit()
                keys[partition]?.commit()
            }
            failures.committed(transaction.inputs, batchSize: settings.batchSize)
            notes.append(.failuresChanged(failures))
            transaction = Transaction()
            notes.append(.committed(offsets))
        case .restore(let partitions):
            let stateKeys = partitions.reduce(0) { $0 + (states[$1]?.count ?? 0) }
            let idempotencyKeys = partitions.reduce(0) { $0 + (keys[$1]?.count ?? 0) }
            notes.append(.restoredPartitions(partitions, stateKeys: stateKeys, idempotencyKeys: idempotencyKeys, records: restoredRecords))
            redo(partitions)
        case .begin, .commit, .abort, .seek, .wait, .stop:
            break
        }
    }

    private mutating func failed(_ step: Planned, _ failure: RuntimeFailure) {
        switch step.context {
        case .begin:
            recover(from: failure, during: "begin transaction")
        case .write(let operation):
            recover(from: failure, during: operation)
        case .commit(let commitStep, let attempt):
            switch strategy.policy(for: commitStep) {
            case .retryThenRecover:
                if failure.retriable, !failure.requiresAbort, !failure.isFatal, !fatalDelivery, attempt < 5 {
                    notes.append(.commitRetry(failure, attempt: attempt))
                    plan.insert(contentsOf: [
                        Planned(action: .wait(.backoff(attempt: attempt)), context: .wait),
                        Planned(action: step.action, context: .commit(commitStep, attempt: attempt + 1)),
                    ], at: 0)
                } else {
                    recover(from: failure, during: "commit")
                }
            case .restartSession:
                fatalDelivery = true
                recover(from: failure, during: "commit")
            case .tolerate:
                notes.append(.offsetCommitFailed(failure))
                if case .commitOffsets(let offsets) = commitStep { uncommittedOffsets.merge(offsets) { max($0, $1) } }
            }
        case .abort(let attempt):
            if failure.isFatal || attempt >= 5 {
                stop(StopReason(message: "cannot abort the transaction: \(failure)", restartable: !failure.fenced))
            } else {
                plan.insert(contentsOf: [
                    Planned(action: .wait(.backoff(attempt: attempt)), context: .wait),
                    Planned(action: .abortTransaction, context: .abort(attempt: attempt + 1)),
                ], at: 0)
            }
        case .seek:
            if failure.errorClass == .fatal {
                stop(StopReason(message: "cannot rewind to the committed offsets: \(failure)", restartable: true))
            } else {
                // Without a rewind, the records after the aborted ones would be processed
                // while these are skipped: nothing else happens until it succeeds.
                plan.insert(contentsOf: [
                    Planned(action: .wait(.stall(operation: "rewind to the committed offsets", failure: failure)), context: .wait),
                    step,
                ], at: 0)
            }
        case .restore:
            stop(StopReason(message: "cannot restore state: \(failure)", restartable: !failure.fenced))
        case .finishCommit, .wait, .stop:
            break
        }
    }

    /// Charges the failure (poison-pill rule), then: a failed at-least-once delivery or a
    /// fatal error ends the session; anything else aborts, rewinds and stalls.
    private mutating func recover(from failure: RuntimeFailure, during operation: String) {
        let suspect = transaction.current ?? (transaction.inputs.count == 1 ? transaction.inputs[0] : nil)
        failures.failed(suspect, error: failure, poisonAfter: settings.retryAttempts)
        notes.append(.failuresChanged(failures))
        plan.removeAll()
        inbox = []
        cursor = 0
        tickDue = nil
        commitRequested = false
        if fatalDelivery {
            stop(StopReason(
                message: "at least once: records of a batch may be out but not all were acknowledged (\(failure)); a new session restores state from the changelog",
                restartable: true))
            return
        }
        if failure.isFatal {
            stop(StopReason(
                message: "fatal Kafka error during \(operation): \(failure)"
                    + (failure.fenced ? " (fenced by a newer instance with the same worker.instance.id)" : " (the producer is broken; a new session makes a new one)"),
                restartable: !failure.fenced))
            return
        }
        notes.append(.aborting(operation: operation, failure))
        rewind()
        plan.append(Planned(action: .wait(.stall(operation: operation, failure: failure)), context: .wait))
    }

    /// Aborts the open batch, drops uncommitted state and seeks every owned partition
    /// back to its committed offset.
    private mutating func rewind() {
        notes.append(.rewound)
        if strategy.usesTransactions, transaction.isOpen {
            plan.append(Planned(action: .abortTransaction, context: .abort(attempt: 1)))
        }
        for partition in states.keys { states[partition]?.rollback() }
        for partition in keys.keys { keys[partition]?.rollback() }
        transaction = Transaction()
        guard !owned.isEmpty else { return }
        plan.append(Planned(action: .seekToCommitted(owned.sorted()), context: .seek))
    }

    /// Redoes the intents of `partitions` not marked done, in the order they were
    /// written, before anything else: their effects may be partly out, so they are
    /// completed as first computed rather than computed again.
    private mutating func redo(_ partitions: [Int32]) {
        var redone = false
        for partition in partitions {
            let intents = restoredIntents[partition] ?? []
            restoredIntents[partition] = nil
            // An intent is ordered by its first write since it was last marked done: a
            // redo that crashed midway rewrote some intents after the others, but their
            // records must still go in the order they were first computed.
            var outstanding: [String: (first: Int, records: [OutputRecord])] = [:]
            for (index, intent) in intents.enumerated() {
                if let records = intent.records {
                    outstanding[intent.key] = (outstanding[intent.key]?.first ?? index, records)
                } else {
                    outstanding[intent.key] = nil
                }
            }
            for (key, intent) in outstanding.sorted(by: { $0.value.first < $1.value.first }) {
                let records = intent.records
                if !transaction.isOpen { open(now: batchNow) }
                for record in records {
                    switch record {
                    case .state(let partition, let key, let envelope):
                        states[partition, default: KeyedState()].apply(envelope.map { .put($0.event) } ?? .delete(key: key))
                    case .idempotency(let partition, let key, _, let expiresAt?):
                        let prefix = "\(stage.name)/"
                        keys[partition, default: IdempotencyKeys()].insert(
                            key.hasPrefix(prefix) ? String(key.dropFirst(prefix.count)) : key, expiresAt: expiresAt)
                    default: break
                    }
                }
                transaction.touched.insert(partition)
                write(records, intent: (partition, key), input: nil)
                redone = true
            }
        }
        if redone { planCommit() }
    }

    private mutating func stop(_ reason: StopReason) {
        plan = [Planned(action: .stop(reason), context: .stop)]
        stopped = reason
    }

    // MARK: Work

    /// Opens a batch: begins a transaction (exactly once) and writes the tombstones of
    /// idempotency keys expired by `now`.
    private mutating func open(now: Date) {
        if strategy.usesTransactions { plan.append(Planned(action: .beginTransaction, context: .begin)) }
        transaction = Transaction(isOpen: true)
        if let last = lastSweep, now.timeIntervalSince(last) < 1 { return }
        lastSweep = now
        let nowMilliseconds = now.millisecondsSince1970
        var tombstones: [OutputRecord] = []
        for partition in keys.keys.sorted() {
            for key in keys[partition]!.removeExpired(now: nowMilliseconds) {
                tombstones.append(.idempotency(partition: partition, key: "\(stage.name)/\(key)", envelope: nil, expiresAt: nil))
            }
        }
        if !tombstones.isEmpty {
            plan.append(Planned(action: .produce(tombstones, input: nil), context: .write(operation: "write tombstones")))
        }
        notes.append(.idempotencyKeys(counts.keys))
    }

    /// Queues `records` for writing: now, or (per strategy) at commit behind their intent.
    private mutating func write(_ records: [OutputRecord], intent: (partition: Int32, key: String)?, input: RecordPosition?) {
        let wrapped = intent.flatMap { records.isEmpty ? nil : OutputRecord.intent(partition: $0.partition, key: $0.key, records: records) }
        let (now, deferred) = strategy.split(records, intent: wrapped)
        transaction.deferred += deferred
        if now.isEmpty {
            transaction.current = nil
        } else {
            plan.append(Planned(action: .produce(now, input: input), context: .write(operation: "produce")))
        }
    }

    private mutating func processNext() {
        if !transaction.isOpen {
            open(now: batchNow)
            return
        }
        let record = inbox[cursor]
        let position = record.position
        transaction.current = position
        guard let records = process(record) else { return }
        cursor += 1
        inputAttempt = 1
        transaction.inputs.append(position)
        transaction.offsets[position.topicPartition] = position.offset + 1
        transaction.touched.insert(position.partition)
        transaction.records += 1
        notes.append(.recordIn)
        write(records, intent: (position.partition, intentKey(position)), input: position)
        // While a batch keeps failing, each input gets one of its own, so that a failure
        // at commit names its record.
        if transaction.records >= (failures.isolating ? 1 : settings.batchSize) { planCommit() }
    }

    /// The records one input turns into; nil when the stage asked for a retry (a wait is
    /// planned and the same input runs again).
    private mutating func process(_ record: InputRecord) -> [OutputRecord]? {
        let position = record.position
        if let poison = failures.poison(position, after: settings.retryAttempts) {
            notes.append(.poisonPill(position))
            // Past twice the attempts, even the dead letter failed: keep only a reference.
            return [deadLetter(
                position, error: "writing its outcome failed \(poison.attempts) times (\(poison.error))", attempts: poison.attempts,
                referenceOnly: poison.attempts >= 2 * settings.retryAttempts)]
        }
        let envelope: Envelope
        switch record.content {
        case .undecodable(let reason): return [deadLetter(position, error: reason, attempts: 1)]
        case .tombstone: return []
        case .envelope(let value): envelope = value
        }
        let input = StageInput(envelope: envelope, topic: position.topic, partition: position.partition, offset: position.offset, now: batchNow)
        let result = StageStep.run(
            stage, input: input, state: &states[position.partition, default: KeyedState()],
            keys: &keys[position.partition, default: IdempotencyKeys()], retention: settings.retention, tables: tables)
        switch result.kind {
        case .duplicate:
            notes.append(.duplicate(envelope))
            return []
        case .processed:
            notes.append(.processed(envelope, outputs: result.outputs.count))
            return fitting(records(of: result, partition: position.partition), input: position)
        case .failed(.retryable(let reason)) where inputAttempt < settings.retryAttempts:
            notes.append(.retrying(envelope, attempt: inputAttempt, reason: reason))
            plan.append(Planned(action: .wait(.retryInput(attempt: inputAttempt)), context: .wait))
            inputAttempt += 1
            return nil
        case .failed(let failure):
            return [deadLetter(position, error: failure.description, attempts: inputAttempt)]
        }
    }

    private mutating func records(of result: StepResult, partition: Int32) -> [OutputRecord] {
        var records: [OutputRecord] = []
        records.reserveCapacity(result.outputs.count + result.stateRecords.count + 1)
        for output in result.outputs { records.append(.output(topic: output.topic, envelope: output.envelope)) }
        if stage.changelogTopic != nil {
            for change in result.stateRecords { records.append(.state(partition: partition, key: change.key, envelope: change.envelope)) }
        }
        if let (key, envelope) = result.idempotency, case .idempotencyRecord(let record) = envelope.event {
            records.append(.idempotency(partition: partition, key: key, envelope: envelope, expiresAt: record.expiresAt.millisecondsSince1970))
        }
        notes.append(.recordsOut(result.outputs.count))
        return records
    }

    /// An input's records if each can be written; otherwise its outputs are replaced by a
    /// dead letter that says which record cannot (a retry would fail the same way). Its
    /// state change and key stay, so that memory and changelog agree.
    private mutating func fitting(_ records: [OutputRecord], input: RecordPosition) -> [OutputRecord] {
        var reason = records.lazy.compactMap(oversize).first
        if reason == nil, !strategy.usesTransactions {
            // At least once, the records also travel in their intent, which must fit too.
            reason = oversize(.intent(partition: input.partition, key: intentKey(input), records: records))
        }
        guard let reason else { return records }
        let kept = records.filter { record in
            switch record {
            case .state, .idempotency: oversize(record) == nil
            case .output, .deadLetter, .intent, .encoded: false
            }
        }
        return kept + [deadLetter(input, error: "its outcome cannot be written: \(reason)", attempts: 1)]
    }

    private func intentKey(_ input: RecordPosition) -> String { "\(stage.name)/~intent/\(input.topic)/\(input.offset)" }

    private mutating func deadLetter(_ input: RecordPosition, error: String, attempts: Int, referenceOnly: Bool = false) -> OutputRecord {
        notes.append(.deadLettered(input, reason: error))
        return .deadLetter(input: input, error: error, attempts: attempts, referenceOnly: referenceOnly)
    }

    /// Runs the stage's timers over every owned partition's state, in the open batch.
    private mutating func fireTimers(now: Date) {
        for partition in Set(owned.map(\.partition)).sorted() {
            guard let state = states[partition] else { continue }
            let firings = stage.tick(now: now, state: state)
            guard !firings.isEmpty else { continue }
            if !transaction.isOpen {
                // Fires once the batch is open (the loop comes back here).
                open(now: now)
                return
            }
            let results = StageStep.fire(stage, firings, state: &states[partition, default: KeyedState()], now: now)
            transaction.touched.insert(partition)
            for result in results {
                intentSequence += 1
                write(records(of: result, partition: partition), intent: (partition, "\(stage.name)/~intent/timer/\(intentSequence)"), input: nil)
            }
            notes.append(.timerFirings(firings.count))
        }
        tickDue = nil
    }

    private mutating func planCommit() {
        let retried = uncommittedOffsets.filter { owned.contains($0.key) }
        uncommittedOffsets = [:]
        guard transaction.isOpen || !retried.isEmpty else { return }
        let offsets = retried.merging(transaction.offsets) { max($0, $1) }
        let steps = strategy.commitPlan(offsets: offsets, deferred: transaction.deferred)
        for step in steps {
            let action: Action =
                switch step {
                case .produce(let records): .produce(records, input: nil)
                case .flush: .flush
                case .commitTransaction(let offsets): .commitTransaction(offsets: offsets)
                case .commitOffsets(let offsets): .commitOffsets(offsets)
                }
            plan.append(Planned(action: action, context: .commit(step, attempt: 1)))
        }
        plan.append(Planned(action: nil, context: .finishCommit))
    }
}

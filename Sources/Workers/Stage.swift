import Contracts
import Foundation

/// One step of the order pipeline as a pure function: an input event and the stage's
/// state in, outcome events and state changes out.
///
/// A stage knows nothing of Kafka. The runtime (`Fleet.StageRunner`) decodes the input,
/// skips inputs whose ``idempotencyKey(for:)`` it has seen, calls ``process(_:state:)``,
/// and writes the outcome, the state changes and the idempotency key in one
/// transaction. So `process` must be deterministic in its input and state: after a crash
/// the same input is processed again against the same state, and the outputs get the
/// same ids (they are derived from the input's id, the stage name and the output index).
public protocol Stage: Sendable {
    /// The stage's name: its consumer group is `oms.<name>` and its idempotency keys are
    /// `<name>/<key>`.
    var name: String { get }
    /// The topics it consumes.
    var inputTopics: [String] { get }
    /// The compacted topic that holds this stage's keyed state, partitioned like the
    /// inputs (state for input partition N lives in changelog partition N); nil for a
    /// stateless stage.
    var changelogTopic: String? { get }
    /// Compacted topics every instance reads whole and keeps reading (lookups such as
    /// the inventory snapshot); ``StageState/table(_:)`` serves them.
    var globalTables: [String] { get }
    /// The key that makes reprocessing this input a no-op; by default the event id.
    /// A stage that must dedupe on business identity (a channel re-sending an order
    /// under a new event id) returns that identity instead.
    func idempotencyKey(for input: Envelope) -> String
    /// Handles one input. Throw ``StageFailure/retryable(_:)`` for a transient cause (the
    /// runtime retries with backoff), ``StageFailure/rejected(_:)`` for input that can
    /// never succeed (it goes to the dead-letter topic).
    func process(_ input: StageInput, state: StageState) throws(StageFailure) -> StageOutcome
    /// How often the runtime calls ``tick(now:state:)`` for each partition it owns; nil for
    /// a stage without timers.
    var tickInterval: Duration? { get }
    /// What is due at `now` in one partition's state (SLA breaches, messages a set time
    /// after an event). It runs between inputs, in the open transaction; each firing's
    /// state changes and outputs are written like an input's.
    func tick(now: Date, state: KeyedState) -> [TimerFiring]
}

/// One timer that fired: its outcome, and the identity its output ids derive from, so
/// that a firing repeated after a crash (at least once) emits the same event ids.
public struct TimerFiring: Sendable, Hashable {
    /// Stable identity of what fired, e.g. `sla/<orderId>/<rule>/<since>`.
    public var id: String
    /// Outputs and state changes.
    public var outcome: StageOutcome

    /// Creates a firing.
    public init(id: String, outcome: StageOutcome) {
        self.id = id
        self.outcome = outcome
    }
}

extension Stage {
    /// Stateless by default.
    public var changelogTopic: String? { nil }
    /// No global tables by default.
    public var globalTables: [String] { [] }
    /// The input event's id.
    public func idempotencyKey(for input: Envelope) -> String { input.id }
    /// No timers by default.
    public var tickInterval: Duration? { nil }
    /// Nothing is ever due by default.
    public func tick(now: Date, state: KeyedState) -> [TimerFiring] { [] }
}

/// An input record as a stage sees it: the decoded event and where it came from.
public struct StageInput: Sendable {
    /// The decoded envelope.
    public var envelope: Envelope
    /// The topic it was read from.
    public var topic: String
    /// Its partition; state and idempotency keys for it live in the same partition number.
    public var partition: Int32
    /// Its offset.
    public var offset: Int64
    /// Processing time, fixed per batch: stages use it instead of reading the clock.
    public var now: Date

    /// Creates an input.
    public init(envelope: Envelope, topic: String, partition: Int32, offset: Int64, now: Date) {
        self.envelope = envelope
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.now = now
    }

    /// The event.
    public var event: Event { envelope.event }
}

/// What a stage produces for one input.
public struct StageOutcome: Sendable, Hashable {
    /// Events to publish, in order; each goes to its type's topic unless it names another.
    public var outputs: [StageOutput]
    /// Changes to the stage's keyed state, written to its changelog in the same transaction.
    public var stateChanges: [StateChange]

    /// Creates an outcome.
    public init(outputs: [StageOutput] = [], stateChanges: [StateChange] = []) {
        self.outputs = outputs
        self.stateChanges = stateChanges
    }

    /// Publishes these events to their own topics and changes no state.
    public static func emit(_ events: Event...) -> StageOutcome {
        StageOutcome(outputs: events.map { StageOutput($0) })
    }

    /// Nothing to publish, no state change: the input is consumed and marked done.
    public static let none = StageOutcome()
}

/// One event a stage publishes.
public struct StageOutput: Sendable, Hashable {
    /// The event.
    public var event: Event
    /// A topic other than the event type's own, for stages that route (e.g. the test
    /// pass-through stage); nil for the type's topic.
    public var topic: String?

    /// Creates an output.
    public init(_ event: Event, topic: String? = nil) {
        self.event = event
        self.topic = topic
    }
}

/// A change to one key of a stage's state.
///
/// A value is keyed by its event's partition key (an `InventoryLevel` by SKU, an
/// `OrderView` by order id), as the changelog topic's keying rule says; so the
/// changelog reads back through the same contract checks as any topic.
public enum StateChange: Sendable, Hashable {
    /// Sets the value under its event's partition key.
    case put(Event)
    /// Removes the key (a tombstone in the changelog).
    case delete(key: String)

    /// The key changed.
    public var key: String {
        switch self {
        case .put(let value): value.payload.partitionKey
        case .delete(let key): key
        }
    }
}

/// Why a stage could not process an input.
public enum StageFailure: Error, Sendable, Hashable, CustomStringConvertible {
    /// A transient cause (a dependency unavailable): retried with backoff, then
    /// dead-lettered once the attempts are used up.
    case retryable(String)
    /// The input can never be processed (it breaks a rule the contract cannot express):
    /// dead-lettered at once.
    case rejected(String)

    /// The reason, as it goes into the dead letter.
    public var description: String {
        switch self {
        case .retryable(let reason): "retryable: \(reason)"
        case .rejected(let reason): "rejected: \(reason)"
        }
    }
}

/// Read access to a stage's state while it processes one input.
///
/// ``value(_:)`` sees the stage's own keyed state for the input's partition, including
/// changes made by earlier inputs of the same uncommitted batch.
public protocol StageState {
    /// The current value of a key of the stage's own state.
    func value(_ key: String) -> Event?
    /// The current value of a key in one of the stage's ``Stage/globalTables``.
    func table(_ topic: String, key: String) -> Event?
}

import Contracts
import Foundation

/// Runs a stage in memory, input by input, with the runtime's semantics (idempotency,
/// state, output ids) and no Kafka: for testing stages as pure functions.
///
/// Each input is its own committed batch. Partitions are kept apart as in the runtime.
public struct StageDriver<S: Stage> {
    /// The stage driven.
    public let stage: S
    /// How long idempotency keys are remembered.
    public var retention: Duration
    /// The global tables' contents, by topic and key.
    public var tables: [String: [String: Event]] = [:]
    private var states: [Int32: KeyedState] = [:]
    private var keys: [Int32: IdempotencyKeys] = [:]

    /// Creates a driver with empty state.
    public init(stage: S, retention: Duration = .seconds(7 * 86_400)) {
        self.stage = stage
        self.retention = retention
    }

    /// Runs one input and commits its effects, as one transaction of the runtime would.
    public mutating func handle(_ envelope: Envelope, topic: String? = nil, partition: Int32 = 0, offset: Int64 = 0, now: Date = Date()) -> StepResult {
        let input = StageInput(envelope: envelope, topic: topic ?? envelope.topic, partition: partition, offset: offset, now: now)
        var state = states[partition, default: KeyedState()]
        var partitionKeys = keys[partition, default: IdempotencyKeys()]
        states[partition] = nil
        keys[partition] = nil
        let tables = tables
        let result = StageStep.run(stage, input: input, state: &state, keys: &partitionKeys, retention: retention) { topic, key in
            tables[topic]?[key]
        }
        state.commit()
        partitionKeys.commit()
        states[partition] = state
        keys[partition] = partitionKeys
        return result
    }

    /// Runs the stage's timers for `partition` at `now` and commits their effects.
    public mutating func tick(now: Date, partition: Int32 = 0) -> [StepResult] {
        var state = states[partition, default: KeyedState()]
        states[partition] = nil
        let firings = stage.tick(now: now, state: state)
        let results = StageStep.fire(stage, firings, state: &state, now: now)
        state.commit()
        states[partition] = state
        return results
    }

    /// The committed value of `key` in `partition`'s state.
    public func value(_ key: String, partition: Int32 = 0) -> Event? {
        states[partition]?.value(key)
    }
}

import Contracts
import Foundation

/// The records one input turns into, ready to be written in one transaction.
public struct StepResult: Sendable {
    /// What happened.
    public enum Kind: Sendable, Hashable {
        /// The stage ran; outputs and state records follow.
        case processed
        /// The input's idempotency key was known: nothing is written but its offset.
        case duplicate
        /// The stage failed; the input goes to the dead-letter topic.
        case failed(StageFailure)
    }

    /// What happened.
    public var kind: Kind
    /// The outcome events, wrapped in envelopes whose ids derive from the input's.
    public var outputs: [(topic: String, envelope: Envelope)]
    /// Changelog records: key and the value's envelope, nil for a delete.
    public var stateRecords: [(key: String, envelope: Envelope?)]
    /// The idempotency record to write (stage-qualified key and its envelope).
    public var idempotency: (key: String, envelope: Envelope)?
}

/// Runs one input through a stage against one partition's state, with the semantics of
/// the runtime (docs/ARCHITECTURE.md): known idempotency key → skip; otherwise process, stage the state
/// changes and the key as pending, and build the output envelopes.
///
/// Shared by the Kafka runtime and by ``StageDriver``, so that what is tested without
/// Kafka is what runs with it.
public enum StageStep {
    /// Processes `input` (whose partition's state is `state` and `keys`).
    ///
    /// - Parameter tables: the global tables' lookup, for ``StageState/table(_:key:)``.
    public static func run<S: Stage>(
        _ stage: S, input: StageInput, state: inout KeyedState, keys: inout IdempotencyKeys,
        retention: Duration, tables: @escaping (String, String) -> Event? = { _, _ in nil }
    ) -> StepResult {
        let key = stage.idempotencyKey(for: input.envelope)
        if keys.contains(key) {
            return StepResult(kind: .duplicate, outputs: [], stateRecords: [], idempotency: nil)
        }
        let outcome: StageOutcome
        switch invoke(stage, input, state: state, tables: tables) {
        case .success(let value): outcome = value
        case .failure(let failure): return StepResult(kind: .failed(failure), outputs: [], stateRecords: [], idempotency: nil)
        }
        let now = input.now
        var outputs: [(topic: String, envelope: Envelope)] = []
        outputs.reserveCapacity(outcome.outputs.count)
        for (index, output) in outcome.outputs.enumerated() {
            let envelope = Envelope.output(of: input.envelope, stage: stage.name, outputIndex: index, event: output.event, time: now)
            outputs.append((output.topic ?? envelope.topic, envelope))
        }
        var stateRecords: [(key: String, envelope: Envelope?)] = []
        for (index, change) in outcome.stateChanges.enumerated() {
            state.apply(change)
            switch change {
            case .put(let value):
                stateRecords.append((change.key, Envelope.output(of: input.envelope, stage: "\(stage.name).state", outputIndex: index, event: value, time: now)))
            case .delete(let key):
                stateRecords.append((key, nil))
            }
        }
        let expiresAt = now.addingTimeInterval(retention.seconds)
        keys.insert(key, expiresAt: expiresAt.millisecondsSince1970)
        let record = IdempotencyRecord(stage: stage.name, key: key, eventId: input.envelope.id, processedAt: now, expiresAt: expiresAt)
        let idempotency = Envelope.output(of: input.envelope, stage: "\(stage.name).idempotency", outputIndex: 0, event: record.event, time: now)
        return StepResult(kind: .processed, outputs: outputs, stateRecords: stateRecords, idempotency: (record.partitionKey, idempotency))
    }

    /// Applies timer firings to `state` and builds their records; outputs get ids derived
    /// from the firing's id (there is no input, and no idempotency key to write).
    public static func fire<S: Stage>(_ stage: S, _ firings: [TimerFiring], state: inout KeyedState, now: Date) -> [StepResult] {
        firings.map { firing in
            let cause = "timer/\(stage.name)/\(firing.id)"
            var outputs: [(topic: String, envelope: Envelope)] = []
            for (index, output) in firing.outcome.outputs.enumerated() {
                let envelope = Envelope.output(causedBy: cause, trace: nil, stage: stage.name, outputIndex: index, event: output.event, time: now)
                outputs.append((output.topic ?? envelope.topic, envelope))
            }
            var stateRecords: [(key: String, envelope: Envelope?)] = []
            for (index, change) in firing.outcome.stateChanges.enumerated() {
                state.apply(change)
                switch change {
                case .put(let value):
                    let envelope = Envelope.output(causedBy: cause, trace: nil, stage: "\(stage.name).state", outputIndex: index, event: value, time: now)
                    stateRecords.append((change.key, envelope))
                case .delete(let key):
                    stateRecords.append((key, nil))
                }
            }
            return StepResult(kind: .processed, outputs: outputs, stateRecords: stateRecords, idempotency: nil)
        }
    }

    /// Calls the stage with a view of `state` that ends with this call: were the view
    /// still alive when `run` applies the changes, the state's storage would be copied
    /// (copy on write) for every input.
    private static func invoke<S: Stage>(
        _ stage: S, _ input: StageInput, state: KeyedState, tables: @escaping (String, String) -> Event?
    ) -> Result<StageOutcome, StageFailure> {
        Result { () throws(StageFailure) in try stage.process(input, state: StateView(state: state, tables: tables)) }
    }
}

/// The ``StageState`` a stage sees during one ``StageStep/run``.
private struct StateView: StageState {
    let state: KeyedState
    let tables: (String, String) -> Event?

    func value(_ key: String) -> Event? { state.value(key) }
    func table(_ topic: String, key: String) -> Event? { tables(topic, key) }
}

extension Duration {
    /// The duration in seconds, as `TimeInterval`.
    public var seconds: TimeInterval {
        let (seconds, attoseconds) = components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }
}

extension Date {
    /// Milliseconds since 1970, as Kafka timestamps and idempotency expiries count.
    public var millisecondsSince1970: Int64 { Int64((timeIntervalSince1970 * 1000).rounded(.down)) }
}

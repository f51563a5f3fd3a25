import Synchronization

/// What a running stage reports to `/healthz` and `/readyz`.
///
/// Ready means: the worker is in its group, every partition it owns has its state
/// restored, and a Kafka broker is reachable, so it processes records as they come. A
/// worker with no partitions (more instances than partitions) is ready too: it stands by.
/// A stalled worker (Kafka away, a transaction that keeps failing, a restart after a
/// failed delivery) is not ready but healthy: it keeps trying by itself, and restarting
/// the process would not help.
public final class RunnerStatus: Sendable {
    /// The stage's name.
    public let stage: String
    private let state = Mutex(State())

    private struct State {
        var phase: Phase = .starting
        var partitions = 0
        var kafkaReachable: (@Sendable () -> Bool)?
    }

    /// Where the runner is in its life.
    public enum Phase: String, Sendable {
        /// Connecting, checking topics, fencing older transactions.
        case starting
        /// Reading changelogs and idempotency keys for newly owned partitions.
        case restoring
        /// Processing.
        case running
        /// Cannot make progress (Kafka unreachable, writes failing, restarting its
        /// session); retrying with backoff. Not ready, still healthy.
        case stalled
        /// Finishing its last batch and leaving the group.
        case stopping
        /// Stopped after a failure.
        case failed
        /// Stopped cleanly.
        case stopped
    }

    /// A status for `stage`, starting.
    public init(stage: String) { self.stage = stage }

    /// The current phase.
    public var phase: Phase { state.withLock { $0.phase } }
    /// How many input partitions the runner owns.
    public var partitions: Int { state.withLock { $0.partitions } }
    /// Whether a Kafka broker is reachable, as the runner's consumer last knew it
    /// (librdkafka's all-brokers-down error, then its statistics); true while unknown.
    public var kafkaReachable: Bool { state.withLock { $0.kafkaReachable }?() ?? true }
    /// Whether the runner processes records as they come: running, and Kafka reachable
    /// (an idle runner would otherwise look ready through a whole outage).
    public var isReady: Bool { phase == .running && kafkaReachable }
    /// Whether the runner is alive (not failed or stopped).
    public var isHealthy: Bool { ![.failed, .stopped].contains(phase) }

    package func set(_ phase: Phase) { state.withLock { $0.phase = phase } }
    package func set(partitions: Int) { state.withLock { $0.partitions = partitions } }
    /// Where ``kafkaReachable`` comes from (the session's consumer); nil: unknown.
    package func set(kafkaReachable: (@Sendable () -> Bool)?) { state.withLock { $0.kafkaReachable = kafkaReachable } }
}

import Kafka
import Metrics

/// The metrics one stage runner reports, all labelled with the stage's name.
struct StageMetrics: Sendable {
    let recordsIn: Counter
    let recordsOut: Counter
    let duplicates: Counter
    let deadLetters: Counter
    let retries: Counter
    let timerFirings: Counter
    let aborts: Counter
    let rebalances: Counter
    let batchLatency: Timer
    let commitLatency: Timer
    let restoreTime: Timer
    let restoredRecords: Counter
    let stateKeys: Gauge
    let idempotencyKeys: Gauge
    /// 1 while the runner cannot make progress and retries, else 0.
    let stalled: Gauge
    /// In-process restarts of the runner's Kafka session after a failure.
    let restarts: Counter
    /// Inputs dead-lettered because writing their outcome kept failing (poison pills).
    let poisonPills: Counter
    let stage: String

    init(stage: String) {
        self.stage = stage
        let dimensions = [("stage", stage)]
        recordsIn = Counter(label: "oms_stage_records_in_total", dimensions: dimensions)
        recordsOut = Counter(label: "oms_stage_records_out_total", dimensions: dimensions)
        duplicates = Counter(label: "oms_stage_duplicates_skipped_total", dimensions: dimensions)
        deadLetters = Counter(label: "oms_stage_dead_letters_total", dimensions: dimensions)
        retries = Counter(label: "oms_stage_retries_total", dimensions: dimensions)
        timerFirings = Counter(label: "oms_stage_timer_firings_total", dimensions: dimensions)
        aborts = Counter(label: "oms_stage_transaction_aborts_total", dimensions: dimensions)
        rebalances = Counter(label: "oms_stage_rebalances_total", dimensions: dimensions)
        batchLatency = Timer(label: "oms_stage_batch_seconds", dimensions: dimensions, preferredDisplayUnit: .seconds)
        commitLatency = Timer(label: "oms_stage_commit_seconds", dimensions: dimensions, preferredDisplayUnit: .seconds)
        restoreTime = Timer(label: "oms_stage_restore_seconds", dimensions: dimensions, preferredDisplayUnit: .seconds)
        restoredRecords = Counter(label: "oms_stage_restored_records_total", dimensions: dimensions)
        stateKeys = Gauge(label: "oms_stage_state_keys", dimensions: dimensions)
        idempotencyKeys = Gauge(label: "oms_stage_idempotency_keys", dimensions: dimensions)
        stalled = Gauge(label: "oms_stage_stalled", dimensions: dimensions)
        restarts = Counter(label: "oms_stage_restarts_total", dimensions: dimensions)
        poisonPills = Counter(label: "oms_stage_poison_records_total", dimensions: dimensions)
    }

    /// Records not yet committed behind the partition's high watermark. Computed by the
    /// runner: under exactly once the offsets are committed through the producer's
    /// transaction, so librdkafka's own `consumer_lag` statistic stays unknown.
    func lag(_ partition: KafkaTopicPartition) -> Gauge {
        Gauge(label: "oms_stage_consumer_lag", dimensions: [("stage", stage), ("topic", partition.topic), ("partition", String(partition.partition))])
    }
}

import Contracts
import Foundation
import Workers

/// Forwards every input event unchanged (new id, same payload) from one topic to another:
/// the runtime's own cost, for the tests and the benchmark.
///
/// An event whose subject starts with ``rejectPrefix`` is rejected, so that tests can
/// send handler failures through the dead-letter path.
public struct PassThroughStage: Stage {
    /// `passthrough`.
    public let name: String
    /// The topic read.
    public let inputTopics: [String]
    /// The topic written.
    public let outputTopic: String
    /// Subjects with this prefix are rejected.
    public let rejectPrefix: String

    /// Creates the stage.
    public init(name: String = "passthrough", input: String = "oms.test.in", output: String = "oms.test.out", rejectPrefix: String = "poison") {
        self.name = name
        inputTopics = [input]
        outputTopic = output
        self.rejectPrefix = rejectPrefix
    }

    /// Emits the input event to ``outputTopic``.
    public func process(_ input: StageInput, state: StageState) throws(StageFailure) -> StageOutcome {
        if input.envelope.subject.hasPrefix(rejectPrefix) {
            throw .rejected("subject '\(input.envelope.subject)' starts with '\(rejectPrefix)'")
        }
        return StageOutcome(outputs: [StageOutput(input.event, topic: outputTopic)])
    }
}

/// Counts inputs per record key and emits the running count: a stateful stage whose
/// state lives in its changelog, for the restore tests.
public struct CountingStage: Stage {
    /// `counter`.
    public let name: String
    /// The topic read.
    public let inputTopics: [String]
    /// The counts, keyed like the input.
    public let changelogTopic: String?
    /// Where each new count is published.
    public let outputTopic: String

    /// Creates the stage.
    public init(
        name: String = "counter", input: String = "oms.test.counts.in", changelog: String = "oms.test.counts.state",
        output: String = "oms.test.counts.out"
    ) {
        self.name = name
        inputTopics = [input]
        changelogTopic = changelog
        outputTopic = output
    }

    /// Adds one to the input key's count.
    public func process(_ input: StageInput, state: StageState) throws(StageFailure) -> StageOutcome {
        let bucket = Self.bucket(of: input.envelope.key)
        var count: Int64 = 0
        if case .reportBucket(let current) = state.value(bucket.partitionKey) {
            count = current.values["count"] ?? 0
        }
        let counted = ReportBucket(report: bucket.report, bucket: bucket.bucket, values: ["count": count + 1], updatedAt: input.now)
        return StageOutcome(outputs: [StageOutput(counted.event, topic: outputTopic)], stateChanges: [.put(counted.event)])
    }

    /// The state entry that counts records keyed `key`.
    public static func bucket(of key: String) -> ReportBucket {
        ReportBucket(report: "count", bucket: key, values: [:], updatedAt: Date(timeIntervalSince1970: 0))
    }
}

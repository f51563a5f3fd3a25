import Contracts
import Foundation
import OrderFleetTesting
import ReferenceStages
import Testing
import Workers

/// The stage runtime without Kafka: ``KeyedState`` and ``IdempotencyKeys`` (pending
/// changes, commit, rollback, restore, expiry), ``StageStep`` (failures leave state and
/// keys untouched, keys are staged as pending) and ``StageDriver`` running the test
/// stages (output routing and deterministic ids, duplicates, rejections, per-partition
/// keys and state, running counts, global tables).
@Suite struct StageTests {
    // MARK: KeyedState

    @Test func keyedStateShowsPendingChangesAndCommitsOrRollsThemBack() {
        var state = KeyedState()
        let first = Fixture.bucket("r", "a", count: 1)
        let second = Fixture.bucket("r", "a", count: 2)

        state.apply(.put(first))
        #expect(state.value("r/a") == first)
        #expect(state.count == 0, "a pending put is not committed")
        state.rollback()
        #expect(state.value("r/a") == nil)
        #expect(state.count == 0)

        state.apply(.put(first))
        state.commit()
        #expect(state.value("r/a") == first)
        #expect(state.count == 1)

        state.apply(.put(second))
        #expect(state.value("r/a") == second)
        state.rollback()
        #expect(state.value("r/a") == first, "rollback restores the committed value")

        state.apply(.delete(key: "r/a"))
        #expect(state.value("r/a") == nil, "a pending delete hides the committed value")
        #expect(state.count == 1)
        state.rollback()
        #expect(state.value("r/a") == first)

        state.apply(.delete(key: "r/a"))
        state.commit()
        #expect(state.value("r/a") == nil)
        #expect(state.count == 0)
    }

    @Test func keyedStateRestoreSetsAndDeletes() {
        var state = KeyedState()
        let a = Fixture.bucket("r", "a", count: 1)
        let b = Fixture.bucket("r", "b", count: 2)

        state.restore(key: "r/a", value: a)
        state.restore(key: "r/b", value: b)
        #expect(state.count == 2)
        #expect(state.value("r/a") == a)
        #expect(state.value("r/b") == b)

        state.restore(key: "r/a", value: nil)
        #expect(state.value("r/a") == nil)
        #expect(state.value("r/b") == b)
        #expect(state.count == 1)
    }

    // MARK: IdempotencyKeys

    @Test func idempotencyKeysArePendingUntilCommitted() {
        var keys = IdempotencyKeys()

        keys.insert("a", expiresAt: 100)
        #expect(keys.contains("a"), "a pending key already counts as processed")
        #expect(keys.count == 0)
        keys.rollback()
        #expect(!keys.contains("a"))
        #expect(keys.count == 0)

        keys.insert("a", expiresAt: 100)
        keys.commit()
        #expect(keys.contains("a"))
        #expect(keys.count == 1)
        keys.rollback()
        #expect(keys.contains("a"), "rollback only drops pending keys")
    }

    @Test func removeExpiredForgetsExactlyTheKeysDue() {
        var keys = IdempotencyKeys()
        // Inserted out of order: commit sorts them by expiry.
        keys.insert("c", expiresAt: 300)
        keys.insert("a", expiresAt: 100)
        keys.insert("b", expiresAt: 200)
        keys.commit()
        #expect(keys.count == 3)

        let notYet = keys.removeExpired(now: 99)
        #expect(notYet.isEmpty)
        #expect(keys.count == 3)

        let due = keys.removeExpired(now: 200)
        #expect(due == ["a", "b"], "expiry <= now is due")
        #expect(keys.count == 1)
        #expect(!keys.contains("a"))
        #expect(!keys.contains("b"))
        #expect(keys.contains("c"))

        let again = keys.removeExpired(now: 200)
        #expect(again.isEmpty, "a key is returned once")

        let last = keys.removeExpired(now: 1_000)
        #expect(last == ["c"])
        #expect(keys.count == 0)
    }

    @Test func tombstonedKeyIsGoneAndNotReturnedByRemoveExpired() {
        var keys = IdempotencyKeys()
        keys.restore("a", expiresAt: 100)
        keys.restore("b", expiresAt: 200)
        #expect(keys.contains("a"))
        #expect(keys.count == 2)

        keys.restore("a", expiresAt: nil)
        #expect(!keys.contains("a"))
        #expect(keys.count == 1)

        let expired = keys.removeExpired(now: 1_000)
        #expect(expired == ["b"], "the tombstoned key's queue entry is skipped")
        #expect(keys.count == 0)
    }

    @Test func reinsertedKeyOutlivesItsOldExpiry() {
        var keys = IdempotencyKeys()
        keys.restore("a", expiresAt: 100)
        keys.insert("a", expiresAt: 500)
        keys.commit()
        #expect(keys.count == 1)

        let early = keys.removeExpired(now: 100)
        #expect(early.isEmpty, "the entry for the old expiry no longer matches")
        #expect(keys.contains("a"))
        #expect(keys.count == 1)

        let late = keys.removeExpired(now: 500)
        #expect(late == ["a"])
        #expect(!keys.contains("a"))
        #expect(keys.count == 0)
    }

    @Test func keysComeBackAsTheTextTheyWereGiven() {
        // Canonical UUIDs are kept as their 16 bytes, anything else by a hash with its
        // text: either way a tombstone must name the key exactly as it was written.
        let texts = [
            "0b7c2f4e-8d3a-5f1b-9c2d-4e6f8a0b1c2d",  // v5, canonical
            "0B7C2F4E-8D3A-5F1B-9C2D-4E6F8A0B1C2D",  // the same in capitals: another key
            "00000000-0000-0000-0000-000000000000",  // version 0: not what the parser keeps
            "9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f",  // v4
            "shopify/orders-create/1234",
            "",
        ]
        var keys = IdempotencyKeys()
        for (index, text) in texts.enumerated() { keys.insert(text, expiresAt: Int64(index)) }
        keys.commit()
        #expect(keys.count == texts.count, "no two of the texts share a key")
        for text in texts { #expect(keys.contains(text)) }
        #expect(!keys.contains("0b7c2f4e-8d3a-5f1b-9c2d-4e6f8a0b1c2e"))
        #expect(!keys.contains("0b7c2f4e-8d3a-5f1b-9c2d-4e6f8a0b1c2"))
        #expect(keys.removeExpired(now: 100) == texts)
        #expect(keys.count == 0)

        keys.restore(texts[4], expiresAt: 5)
        keys.restore(texts[0], expiresAt: 5)
        keys.restore(texts[4], expiresAt: nil)
        #expect(!keys.contains(texts[4]))
        #expect(keys.removeExpired(now: 100) == [texts[0]])
    }

    // MARK: StageStep

    @Test func retryableFailureLeavesStateAndKeysUntouched() {
        var state = KeyedState()
        let existing = Fixture.bucket("count", "x", count: 5)
        state.restore(key: "count/x", value: existing)
        var keys = IdempotencyKeys()
        let input = StageInput(
            envelope: Fixture.envelope("in-1", Fixture.bucket("sales", "x")), topic: "oms.test.in", partition: 0,
            offset: 7, now: Fixture.now)

        let result = StageStep.run(FlakyStage(), input: input, state: &state, keys: &keys, retention: .seconds(60))
        #expect(result.kind == .failed(.retryable("dependency down")))
        #expect(result.outputs.isEmpty)
        #expect(result.stateRecords.isEmpty)
        #expect(result.idempotency?.key == nil)
        #expect(!keys.contains("in-1"))

        state.commit()
        keys.commit()
        #expect(keys.count == 0)
        #expect(state.count == 1)
        #expect(state.value("count/x") == existing)

        let retried = StageStep.run(FlakyStage(), input: input, state: &state, keys: &keys, retention: .seconds(60))
        #expect(retried.kind == .failed(.retryable("dependency down")), "a failed input is not a duplicate")
    }

    @Test func stepStagesTheKeyUntilCommitAndAnAbortReprocesses() {
        let stage = PassThroughStage()
        var state = KeyedState()
        var keys = IdempotencyKeys()
        let input = StageInput(
            envelope: Fixture.envelope("in-1", Fixture.bucket("sales", "x")), topic: "oms.test.in", partition: 0,
            offset: 0, now: Fixture.now)

        let first = StageStep.run(stage, input: input, state: &state, keys: &keys, retention: .seconds(60))
        #expect(first.kind == .processed)
        #expect(keys.contains("in-1"))
        #expect(keys.count == 0, "the key is pending until the transaction commits")

        keys.rollback()
        let replay = StageStep.run(stage, input: input, state: &state, keys: &keys, retention: .seconds(60))
        #expect(replay.kind == .processed, "an aborted transaction's input is processed again")
        let replayed = replay.outputs.map { $0.envelope }
        let original = first.outputs.map { $0.envelope }
        #expect(replayed.count == 1)
        #expect(replayed == original, "the replay's outputs are identical")

        keys.commit()
        #expect(keys.count == 1)
        let duplicate = StageStep.run(stage, input: input, state: &state, keys: &keys, retention: .seconds(60))
        #expect(duplicate.kind == .duplicate)
    }

    // MARK: StageDriver with PassThroughStage

    @Test func passThroughRoutesWithDeterministicIds() throws {
        let stage = PassThroughStage()
        var driver = StageDriver(stage: stage)
        let input = Fixture.envelope("in-1", Fixture.bucket("sales", "b1", count: 7))

        let result = driver.handle(input, now: Fixture.now)
        #expect(result.kind == .processed)
        try #require(result.outputs.count == 1)
        let output = result.outputs[0]
        #expect(output.topic == stage.outputTopic)
        #expect(output.topic == "oms.test.out")
        #expect(output.envelope.id == DeterministicID.eventID(inputEventID: input.id, stage: stage.name, outputIndex: 0))
        #expect(output.envelope.id != input.id)
        #expect(output.envelope.causationID == input.id)
        #expect(output.envelope.event == input.event)
        #expect(output.envelope.time == Fixture.now)
        #expect(result.stateRecords.isEmpty)

        #expect(result.idempotency?.key == "passthrough/in-1")
        guard case .idempotencyRecord(let record)? = result.idempotency?.envelope.event else {
            Issue.record("the idempotency envelope does not hold an IdempotencyRecord")
            return
        }
        #expect(record.stage == "passthrough")
        #expect(record.key == "in-1")
        #expect(record.eventId == "in-1")
        #expect(record.processedAt == Fixture.now)
        #expect(record.expiresAt == Fixture.now.addingTimeInterval(7 * 86_400), "default retention is 7 days")
    }

    @Test func passThroughSkipsDuplicatesPerPartition() throws {
        var driver = StageDriver(stage: PassThroughStage())
        let input = Fixture.envelope("in-1", Fixture.bucket("sales", "b1"))

        let first = driver.handle(input, partition: 0, now: Fixture.now)
        #expect(first.kind == .processed)

        let duplicate = driver.handle(input, partition: 0, offset: 1, now: Fixture.now)
        #expect(duplicate.kind == .duplicate)
        #expect(duplicate.outputs.isEmpty)
        #expect(duplicate.stateRecords.isEmpty)
        #expect(duplicate.idempotency?.key == nil)

        let otherPartition = driver.handle(input, partition: 1, now: Fixture.now)
        #expect(otherPartition.kind == .processed, "idempotency keys are kept per partition")
        try #require(otherPartition.outputs.count == 1)
        #expect(otherPartition.outputs[0].envelope.id == first.outputs.first?.envelope.id)

        let duplicateThere = driver.handle(input, partition: 1, offset: 1, now: Fixture.now)
        #expect(duplicateThere.kind == .duplicate)
    }

    @Test func passThroughRejectsPoisonWithoutRememberingIt() {
        var driver = StageDriver(stage: PassThroughStage())
        let poison = Fixture.envelope("in-poison", Fixture.bucket("poison", "b1"))
        #expect(poison.subject == "poison/b1")

        let result = driver.handle(poison, now: Fixture.now)
        guard case .failed(.rejected(let reason)) = result.kind else {
            Issue.record("expected a rejection, got \(result.kind)")
            return
        }
        #expect(reason.contains("poison/b1"))
        #expect(result.outputs.isEmpty)
        #expect(result.stateRecords.isEmpty)
        #expect(result.idempotency?.key == nil)

        let again = driver.handle(poison, offset: 1, now: Fixture.now)
        #expect(again.kind == result.kind, "a rejected input's key is not recorded, so it is not a duplicate")
    }

    // MARK: StageDriver with CountingStage

    @Test func countingStageKeepsRunningCountsPerKey() throws {
        var driver = StageDriver(stage: CountingStage())
        let k1 = Fixture.bucket("sales", "k1")
        let k1Key = Fixture.envelope("x", k1).key
        #expect(k1Key == "sales/k1")

        var counts: [Int64] = []
        for index in 1...3 {
            let result = driver.handle(Fixture.envelope("k1-\(index)", k1), offset: Int64(index), now: Fixture.now)
            #expect(result.kind == .processed)
            try #require(result.outputs.count == 1)
            #expect(result.outputs[0].topic == "oms.test.counts.out")
            counts.append(try #require(Fixture.count(result.outputs[0].envelope.event)))
            #expect(result.stateRecords.count == 1)
            #expect(result.stateRecords.first?.key == CountingStage.bucket(of: k1Key).partitionKey)
        }
        #expect(counts == [1, 2, 3])

        let stateKey = CountingStage.bucket(of: k1Key).partitionKey
        #expect(stateKey == "count/sales/k1")
        #expect(Fixture.count(driver.value(stateKey)) == 3)

        let other = driver.handle(Fixture.envelope("k2-1", Fixture.bucket("sales", "k2")), now: Fixture.now)
        try #require(other.outputs.count == 1)
        #expect(Fixture.count(other.outputs[0].envelope.event) == 1, "a different key starts at 1")
        #expect(Fixture.count(driver.value("count/sales/k2")) == 1)
        #expect(Fixture.count(driver.value(stateKey)) == 3)

        let elsewhere = driver.handle(Fixture.envelope("k1-p1", k1), partition: 1, now: Fixture.now)
        try #require(elsewhere.outputs.count == 1)
        #expect(Fixture.count(elsewhere.outputs[0].envelope.event) == 1, "state is kept per partition")
        #expect(Fixture.count(driver.value(stateKey, partition: 1)) == 1)
        #expect(Fixture.count(driver.value(stateKey, partition: 0)) == 3)
    }

    @Test func countingStageOutputsAreDeterministicAcrossRuns() throws {
        let inputs = [
            Fixture.envelope("in-1", Fixture.bucket("sales", "k1")),
            Fixture.envelope("in-2", Fixture.bucket("sales", "k1")),
            Fixture.envelope("in-3", Fixture.bucket("sales", "k2")),
            Fixture.envelope("in-4", Fixture.bucket("sales", "k1")),
        ]
        func run() -> [Envelope] {
            var driver = StageDriver(stage: CountingStage())
            var outputs: [Envelope] = []
            for (offset, input) in inputs.enumerated() {
                let result = driver.handle(input, offset: Int64(offset), now: Fixture.now)
                outputs.append(contentsOf: result.outputs.map { $0.envelope })
            }
            return outputs
        }

        let first = run()
        let second = run()
        let expectedIDs = inputs.map { DeterministicID.eventID(inputEventID: $0.id, stage: "counter", outputIndex: 0) }
        #expect(first.map(\.id) == expectedIDs)
        #expect(second.map(\.id) == expectedIDs)
        #expect(Set(expectedIDs).count == inputs.count)
        let counts = first.compactMap { Fixture.count($0.event) }
        #expect(counts == [1, 2, 1, 3])

        var firstRecords: [EventRecord] = []
        var secondRecords: [EventRecord] = []
        for envelope in first { firstRecords.append(try envelope.record()) }
        for envelope in second { secondRecords.append(try envelope.record()) }
        #expect(firstRecords.count == inputs.count)
        #expect(firstRecords == secondRecords, "a replay writes byte-identical records")
    }

    // MARK: Global tables

    @Test func globalTablesAreVisibleToTheStage() throws {
        let stage = LookupStage()
        #expect(stage.globalTables == ["t"])
        var driver = StageDriver(stage: stage)
        let entry = Fixture.bucket("catalog", "k", count: 42)
        driver.tables["t"] = ["k": entry]
        driver.tables["u"] = ["absent": entry]

        let hit = driver.handle(Fixture.envelope("in-1", Fixture.bucket("lookup", "k")), now: Fixture.now)
        #expect(hit.kind == .processed)
        try #require(hit.outputs.count == 1)
        #expect(hit.outputs[0].envelope.event == entry)
        #expect(hit.outputs[0].topic == "oms.test.out")

        let miss = driver.handle(Fixture.envelope("in-2", Fixture.bucket("lookup", "absent")), now: Fixture.now)
        #expect(miss.kind == .failed(.rejected("no 'absent' in table t")), "only table t is consulted")
        #expect(miss.outputs.isEmpty)
    }
}

// MARK: - Fixtures

/// Inputs built from `ReportBucket`, the simplest event, at a fixed processing time.
private enum Fixture {
    /// 2026-03-01T12:00:00Z.
    static let now = Date(timeIntervalSince1970: 1_772_366_400)

    /// A `ReportBucket` event keyed `<report>/<bucket>`.
    static func bucket(_ report: String, _ bucket: String, count: Int64 = 0) -> Event {
        ReportBucket(report: report, bucket: bucket, values: ["count": count], updatedAt: now).event
    }

    /// An input envelope.
    static func envelope(_ id: String, _ event: Event) -> Envelope {
        Envelope(id: id, source: "oms/test", time: now, event: event)
    }

    /// The `count` value of a `ReportBucket` event.
    static func count(_ event: Event?) -> Int64? {
        guard case .reportBucket(let bucket)? = event else { return nil }
        return bucket.values["count"]
    }
}

/// A stage whose dependency is always down.
private struct FlakyStage: Stage {
    let name = "flaky"
    let inputTopics = ["oms.test.in"]

    func process(_ input: StageInput, state: StageState) throws(StageFailure) -> StageOutcome {
        throw .retryable("dependency down")
    }
}

/// Forwards the entry of global table `t` whose key is the input bucket's `bucket`.
private struct LookupStage: Stage {
    let name = "lookup"
    let inputTopics = ["oms.test.in"]
    let globalTables = ["t"]

    func process(_ input: StageInput, state: StageState) throws(StageFailure) -> StageOutcome {
        guard case .reportBucket(let request) = input.event else { throw .rejected("not a report bucket") }
        guard let entry = state.table("t", key: request.bucket) else {
            throw .rejected("no '\(request.bucket)' in table t")
        }
        return StageOutcome(outputs: [StageOutput(entry, topic: "oms.test.out")])
    }
}

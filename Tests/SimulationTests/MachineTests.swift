import Contracts
import Foundation
import OrderFleetTesting
import ReferenceStages
import StageMachine
import Testing
import Workers

/// The machine's protocol, action by action, for one input in each mode.
@Suite struct MachineTests {
    static func machine(_ strategy: any DeliveryStrategy) -> RunnerMachine<PassThroughStage> {
        var machine = RunnerMachine(
            stage: PassThroughStage(), strategy: strategy, settings: .init(batchSize: 10, retryAttempts: 3, retention: .seconds(60)))
        machine.handle(.assigned([TopicPartition(topic: "oms.test.in", partition: 0)]))
        #expect(Self.kind(machine.nextAction()) == "restore")
        machine.handle(.succeeded)
        #expect(machine.nextAction() == nil)
        let order = OrderCancelled(orderId: "o1", requestedBy: "test", reason: Reason(code: "test", message: "test"), cancelledAt: Date(timeIntervalSince1970: 0))
        let input = InputRecord(
            position: RecordPosition(topic: "oms.test.in", partition: 0, offset: 7),
            content: .envelope(Envelope(id: "e1", source: "test", time: Date(timeIntervalSince1970: 0), event: order.event)))
        machine.handle(.fetched([input], now: Date(timeIntervalSince1970: 0)))
        return machine
    }

    /// Runs to the end, every action succeeding; returns their kinds.
    static func run(_ machine: inout RunnerMachine<PassThroughStage>) -> [String] {
        var kinds: [String] = []
        while let action = machine.nextAction() {
            kinds.append(kind(action))
            machine.handle(.succeeded)
        }
        return kinds
    }

    static func kind(_ action: RunnerMachine<PassThroughStage>.Action?) -> String {
        switch action {
        case .restore?: "restore"
        case .beginTransaction?: "begin"
        case .produce(let records, _)?:
            "produce(" + records.map { record -> String in
                switch record {
                case .output: "output"
                case .state: "state"
                case .idempotency(_, _, let envelope, _): envelope == nil ? "tombstone" : "key"
                case .deadLetter: "dead-letter"
                case .intent(_, _, let records): records == nil ? "done" : "intent"
                case .encoded: "encoded"
                }
            }.joined(separator: ",") + ")"
        case .flush?: "flush"
        case .commitTransaction?: "commit-transaction"
        case .commitOffsets?: "commit-offsets"
        case .abortTransaction?: "abort"
        case .seekToCommitted?: "seek"
        case .wait?: "wait"
        case .stop?: "stop"
        case nil: "none"
        }
    }

    @Test func exactlyOnceWritesIntoTheTransaction() {
        var machine = Self.machine(ExactlyOnceStrategy())
        machine.handle(.commitDue)
        #expect(Self.run(&machine) == ["begin", "produce(output,key)", "commit-transaction"])
    }

    @Test func atLeastOnceWritesTheIntentFirst() {
        var machine = Self.machine(AtLeastOnceStrategy())
        #expect(Self.run(&machine) == [])
        machine.handle(.commitDue)
        #expect(Self.run(&machine) == ["flush", "produce(intent)", "flush", "produce(output,key)", "flush", "produce(done)", "flush", "commit-offsets"])
    }

    @Test func atLeastOnceStopsOnAFailedDelivery() {
        var machine = Self.machine(AtLeastOnceStrategy())
        machine.handle(.commitDue)
        var seen: [String] = []
        while let action = machine.nextAction() {
            seen.append(Self.kind(action))
            machine.handle(seen.count == 4 ? .failed(RuntimeFailure(.retriable, message: "timed out")) : .succeeded)
        }
        #expect(seen.last == "stop")
        #expect(machine.stopped?.restartable == true)
    }

    @Test func exactlyOnceAbortsAndRewindsOnAnAbortableError() {
        var machine = Self.machine(ExactlyOnceStrategy())
        var seen: [String] = []
        while let action = machine.nextAction() {
            seen.append(Self.kind(action))
            machine.handle(seen.count == 2 ? .failed(RuntimeFailure(.abortable, message: "message timed out")) : .succeeded)
        }
        #expect(seen == ["begin", "produce(output,key)", "abort", "seek", "wait"])
        #expect(machine.transactionOpen == false)
    }

    @Test func atLeastOnceCommitsFailedOffsetsAgainWithoutNewInput() {
        var machine = Self.machine(AtLeastOnceStrategy())
        machine.handle(.commitDue)
        var seen: [String] = []
        while let action = machine.nextAction() {
            seen.append(Self.kind(action))
            machine.handle(Self.kind(action) == "commit-offsets" ? .failed(RuntimeFailure(.retriable, message: "request timed out")) : .succeeded)
        }
        #expect(seen.last == "commit-offsets")
        #expect(machine.commitPending, "the failed offsets wait for the next commit")
        machine.handle(.commitDue)
        var committed: [TopicPartition: Int64] = [:]
        while let action = machine.nextAction() {
            if case .commitOffsets(let offsets) = action { committed = offsets }
            machine.handle(.succeeded)
        }
        #expect(committed == [TopicPartition(topic: "oms.test.in", partition: 0): 8])
        #expect(!machine.commitPending)
    }

    @Test func atLeastOnceZombieWritesNothingMore() {
        var machine = Self.machine(AtLeastOnceStrategy())
        machine.handle(.commitDue)
        #expect(Self.kind(machine.nextAction()) == "flush")
        machine.handle(.succeeded)
        machine.handle(.pollIntervalExceeded)
        #expect(Self.run(&machine) == ["stop"])
        #expect(machine.stopped?.restartable == true)
    }

    @Test func exactlyOnceLeavesZombiesToTheBroker() {
        var machine = Self.machine(ExactlyOnceStrategy())
        machine.handle(.pollIntervalExceeded)
        machine.handle(.commitDue)
        #expect(Self.run(&machine) == ["begin", "produce(output,key)", "commit-transaction"])
    }
}

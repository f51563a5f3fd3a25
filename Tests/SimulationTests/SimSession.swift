import Contracts
import Foundation
import StageMachine
import Workers

/// One simulated worker session of one stage: a ``RunnerMachine`` and the thin loop
/// that performs its actions against the ``BrokerModel`` (the simulation's counterpart
/// of `StageRunner`'s driver), with faults drawn from the world's generator.
final class SimSession<S: Stage>: AnySession {
    let stage: S
    let member: String
    let group: String
    let transactional: Bool
    var machine: RunnerMachine<S>
    var epoch = 0
    var transaction: Int?
    /// At least once: enqueued, not yet delivered.
    var buffer: [(part: TopicPartition, key: String?, value: StoredValue)] = []
    var owned: [TopicPartition] = []
    var positions: [TopicPartition: Int64] = [:]
    var generation = -1
    var joined = false
    var pendingAssignment: [TopicPartition]?
    var stopped: StopReason?
    var pausedUntil = -1
    /// Paused since it last polled: its poll interval is exceeded (a pause is always
    /// longer than the group's timeout here).
    var pausedSincePoll = false

    init(stage: S, instance: Int, strategy: any DeliveryStrategy, world: World) {
        self.stage = stage
        member = "\(stage.name).\(instance)"
        group = "oms.\(stage.name)"
        transactional = strategy.usesTransactions
        machine = RunnerMachine(
            stage: stage, strategy: strategy,
            settings: .init(batchSize: world.batchSize, retryAttempts: 3, retention: .seconds(7 * 86_400)),
            tables: { [unowned world] topic, key in world.broker.latest[topic]?[key]?.event })
        if transactional { epoch = world.broker.initTransactions(member) }
    }

    var stageName: String { stage.name }
    var inputTopics: [String] { stage.inputTopics }
    var busy: Bool { machine.busy || machine.transactionOpen || !buffer.isEmpty }
    var detail: String { "owned=\(owned.count) positions=\(positions.count) pending=\(pendingAssignment?.count ?? -1) gen=\(generation) txn=\(transaction ?? -1) open=\(machine.transactionOpen)" }

    // MARK: The loop

    /// One action, or one poll when the machine has nothing to do. False if idle.
    func step(_ world: World) -> Bool {
        guard stopped == nil, world.now >= pausedUntil else { return false }
        // The driver's check before each action (StageRunner's lease).
        if pausedSincePoll, world.checksPollInterval, machine.busy { machine.handle(.pollIntervalExceeded) }
        if let action = machine.nextAction() {
            let outcome = perform(action, world)
            if stopped == nil { machine.handle(outcome) }
            _ = machine.takeNotes()
            return true
        }
        return poll(world)
    }

    /// Takes the assignment the group handed out: owns `parts` from `generation` on,
    /// fetching from their committed offsets.
    private func takeAssignment(_ parts: [TopicPartition], generation: Int) {
        pendingAssignment = nil
        joined = false
        owned = parts
        positions = [:]
        self.generation = generation
        machine.handle(.assigned(parts))
    }

    private func poll(_ world: World) -> Bool {
        pausedSincePoll = false
        let groupState = world.groups[group]!
        if !groupState.members.contains(member) || groupState.rebalancing {
            guard !joined else {
                if let parts = pendingAssignment {
                    takeAssignment(parts, generation: groupState.generation)
                    return true
                }
                // Timed out of the group while it waited (a pause): join again.
                if !groupState.joined.contains(member) { world.join(self) }
                return false
            }
            // Rejoin: give everything up first (eager rebalance; a lost member too).
            if !owned.isEmpty {
                machine.handle(.revoked(owned))
                owned = []
            }
            joined = true
            world.join(self)
            return true
        }
        if let parts = pendingAssignment {
            takeAssignment(parts, generation: groupState.generation)
            return true
        }
        if machine.commitPending, world.random.chance(0.25) {
            machine.handle(.commitDue)
            return true
        }
        for part in owned where positions[part] == nil {
            guard !world.broker.pendingOffsets(group: group, [part]) else { continue }
            positions[part] = world.broker.committedOffsets[group]?[part] ?? 0
        }
        let ready = owned.filter { part in
            guard let position = positions[part] else { return false }
            return !world.broker.fetch(part, from: position, max: 1).records.isEmpty
        }
        guard let part = ready.randomElement(using: &world.random) else {
            if machine.commitPending {
                machine.handle(.commitDue)
                return true
            }
            return false
        }
        let (records, next) = world.broker.fetch(part, from: positions[part]!, max: Int.random(in: 1...world.batchSize, using: &world.random))
        positions[part] = next
        let inputs = records.map { record -> InputRecord in
            let position = RecordPosition(topic: part.topic, partition: part.partition, offset: record.offset)
            switch record.value {
            case .event(let envelope): return InputRecord(position: position, content: .envelope(envelope))
            case .garbage(let text): return InputRecord(position: position, content: .undecodable(text))
            default: return InputRecord(position: position, content: .undecodable("not an input"))
            }
        }
        machine.handle(.fetched(inputs, now: world.date))
        return true
    }

    // MARK: Actions

    private func perform(_ action: RunnerMachine<S>.Action, _ world: World) -> RunnerMachine<S>.Event {
        let broker = world.broker
        let faults = world.faults
        func fenced() -> RuntimeFailure? {
            guard transactional, !broker.current(member, epoch: epoch) else { return nil }
            return RuntimeFailure(.fatal, message: "producer fenced", fenced: true)
        }
        switch action {
        case .restore(let partitions):
            var targets = partitions.map { TopicPartition(topic: TopicCatalog.idempotencyTopic, partition: $0) }
            if let changelog = stage.changelogTopic { targets += partitions.map { TopicPartition(topic: changelog, partition: $0) } }
            // A read_committed reader cannot pass an open transaction: the restore times out.
            guard targets.allSatisfy(broker.stable) else { return .failed(RuntimeFailure(.retriable, message: "restore timed out")) }
            var restored: [RestoredRecord] = []
            let prefix = "\(stage.name)/"
            for target in targets {
                for record in broker.fetch(target, from: 0, max: .max).records {
                    guard let key = record.key else { continue }
                    if target.topic == TopicCatalog.idempotencyTopic {
                        guard key.hasPrefix(prefix) else { continue }
                        if key.hasPrefix(prefix + "~intent/") {
                            let records: [OutputRecord]? = if case .intent(let records) = record.value { records } else { nil }
                            restored.append(.intent(partition: target.partition, key: key, records: records))
                            continue
                        }
                        let expiry: Int64? = if case .key(let at) = record.value { at } else { nil }
                        restored.append(.key(partition: target.partition, key: String(key.dropFirst(prefix.count)), expiresAt: expiry))
                    } else {
                        let value: Event? = if case .event(let envelope) = record.value { envelope.event } else { nil }
                        restored.append(.state(partition: target.partition, key: key, value: value))
                    }
                }
            }
            machine.handle(.restored(restored))
            return .succeeded
        case .beginTransaction:
            if let failure = fenced() { return .failed(failure) }
            transaction = broker.begin(member, epoch: epoch, now: world.now)
            return .succeeded
        case .produce(let records, _):
            if let failure = fenced() { return .failed(failure) }
            for record in records {
                guard world.random.chance(1 - faults.produceFailure) else {
                    return .failed(transactional
                        ? RuntimeFailure(.abortable, message: "message timed out")
                        : RuntimeFailure(.retriable, message: "queue full"))
                }
                let (part, key, value) = world.place(record, stage: stage.name, changelog: stage.changelogTopic)
                if transactional {
                    guard let transaction, broker.state(of: transaction) == .open else {
                        return .failed(RuntimeFailure(.fatal, message: "transaction timed out", fenced: true))
                    }
                    broker.append(part, key: key, value: value, transaction: transaction)
                } else {
                    buffer.append((part, key, value))
                }
            }
            return .succeeded
        case .flush:
            if world.random.chance(faults.deliveryFailure) {
                deliverSome(world)
                return .failed(RuntimeFailure(.retriable, message: "delivery timed out"))
            }
            for entry in buffer { broker.append(entry.part, key: entry.key, value: entry.value) }
            buffer = []
            if world.random.chance(faults.lostAck) { return .failed(RuntimeFailure(.retriable, message: "acknowledgement lost")) }
            return .succeeded
        case .commitTransaction(let offsets):
            if let failure = fenced() { return .failed(failure) }
            guard let id = transaction else { return .succeeded }  // committed already; the ack was lost
            guard broker.state(of: id) == .open else { return .failed(RuntimeFailure(.fatal, message: "transaction timed out", fenced: true)) }
            if !offsets.isEmpty, generation != world.groups[group]!.generation || !world.groups[group]!.members.contains(member) {
                return .failed(RuntimeFailure(.abortable, message: "illegal generation", retriable: false, requiresAbort: true))
            }
            if world.random.chance(faults.commitFailure) { return .failed(RuntimeFailure(.retriable, message: "coordinator not available")) }
            broker.addOffsets(id, group: group, generation: generation, offsets: offsets)
            broker.finish(id, .committed)
            transaction = nil
            if world.random.chance(faults.lostAck) { return .failed(RuntimeFailure(.retriable, message: "acknowledgement lost")) }
            return .succeeded
        case .commitOffsets(let offsets):
            if generation != world.groups[group]!.generation || !world.groups[group]!.members.contains(member) {
                return .failed(RuntimeFailure(.abortable, message: "rebalance in progress"))
            }
            if world.random.chance(faults.commitFailure) { return .failed(RuntimeFailure(.retriable, message: "request timed out")) }
            broker.commit(group: group, offsets: offsets)
            if world.random.chance(faults.lostAck) { return .failed(RuntimeFailure(.retriable, message: "acknowledgement lost")) }
            return .succeeded
        case .abortTransaction:
            if let failure = fenced() { return .failed(failure) }
            if world.random.chance(faults.commitFailure) { return .failed(RuntimeFailure(.retriable, message: "coordinator loading")) }
            if let id = transaction { broker.finish(id, .aborted) }
            transaction = nil
            return .succeeded
        case .seekToCommitted(let parts):
            guard !broker.pendingOffsets(group: group, parts) else {
                return .failed(RuntimeFailure(.retriable, message: "unstable offset commit"))
            }
            for part in parts where owned.contains(part) { positions[part] = broker.committedOffsets[group]?[part] ?? 0 }
            return .succeeded
        case .wait:
            return .succeeded
        case .stop(let reason):
            stopped = reason
            // Closing the producer delivers some of what it holds.
            deliverSome(world)
            world.stopped(self)
            return .succeeded
        }
    }

    /// Delivers a random prefix of each partition's queued records (a crash or a failed
    /// flush: what was in flight may or may not have landed, in order per partition).
    func deliverSome(_ world: World) {
        var cut: [TopicPartition: Bool] = [:]
        for entry in buffer {
            if cut[entry.part] == nil, world.random.chance(0.3) { cut[entry.part] = true }
            guard cut[entry.part] != true else { continue }
            world.broker.append(entry.part, key: entry.key, value: entry.value)
        }
        buffer = []
    }

    /// kill -9.
    func crash(_ world: World) {
        stopped = StopReason(message: "killed", restartable: true)
        deliverSome(world)
    }

    /// A long pause (a stalled thread or VM): the group times the member out; what its
    /// producer had queued lands or times out meanwhile.
    func pause(until step: Int, _ world: World) {
        pausedUntil = step
        pausedSincePoll = true
        deliverSome(world)
    }

    func assign(_ parts: [TopicPartition]) { pendingAssignment = parts }

    func stateMatchesChangelog(_ world: World) -> String? {
        guard let changelog = stage.changelogTopic else { return nil }
        for part in owned {
            var expected: [String: Event] = [:]
            for record in world.broker.fetch(TopicPartition(topic: changelog, partition: part.partition), from: 0, max: .max).records {
                guard let key = record.key else { continue }
                if case .event(let envelope) = record.value { expected[key] = envelope.event } else { expected[key] = nil }
            }
            var actual: [String: Event] = [:]
            machine.state(part.partition)?.forEach { actual[$0] = $1 }
            if actual != expected {
                let differing = Set(actual.keys).union(expected.keys).filter { actual[$0] != expected[$0] }.sorted().prefix(3)
                return "\(member) partition \(part.partition): memory and changelog differ at \(Array(differing))"
            }
        }
        return nil
    }
}

/// A session of any stage, as the world schedules it.
protocol AnySession: AnyObject {
    var member: String { get }
    var group: String { get }
    var stageName: String { get }
    var inputTopics: [String] { get }
    var stopped: StopReason? { get }
    var busy: Bool { get }
    var detail: String { get }
    var joined: Bool { get }
    var pausedUntil: Int { get set }
    func step(_ world: World) -> Bool
    func crash(_ world: World)
    func pause(until step: Int, _ world: World)
    func assign(_ parts: [TopicPartition])
    func stateMatchesChangelog(_ world: World) -> String?
}

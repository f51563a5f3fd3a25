import Contracts
import Foundation
import OrderFleetTesting
import ReferenceStages
import StageMachine
import Workers

/// How often each fault happens, per step or per action.
struct Faults {
    var crash = 0.004
    var pause = 0.002
    var rebalance = 0.003
    var produceFailure = 0.004
    var deliveryFailure = 0.02
    var commitFailure = 0.02
    var lostAck = 0.02

    /// No fault at all: the run every faulty one must end like.
    static let none = Faults(crash: 0, pause: 0, rebalance: 0, produceFailure: 0, deliveryFailure: 0, commitFailure: 0, lostAck: 0)
}

/// One deterministic run: the broker model, the stages' sessions, a seeded generator
/// that decides every interleaving and fault. The same seed gives the same run.
final class World {
    struct Group {
        var members = Set<String>()
        var generation = 0
        var rebalancing = false
        var joined = Set<String>()
    }

    let seed: UInt64
    var random: SplitMix64
    let broker: BrokerModel
    let faults: Faults
    let batchSize = 8
    let strategy: any DeliveryStrategy
    var now = 0
    var groups: [String: Group] = [:]
    var sessions: [any AnySession] = []
    /// Instances to start again: (stage index, instance, at step).
    private var restarts: [(stage: String, instance: Int, at: Int)] = []
    private var factories: [String: (World, Int) -> any AnySession] = [:]
    private var instancesPerStage = 2
    /// Why the run is not fine, if it is not.
    var problems: [String] = []
    var orders: [OrderPlaced] = []
    var poison: [RecordPosition] = []
    /// Whether drivers check their poll interval before each action (off: the broken
    /// variant that lets an at-least-once zombie write).
    var checksPollInterval = true

    static let rules = BusinessRules(
        sourcing: SourcingRules(maxShipments: 2, maxReplans: 2, backorderPolicy: .backorder),
        locations: [
            StockLocation(id: "A", type: .warehouse, country: "US"), StockLocation(id: "B", type: .warehouse, country: "US"),
            StockLocation(id: "C", type: .thirdPartyLogistics, country: "US"),
        ])

    init(seed: UInt64, strategy: any DeliveryStrategy, faults: Faults = Faults(), tracked: Set<String> = [InventoryLevel.topic]) {
        self.seed = seed
        random = SplitMix64(seed: seed)
        self.strategy = strategy
        self.faults = faults
        broker = BrokerModel(partitions: 3, tracked: tracked)
    }

    /// Simulated wall clock: 50 ms a step.
    var date: Date { Date(timeIntervalSince1970: 1_772_366_400 + Double(now) * 0.05) }

    // MARK: Setup

    func addStage<S: Stage>(_ stage: S) {
        let factory: (World, Int) -> any AnySession = { world, instance in
            SimSession(stage: stage, instance: instance, strategy: world.strategy, world: world)
        }
        factories[stage.name] = factory
        groups["oms.\(stage.name)"] = Group()
        for instance in 0..<instancesPerStage { sessions.append(factory(self, instance)) }
    }

    /// Writes an input (not transactional, as a gateway or a test client does).
    func publish(_ event: Event, id: String) {
        let envelope = Envelope(id: id, source: "sim", time: date, event: event)
        let part = TopicPartition(topic: envelope.topic, partition: broker.partition(for: envelope.key))
        broker.append(part, key: envelope.key, value: .event(envelope))
    }

    /// Writes bytes no contract accepts to `topic`.
    func publishGarbage(topic: String, key: String) {
        let part = TopicPartition(topic: topic, partition: broker.partition(for: key))
        poison.append(RecordPosition(topic: topic, partition: part.partition, offset: Int64(broker.logs[part]?.count ?? 0)))
        broker.append(part, key: key, value: .garbage("not JSON"))
    }

    /// Where a machine's record lands and what it holds.
    func place(_ record: OutputRecord, stage: String, changelog: String?) -> (TopicPartition, String?, StoredValue) {
        switch record {
        case .output(let topic, let envelope):
            return (TopicPartition(topic: topic, partition: broker.partition(for: envelope.key)), envelope.key, .event(envelope))
        case .state(let partition, let key, let envelope):
            return (TopicPartition(topic: changelog ?? "none", partition: partition), key, envelope.map { .event($0) } ?? .tombstone)
        case .idempotency(let partition, let key, let envelope, let expiresAt):
            return (TopicPartition(topic: TopicCatalog.idempotencyTopic, partition: partition), key, envelope == nil ? .tombstone : .key(expiresAt: expiresAt ?? 0))
        case .deadLetter(let input, let error, _, _):
            let cause = "\(input.topic)/\(input.partition)/\(input.offset)"
            let id = DeterministicID.eventID(inputEventID: cause, stage: stage, outputIndex: 0)
            return (TopicPartition(topic: TopicCatalog.deadLetterTopic, partition: broker.partition(for: cause)), id, .deadLetter(input: input, error: error))
        case .intent(let partition, let key, let records):
            return (TopicPartition(topic: TopicCatalog.idempotencyTopic, partition: partition), key, records.map { .intent($0) } ?? .tombstone)
        case .encoded(let record):
            return (TopicPartition(topic: record.topic, partition: record.partition ?? 0), nil, .garbage("encoded"))
        }
    }

    // MARK: Groups

    func join(_ session: any AnySession) {
        groups[session.group]!.joined.insert(session.member)
        groups[session.group]!.rebalancing = true
        complete(session.group)
    }

    /// A member is gone (killed, paused past its timeout, stopped): the others rebalance.
    func leave(_ session: any AnySession) {
        var group = groups[session.group]!
        group.joined.remove(session.member)
        if group.members.remove(session.member) != nil { group.rebalancing = true }
        groups[session.group] = group
        complete(session.group)
    }

    func stopped(_ session: any AnySession) {
        leave(session)
        restarts.append((session.stageName, instanceIndex(session), now + Int.random(in: 5...60, using: &random)))
    }

    private func instanceIndex(_ session: any AnySession) -> Int { Int(session.member.split(separator: ".").last!)! }

    /// Ends a rebalance once every live member of the group has rejoined (the barrier
    /// Kafka's group protocol keeps): partitions by number, round robin.
    private func complete(_ name: String) {
        var group = groups[name]!
        guard group.rebalancing else { return }
        let live = sessions.filter { $0.group == name && $0.stopped == nil && $0.pausedUntil <= now }
        guard !live.isEmpty, live.allSatisfy({ group.joined.contains($0.member) }) else {
            groups[name] = group
            return
        }
        group.generation += 1
        group.members = Set(live.map(\.member))
        group.rebalancing = false
        group.joined = []
        groups[name] = group
        let members = live.sorted { $0.member < $1.member }
        for (index, member) in members.enumerated() {
            let numbers = (0..<broker.partitions).filter { Int($0) % members.count == index }
            member.assign(member.inputTopics.flatMap { topic in numbers.map { TopicPartition(topic: topic, partition: $0) } })
        }
    }

    // MARK: Running

    /// Runs with faults for `faultSteps`, then without until everything is consumed.
    func run(faultSteps: Int, maxSteps: Int) {
        var quiet = false
        while now < maxSteps {
            now += 1
            if now < faultSteps { inject() }
            for due in restarts.filter({ $0.at <= now }) {
                sessions.removeAll { $0.stopped != nil && $0.stageName == due.stage && instanceIndex($0) == due.instance }
                sessions.append(factories[due.stage]!(self, due.instance))
            }
            restarts.removeAll { $0.at <= now }
            for session in sessions where session.pausedUntil == now { complete(session.group) }
            for name in groups.keys.sorted() { complete(name) }
            broker.expireTransactions(now: now, timeout: 400)
            var order = Array(sessions.indices)
            order.shuffle(using: &random)
            var stepped = false
            for index in order where sessions[index].step(self) {
                stepped = true
                break
            }
            if !stepped, now >= faultSteps, restarts.isEmpty, sessions.allSatisfy({ $0.pausedUntil <= now }), consumedEverything() {
                quiet = true
                break
            }
        }
        if !quiet { problems.append("liveness: not quiescent after \(maxSteps) steps: \(diagnosis())") }
    }

    private func inject() {
        let live = sessions.filter { $0.stopped == nil && $0.pausedUntil <= now }
        if random.chance(faults.crash), let victim = live.randomElement(using: &random) {
            victim.crash(self)
            stopped(victim)
        }
        if random.chance(faults.pause), let victim = live.randomElement(using: &random), victim.stopped == nil {
            // A long pause (GC, a stalled VM): the group times it out; it comes back a zombie.
            victim.pause(until: now + Int.random(in: 20...300, using: &random), self)
            leave(victim)
        }
        if random.chance(faults.rebalance), let name = groups.keys.sorted().randomElement(using: &random) {
            groups[name]!.rebalancing = true
        }
    }

    func diagnosis() -> String {
        var lines: [String] = []
        for session in sessions {
            lines.append("\(session.member) stopped=\(session.stopped?.message ?? "no") busy=\(session.busy) joined=\(session.joined) \(session.detail)")
        }
        for (name, group) in groups.sorted(by: { $0.key < $1.key }) {
            lines.append("\(name) gen=\(group.generation) rebalancing=\(group.rebalancing) members=\(group.members.sorted()) joined=\(group.joined.sorted())")
        }
        for session in sessions {
            for topic in session.inputTopics {
                for partition in 0..<broker.partitions {
                    let part = TopicPartition(topic: topic, partition: partition)
                    let end = broker.fetch(part, from: 0, max: .max).records.last.map { $0.offset + 1 } ?? 0
                    let committed = broker.committedOffsets[session.group]?[part] ?? 0
                    if committed < end { lines.append("\(session.group) \(part) committed \(committed) end \(end) log \(broker.logs[part]?.count ?? 0)") }
                }
            }
        }
        return Array(Set(lines)).sorted().joined(separator: " | ")
    }

    /// Every group committed every input partition to its end.
    func consumedEverything() -> Bool {
        for session in sessions where session.busy || session.stopped != nil { return false }
        for (name, group) in groups where group.rebalancing || group.members.isEmpty { _ = name; return false }
        for session in sessions {
            for topic in session.inputTopics {
                for partition in 0..<broker.partitions {
                    let part = TopicPartition(topic: topic, partition: partition)
                    // The offset after the last record a reader sees (aborted ones are skipped).
                    let end = broker.fetch(part, from: 0, max: .max).records.last.map { $0.offset + 1 } ?? 0
                    if (broker.committedOffsets[session.group]?[part] ?? 0) < end { return false }
                }
            }
        }
        return true
    }
}

import Contracts
import Foundation
import OrderFleetTesting
import ReferenceStages
import Synchronization
import Testing

@testable import Outbound

/// The connector runtime's promise, checked by deterministic simulation: whatever the
/// crashes, lost answers and transient failures, each command has at most one effect at
/// its external system, a call is never repeated after one took effect unless the system
/// dedupes on the key, and every command is settled in the end.
///
/// A world holds a durable ledger and an external system that counts calls and effects
/// per idempotency key. A seeded generator decides, at every step, whether the system
/// fails before the effect, takes the effect and loses the answer, or the process dies
/// (from then on nothing it does reaches the ledger or the system, as after a kill -9).
/// After a death a new processor starts from the durable ledger and the command is
/// delivered again (its offset was not committed).
@Suite("Connector simulation")
struct ConnectorSimulationTests {
    @Test("one effect per command, no blind repeat, all settled: 500 seeds per kind of system", arguments: SimSystem.Kind.allCases)
    func exactlyOneEffect(kind: SimSystem.Kind) async throws {
        var deaths = 0
        var reconciled = 0
        var states: [DeliveryState: Int] = [:]
        for seed in 0..<500 {
            let report = try await SimRun(seed: UInt64(seed), kind: kind, commands: 6).run()
            try report.check()
            deaths += report.lives - 1
            reconciled += report.entries.values.filter { $0.reason?.hasPrefix("reconciled") == true }.count
            for entry in report.entries.values { states[entry.state, default: 0] += 1 }
        }
        // The runs must have gone through what they claim to survive.
        #expect(deaths > 500)
        #expect(states[.delivered, default: 0] > 1_000)
        switch kind {
        case .lookup, .checkpoint: #expect(reconciled > 50)
        case .cannotTell: #expect(states[.unknown, default: 0] > 10)
        case .dedupesOnKey: #expect(states[.unknown, default: 0] == 0)
        }
    }

    @Test("a ledger that loses its write-ahead entries is caught", arguments: [SimSystem.Kind.lookup, .cannotTell, .checkpoint])
    func forgetfulLedgerCaught(kind: SimSystem.Kind) async throws {
        var caught = 0
        for seed in 0..<200 {
            let report = try await SimRun(seed: UInt64(seed), kind: kind, commands: 6, forgetAttempts: true).run()
            if (try? report.check()) == nil { caught += 1 }
        }
        #expect(caught > 0, "dropping the point-of-no-return entries must let a repeat through at some seed")
    }
}

/// One simulated run: commands settled one after the other, the process dying at random.
struct SimRun {
    let seed: UInt64
    let kind: SimSystem.Kind
    let commands: Int
    var forgetAttempts = false

    func run() async throws -> SimReport {
        let random = SimRandom(seed: seed)
        let system = SimSystem(kind: kind, random: random)
        let ledger = SimLedger(forgetAttempts: forgetAttempts)
        let envelopes = (0..<commands).map { index in Self.command(index) }
        var lives = 0
        var settled: [String: OutboundDelivery] = [:]
        var next = 0
        while next < envelopes.count {
            lives += 1
            guard lives < 200 else { break }
            let life = SimLife(random: random, deathChance: 0.08)
            system.life = life
            ledger.life = life
            let processor = CommandProcessor(
                connector: "sim", endpoint: system, gate: EndpointGate(limit: 1, breaker: CircuitBreaker(threshold: 1_000_000)),
                policy: RetryPolicy(baseDelay: .zero, maxDelay: .zero, maxAttempts: 8, maxElapsed: .seconds(3600)), ledger: ledger,
                sleep: { _ in if life.died { throw SimDeath() } }, now: { Date(timeIntervalSince1970: 1_780_000_000) }, jitter: { 0.5 })
            do {
                while next < envelopes.count {
                    let settlement = try await processor.settle(envelopes[next], offset: Int64(next))
                    // The process may have died after settling, before committing.
                    if life.died { throw SimDeath() }
                    settled[envelopes[next].id] = settlement.entry
                    next += 1
                }
            } catch is SimDeath {
                continue
            }
        }
        return SimReport(seed: seed, kind: kind, commands: envelopes, entries: settled, system: system.snapshot(), lives: lives)
    }

    static func command(_ index: Int) -> Envelope {
        let fact = ChannelFact(id: "ship/s\(index)", action: .ship, shipmentId: "s\(index)", lines: [], at: Date(timeIntervalSince1970: 0))
        let update = ChannelUpdate(orderId: "o\(index)", channel: "sim", externalOrderId: "x\(index)", fact: fact)
        return Envelope(id: "cmd-\(index)", source: "sim", time: Date(timeIntervalSince1970: 0), event: update.event)
    }
}

/// What a run came to, and the properties it must have.
struct SimReport {
    let seed: UInt64
    let kind: SimSystem.Kind
    let commands: [Envelope]
    let entries: [String: OutboundDelivery]
    let system: SimSystem.Snapshot
    let lives: Int

    struct Violation: Error, CustomStringConvertible {
        var description: String
    }

    func check() throws {
        func fail(_ text: String) throws -> Never { throw Violation(description: "seed \(seed) \(kind): \(text)") }
        for command in commands {
            let key = "sim/\(command.id)"
            let effects = system.effects[key, default: 0]
            let repeats = system.callsAfterEffect[key, default: 0]
            guard let state = entries[command.id]?.state else { try fail("\(command.id) never settled in \(lives) lives") }
            if effects > 1 { try fail("\(command.id) took effect \(effects) times") }
            if kind != .dedupesOnKey, repeats > 0 { try fail("\(command.id) was called \(repeats) times after it took effect") }
            switch state {
            case .delivered where effects != 1: try fail("\(command.id) delivered with \(effects) effects")
            // A system that dedupes on the key may have the effect of a command given up
            // on: its re-drive repeats the key, so it stays single.
            case .failed where effects != 0 && kind != .dedupesOnKey, .rejected where effects != 0:
                try fail("\(command.id) \(state) but took effect")
            case .unknown where kind != .cannotTell: try fail("\(command.id) unknown though the system can be asked")
            case .attempting: try fail("\(command.id) settled as attempting")
            default: break
            }
        }
    }
}

/// An external system: counts calls and effects per idempotency key.
final class SimSystem: OutboundEndpoint, Sendable {
    /// How the system lets a lost answer be reconciled.
    enum Kind: String, CaseIterable, Sendable, CustomTestStringConvertible {
        /// It can be asked (Shopify, SP-API).
        case lookup
        /// It applies a key once, whatever the calls (OrderFleet webhooks, Stripe).
        case dedupesOnKey
        /// It cannot be asked (SMTP).
        case cannotTell
        /// It can be asked what it holds, but an effect carries no key (Shopify's
        /// captures): the attempt notes what was there before it, and the ledger keeps
        /// that checkpoint for whoever reconciles.
        case checkpoint
        var testDescription: String { rawValue }
    }

    struct Snapshot {
        var effects: [String: Int] = [:]
        var calls: [String: Int] = [:]
        var callsAfterEffect: [String: Int] = [:]
        /// Effects of every command together (a `checkpoint` system's only count).
        var total = 0
    }

    let kind: Kind
    let random: SimRandom
    private let state = Mutex(Snapshot())
    private let currentLife = Mutex<SimLife?>(nil)
    var life: SimLife? {
        get { currentLife.withLock { $0 } }
        set { currentLife.withLock { $0 = newValue } }
    }
    let name = "sim"

    init(kind: Kind, random: SimRandom) {
        self.kind = kind
        self.random = random
    }

    func snapshot() -> Snapshot { state.withLock { $0 } }

    func perform(_ call: OutboundCall) async -> CallResult {
        guard let life, !life.died else { return .retry(after: nil, reason: "dead") }
        if random.chance(0.15) { return .retry(after: nil, reason: "503 before the effect") }
        do {
            if kind == .checkpoint {
                try await call.pointOfNoReturn(noting: "\(state.withLock { $0.total })")
            } else {
                try await call.pointOfNoReturn()
            }
        } catch { return .retry(after: nil, reason: "ledger: \(error)") }
        if life.dies() { return .unknown(reason: "died while sending") }
        let key = call.idempotencyKey
        state.withLock { state in
            state.calls[key, default: 0] += 1
            if state.effects[key, default: 0] > 0 { state.callsAfterEffect[key, default: 0] += 1 }
            if kind != .dedupesOnKey || state.effects[key, default: 0] == 0 {
                state.effects[key, default: 0] += 1
                state.total += 1
            }
        }
        if life.dies() { return .unknown(reason: "died before the answer") }
        if random.chance(0.2) { return .unknown(reason: "answer lost") }
        return .delivered(reference: key)
    }

    func reconcile(_ call: OutboundCall) async -> Reconciliation {
        guard let life, !life.died else { return .askAgain(reason: "dead") }
        switch kind {
        case .lookup:
            if random.chance(0.1) { return .askAgain(reason: "lookup failed") }
            let effects = state.withLock { $0.effects[call.idempotencyKey, default: 0] }
            return effects > 0 ? .happened(reference: call.idempotencyKey) : .didNotHappen
        case .dedupesOnKey:
            return .didNotHappen
        case .cannotTell:
            return .cannotTell(reason: "no lookup")
        case .checkpoint:
            // Commands are settled one at a time: an effect after the checkpoint is this one's.
            guard let noted = call.checkpoint.flatMap({ Int($0) }) else { return .cannotTell(reason: "no checkpoint") }
            if random.chance(0.1) { return .askAgain(reason: "lookup failed") }
            return state.withLock { $0.total } > noted ? .happened(reference: call.idempotencyKey) : .didNotHappen
        }
    }
}

/// The durable ledger: survives deaths; a write after a death never lands.
final class SimLedger: DeliveryLedger, Sendable {
    private let entries = Mutex<[String: OutboundDelivery]>([:])
    private let currentLife = Mutex<SimLife?>(nil)
    let forgetAttempts: Bool
    var life: SimLife? {
        get { currentLife.withLock { $0 } }
        set { currentLife.withLock { $0 = newValue } }
    }

    init(forgetAttempts: Bool) { self.forgetAttempts = forgetAttempts }

    func entry(for commandID: String) async -> OutboundDelivery? { entries.withLock { $0[commandID] } }

    func record(_ entry: OutboundDelivery) async throws {
        guard let life, !life.died else { throw SimDeath() }
        if life.dies() { throw SimDeath() }
        if !(forgetAttempts && entry.state == .attempting) { entries.withLock { $0[entry.commandId] = entry } }
        if life.dies() { throw SimDeath() }
    }
}

/// One process life: dies at a random step, and stays dead.
final class SimLife: Sendable {
    private let dead = Mutex(false)
    let random: SimRandom
    let deathChance: Double

    init(random: SimRandom, deathChance: Double) {
        self.random = random
        self.deathChance = deathChance
    }

    var died: Bool { dead.withLock { $0 } }

    /// Whether the process dies at this step.
    func dies() -> Bool {
        if died { return true }
        guard random.chance(deathChance) else { return false }
        dead.withLock { $0 = true }
        return true
    }
}

struct SimDeath: Error {}

/// A seeded, reproducible generator shared by the simulation's tasks.
final class SimRandom: Sendable {
    private let generator: Mutex<SplitMix64>

    init(seed: UInt64) { generator = Mutex(SplitMix64(seed: seed &+ 0x9E37_79B9_7F4A_7C15)) }

    func next() -> UInt64 { generator.withLock { $0.next() } }

    func chance(_ probability: Double) -> Bool { Double(next() >> 11) / Double(1 << 53) < probability }
}

import Contracts
import Foundation
import Synchronization

/// Where a connector keeps, per command, how far it got with the external system: the
/// write-ahead record that makes "call at most once, reconcile after a crash" possible.
///
/// ``record(_:)`` returns only once the entry is durable (in Kafka: acknowledged by
/// the brokers), because a call may go out right after it.
public protocol DeliveryLedger: Sendable {
    /// The last entry recorded for a command, if any.
    func entry(for commandID: String) async -> OutboundDelivery?
    /// Records an entry durably.
    func record(_ entry: OutboundDelivery) async throws
}

/// How a command ended for this delivery of it.
public enum Settlement: Sendable, Hashable {
    /// The ledger already held its final entry for this very record (a replay after a
    /// crash): nothing was called.
    case alreadySettled(OutboundDelivery)
    /// It was settled now, with this final entry.
    case settled(OutboundDelivery)

    /// The final entry.
    public var entry: OutboundDelivery {
        switch self {
        case .alreadySettled(let entry), .settled(let entry): entry
        }
    }

    /// Whether an operator must act (rejected, retries exhausted, outcome unknown).
    public var needsOperator: Bool { entry.state.needsOperator }
}

/// Settles one command with one endpoint: calls it at most once per effect, retries
/// what failed before the point of no return, and reconciles what a crash or a timeout
/// left unknown, asking the endpoint instead of calling it blindly again.
///
/// A command is re-driven by an operator when it comes again from a later offset than
/// the one its final entry is for: then a rejected or failed command is called again,
/// and an unknown one too if the endpoint still cannot tell (the operator checked).
public struct CommandProcessor: Sendable {
    /// The connector's name: the ledger's and the idempotency keys' prefix.
    public var connector: String
    /// The system called.
    public var endpoint: any OutboundEndpoint
    /// Concurrency, circuit breaker and rate-limit pauses for the endpoint.
    public var gate: EndpointGate
    /// Backoff and ceiling.
    public var policy: RetryPolicy
    /// The write-ahead ledger.
    public var ledger: any DeliveryLedger
    /// Waits between attempts (a test clock in simulations).
    public var sleep: @Sendable (Duration) async throws -> Void
    /// The time stamped on ledger entries.
    public var now: @Sendable () -> Date
    /// A number in [0, 1) for backoff jitter.
    public var jitter: @Sendable () -> Double

    /// A processor.
    public init(
        connector: String, endpoint: any OutboundEndpoint, gate: EndpointGate, policy: RetryPolicy, ledger: any DeliveryLedger,
        sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) },
        now: @escaping @Sendable () -> Date = { Date() },
        jitter: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }
    ) {
        self.connector = connector
        self.endpoint = endpoint
        self.gate = gate
        self.policy = policy
        self.ledger = ledger
        self.sleep = sleep
        self.now = now
        self.jitter = jitter
    }

    /// The idempotency key of every call for `command`: the connector and the command id.
    public func idempotencyKey(for command: Envelope) -> String { "\(connector)/\(command.id)" }

    /// Settles `command`, read from `offset` of `partition` of its topic. Throws only when the ledger
    /// cannot be written (Kafka away) or the task is cancelled: the command then stays
    /// unsettled and comes again.
    public func settle(_ command: Envelope, offset: Int64, partition: Int32 = 0) async throws -> Settlement {
        let prior = await ledger.entry(for: command.id)
        var run = Attempts(prior: prior, connector: connector, command: command, offset: offset, key: idempotencyKey(for: command))
        run.partition = partition
        if let prior {
            if prior.state.isDone { return .alreadySettled(prior) }
            if prior.state.needsOperator, prior.sourceOffset == offset { return .alreadySettled(prior) }
            let redrive = prior.sourceOffset != offset
            if prior.state == .attempting || prior.state == .unknown {
                if let settled = try await reconcile(&run, operatorAsked: redrive && prior.state == .unknown) {
                    return .settled(settled)
                }
            }
        }
        return .settled(try await callUntilSettled(&run))
    }

    /// Asks the endpoint whether the last attempt took effect; the final entry if that
    /// settles the command, nil if it is safe to call.
    ///
    /// Each ask goes through the gate as a call does: an outage that follows a lost answer
    /// (a timeout is often its first sign) holds the asks back at the open breaker
    /// instead of spending the retry budget on a refusing endpoint in seconds.
    private func reconcile(_ run: inout Attempts, operatorAsked: Bool) async throws -> OutboundDelivery? {
        let started = ContinuousClock.now
        var asks = 0
        while true {
            asks += 1
            try await gate.enter()
            switch await endpoint.reconcile(run.call(attempt: run.attempts, pointOfNoReturn: {})) {
            case .happened(let reference):
                await gate.leave(.answered)
                return try await finish(&run, .delivered, reference: reference, reason: "reconciled: the endpoint has it")
            case .didNotHappen:
                await gate.leave(.answered)
                return nil
            case .cannotTell(let reason):
                // Some systems cannot be asked at all (SMTP): no call went out.
                await gate.leave(.abandoned)
                if operatorAsked { return nil }
                return try await finish(&run, .unknown, reason: reason)
            case .askAgain(let reason):
                await gate.leave(.transientFailure)
                if policy.givesUp(attempts: asks, elapsed: ContinuousClock.now - started) {
                    return try await finish(&run, .unknown, reason: "could not reconcile: \(reason)")
                }
                try await sleep(policy.delay(afterAttempt: asks, jitter: jitter(), hint: nil))
            }
        }
    }

    /// Calls until the endpoint answers for good or the policy gives up.
    private func callUntilSettled(_ run: inout Attempts) async throws -> OutboundDelivery {
        let started = ContinuousClock.now
        var failures = 0
        while true {
            try await gate.enter()
            run.attempts += 1
            let attempt = run.attempts
            let marker = run.entry(.attempting, now: now())
            let ledger = self.ledger
            let noted = Mutex<String?>(nil)
            let result = await endpoint.perform(run.call(attempt: attempt, pointOfNoReturn: { try await ledger.record(marker) }, noting: { checkpoint in
                var entry = marker
                entry.checkpoint = checkpoint
                try await ledger.record(entry)
                noted.withLock { $0 = checkpoint }
            }))
            run.checkpoint = noted.withLock { $0 }
            switch result {
            case .delivered(let reference):
                await gate.leave(.answered)
                return try await finish(&run, .delivered, reference: reference)
            case .skipped(let reason):
                await gate.leave(.answered)
                return try await finish(&run, .skipped, reason: reason)
            case .rejected(let status, let reason):
                await gate.leave(.answered)
                return try await finish(&run, .rejected, status: status, reason: reason)
            case .retry(let hint, let reason):
                await gate.leave(.transientFailure, pause: hint)
                failures += 1
                run.lastReason = reason
                if policy.givesUp(attempts: failures, elapsed: ContinuousClock.now - started) {
                    return try await finish(&run, .failed, reason: "gave up after \(failures) attempts: \(reason)")
                }
                try await sleep(policy.delay(afterAttempt: failures, jitter: jitter(), hint: hint))
            case .unknown(let reason):
                await gate.leave(.transientFailure)
                run.lastReason = reason
                if let settled = try await reconcile(&run, operatorAsked: false) { return settled }
                failures += 1
                if policy.givesUp(attempts: failures, elapsed: ContinuousClock.now - started) {
                    return try await finish(&run, .failed, reason: "gave up after \(failures) attempts: \(reason)")
                }
                try await sleep(policy.delay(afterAttempt: failures, jitter: jitter(), hint: nil))
            }
        }
    }

    private func finish(
        _ run: inout Attempts, _ state: DeliveryState, reference: String? = nil, status: Int? = nil, reason: String? = nil
    ) async throws -> OutboundDelivery {
        var entry = run.entry(state, now: now())
        entry.reference = reference ?? entry.reference
        entry.status = status
        entry.reason = reason ?? (state == .delivered ? nil : run.lastReason)
        try await ledger.record(entry)
        return entry
    }
}

/// One command's attempts so far, carried across reconciling and calling.
private struct Attempts {
    var connector: String
    var command: Envelope
    var offset: Int64
    var partition: Int32 = 0
    var key: String
    var attempts: Int
    var reference: String?
    var lastReason: String?
    /// What the last attempt noted at its point of no return; kept while its outcome is
    /// in doubt (attempting, unknown).
    var checkpoint: String?

    init(prior: OutboundDelivery?, connector: String, command: Envelope, offset: Int64, key: String) {
        self.connector = connector
        self.command = command
        self.offset = offset
        self.key = key
        attempts = prior?.attempts ?? 0
        reference = prior?.reference
        lastReason = prior?.reason
        checkpoint = prior?.checkpoint
    }

    func call(
        attempt: Int, pointOfNoReturn: @escaping @Sendable () async throws -> Void, noting: (@Sendable (String) async throws -> Void)? = nil
    ) -> OutboundCall {
        OutboundCall(
            command: command, idempotencyKey: key, attempt: max(attempt, 1), sourcePartition: partition, sourceOffset: offset, checkpoint: checkpoint,
            pointOfNoReturn: pointOfNoReturn, noting: noting)
    }

    func entry(_ state: DeliveryState, now: Date) -> OutboundDelivery {
        var entry = OutboundDelivery(
            connector: connector, commandId: command.id, commandType: command.type.description,
            orderId: command.event.payload.partitionKey, idempotencyKey: key, state: state, attempts: attempts,
            reference: reference, sourceOffset: offset, updatedAt: now)
        if state == .unknown { entry.checkpoint = checkpoint }
        return entry
    }
}

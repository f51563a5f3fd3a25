import Contracts
import Foundation

/// One external system that a connector acts on: a channel's API, an SMTP server, a
/// webhook receiver.
///
/// The connector runtime (``OutboundConnector``) decides when to call; an endpoint only
/// knows the system's format. It must carry ``OutboundCall/idempotencyKey`` in whatever
/// form the system honours (an `Idempotency-Key` header, a Message-ID), and it must call
/// ``OutboundCall/pointOfNoReturn`` right before the step after which the effect may have
/// happened (sending the HTTP request, the SMTP end-of-data): the runtime records there
/// that the outcome may be unknown, so after a crash it reconciles instead of calling again.
public protocol OutboundEndpoint: Sendable {
    /// The endpoint's name in metrics, logs and the ledger, e.g. `shopify/brand-eu`.
    var name: String { get }
    /// Performs the command's effect once.
    func perform(_ call: OutboundCall) async -> CallResult
    /// Asks the system whether an attempt that a crash or timeout left without an answer
    /// took effect. Systems without a way to ask answer ``Reconciliation/cannotTell``.
    func reconcile(_ call: OutboundCall) async -> Reconciliation
    /// Which concurrency limit and circuit breaker a command goes through: by default
    /// the endpoint's ``name``; a router returns one per system it routes to.
    func gateKey(for command: Envelope) -> String
}

extension OutboundEndpoint {
    /// The endpoint's name.
    public func gateKey(for command: Envelope) -> String { name }
}

/// One call of an endpoint for one command.
public struct OutboundCall: Sendable {
    /// The command: its id is the cause every retry shares.
    public var command: Envelope
    /// Derived from the connector and the command id; the same on every attempt.
    public var idempotencyKey: String
    /// 1 for the first attempt.
    public var attempt: Int
    /// Records that the effect may happen from now on; the endpoint awaits it right
    /// before the irrevocable step and gives up the call if it throws.
    public var pointOfNoReturn: @Sendable () async throws -> Void
    /// Where the command record is (its topic's partition and offset): a system that
    /// answers later, by webhook, is given it so the answer leads back to the command.
    public var sourcePartition: Int32
    /// The command record's offset.
    public var sourceOffset: Int64
    /// What the last attempt noted at its point of no return
    /// (``pointOfNoReturn(noting:)``), kept in the ledger: a system without idempotency
    /// keys tells a lost answer's effect from what was there before by it.
    public var checkpoint: String?
    private let noting: @Sendable (String) async throws -> Void

    /// Creates a call; `noting` records the point of no return with a checkpoint (by
    /// default it records it without).
    public init(
        command: Envelope, idempotencyKey: String, attempt: Int, sourcePartition: Int32 = 0, sourceOffset: Int64 = 0, checkpoint: String? = nil,
        pointOfNoReturn: @escaping @Sendable () async throws -> Void, noting: (@Sendable (String) async throws -> Void)? = nil
    ) {
        self.command = command
        self.idempotencyKey = idempotencyKey
        self.attempt = attempt
        self.sourcePartition = sourcePartition
        self.sourceOffset = sourceOffset
        self.checkpoint = checkpoint
        self.pointOfNoReturn = pointOfNoReturn
        self.noting = noting ?? { _ in try await pointOfNoReturn() }
    }

    /// Records that the effect may happen from now on, with what the endpoint saw
    /// before it (``checkpoint`` of a later reconciliation).
    public func pointOfNoReturn(noting checkpoint: String) async throws {
        try await noting(checkpoint)
    }
}

/// What one attempt of a call came to.
public enum CallResult: Sendable, Hashable {
    /// The system took the effect; `reference` is its id for it (a fulfillment id, the
    /// SMTP queue id), if it gave one.
    case delivered(reference: String?)
    /// The system refused the command and will refuse it again (a 4xx other than 408,
    /// 409 and 429; a 5xx SMTP reply): `reason` is the system's own message.
    case rejected(status: Int?, reason: String)
    /// A transient failure before the effect (connection refused, 429, 503, a 4xx SMTP
    /// reply): try again, no sooner than `after` when the system said so.
    case retry(after: Duration?, reason: String)
    /// No answer after the point of no return (a timeout, a reset): the effect may or may
    /// not have happened. The runtime reconciles before anything else.
    case unknown(reason: String)
    /// Nothing to do for this command (a customer who opted out, no recipient):
    /// recorded, never retried.
    case skipped(reason: String)
}

/// Whether an attempt whose answer was lost took effect.
public enum Reconciliation: Sendable, Hashable {
    /// It did; `reference` is the system's id for it, if it gave one.
    case happened(reference: String?)
    /// It did not: calling again cannot make a second effect.
    case didNotHappen
    /// The system could not be asked just now (down, rate-limited): ask again later.
    case askAgain(reason: String)
    /// The system has no way to be asked: the command needs an operator.
    case cannotTell(reason: String)
}

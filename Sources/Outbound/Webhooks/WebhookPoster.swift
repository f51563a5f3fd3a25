import Contracts
import Fleet
import Foundation

/// The webhooks connector's settings, under `webhooks.*` (docs/OPERATIONS.md, "Webhooks
/// for the brand's systems").
public struct WebhookSettings: Sendable {
    /// The key every subscription's signing secret is derived from (``WebhookEvents/signingSecret(subscriptionID:signingKey:)``).
    public var signingKey: String
    /// Backoff between attempts of one delivery; its ``RetryPolicy/maxElapsed`` is the
    /// retry window (24 h by default) after which a delivery fails.
    public var policy: RetryPolicy
    /// A subscription whose delivery fails after its window, and that has had no
    /// successful delivery for this long, is disabled.
    public var disableAfter: Duration
    /// Attempts in flight at once, over every subscription.
    public var concurrency: Int
    /// How long one POST may take, answer included.
    public var httpTimeout: Duration
    /// Deliveries waiting (in memory) at which the connector stops reading events.
    public var maxPending: Int

    /// Settings given in code (the demo's).
    public init(
        signingKey: String, policy: RetryPolicy, disableAfter: Duration = .seconds(86_400), concurrency: Int = 8, httpTimeout: Duration = .seconds(10),
        maxPending: Int = 100_000
    ) {
        self.signingKey = signingKey
        self.policy = policy
        self.disableAfter = disableAfter
        self.concurrency = concurrency
        self.httpTimeout = httpTimeout
        self.maxPending = maxPending
    }

    /// Reads `webhooks.*`; a missing or wrong value names its key.
    package init(keys: KeyReader) throws(ConfigurationError) {
        guard let key = try keys.string("webhooks.signing.key", secret: true), key.count >= 16 else {
            throw ConfigurationError(key: "webhooks.signing.key", reason: "required for the webhooks connector, at least 16 characters")
        }
        signingKey = key
        policy = RetryPolicy(
            baseDelay: .milliseconds(try keys.int("webhooks.retry.base.ms", default: 1_000, in: 1...600_000)),
            maxDelay: .milliseconds(try keys.int("webhooks.retry.max.delay.ms", default: 3_600_000, in: 1...86_400_000)),
            maxAttempts: Int.max,
            maxElapsed: .seconds(try keys.int("webhooks.retry.window.s", default: 86_400, in: 1...604_800)))
        disableAfter = .seconds(try keys.int("webhooks.disable.after.s", default: 86_400, in: 1...2_592_000))
        concurrency = try keys.int("webhooks.concurrency", default: 8, in: 1...256)
        httpTimeout = .milliseconds(try keys.int("connector.http.timeout.ms", default: 10_000, in: 100...300_000))
        maxPending = try keys.int("webhooks.max.pending", default: 100_000, in: 100...10_000_000)
    }
}

/// POSTs one event to one subscription: the event as a CloudEvents 1.0 JSON body, signed
/// with the subscription's secret (``OutboundSignature``: `X-OrderFleet-Signature:
/// t=<unix seconds>,v1=<hex>`), and the delivery id in `webhook-id` and `Idempotency-Key`
/// on every attempt, so a receiver that keeps the ids it processed applies each event once.
public struct WebhookPoster: Sendable {
    /// The HTTP client.
    public var http: HTTPExchange
    /// The fleet's signing key.
    public var signingKey: String
    /// The time stamped into signatures.
    public var now: @Sendable () -> Date

    /// A poster.
    public init(http: HTTPExchange, signingKey: String, now: @escaping @Sendable () -> Date = { Date() }) {
        self.http = http
        self.signingKey = signingKey
        self.now = now
    }

    /// One attempt; `pointOfNoReturn` is awaited right before the request leaves.
    public func post(
        _ event: Envelope, to subscription: WebhookSubscription, attempt: Int, pointOfNoReturn: @escaping @Sendable () async throws -> Void
    ) async -> CallResult {
        let body: Data
        do {
            body = try OutboundSignature.body(of: event)
        } catch {
            return .rejected(status: nil, reason: "cannot encode \(event.id): \(error)")
        }
        let deliveryID = subscription.deliveryID(of: event.id)
        let secret = WebhookEvents.signingSecret(subscriptionID: subscription.subscriptionId, signingKey: signingKey)
        let headers = [
            ("webhook-id", deliveryID),
            ("Idempotency-Key", deliveryID),
            ("X-OrderFleet-Event-Type", event.type.name),
            ("X-OrderFleet-Subscription", subscription.subscriptionId),
            ("X-OrderFleet-Attempt", String(attempt)),
            (OutboundSignature.header, OutboundSignature.sign(body: body, timestamp: Int(now().timeIntervalSince1970), secret: secret)),
        ]
        // The subscriber's spans join the order's trace, as the event's own record does.
        let outcome = await OutboundTrace.$command.withValue(event.traceparent) {
            await http.send(.POST, subscription.url, headers: headers, body: body, pointOfNoReturn: pointOfNoReturn)
        }
        return HTTPVerdict.result(of: outcome, now: now())
    }
}

/// How a webhook delivery's ledger entry moves after an attempt, as pure functions.
///
/// Deliveries are retried off the partition: a failed one is recorded `retrying` with the
/// time of its next attempt, and the connector goes on with the others. A lost answer is
/// retried like a refusal, because the receiver keeps the delivery ids it processed
/// (that is the documented contract of `webhook-id`): the same id again cannot make a
/// second effect.
public enum WebhookRetries {
    /// The entry after an attempt that came to `result`; `entry` is the `attempting` one.
    public static func settle(
        _ entry: OutboundDelivery, after result: CallResult, now: Date, policy: RetryPolicy, jitter: Double
    ) -> OutboundDelivery {
        var next = entry
        next.updatedAt = now
        next.nextAttemptAt = nil
        switch result {
        case .delivered(let reference):
            next.state = .delivered
            next.reference = reference
            next.status = nil
            next.reason = nil
        case .skipped(let reason):
            next.state = .skipped
            next.reason = reason
        case .rejected(let status, let reason):
            next.state = .rejected
            next.status = status
            next.reason = reason
        case .retry(let hint, let reason):
            return retried(next, hint: hint, reason: reason, now: now, policy: policy, jitter: jitter)
        case .unknown(let reason):
            return retried(next, hint: nil, reason: "no answer: \(reason)", now: now, policy: policy, jitter: jitter)
        }
        return next
    }

    /// When a subscription must be disabled: a delivery of it just failed for good, and
    /// none has succeeded within `disableAfter` (or ever, since the window began).
    public static func disables(failed entry: OutboundDelivery, lastSuccess: Date?, now: Date, disableAfter: Duration) -> Bool {
        guard entry.state == .failed else { return false }
        guard let lastSuccess else { return true }
        return now.timeIntervalSince(lastSuccess) >= disableAfter.seconds
    }

    private static func retried(
        _ entry: OutboundDelivery, hint: Duration?, reason: String, now: Date, policy: RetryPolicy, jitter: Double
    ) -> OutboundDelivery {
        var next = entry
        next.reason = reason
        let started = entry.firstAttemptAt ?? now
        if now.timeIntervalSince(started) >= policy.maxElapsed.seconds {
            next.state = .failed
            next.reason = "gave up after \(entry.attempts) attempts over \(Int(now.timeIntervalSince(started))) s: \(reason)"
            return next
        }
        next.state = .retrying
        next.nextAttemptAt = now.addingTimeInterval(policy.delay(afterAttempt: entry.attempts, jitter: jitter, hint: hint).seconds)
        return next
    }
}

extension Duration {
    /// The duration in seconds, as a `TimeInterval`.
    var seconds: TimeInterval {
        let (seconds, attoseconds) = components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }
}

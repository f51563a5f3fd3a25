import Foundation

/// When a connector calls an endpoint again, and when it stops trying.
///
/// Exponential backoff with full jitter (AWS's "full jitter": a delay drawn between
/// zero and the capped exponential), never sooner than the endpoint asked with
/// `Retry-After` or its rate-limit headers. A command that has used ``maxAttempts``
/// calls or ``maxElapsed`` becomes an alert and a dead letter (`oms dlq replay`
/// re-drives it).
public struct RetryPolicy: Sendable, Hashable {
    /// The cap of the first retry's delay; doubles per attempt.
    public var baseDelay: Duration
    /// The largest delay between two attempts (an endpoint's own hint may be longer).
    public var maxDelay: Duration
    /// Calls of one command before it fails.
    public var maxAttempts: Int
    /// How long one command is retried before it fails.
    public var maxElapsed: Duration

    /// A policy; the defaults ride out an endpoint that is down for a few minutes.
    public init(
        baseDelay: Duration = .milliseconds(200), maxDelay: Duration = .seconds(30),
        maxAttempts: Int = 50, maxElapsed: Duration = .seconds(600)
    ) {
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.maxAttempts = maxAttempts
        self.maxElapsed = maxElapsed
    }

    /// The wait after failed attempt `attempt` (1 for the first call): `jitter` in
    /// [0, 1) picks a point of the jitter window; `hint` is the endpoint's own wish.
    public func delay(afterAttempt attempt: Int, jitter: Double, hint: Duration?) -> Duration {
        let exponent = min(max(attempt - 1, 0), 30)
        let cap = min(baseDelay * (1 << exponent), maxDelay)
        let drawn = cap * min(max(jitter, 0), 1)
        guard let hint else { return drawn }
        return max(drawn, hint)
    }

    /// Whether a command that has had `attempts` calls over `elapsed` is given up.
    public func givesUp(attempts: Int, elapsed: Duration) -> Bool {
        attempts >= maxAttempts || elapsed >= maxElapsed
    }
}

/// What an HTTP endpoint's headers say about when to call it next.
public enum RetryHints {
    /// `Retry-After` (RFC 9110 §10.2.3): delay-seconds (Shopify sends fractions, e.g.
    /// `2.0`) or an HTTP-date; nil when absent or unreadable.
    public static func retryAfter(_ value: String?, now: Date) -> Duration? {
        guard let value = value?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        if let seconds = Double(value), seconds.isFinite, seconds >= 0 {
            return .milliseconds(Int64((seconds * 1000).rounded(.up)))
        }
        guard let date = httpDate.date(from: value) else { return nil }
        let seconds = max(0, date.timeIntervalSince(now))
        return .milliseconds(Int64((seconds * 1000).rounded(.up)))
    }

    /// The pause before the next call when the endpoint's rate-limit bucket is empty:
    /// Shopify's `X-Shopify-Shop-Api-Call-Limit: 40/40` (a leaky bucket draining 2 calls
    /// per second), or `X-RateLimit-Remaining: 0` with `X-RateLimit-Reset` (seconds to
    /// wait, or a Unix time). `header` looks a header up by lower-cased name.
    public static func rateLimitPause(header: (String) -> String?, now: Date) -> Duration? {
        if let limit = header("x-shopify-shop-api-call-limit") {
            let parts = limit.split(separator: "/").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            if parts.count == 2, parts[1] > 0, parts[0] >= parts[1] - 1 {
                // One call leaks out every 500 ms; wait for two to leave room.
                return .seconds(1)
            }
        }
        guard let remaining = header("x-ratelimit-remaining").flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) }),
            remaining <= 0
        else { return nil }
        guard let reset = header("x-ratelimit-reset").flatMap({ Double($0.trimmingCharacters(in: .whitespaces)) }) else {
            return .seconds(1)
        }
        // A value larger than a day is a Unix time, anything else a delay in seconds.
        let seconds = reset > 86_400 ? max(0, reset - now.timeIntervalSince1970) : reset
        return .milliseconds(Int64((seconds * 1000).rounded(.up)))
    }

    private static let httpDate: DateFormatter = {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter
    }()
}

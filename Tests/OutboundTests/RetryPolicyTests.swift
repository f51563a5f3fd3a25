import Foundation
import Testing

@testable import Outbound

@Suite("Retry policy and hints")
struct RetryPolicyTests {
    @Test("backoff doubles up to the cap, jitter picks within it, and a hint is a floor")
    func backoff() {
        let policy = RetryPolicy(baseDelay: .milliseconds(100), maxDelay: .seconds(1), maxAttempts: 5, maxElapsed: .seconds(60))
        #expect(policy.delay(afterAttempt: 1, jitter: 0.999_999, hint: nil) <= .milliseconds(100))
        #expect(policy.delay(afterAttempt: 3, jitter: 0.5, hint: nil) == .milliseconds(200))
        #expect(policy.delay(afterAttempt: 20, jitter: 1, hint: nil) == .seconds(1))
        #expect(policy.delay(afterAttempt: 1, jitter: 0, hint: .seconds(7)) == .seconds(7))
        #expect(!policy.givesUp(attempts: 4, elapsed: .seconds(59)))
        #expect(policy.givesUp(attempts: 5, elapsed: .seconds(1)))
        #expect(policy.givesUp(attempts: 1, elapsed: .seconds(60)))
    }

    @Test("Retry-After as seconds, fractions and an HTTP-date; garbage ignored")
    func retryAfter() {
        let now = Date(timeIntervalSince1970: 1_780_000_000)
        #expect(RetryHints.retryAfter("3", now: now) == .seconds(3))
        #expect(RetryHints.retryAfter("2.0", now: now) == .seconds(2))
        #expect(RetryHints.retryAfter("0.25", now: now) == .milliseconds(250))
        let date = "Thu, 28 May 2026 20:27:00 GMT"  // 1_780_000_020
        #expect(RetryHints.retryAfter(date, now: now) == .seconds(20))
        #expect(RetryHints.retryAfter("soon", now: now) == nil)
        #expect(RetryHints.retryAfter(nil, now: now) == nil)
    }

    @Test("rate-limit headers: Shopify's leaky bucket and X-RateLimit-*")
    func rateLimits() {
        let now = Date(timeIntervalSince1970: 1_780_000_000)
        func pause(_ headers: [String: String]) -> Duration? { RetryHints.rateLimitPause(header: { headers[$0] }, now: now) }
        #expect(pause(["x-shopify-shop-api-call-limit": "40/40"]) == .seconds(1))
        #expect(pause(["x-shopify-shop-api-call-limit": "12/40"]) == nil)
        #expect(pause(["x-ratelimit-remaining": "0", "x-ratelimit-reset": "5"]) == .seconds(5))
        #expect(pause(["x-ratelimit-remaining": "0", "x-ratelimit-reset": "1780000009"]) == .seconds(9))
        #expect(pause(["x-ratelimit-remaining": "3", "x-ratelimit-reset": "5"]) == nil)
    }

    @Test("the circuit breaker opens after the threshold, probes once, and closes on success")
    func breaker() {
        var breaker = CircuitBreaker(threshold: 2, openFor: .seconds(10))
        let start = ContinuousClock.now
        #expect(breaker.permit(now: start) == .call)
        breaker.failed(now: start)
        #expect(!breaker.isOpen)
        breaker.failed(now: start)
        #expect(breaker.isOpen)
        #expect(breaker.permit(now: start + .seconds(4)) == .wait(.seconds(6)))
        #expect(breaker.permit(now: start + .seconds(10)) == .call)
        #expect(breaker.state == .halfOpen)
        if case .wait = breaker.permit(now: start + .seconds(10)) {} else { Issue.record("a second call went out while the probe was out") }
        breaker.failed(now: start + .seconds(11))
        #expect(breaker.state == .open(until: start + .seconds(21)))
        #expect(breaker.permit(now: start + .seconds(21)) == .call)
        breaker.succeeded()
        #expect(breaker.state == .closed(failures: 0))
    }
}

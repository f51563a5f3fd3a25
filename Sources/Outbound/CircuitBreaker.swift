/// Stops calling an endpoint that keeps failing, and tries it again after a pause.
///
/// Closed, it counts failures in a row; at ``threshold`` it opens for ``openFor``. Then
/// one probe call goes through (half open): its success closes the breaker, its failure
/// opens it again. A pure value: the caller passes the time.
public struct CircuitBreaker: Sendable, Hashable {
    /// Where the breaker stands.
    public enum State: Sendable, Hashable {
        /// Calls go through; `failures` in a row so far.
        case closed(failures: Int)
        /// No calls until `until`.
        case open(until: ContinuousClock.Instant)
        /// One probe call is out; others wait for its result.
        case halfOpen
    }

    /// What a caller may do now.
    public enum Permission: Sendable, Hashable {
        /// Call.
        case call
        /// Wait this long and ask again.
        case wait(Duration)
    }

    /// Failures in a row that open the breaker.
    public let threshold: Int
    /// How long it stays open.
    public let openFor: Duration
    /// The current state.
    public private(set) var state: State = .closed(failures: 0)

    /// A closed breaker.
    public init(threshold: Int = 5, openFor: Duration = .seconds(10)) {
        self.threshold = max(1, threshold)
        self.openFor = openFor
    }

    /// Whether a call may go out at `now`; a call allowed while half open is the probe.
    public mutating func permit(now: ContinuousClock.Instant) -> Permission {
        switch state {
        case .closed:
            return .call
        case .open(let until) where now >= until:
            state = .halfOpen
            return .call
        case .open(let until):
            return .wait(until - now)
        case .halfOpen:
            // The probe's answer decides; until then the others wait a little.
            return .wait(min(openFor, .milliseconds(100)))
        }
    }

    /// Records a call that reached the endpoint and was answered (delivered or rejected).
    public mutating func succeeded() {
        state = .closed(failures: 0)
    }

    /// Records a call that failed transiently (refused, 5xx, 429, timeout).
    public mutating func failed(now: ContinuousClock.Instant) {
        switch state {
        case .closed(let failures) where failures + 1 >= threshold:
            state = .open(until: now + openFor)
        case .closed(let failures):
            state = .closed(failures: failures + 1)
        case .halfOpen, .open:
            state = .open(until: now + openFor)
        }
    }

    /// Whether calls are held back.
    public var isOpen: Bool {
        if case .closed = state { return false }
        return true
    }
}

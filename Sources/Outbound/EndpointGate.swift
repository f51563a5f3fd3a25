/// The door to one endpoint, shared by every partition a connector works on: at most
/// ``limit`` calls in flight, none while the circuit breaker is open or the endpoint's
/// rate limit asked for a pause.
public actor EndpointGate {
    /// Most calls in flight.
    public let limit: Int
    private var inFlight = 0
    private var waiters: [CheckedContinuation<Void, Never>] = []
    private var breaker: CircuitBreaker
    private var notBefore: ContinuousClock.Instant?
    private let clock = ContinuousClock()

    /// A gate for `limit` concurrent calls with `breaker`.
    public init(limit: Int, breaker: CircuitBreaker = CircuitBreaker()) {
        self.limit = max(1, limit)
        self.breaker = breaker
    }

    /// Waits for a free slot, a closed (or probing) breaker and the end of a rate-limit
    /// pause. Pair with ``leave(_:)``.
    public func enter() async throws {
        while true {
            try Task.checkCancellation()
            let now = clock.now
            if let notBefore, now < notBefore {
                try await clock.sleep(until: notBefore)
                continue
            }
            if inFlight >= limit {
                await withCheckedContinuation { waiters.append($0) }
                continue
            }
            switch breaker.permit(now: now) {
            case .call:
                inFlight += 1
                return
            case .wait(let pause):
                try await clock.sleep(for: pause)
            }
        }
    }

    /// Gives the slot back, telling the breaker how the call went and the gate how long
    /// the endpoint asked to be left alone.
    public func leave(_ outcome: GateOutcome, pause: Duration? = nil) {
        inFlight -= 1
        switch outcome {
        case .answered: breaker.succeeded()
        case .transientFailure: breaker.failed(now: clock.now)
        case .abandoned:
            // A probe that never went out must not leave the breaker half open for good.
            if case .halfOpen = breaker.state { breaker.failed(now: clock.now) }
        }
        if let pause {
            let until = clock.now + pause
            notBefore = max(notBefore ?? until, until)
        }
        if !waiters.isEmpty { waiters.removeFirst().resume() }
    }

    /// Whether the breaker holds calls back (for metrics and readiness).
    public var isOpen: Bool { breaker.isOpen }
}

/// How a call through an ``EndpointGate`` ended, for its circuit breaker.
public enum GateOutcome: Sendable {
    /// The endpoint answered (delivered, rejected, skipped).
    case answered
    /// It failed in a way that says the endpoint is unwell (refused, 5xx, 429, timeout).
    case transientFailure
    /// The call never went out (cancelled): says nothing about the endpoint.
    case abandoned
}

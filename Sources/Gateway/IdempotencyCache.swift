import Synchronization

/// The answers given to requests that carried an idempotency key (the `Idempotency-Key`
/// header, or a platform's webhook id), so a repeated request gets the first answer
/// and produces nothing new.
///
/// Only successful answers are kept: a request that failed (503, 401, 400) may be
/// retried and then do its work. The oldest keys are forgotten first once `capacity`
/// is reached. The cache is per instance; behind several gateways the stages' own
/// dedupe (intake by channel order, tracking by event id) still holds.
final class IdempotencyCache: Sendable {
    /// A kept answer.
    struct Answer: Sendable {
        var status: Int
        var body: [UInt8]
    }

    /// What a request finds under its key.
    enum Lookup: Sendable {
        /// New: the caller now owns the key and must ``finish(_:with:)`` it.
        case claimed
        /// Answered before.
        case answered(Answer)
        /// Another request with the same key is still running.
        case inFlight
    }

    private struct State {
        var answers: [String: Answer] = [:]
        var inFlight: Set<String> = []
        var order: [String] = []
        var head = 0
    }

    private let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int) { self.capacity = capacity }

    func claim(_ key: String) -> Lookup {
        state.withLock { state in
            if let answer = state.answers[key] { return .answered(answer) }
            if state.inFlight.contains(key) { return .inFlight }
            state.inFlight.insert(key)
            return .claimed
        }
    }

    /// Ends a claim: keeps `answer` if there is one, else frees the key for a retry.
    func finish(_ key: String, with answer: Answer?) {
        state.withLock { state in
            state.inFlight.remove(key)
            guard let answer, capacity > 0, state.answers[key] == nil else { return }
            state.answers[key] = answer
            state.order.append(key)
            if state.order.count - state.head > capacity {
                state.answers[state.order[state.head]] = nil
                state.head += 1
                // Compact now and then so the key list does not grow without bound.
                if state.head > capacity {
                    state.order.removeFirst(state.head)
                    state.head = 0
                }
            }
        }
    }
}

import Contracts
import Foundation

/// A stage's keyed state for one partition: the committed values plus the changes of
/// the batch in progress, which a rollback throws away.
public struct KeyedState: Sendable {
    private var committed: [String: Event] = [:]
    /// Uncommitted changes; a nil value is a pending delete.
    private var pending: [String: Event?] = [:]

    /// An empty state.
    public init() {}

    /// The value of `key`, pending changes included.
    public func value(_ key: String) -> Event? {
        if let change = pending[key] { return change }
        return committed[key]
    }

    /// Records a change of the batch in progress.
    public mutating func apply(_ change: StateChange) {
        switch change {
        case .put(let value): pending[change.key] = .some(value)
        case .delete(let key): pending[key] = .some(nil)
        }
    }

    /// Makes the batch's changes permanent (its transaction committed).
    public mutating func commit() {
        for (key, value) in pending {
            committed[key] = value
        }
        pending.removeAll(keepingCapacity: true)
    }

    /// Throws the batch's changes away (its transaction aborted).
    public mutating func rollback() {
        pending.removeAll(keepingCapacity: true)
    }

    /// Applies a changelog record read during restore; nil deletes.
    public mutating func restore(key: String, value: Event?) {
        committed[key] = value
    }

    /// How many keys have a committed value.
    public var count: Int { committed.count }

    /// Calls `body` with every key that has a value, pending changes included, in no
    /// particular order: timers scan the state with it.
    public func forEach(_ body: (String, Event) -> Void) {
        for (key, value) in committed where pending[key] == nil { body(key, value) }
        for (key, change) in pending { if let value = change { body(key, value) } }
    }
}

/// The idempotency keys one stage has processed for one partition, each with the time
/// after which it is forgotten (and a tombstone written), so memory stays bounded.
public struct IdempotencyKeys: Sendable {
    /// Key → expiry in milliseconds since 1970.
    private var expiries: [String: Int64] = [:]
    private var pending: [String: Int64] = [:]
    /// Keys in the order they expire: retention is one constant, so insertion order is
    /// expiry order and a sweep only looks at the head.
    private var queue: [(expiresAt: Int64, key: String)] = []
    private var head = 0

    /// No keys.
    public init() {}

    /// Whether `key` was processed (committed or in the batch in progress).
    public func contains(_ key: String) -> Bool {
        pending[key] != nil || expiries[key] != nil
    }

    /// Marks `key` processed in the batch in progress.
    public mutating func insert(_ key: String, expiresAt: Int64) {
        pending[key] = expiresAt
    }

    /// Makes the batch's keys permanent.
    public mutating func commit() {
        // Sorted so that the queue stays in expiry order even for a batch whose inputs
        // carried different processing times.
        for (key, expiresAt) in pending.sorted(by: { $0.value < $1.value }) {
            add(key, expiresAt: expiresAt)
        }
        pending.removeAll(keepingCapacity: true)
    }

    /// Throws the batch's keys away.
    public mutating func rollback() {
        pending.removeAll(keepingCapacity: true)
    }

    /// Applies an idempotency record read during restore; nil expiry is a tombstone.
    public mutating func restore(_ key: String, expiresAt: Int64?) {
        if let expiresAt { add(key, expiresAt: expiresAt) } else { expiries[key] = nil }
    }

    /// Forgets every key that expired at `now` and returns them, so that the caller
    /// writes their tombstones.
    public mutating func removeExpired(now: Int64) -> [String] {
        var expired: [String] = []
        while head < queue.count, queue[head].expiresAt <= now {
            let entry = queue[head]
            head += 1
            // The key may have been deleted by a tombstone, or inserted again with a
            // later expiry; only the entry that matches its current expiry removes it.
            if expiries[entry.key] == entry.expiresAt {
                expiries[entry.key] = nil
                expired.append(entry.key)
            }
        }
        if head > 4096, head * 2 > queue.count {
            queue.removeFirst(head)
            head = 0
        }
        return expired
    }

    /// How many keys are remembered (committed).
    public var count: Int { expiries.count }

    private mutating func add(_ key: String, expiresAt: Int64) {
        expiries[key] = expiresAt
        queue.append((expiresAt, key))
    }
}

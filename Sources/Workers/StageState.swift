import Contracts
import Digests
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
///
/// A worker may hold millions of keys, so each is kept as 16 bytes (``KeyDigest``), not
/// as a string: a canonical UUID (what the runtime's and the channels' ids are) is its
/// own 16 bytes; any other text is a 128-bit hash of it, kept with its text, which a
/// tombstone needs.
public struct IdempotencyKeys: Sendable {
    /// Key → expiry in milliseconds since 1970.
    private var expiries: [KeyDigest: Int64] = [:]
    private var pending: [KeyDigest: Int64] = [:]
    /// Keys in the order they expire: retention is one constant, so insertion order is
    /// expiry order and a sweep only looks at the head.
    private var queue: [QueueEntry] = []
    private var head = 0
    /// The text of every key that is not a canonical UUID (committed, pending).
    private var texts: [KeyDigest: String] = [:]
    private var pendingTexts: [KeyDigest: String] = [:]

    private struct QueueEntry {
        var expiresAt: Int64
        var key: KeyDigest
    }

    /// No keys.
    public init() {}

    /// Whether `key` was processed (committed or in the batch in progress).
    public func contains(_ key: String) -> Bool {
        let digest = KeyDigest(key)
        return pending[digest] != nil || expiries[digest] != nil
    }

    /// Marks `key` processed in the batch in progress.
    public mutating func insert(_ key: String, expiresAt: Int64) {
        let digest = KeyDigest(key)
        pending[digest] = expiresAt
        if !digest.isUUID { pendingTexts[digest] = key }
    }

    /// Makes the batch's keys permanent.
    public mutating func commit() {
        // Sorted so that the queue stays in expiry order even for a batch whose inputs
        // carried different processing times.
        for (key, expiresAt) in pending.sorted(by: { $0.value < $1.value }) {
            add(key, expiresAt: expiresAt)
        }
        texts.merge(pendingTexts) { _, new in new }
        pending.removeAll(keepingCapacity: true)
        pendingTexts.removeAll(keepingCapacity: true)
    }

    /// Throws the batch's keys away.
    public mutating func rollback() {
        pending.removeAll(keepingCapacity: true)
        pendingTexts.removeAll(keepingCapacity: true)
    }

    /// Applies an idempotency record read during restore; nil expiry is a tombstone.
    public mutating func restore(_ key: String, expiresAt: Int64?) {
        let digest = KeyDigest(key)
        if let expiresAt {
            add(digest, expiresAt: expiresAt)
            if !digest.isUUID { texts[digest] = key }
        } else {
            expiries[digest] = nil
            if !digest.isUUID { texts[digest] = nil }
        }
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
                expired.append(entry.key.isUUID ? entry.key.uuidString : texts.removeValue(forKey: entry.key) ?? "")
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

    private mutating func add(_ key: KeyDigest, expiresAt: Int64) {
        expiries[key] = expiresAt
        queue.append(QueueEntry(expiresAt: expiresAt, key: key))
    }
}

/// An idempotency key in 16 bytes: a canonical (lowercase, hyphenated) UUID's own bits,
/// or for any other text the first 128 bits of its SHA-256 with the UUID version nibble
/// set to 0, which no canonical UUID the runtime reads has (they are versions 4 and 5),
/// so the two kinds never meet. Two texts share a hash with probability ~n²/2¹²⁹: for a
/// billion keys, ~10⁻²¹.
struct KeyDigest: Hashable, Sendable {
    let high: UInt64
    let low: UInt64

    /// Whether the key is a canonical UUID (its text is ``uuidString``).
    var isUUID: Bool { (high >> 12) & 0xF != 0 }

    init(_ key: String) {
        if let parsed = KeyDigest(uuid: key) {
            self = parsed
            return
        }
        let hash = Digests.sha256(Array(key.utf8))
        var high: UInt64 = 0
        var low: UInt64 = 0
        for (index, byte) in hash.prefix(16).enumerated() {
            if index < 8 { high = high << 8 | UInt64(byte) } else { low = low << 8 | UInt64(byte) }
        }
        self.high = high & ~0xF000
        self.low = low
    }

    /// A canonical UUID's bits; nil for any other text, including a UUID in capitals or
    /// of version 0 (so that ``uuidString`` gives back exactly the text read).
    private init?(uuid key: String) {
        var key = key
        key.makeContiguousUTF8()  // a no-op for the native strings the runtime makes
        guard key.utf8.count == 36 else { return nil }
        let parsed: (UInt64, UInt64)?? = key.utf8.withContiguousStorageIfAvailable { bytes in
            var words: (UInt64, UInt64) = (0, 0)
            var nibbles = 0
            for (index, byte) in bytes.enumerated() {
                if index == 8 || index == 13 || index == 18 || index == 23 {
                    guard byte == UInt8(ascii: "-") else { return nil }
                    continue
                }
                let value: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): value = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): value = byte - UInt8(ascii: "a") + 10
                default: return nil
                }
                if nibbles < 16 { words.0 = words.0 << 4 | UInt64(value) } else { words.1 = words.1 << 4 | UInt64(value) }
                nibbles += 1
            }
            return words
        }
        guard let parsed = parsed ?? nil, (parsed.0 >> 12) & 0xF != 0 else { return nil }
        high = parsed.0
        low = parsed.1
    }

    /// The canonical text of a UUID key.
    var uuidString: String {
        DeterministicID.uuidString((0..<16).map { index in
            UInt8(truncatingIfNeeded: (index < 8 ? high : low) >> UInt64(56 - 8 * (index % 8)))
        })
    }
}

import Contracts
import StageMachine

/// What a simulated record holds: the machine's records as they are, no bytes.
enum StoredValue: Sendable {
    /// An event (an input, an output or a changelog value).
    case event(Envelope)
    /// A delete (changelog or idempotency tombstone).
    case tombstone
    /// An idempotency key with its expiry.
    case key(expiresAt: Int64)
    /// A dead letter for the input at `input`, under its derived id.
    case deadLetter(input: RecordPosition, error: String)
    /// Bytes no contract accepts (a poison input).
    case garbage(String)
    /// An at-least-once intent: the records of one input, as first computed.
    case intent([OutputRecord])
}

/// One record in a partition's log.
struct StoredRecord: Sendable {
    var offset: Int64
    var key: String?
    var value: StoredValue
    /// The transaction it was written in (nil: not transactional).
    var transaction: Int?
}

/// A model of a Kafka cluster written from the protocol's rules, not from our code:
/// partitioned logs with offsets; transactions (KIP-98) with producer epochs, fencing,
/// aborts and a transaction timeout; read_committed fetches that stop at the last stable
/// offset and skip aborted records; consumer-group offsets with generations, and
/// transactional offset commits that become visible with their transaction and make
/// offset fetches wait while pending (KIP-447, require_stable).
final class BrokerModel {
    enum TransactionState { case open, committed, aborted }

    struct Transaction {
        var id: Int
        var transactionalID: String
        var epoch: Int
        var state: TransactionState
        var started: Int
        var offsets: [TopicPartition: Int64] = [:]
        var group: String?
        var generation: Int = 0
        var written: [TopicPartition] = []
    }

    let partitions: Int32
    private(set) var logs: [TopicPartition: [StoredRecord]] = [:]
    private(set) var transactions: [Int: Transaction] = [:]
    private var nextTransaction = 1
    /// Producer epoch per transactional id.
    private(set) var epochs: [String: Int] = [:]
    /// The open transaction of each transactional id.
    private var open: [String: Int] = [:]
    /// Committed group offsets.
    private(set) var committedOffsets: [String: [TopicPartition: Int64]] = [:]
    /// Group generations.
    var generations: [String: Int] = [:]
    /// Latest committed value per topic and key (what a global table follows).
    private(set) var latest: [String: [String: Envelope]] = [:]
    /// Every committed InventoryLevel ever visible, in order (the oversell check).
    private(set) var history: [String: [StoredRecord]] = [:]
    /// Topics whose visible records are kept in ``history``.
    let tracked: Set<String>

    init(partitions: Int32, tracked: Set<String>) {
        self.partitions = partitions
        self.tracked = tracked
    }

    /// The partition of `key` (a stable hash, as Kafka's murmur2 is).
    func partition(for key: String) -> Int32 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return Int32(hash % UInt64(partitions))
    }

    // MARK: Writes

    /// Appends a record, in `transaction` or visible at once.
    func append(_ part: TopicPartition, key: String?, value: StoredValue, transaction: Int? = nil) {
        var log = logs[part, default: []]
        let record = StoredRecord(offset: Int64(log.count), key: key, value: value, transaction: transaction)
        log.append(record)
        logs[part] = log
        if let transaction {
            transactions[transaction]?.written.append(part)
        } else {
            becameVisible(record, in: part)
        }
    }

    private func becameVisible(_ record: StoredRecord, in part: TopicPartition) {
        guard let key = record.key else { return }
        switch record.value {
        case .event(let envelope): latest[part.topic, default: [:]][key] = envelope
        case .tombstone: latest[part.topic, default: [:]][key] = nil
        default: break
        }
        if tracked.contains(part.topic) { history[part.topic, default: []].append(record) }
    }

    // MARK: Transactions

    /// A producer with `transactionalID` starts: its epoch goes up (fencing any older
    /// instance) and its open transaction is aborted.
    func initTransactions(_ transactionalID: String) -> Int {
        if let id = open[transactionalID] { finish(id, .aborted) }
        let epoch = epochs[transactionalID, default: 0] + 1
        epochs[transactionalID] = epoch
        return epoch
    }

    /// Whether `epoch` is still the current one of `transactionalID`.
    func current(_ transactionalID: String, epoch: Int) -> Bool { epochs[transactionalID] == epoch }

    func begin(_ transactionalID: String, epoch: Int, now: Int) -> Int {
        let id = nextTransaction
        nextTransaction += 1
        transactions[id] = Transaction(id: id, transactionalID: transactionalID, epoch: epoch, state: .open, started: now)
        open[transactionalID] = id
        return id
    }

    func state(of transaction: Int) -> TransactionState? { transactions[transaction]?.state }

    func addOffsets(_ transaction: Int, group: String, generation: Int, offsets: [TopicPartition: Int64]) {
        transactions[transaction]?.group = group
        transactions[transaction]?.generation = generation
        transactions[transaction]?.offsets.merge(offsets) { $1 }
    }

    /// Commits or aborts: the records and offsets become visible, or never do.
    func finish(_ id: Int, _ outcome: TransactionState) {
        guard var transaction = transactions[id], transaction.state == .open else { return }
        transaction.state = outcome
        transactions[id] = transaction
        if open[transaction.transactionalID] == id { open[transaction.transactionalID] = nil }
        guard outcome == .committed else { return }
        if let group = transaction.group {
            committedOffsets[group, default: [:]].merge(transaction.offsets) { $1 }
        }
        for part in Set(transaction.written).sorted() {
            for record in logs[part] ?? [] where record.transaction == id { becameVisible(record, in: part) }
        }
    }

    /// Aborts transactions open longer than `timeout` steps and bumps their producers'
    /// epochs (the broker's transaction timeout): a zombie cannot commit them later.
    func expireTransactions(now: Int, timeout: Int) {
        for (transactionalID, id) in open.sorted(by: { $0.key < $1.key }) where now - (transactions[id]?.started ?? now) > timeout {
            finish(id, .aborted)
            epochs[transactionalID, default: 0] += 1
        }
    }

    /// Whether offsets of `parts` wait in an open transaction (an offset fetch with
    /// require_stable fails retriably until it ends).
    func pendingOffsets(group: String, _ parts: [TopicPartition]) -> Bool {
        open.values.contains { id in
            guard let transaction = transactions[id], transaction.group == group else { return false }
            return parts.contains { transaction.offsets[$0] != nil }
        }
    }

    // MARK: Reads

    /// read_committed: records from `offset` up to the last stable offset, aborted ones
    /// skipped; returns them and the position after.
    func fetch(_ part: TopicPartition, from offset: Int64, max: Int) -> (records: [StoredRecord], next: Int64) {
        let log = logs[part] ?? []
        var records: [StoredRecord] = []
        var position = offset
        while position < Int64(log.count), records.count < max {
            let record = log[Int(position)]
            if let id = record.transaction {
                switch transactions[id]?.state {
                case .open?, nil: return (records, position)
                case .aborted?: position += 1; continue
                case .committed?: break
                }
            }
            records.append(record)
            position += 1
        }
        return (records, position)
    }

    /// Whether a read_committed reader can reach the end of `part` (no open transaction).
    func stable(_ part: TopicPartition) -> Bool {
        let log = logs[part] ?? []
        return fetch(part, from: 0, max: .max).next == Int64(log.count)
    }

    /// Every visible record of a topic, partition by partition.
    func visible(_ topic: String) -> [StoredRecord] {
        (0..<partitions).flatMap { fetch(TopicPartition(topic: topic, partition: $0), from: 0, max: .max).records }
    }

    /// Commits group offsets (no transaction).
    func commit(group: String, offsets: [TopicPartition: Int64]) {
        committedOffsets[group, default: [:]].merge(offsets) { $1 }
    }
}

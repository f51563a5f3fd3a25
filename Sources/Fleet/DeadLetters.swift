import Contracts
import Digests
import Foundation
import Kafka
import Logging

/// Header names of a dead-letter record, besides its own CloudEvents headers.
public enum DeadLetterHeader {
    /// The topic the failed record was read from.
    public static let topic = "oms_dlq_topic"
    /// Its partition.
    public static let partition = "oms_dlq_partition"
    /// Its offset.
    public static let offset = "oms_dlq_offset"
    /// The stage that failed on it.
    public static let stage = "oms_dlq_stage"
    /// Why.
    public static let error = "oms_dlq_error"
    /// How many attempts were made.
    public static let attempts = "oms_dlq_attempts"
    /// When it was dead-lettered (RFC 3339).
    public static let time = "oms_dlq_time"
    /// Prefix of the failed record's own headers, kept so that a replay restores them.
    public static let originalPrefix = "oms_orig_"
    /// `true` when the letter holds a reference to the failed record instead of all of
    /// it (the whole would not fit the dead-letter topic): its value is cut to its first
    /// bytes, and the record itself stays at the topic, partition and offset named.
    public static let truncated = "oms_dlq_truncated"
    /// With ``truncated``: the failed record's value size in bytes.
    public static let valueSize = "oms_dlq_value_size"
    /// With ``truncated``: the SHA-256 of the failed record's value, hex.
    public static let valueSHA256 = "oms_dlq_value_sha256"
    /// With ``truncated``: `true` when the failed record's own headers were left out too.
    public static let headersDropped = "oms_dlq_headers_dropped"
}

/// Builds dead-letter records and turns them back into the records they hold.
public enum DeadLetters {
    /// How many bytes of a failed record's value a reference keeps (see
    /// ``DeadLetterHeader/truncated``).
    public static let keptValueBytes = 16 * 1024

    /// The dead-letter record for `message`: a `DeadLetter` event (raw key and value
    /// kept byte for byte) with headers naming where it came from and why it failed.
    ///
    /// When that record would be larger than `sizeLimit` (the dead-letter topic's, see
    /// `KafkaRecordSizeLimits`), it keeps a reference instead: the first
    /// ``keptValueBytes`` of the value, its size and SHA-256, and the source position,
    /// and says so in ``DeadLetterHeader/truncated``; if even that is too large, the
    /// failed record's own headers are left out as well.
    public static func record(
        for message: KafkaMessage, stage: String, error: String, attempts: Int, now: Date, sizeLimit: Int = .max
    ) -> KafkaProducerMessage {
        // Read before the last resort drops the failed record's headers.
        let trace = message.header(EnvelopeHeader.traceparent)?.stringValue.flatMap { try? TraceParent(parsing: $0) }
        let whole = letter(for: message, stage: stage, error: error, attempts: attempts, now: now, value: message.value, reference: nil, trace: trace)
        guard KafkaRecordSizeLimits.size(of: whole) > sizeLimit else { return whole }
        let value = message.value ?? []
        var reference = [
            KafkaHeader(name: DeadLetterHeader.truncated, string: "true"),
            KafkaHeader(name: DeadLetterHeader.valueSize, string: String(value.count)),
            KafkaHeader(name: DeadLetterHeader.valueSHA256, string: Hex.encode(Digests.sha256(value))),
        ]
        let kept = Array(value.prefix(keptValueBytes))
        let cut = letter(for: message, stage: stage, error: error, attempts: attempts, now: now, value: kept, reference: reference, trace: trace)
        guard KafkaRecordSizeLimits.size(of: cut) > sizeLimit else { return cut }
        reference.append(KafkaHeader(name: DeadLetterHeader.headersDropped, string: "true"))
        var bare = message
        bare.headers = []
        bare.key = message.key.map { Array($0.prefix(1024)) }
        return letter(for: bare, stage: stage, error: error, attempts: attempts, now: now, value: Array(kept.prefix(1024)), reference: reference, trace: trace)
    }

    private static func letter(
        for message: KafkaMessage, stage: String, error: String, attempts: Int, now: Date, value keptValue: [UInt8]?, reference: [KafkaHeader]?,
        trace: TraceParent?
    ) -> KafkaProducerMessage {
        // An error text can quote what failed; a header is not the place for all of it.
        let error = error.count > 2_000 ? String(error.prefix(2_000)) + "…" : error
        let letter = DeadLetter(
            originalTopic: message.topic, partition: message.partition, offset: message.offset, stage: stage,
            error: error, attempts: attempts, failedAt: now,
            rawKey: message.key.map { Data($0) }, rawValue: keptValue.map { Data($0) }
        )
        // The id is derived from the record's position, so a retried transaction writes
        // the same dead letter, and from the input's id where it has one.
        let inputID = message.header(EnvelopeHeader.id)?.stringValue
        let id = DeterministicID.eventID(inputEventID: "\(message.topic)/\(message.partition)/\(message.offset)", stage: stage, outputIndex: 0)
        // The letter stays in the failed record's trace, as a derived child like any
        // output, so that a replay writes the same header.
        let envelope = Envelope(
            id: id, source: "oms/\(stage)", time: now, traceparent: trace?.child(forEventID: id), causationID: inputID, event: letter.event)
        var headers: [KafkaHeader] = [
            KafkaHeader(name: DeadLetterHeader.topic, string: message.topic),
            KafkaHeader(name: DeadLetterHeader.partition, string: String(message.partition)),
            KafkaHeader(name: DeadLetterHeader.offset, string: String(message.offset)),
            KafkaHeader(name: DeadLetterHeader.stage, string: stage),
            KafkaHeader(name: DeadLetterHeader.error, string: error),
            KafkaHeader(name: DeadLetterHeader.attempts, string: String(attempts)),
            KafkaHeader(name: DeadLetterHeader.time, string: RFC3339.format(now)),
        ]
        headers += reference ?? []
        headers += message.headers.map { KafkaHeader(name: DeadLetterHeader.originalPrefix + $0.name, value: $0.value) }
        let value: [UInt8]
        do {
            let record = try envelope.record()
            headers += record.headers.map { KafkaHeader(name: $0.name, value: $0.value) }
            value = record.value
        } catch {
            // Cannot happen for a DeadLetter (all its fields encode); keep the raw value
            // rather than lose the record.
            value = keptValue ?? []
        }
        return KafkaProducerMessage(topic: TopicCatalog.deadLetterTopic, key: message.key, value: value, headers: headers)
    }

    /// The record a dead letter holds, as it was first written (topic, key, value and
    /// headers), for a replay.
    public static func original(of deadLetter: KafkaMessage) throws(DeadLetterError) -> KafkaProducerMessage {
        guard let topic = deadLetter.header(DeadLetterHeader.topic)?.stringValue else {
            throw DeadLetterError(offset: deadLetter.offset, reason: "no \(DeadLetterHeader.topic) header: not a dead letter")
        }
        if deadLetter.header(DeadLetterHeader.truncated)?.stringValue == "true" {
            throw DeadLetterError(offset: deadLetter.offset, reason: "it holds only a reference (the record was too large to keep): read it at \(topic) partition \(deadLetter.header(DeadLetterHeader.partition)?.stringValue ?? "?") offset \(deadLetter.header(DeadLetterHeader.offset)?.stringValue ?? "?")")
        }
        guard case .deadLetter(let letter) = (try? Envelope.decode(deadLetter.eventRecord))?.event else {
            throw DeadLetterError(offset: deadLetter.offset, reason: "value is not an oms.deadletter.v1 event")
        }
        let headers = deadLetter.headers.compactMap { header -> KafkaHeader? in
            guard header.name.hasPrefix(DeadLetterHeader.originalPrefix) else { return nil }
            return KafkaHeader(name: String(header.name.dropFirst(DeadLetterHeader.originalPrefix.count)), value: header.value)
        }
        return KafkaProducerMessage(
            topic: topic, key: letter.rawKey.map { Array($0) }, value: letter.rawValue.map { Array($0) }, headers: headers
        )
    }
}

/// A record of the dead-letter topic that is not a dead letter.
public struct DeadLetterError: Error, Sendable, CustomStringConvertible {
    /// Its offset.
    public var offset: Int64
    /// What is wrong.
    public var reason: String
    /// `dead letter at offset N: reason`.
    public var description: String { "dead letter at offset \(offset): \(reason)" }
}

/// The dead-letter topic as operators see it: read it whole, and send letters back.
public enum DeadLetterQueue {
    /// Every committed record of `oms.deadletter`, oldest first per partition.
    public static func readAll(kafka: KafkaConfiguration, timeout: Duration = .seconds(60)) async throws -> [KafkaMessage] {
        let admin = try KafkaAdmin(configuration: kafka)
        guard let partitions = try await admin.partitionCounts()[TopicCatalog.deadLetterTopic] else {
            throw DeadLetterError(offset: -1, reason: "topic \(TopicCatalog.deadLetterTopic) does not exist")
        }
        return try await TopicScan.records(
            in: (0..<partitions).map { KafkaTopicPartition(topic: TopicCatalog.deadLetterTopic, partition: $0) }, kafka: kafka,
            logger: Logger(label: "oms.dlq"), timeout: timeout)
    }
}

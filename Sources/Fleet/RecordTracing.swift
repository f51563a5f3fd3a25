import Contracts
import Kafka
import StageMachine
import Tracing

/// Reads trace context out of a Kafka record's headers, for the bootstrapped
/// instrument: with a W3C propagator (swift-otel's) it finds `traceparent` there.
public struct KafkaHeadersExtractor: Extractor {
    /// An extractor.
    public init() {}

    /// The first header called `key`, as text. Kafka header names are case-sensitive
    /// and the envelope writes `traceparent` in lowercase, as W3C names it.
    public func extract(key: String, from carrier: [KafkaHeader]) -> String? {
        carrier.first { $0.name == key }?.stringValue
    }
}

/// Writes trace context into a dictionary of header values, to read back the
/// `traceparent` the bootstrapped instrument gives a span's context.
public struct HeaderDictionaryInjector: Injector {
    /// An injector.
    public init() {}

    /// Sets `carrier[key]`.
    public func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) {
        carrier[key] = value
    }
}

/// The bridge between the records' deterministic ``TraceParent`` and the spans of
/// whatever tracer the process bootstrapped (docs/ARCHITECTURE.md, "Tracing").
public enum RecordTracing {
    /// Whether spans are worth starting: false with the default no-op tracer, so that an
    /// untraced fleet pays one check per batch and nothing per record.
    public static var isActive: Bool {
        !(InstrumentationSystem.tracer is NoOpTracer)
    }

    /// The context a record's span starts from: the instrument's reading of its headers
    /// (its `traceparent` for a W3C propagator).
    public static func context(of headers: [KafkaHeader]) -> InstrumentationContext {
        var context = InstrumentationContext.topLevel
        InstrumentationSystem.instrument.extract(headers, into: &context, using: KafkaHeadersExtractor())
        return context
    }

    /// The context of a span to continue `trace` in, as the instrument reads it from a
    /// `traceparent` header.
    public static func context(continuing trace: TraceParent) -> InstrumentationContext {
        context(of: [KafkaHeader(name: EnvelopeHeader.traceparent, string: trace.description)])
    }

    /// The `traceparent` the bootstrapped instrument writes for `context` (its span), if
    /// it writes a valid one; nil with no tracer or a tracer that propagates otherwise.
    public static func traceparent(of context: InstrumentationContext) -> TraceParent? {
        var headers: [String: String] = [:]
        InstrumentationSystem.instrument.inject(context, into: &headers, using: HeaderDictionaryInjector())
        return headers[EnvelopeHeader.traceparent].flatMap { try? TraceParent(parsing: $0) }
    }
}

/// The spans of the records a ``StageRunner`` has fetched and not yet committed: one per
/// record, child of the record's `traceparent`, from fetch until what it led to is
/// committed — the transaction, or at least once its outputs written and its offset
/// committed (records are processed a batch at a time, so their spans overlap).
///
/// Outputs keep their derived traceparents (``TraceParent/child(forEventID:)``): a span's
/// id is random and a replay must write the same bytes. Each span records the
/// traceparents its outputs carry (`oms.output.traceparents`), which ties the next
/// stage's span, whose parent is one of them, back to this one.
struct RecordSpans {
    private var spans: [RecordPosition: any Span] = [:]
    /// The records' event ids: at least once, outputs are written at commit time, with
    /// no input named, and find their input's span by their causation id.
    private var positions: [String: RecordPosition] = [:]

    /// No spans: the no-op tracer is bootstrapped.
    static let none = RecordSpans()

    /// How many spans are open.
    var count: Int { spans.count }

    /// A span per record of `inputs` (read from `messages`, in the same order), named
    /// `<stage> process`; none at all with the no-op tracer.
    static func start(stage: String, messages: [KafkaMessage], inputs: [InputRecord]) -> RecordSpans {
        guard RecordTracing.isActive else { return .none }
        let tracer = InstrumentationSystem.tracer
        var result = RecordSpans()
        result.spans.reserveCapacity(messages.count)
        for (message, input) in zip(messages, inputs) {
            let span = tracer.startSpan("\(stage) process", context: RecordTracing.context(of: message.headers), ofKind: .consumer)
            span.updateAttributes { attributes in
                attributes["messaging.system"] = "kafka"
                attributes["messaging.operation.type"] = "process"
                attributes["messaging.destination.name"] = message.topic
                attributes["messaging.destination.partition.id"] = "\(message.partition)"
                attributes["messaging.kafka.offset"] = Int(message.offset)
                attributes["messaging.consumer.group.name"] = "oms.\(stage)"
                switch input.content {
                case .envelope(let envelope):
                    attributes["messaging.message.id"] = envelope.id
                    attributes["oms.event.type"] = envelope.type.ceType
                    attributes["oms.subject"] = envelope.subject
                case .undecodable(let reason):
                    attributes["oms.undecodable"] = reason
                case .tombstone:
                    attributes["oms.tombstone"] = true
                }
            }
            result.spans[input.position] = span
            if case .envelope(let envelope) = input.content { result.positions[envelope.id] = input.position }
        }
        return result
    }

    /// Takes over the spans of a newer batch. A record read again (after a rewind) ends
    /// its earlier span first.
    mutating func add(_ newer: RecordSpans) {
        spans.merge(newer.spans) { earlier, again in
            earlier.end()
            return again
        }
        positions.merge(newer.positions) { $1 }
    }

    /// Notes what the stage wrote for its records: each span's outputs' traceparents, and
    /// an error status for a record that became a dead letter. `input` names the record
    /// when the records are written as it is processed; records written at commit time
    /// name none and are matched by causation id (outputs) or position (dead letters).
    func wrote(_ records: [OutputRecord], input: RecordPosition?) {
        guard !spans.isEmpty else { return }
        var traceparents: [RecordPosition: [String]] = [:]
        var deadLetters: [RecordPosition: String] = [:]
        func note(_ record: OutputRecord) {
            switch record {
            case .output(_, let envelope):
                guard let trace = envelope.traceparent, let position = input ?? envelope.causationID.flatMap({ positions[$0] }) else { return }
                traceparents[position, default: []].append(trace.description)
            case .deadLetter(let failed, let error, _, _):
                deadLetters[input ?? failed] = error
            case .intent(_, _, let records?):
                records.forEach(note)
            case .state, .idempotency, .encoded, .intent:
                break
            }
        }
        records.forEach(note)
        // Set, not appended: at least once, the intent and then the outputs themselves
        // name the same traceparents.
        for (position, list) in traceparents { spans[position]?.attributes["oms.output.traceparents"] = list }
        for (position, error) in deadLetters {
            guard let span = spans[position] else { continue }
            span.attributes["oms.dead_letter"] = true
            span.setStatus(SpanStatus(code: .error, message: error))
        }
    }

    /// Ends every span and forgets it; with `error` when what the records led to failed
    /// or was given up (the records will be read again).
    mutating func end(error: (any Error)? = nil) {
        guard !spans.isEmpty else { return }
        for span in spans.values {
            if let error {
                span.recordError(error)
                span.setStatus(SpanStatus(code: .error, message: "\(error)"))
            }
            span.end()
        }
        spans = [:]
        positions = [:]
    }
}

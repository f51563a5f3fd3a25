import Contracts
import Synchronization
import Tracing

/// A span as ``TestTracer`` keeps it once ended.
public struct RecordedSpan: Sendable {
    /// Its operation name (`allocation process`, `/webhooks/orders/{channel}`).
    public var name: String
    /// 32 hex digits.
    public var traceID: String
    /// 16 hex digits.
    public var spanID: String
    /// The span it is a child of, from the context it started in; nil for a root.
    public var parentID: String?
    /// Server, consumer, client…
    public var kind: SpanKind
    /// Its attributes when it ended.
    public var attributes: SpanAttributes
    /// Its status, if one was set.
    public var status: SpanStatus?

    /// A string attribute.
    public func string(_ key: String) -> String? {
        if case .string(let value)? = attributes[key]?.toSpanAttribute() { return value }
        return nil
    }

    /// A string-array attribute.
    public func strings(_ key: String) -> [String] {
        if case .stringArray(let values)? = attributes[key]?.toSpanAttribute() { return values }
        return []
    }
}

/// A tracer for tests: it keeps ended spans in memory and propagates context as W3C
/// `traceparent`, as an OpenTelemetry tracer does, so that tests see what an exporter
/// would get: which span is whose child across HTTP and Kafka.
public final class TestTracer: Tracer, Sendable {
    private let finished = Mutex<[RecordedSpan]>([])

    /// The most spans kept.
    static let capacity = 200_000

    /// A tracer that is not bootstrapped; ``shared`` is.
    public init() {}

    /// The process's test tracer, bootstrapped as its instrument on first use:
    /// `InstrumentationSystem.bootstrap` may be called once per process, and tests of
    /// a suite run in one. Tests running side by side share it, so each should look
    /// at its own trace only (``spans(inTrace:)``).
    public static let shared: TestTracer = {
        let tracer = TestTracer()
        InstrumentationSystem.bootstrap(tracer)
        return tracer
    }()

    /// Every ended span, oldest first.
    public var spans: [RecordedSpan] { finished.withLock { $0 } }

    /// The ended spans of one trace.
    public func spans(inTrace traceID: String) -> [RecordedSpan] {
        finished.withLock { $0.filter { $0.traceID == traceID } }
    }

    /// Starts a span: the child of the span in `context`, if any, else a new trace's root.
    public func startSpan<Instant: TracerInstant>(
        _ operationName: String, context: @autoclosure () -> InstrumentationContext, ofKind kind: SpanKind,
        at instant: @autoclosure () -> Instant, function: String, file fileID: String, line: UInt
    ) -> TestSpan {
        var context = context()
        let parent = context.testSpanContext
        let own = TestSpanContext(traceID: parent?.traceID ?? Self.randomHex(bytes: 16), spanID: Self.randomHex(bytes: 8))
        context.testSpanContext = own
        return TestSpan(name: operationName, context: context, own: own, parentID: parent?.spanID, kind: kind) { [self] span in
            finished.withLock { spans in
                // Every stage runner of the test process reports here once it is
                // bootstrapped: the oldest half goes before memory would matter.
                if spans.count >= Self.capacity { spans.removeFirst(Self.capacity / 2) }
                spans.append(span)
            }
        }
    }

    /// Nothing is buffered.
    public func forceFlush() {}

    /// Reads `traceparent`.
    public func extract<Carrier, Extract: Extractor>(
        _ carrier: Carrier, into context: inout InstrumentationContext, using extractor: Extract
    ) where Extract.Carrier == Carrier {
        guard let text = extractor.extract(key: "traceparent", from: carrier), let parent = try? TraceParent(parsing: text) else { return }
        context.testSpanContext = TestSpanContext(traceID: parent.traceID, spanID: parent.parentID)
    }

    /// Writes `traceparent` (sampled).
    public func inject<Carrier, Inject: Injector>(
        _ context: InstrumentationContext, into carrier: inout Carrier, using injector: Inject
    ) where Inject.Carrier == Carrier {
        guard let own = context.testSpanContext else { return }
        injector.inject("00-\(own.traceID)-\(own.spanID)-01", forKey: "traceparent", into: &carrier)
    }

    /// `bytes` random bytes as lowercase hex, not all zero: a trace id (16) or span id (8).
    public static func randomHex(bytes: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        while true {
            let text = (0..<bytes).map { _ in
                let byte = UInt8.random(in: 0...255, using: &generator)
                return (byte < 16 ? "0" : "") + String(byte, radix: 16)
            }.joined()
            // All zeros is not a valid id.
            if text.contains(where: { $0 != "0" }) { return text }
        }
    }
}

/// The trace and span a ``TestSpan`` stands for, carried in its context.
public struct TestSpanContext: Sendable, Hashable {
    /// 32 hex digits.
    public var traceID: String
    /// 16 hex digits.
    public var spanID: String
}

extension InstrumentationContext {
    /// The test tracer's span in this context.
    public var testSpanContext: TestSpanContext? {
        get { self[TestSpanContextKey.self] }
        set { self[TestSpanContextKey.self] = newValue }
    }
}

private enum TestSpanContextKey: InstrumentationContextKey {
    typealias Value = TestSpanContext
}

/// A span of ``TestTracer``.
public final class TestSpan: Span, Sendable {
    private struct State {
        var name: String
        var attributes: SpanAttributes = [:]
        var status: SpanStatus?
        var ended = false
    }

    /// Its context: the one it started in, with this span as the current one.
    public let context: InstrumentationContext
    private let own: TestSpanContext
    private let parentID: String?
    private let kind: SpanKind
    private let state: Mutex<State>
    private let onEnd: @Sendable (RecordedSpan) -> Void

    init(
        name: String, context: InstrumentationContext, own: TestSpanContext, parentID: String?, kind: SpanKind,
        onEnd: @escaping @Sendable (RecordedSpan) -> Void
    ) {
        self.context = context
        self.own = own
        self.parentID = parentID
        self.kind = kind
        self.onEnd = onEnd
        state = Mutex(State(name: name))
    }

    /// The operation name; settable until the span ends.
    public var operationName: String {
        get { state.withLock { $0.name } }
        set { state.withLock { if !$0.ended { $0.name = newValue } } }
    }

    /// The attributes; settable until the span ends.
    public var attributes: SpanAttributes {
        get { state.withLock { $0.attributes } }
        set { state.withLock { if !$0.ended { $0.attributes = newValue } } }
    }

    /// Until it ends.
    public var isRecording: Bool { state.withLock { !$0.ended } }

    /// Sets the status.
    public func setStatus(_ status: SpanStatus) {
        state.withLock { if !$0.ended { $0.status = status } }
    }

    /// Events are not kept.
    public func addEvent(_ event: SpanEvent) {}

    /// Links are not kept.
    public func addLink(_ link: SpanLink) {}

    /// Kept as the attribute `exception.message`.
    public func recordError<Instant: TracerInstant>(_ error: any Error, attributes: SpanAttributes, at instant: @autoclosure () -> Instant) {
        state.withLock { if !$0.ended { $0.attributes["exception.message"] = "\(error)" } }
    }

    /// Ends it (once): the tracer keeps it from then on.
    public func end<Instant: TracerInstant>(at instant: @autoclosure () -> Instant) {
        let recorded: RecordedSpan? = state.withLock { state in
            guard !state.ended else { return nil }
            state.ended = true
            return RecordedSpan(
                name: state.name, traceID: own.traceID, spanID: own.spanID, parentID: parentID, kind: kind,
                attributes: state.attributes, status: state.status)
        }
        if let recorded { onEnd(recorded) }
    }
}
